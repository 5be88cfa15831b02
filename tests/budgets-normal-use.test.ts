// At the default budgets (5 a minute), what a person does on the page meets no 429 the docs do not predict, and
// the bounds that keep guessing and abuse in check still hold.
import { randomBytes } from 'node:crypto';
import type { Express } from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { loadConfig } from '../src/core/config.js';
import { readOutbox } from '../src/features/email/transport.js';
import { codeAt } from '../src/kernel/verifiers/totp.js';
import { bearer, emailedCodeStepUp, login, readyToEnrol, register, type TestAccount } from './support/accounts.js';
import { SoftAuthenticator } from './support/authenticator.js';
import { buildApp, builtWith, freshStore, testConfig, useBackends } from './support/test-app.js';

const ORIGIN = 'http://localhost:3000';
/** What an operator gets without setting any RATE_LIMIT_* variable. */
const DEFAULT_LIMITS = loadConfig({ NODE_ENV: 'test' }).rateLimit;
const DEFAULT_MAX = 5;

/** The reads the page makes when Settings is opened (public/js/screens/settings.js), each with its status. */
async function openSettings(app: Express, accessToken: string): Promise<number[]> {
  const paths = ['/api-keys', '/mfa', '/passkeys', '/sessions', '/me/security-events?pageSize=10'];
  const answers = await Promise.all(
    paths.map((path) =>
      request(app)
        .get(path)
        .set(...bearer(accessToken)),
    ),
  );
  return answers.map((answer) => answer.status);
}

/** The newest message to `address` whose subject matches, waiting for the mail queue to write it. */
async function mailTo(app: Express, address: string, subject: RegExp): Promise<string> {
  const { config } = builtWith(app);
  let text: string | undefined;
  await expect
    .poll(
      async () => {
        text = (await readOutbox(config.email.outboxDir, 500)).find((mail) => mail.to === address && subject.test(mail.subject))?.text;
        return text;
      },
      { timeout: 10_000 },
    )
    .toBeDefined();
  return text ?? '';
}

function linkIn(text: string, action: 'verify-email' | 'reset-password'): string {
  const token = new RegExp(`#${action}=([A-Za-z0-9_-]+)`).exec(text)?.[1];
  if (!token) throw new Error(`no ${action} link in: ${text}`);
  return token;
}

function codeIn(text: string): string {
  const code = /^\s+(\d{6})\s*$/m.exec(text)?.[1];
  if (!code) throw new Error(`no code in: ${text}`);
  return code;
}

const wrongPassword = (account: Pick<TestAccount, 'username'>) => ({ username: account.username, password: 'not the password at all' });

describe('budgets in normal use', () => {
  const backends = useBackends();

  /** An app at the default budgets, counting from zero. */
  function atDefaults(clock = new ManualClock(), trustProxy: false | string[] = false) {
    return buildApp(backends, { clock, store: freshStore(backends), config: testConfig({ rateLimit: DEFAULT_LIMITS, trustProxy }) });
  }

  /** Another instance over the same database with generous budgets: it prepares accounts without spending any budget. */
  function preparer(clock = new ManualClock()) {
    return buildApp(backends, { clock, store: freshStore(backends) }).app;
  }

  /** An account with a passkey, prepared elsewhere. */
  async function withPasskey() {
    const app = preparer();
    const user = await readyToEnrol(app);
    const authenticator = new SoftAuthenticator({ origin: ORIGIN });
    const options = await request(app)
      .post('/passkeys/register/options')
      .set(...bearer(user.accessToken));
    const added = await request(app)
      .post('/passkeys/register')
      .set(...bearer(user.accessToken))
      .send({ response: authenticator.create(options.body) });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    return { user, authenticator };
  }

  it('when nothing is configured, then every group a person spends one request at a time allows 5 a minute', () => {
    for (const group of ['auth', 'refresh', 'credentials', 'account', 'images', 'api-keys', 'email', 'links'] as const) {
      expect(DEFAULT_LIMITS.budgets[group], group).toMatchObject({ limit: DEFAULT_MAX, windowMs: 60_000 });
    }
  });

  describe('what the tester met', () => {
    it('when a person creates and revokes an API key and then sets up two-factor, then nothing is refused', async () => {
      const clock = new ManualClock();
      const { app } = atDefaults(clock);
      const account = await register(app);
      const confirmed = await request(app)
        .post('/email/verify')
        .send({ token: linkIn(await mailTo(app, account.email, /Confirm your email/), 'verify-email') });
      let { accessToken } = await login(app, account);

      const settings = await openSettings(app, accessToken);
      const created = await request(app)
        .post('/api-keys')
        .set(...bearer(accessToken))
        .send({ name: 'laptop' });
      const revoked = await request(app)
        .delete(`/api-keys/${created.body.id as string}`)
        .set(...bearer(accessToken));
      // The page asks first; the first second factor needs a second proof, which the page then gives and asks again.
      const needsProof = await request(app)
        .post('/mfa/totp/setup')
        .set(...bearer(accessToken));
      accessToken = await emailedCodeStepUp(app, account, accessToken);
      const setup = await request(app)
        .post('/mfa/totp/setup')
        .set(...bearer(accessToken));
      expect(setup.status, JSON.stringify(setup.body)).toBe(200);
      const enabled = await request(app)
        .post('/mfa/totp/enable')
        .set(...bearer(accessToken))
        .send({ code: codeAt(setup.body.secret as string, clock.now()) });

      expect(confirmed.status).toBe(200);
      expect(settings).toEqual([200, 200, 200, 200, 200]);
      expect(created.status).toBe(201);
      expect(revoked.status).toBe(204);
      expect(needsProof.body.error?.code).toBe('second_proof_required');
      expect(enabled.status, JSON.stringify(enabled.body)).toBe(200);
      expect(enabled.body.recoveryCodes).toHaveLength(10);
    });

    it('when a person who mistyped their password four times signs in with a passkey, then the finished ceremony is not refused', async () => {
      const { user, authenticator } = await withPasskey();
      const { app } = atDefaults();
      const mistyped = [];
      for (let i = 0; i < 4; i++) mistyped.push((await request(app).post('/login').send(wrongPassword(user))).status);

      const options = await request(app).post('/login/passkey/options');
      const finished = await request(app)
        .post('/login/passkey')
        .send({ response: authenticator.get(options.body) });

      expect(mistyped).toEqual([401, 401, 401, 401]);
      expect(options.status).toBe(200);
      expect(finished.status, JSON.stringify(finished.body)).toBe(200);
      expect(finished.body.user.id).toBe(user.id);
    });

    it('when failed sign-ins have spent the address’s sign-in budget, then the first submit of an emailed reset link still works', async () => {
      const account = await register(preparer());
      const { app } = atDefaults();
      const attempts = [];
      for (let i = 0; i < DEFAULT_MAX + 1; i++) attempts.push((await request(app).post('/login').send(wrongPassword(account))).status);

      const forgot = await request(app).post('/password/forgot').send({ email: account.email });
      const token = linkIn(await mailTo(app, account.email, /Reset your/), 'reset-password');
      const reset = await request(app).post('/password/reset').send({ token, password: 'a brand new passphrase 7' });

      expect(attempts).toEqual([401, 401, 401, 401, 401, 429]);
      expect(forgot.status).toBe(202);
      expect(reset.status, JSON.stringify(reset.body)).toBe(204);
    });

    it('when a person signs out and back in with an emailed code while Settings are open, then Settings load again without a 429', async () => {
      const account = await register(preparer());
      const { app } = atDefaults();
      const first = await login(app, account);
      const gallery = await request(app)
        .get('/images?pageSize=100')
        .set(...bearer(first.accessToken));
      const firstSettings = await openSettings(app, first.accessToken);
      const logout = await request(app)
        .post('/logout')
        .set(...bearer(first.accessToken));

      const sent = await request(app).post('/login/email-code').send({ email: account.email });
      const signedIn = await request(app)
        .post('/login/email-code/verify')
        .send({ email: account.email, code: codeIn(await mailTo(app, account.email, /sign-in code/)) });
      const accessToken = signedIn.body.access_token as string;
      // Signing in reads the gallery, and Settings again because they are open.
      const galleryAgain = await request(app)
        .get('/images?pageSize=100')
        .set(...bearer(accessToken));
      const settingsAgain = await openSettings(app, accessToken);

      expect([gallery.status, logout.status, sent.status, signedIn.status, galleryAgain.status]).toEqual([200, 204, 202, 200, 200]);
      expect(firstSettings).toEqual([200, 200, 200, 200, 200]);
      expect(settingsAgain).toEqual([200, 200, 200, 200, 200]);
    });
  });

  describe('the bounds that still hold', () => {
    it('when an address asks for passkey sign-in options a sixth time in a minute, then it is refused from the sign-in budget', async () => {
      const { app } = atDefaults();
      const statuses = [];
      for (let i = 0; i < DEFAULT_MAX + 1; i++) statuses.push((await request(app).post('/login/passkey/options')).status);
      const refused = await request(app).post('/login/passkey/options');

      expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
      expect(refused.body.error.details).toMatchObject({ budget: 'auth', limit: DEFAULT_MAX });
    });

    it('when a finish answers no challenge of ours, then it is refused before any work and spends nothing of the sign-in budget', async () => {
      const { user, authenticator } = await withPasskey();
      const { app } = atDefaults();
      const forged = await request(app)
        .post('/login/passkey')
        .send({ response: authenticator.get({ challenge: randomBytes(32).toString('base64url') }) });

      const options = [];
      for (let i = 0; i < DEFAULT_MAX - 1; i++) options.push((await request(app).post('/login/passkey/options')).status);
      const last = await request(app).post('/login/passkey/options');
      const genuine = await request(app)
        .post('/login/passkey')
        .send({ response: authenticator.get(last.body) });

      expect(forged.status).toBe(401);
      expect(forged.body.error).toMatchObject({ code: 'invalid_passkey', details: { reason: 'challenge' } });
      expect(options).toEqual([200, 200, 200, 200]);
      expect(last.status).toBe(200);
      expect(genuine.status, JSON.stringify(genuine.body)).toBe(200);
      expect(genuine.body.user.id).toBe(user.id);
    });

    it('when finishes succeed, then they spend nothing: only refused ones spend the credentials budget', async () => {
      const { user, authenticator } = await withPasskey();
      const { app } = atDefaults();
      const genuine = [];
      for (let i = 0; i < 3; i++) {
        const options = await request(app).post('/login/passkey/options');
        genuine.push(
          await request(app)
            .post('/login/passkey')
            .send({ response: authenticator.get(options.body) }),
        );
      }
      const forged = [];
      for (let i = 0; i < DEFAULT_MAX + 1; i++)
        forged.push(
          (
            await request(app)
              .post('/login/passkey')
              .send({ response: authenticator.get({ challenge: randomBytes(32).toString('base64url') }) })
          ).status,
        );

      expect(genuine.map((res) => res.status)).toEqual([200, 200, 200]);
      expect(genuine.every((res) => res.body.user.id === user.id)).toBe(true);
      // Nothing was spent, so the answer shows no budget's state.
      expect(genuine[0]?.headers['ratelimit-policy']).toBeUndefined();
      expect(forged).toEqual([401, 401, 401, 401, 401, 429]);
    });

    it('when an address sends a burst of forged finishes, then only the credentials budget’s worth are even looked at', async () => {
      const { authenticator } = await withPasskey();
      const { app } = atDefaults(new ManualClock(), ['loopback']);
      const forge = () => ({ response: authenticator.get({ challenge: randomBytes(32).toString('base64url') }) });

      const burst = await Promise.all(
        Array.from({ length: 20 }, () => request(app).post('/login/passkey').set('X-Forwarded-For', '203.0.113.5').send(forge())),
      );
      const stepUps = await Promise.all(
        Array.from({ length: 2 }, () =>
          request(app)
            .post('/login/mfa/passkey')
            .set('X-Forwarded-For', '203.0.113.5')
            .send({ mfa_token: 'x', ...forge() }),
        ),
      );
      // Someone else, at another address, is not held back by it.
      const options = await request(app).post('/login/passkey/options').set('X-Forwarded-For', '198.51.100.7');
      const elsewhere = await request(app)
        .post('/login/passkey')
        .set('X-Forwarded-For', '198.51.100.7')
        .send({ response: authenticator.get(options.body) });

      expect(burst.filter((res) => res.status === 401)).toHaveLength(DEFAULT_MAX);
      expect(burst.filter((res) => res.status === 429)).toHaveLength(20 - DEFAULT_MAX);
      expect(burst.find((res) => res.status === 429)?.body.error.details).toMatchObject({ budget: 'credentials', limit: DEFAULT_MAX });
      expect(stepUps.map((res) => res.status)).toEqual([429, 429]);
      expect(elsewhere.status, JSON.stringify(elsewhere.body)).toBe(200);
    });

    it('when a signed-in caller forges step-up finishes, then they spend the address’s credentials budget, not the account’s', async () => {
      const { user, authenticator } = await withPasskey();
      const { app } = atDefaults();
      const { accessToken } = await login(app, user);
      const forged = [];
      for (let i = 0; i < DEFAULT_MAX + 1; i++)
        forged.push(
          (
            await request(app)
              .post('/reauthenticate/passkey')
              .set(...bearer(accessToken))
              .send({ response: authenticator.get({ challenge: randomBytes(32).toString('base64url') }) })
          ).status,
        );
      const me = await request(app)
        .get('/protected')
        .set(...bearer(accessToken));

      expect(forged).toEqual([401, 401, 401, 401, 401, 429]);
      expect(me.status).toBe(200);
    });

    it('when an address submits emailed links with wrong tokens, then the burst is bounded by the links budget, and signing in is not', async () => {
      const account = await register(preparer());
      const { app } = atDefaults();
      const wrong = () => randomBytes(32).toString('base64url');
      const statuses = [];
      for (let i = 0; i < DEFAULT_MAX; i++) {
        const path = i % 2 === 0 ? '/email/verify' : '/password/reset';
        statuses.push(
          (
            await request(app)
              .post(path)
              .send(path === '/email/verify' ? { token: wrong() } : { token: wrong(), password: 'a brand new passphrase 7' })
          ).status,
        );
      }
      const refused = await request(app).post('/email/verify').send({ token: wrong() });
      const signIn = await request(app).post('/login').send({ username: account.username, password: account.password });

      expect(statuses).toEqual([401, 401, 401, 401, 401]);
      expect(refused.status).toBe(429);
      expect(refused.body.error.details).toMatchObject({ budget: 'links', limit: DEFAULT_MAX });
      expect(signIn.status).toBe(200);
    });

    it('when Settings are read many times, then writes keep their own budget of 5, and reads are still bounded', async () => {
      const account = await register(preparer());
      const { app } = atDefaults();
      const { accessToken } = await login(app, account);
      await backends.db.prisma.user.update({ where: { id: account.id }, data: { emailVerifiedAt: new Date() } });
      const readLimit = DEFAULT_LIMITS.budgets.reads.limit;

      const reads = [];
      for (let i = 0; i < readLimit; i += 5) reads.push(...(await openSettings(app, accessToken)));
      const writes = [];
      for (let i = 0; i < DEFAULT_MAX + 1; i++)
        writes.push(
          (
            await request(app)
              .post('/api-keys')
              .set(...bearer(accessToken))
              .send({ name: `key ${i}` })
          ).status,
        );
      const overRead = await request(app)
        .get('/api-keys')
        .set(...bearer(accessToken));

      expect(readLimit).toBe(5 * DEFAULT_MAX);
      expect(reads).toEqual(Array.from({ length: readLimit }, () => 200));
      expect(writes).toEqual([201, 201, 201, 201, 201, 429]);
      expect(overRead.status).toBe(429);
      expect(overRead.body.error.details).toMatchObject({ budget: 'reads', limit: readLimit });
    });

    it('when an address sends second steps with forged mfa tokens, then each spends a sign-in attempt, and the sixth is refused', async () => {
      const account = await register(preparer());
      const { app } = atDefaults();
      const statuses = [];
      for (let i = 0; i < DEFAULT_MAX + 1; i++)
        statuses.push((await request(app).post('/login/mfa').send({ mfa_token: 'not a token', code: '123456' })).status);
      const signIn = await request(app).post('/login').send({ username: account.username, password: account.password });

      expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
      expect(signIn.status).toBe(429);
    });
  });
});
