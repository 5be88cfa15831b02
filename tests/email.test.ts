import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppConfig } from '../src/app.js';
import { ManualClock } from '../src/core/clock.js';
import { describeDevice, describeIp } from '../src/features/email/device-description.js';
import { CODE_ATTEMPTS, CODE_TTL_MS, LINK_TTL_MS } from '../src/kernel/challenges/email-tokens.js';
import { MailTemplates, TEMPLATES_DIR } from '../src/features/email/templates.js';
import { createTransport, readOutbox } from '../src/features/email/transport.js';
import { retryDelayMs } from '../src/core/work-queue.js';
import { codeAt, STEP_SECONDS } from '../src/kernel/verifiers/totp.js';
import { bearer, login, proveAddress, register, registerAndLogin, uniqueName } from './support/accounts.js';
import { linkToken, MailServer, signInCode } from './support/mail-server.js';
import { buildApp, freshStore, silentLogger, testConfig, useBackends } from './support/test-app.js';

describe('email', () => {
  const backends = useBackends();
  let smtp: MailServer;
  beforeAll(async () => {
    smtp = await MailServer.start();
  });
  afterAll(async () => {
    await smtp.stop();
  });

  /** The newest message to `address` (after the first `after` of them) whose subject matches. */
  async function waitForSubject(address: string, subject: RegExp, after = 0) {
    await expect
      .poll(
        () =>
          smtp
            .to(address)
            .slice(after)
            .some((mail) => subject.test(mail.subject)),
        { timeout: 5_000, interval: 20 },
      )
      .toBe(true);
    return smtp
      .to(address)
      .slice(after)
      .filter((mail) => subject.test(mail.subject))
      .at(-1)!;
  }

  /** Signed in, the address proven, and a second proof (an emailed code) in the session: ready to enrol a factor. */
  async function enrolmentReady(app: Parameters<typeof request>[0]) {
    const account = await registerAndLogin(app as never);
    await proveAddress(app as never, account);
    const before = smtp.to(account.email).length;
    await request(app)
      .post('/reauthenticate/email-code/send')
      .set(...bearer(account.accessToken))
      .expect(202);
    const code = signInCode(await waitForSubject(account.email, /confirmation code/, before));
    const stepped = await request(app)
      .post('/reauthenticate/email-code')
      .set(...bearer(account.accessToken))
      .send({ code })
      .expect(200);
    return { ...account, accessToken: stepped.body.access_token as string };
  }

  function setup(overrides: Partial<AppConfig['email']> = {}, configOverrides: Partial<AppConfig> = {}) {
    const clock = new ManualClock();
    const base = testConfig();
    const config = testConfig({ ...configOverrides, email: { ...base.email, smtpUrl: smtp.url, ...overrides } });
    const { app, deps } = buildApp(backends, { config, clock });
    return { app, clock, config, mail: deps.mail };
  }

  /** Registers, and reads the confirmation link that registration sends. */
  async function registered(app: Express) {
    const account = await register(app);
    const token = linkToken(await smtp.waitFor(account.email), 'verify-email');
    return { ...account, token };
  }

  describe('confirming an address', () => {
    it('when a person registers, then a link arrives by SMTP, confirms the address once, and names the product and base URL', async () => {
      const { app, config } = setup();
      const account = await registered(app);
      const mail = smtp.to(account.email)[0];

      const confirmed = await request(app).post('/email/verify').send({ token: account.token });
      const again = await request(app).post('/email/verify').send({ token: account.token });

      expect(mail?.subject).toBe(`Confirm your email address for ${config.email.productName}`);
      expect(mail?.text).toContain(`${config.email.baseUrl}/#verify-email=`);
      expect(mail?.html).toContain('Confirm my address');
      expect(confirmed.status).toBe(200);
      expect(confirmed.body).toMatchObject({ id: account.id, emailVerified: true });
      expect(again.status).toBe(401);
      expect(again.body.error.code).toBe('invalid_token');
    });

    it('when the link is older than 24 hours, then it has expired', async () => {
      const { app, clock } = setup();
      const account = await registered(app);
      clock.advance(LINK_TTL_MS.verify_email + 1);

      const res = await request(app).post('/email/verify').send({ token: account.token });

      expect(res.status).toBe(401);
      expect((await backends.db.prisma.user.findUniqueOrThrow({ where: { id: account.id } })).emailVerifiedAt).toBeNull();
    });

    it('when REQUIRE_EMAIL_VERIFICATION is on, then login waits for the address, and a resend replaces the first link', async () => {
      const { app } = setup({ requireVerification: true });
      const account = await registered(app);

      const refused = await request(app).post('/login').send({ username: account.username, password: account.password });
      const resend = await request(app).post('/email/verify/resend').send({ email: account.email });
      const second = linkToken(await smtp.waitFor(account.email, 2), 'verify-email');
      const first = await request(app).post('/email/verify').send({ token: account.token });
      const confirmed = await request(app).post('/email/verify').send({ token: second });
      const allowed = await request(app).post('/login').send({ username: account.username, password: account.password });

      expect(refused.status).toBe(403);
      expect(refused.body.error.code).toBe('email_not_verified');
      expect(resend.status).toBe(202);
      expect(first.status).toBe(401);
      expect(confirmed.status).toBe(200);
      expect(allowed.status).toBe(200);
    });

    it('when a user changes their email, then it takes effect only once the new address confirms, and the old one is told', async () => {
      const { app } = setup();
      const account = await registerAndLogin(app);
      await smtp.waitFor(account.email);
      const newEmail = `${uniqueName('moved')}@example.com`;

      const change = await request(app)
        .patch('/me')
        .set(...bearer(account.accessToken))
        .send({ email: newEmail, currentPassword: account.password });
      const before = await request(app)
        .get('/me')
        .set(...bearer(account.accessToken));
      const token = linkToken(await smtp.waitFor(newEmail), 'verify-email');
      const confirmed = await request(app).post('/email/verify').send({ token });
      const notice = await smtp.waitFor(account.email, 2);

      expect(change.status).toBe(200);
      expect(change.body).toMatchObject({ email: account.email, pendingEmail: newEmail });
      expect(before.body.email).toBe(account.email);
      expect(confirmed.body).toMatchObject({ email: newEmail, emailVerified: true });
      expect(notice.subject).toMatch(/email address was changed/);
      expect(notice.text).toContain(newEmail);
    });
  });

  describe('a change of address', () => {
    it('when the address changes, then the reset links and sign-in codes sent to the old one stop working, and the change link confirmed only the new one', async () => {
      const { app } = setup();
      const account = await registerAndLogin(app);
      await smtp.waitFor(account.email);
      const newEmail = `${uniqueName('moved')}@example.com`;
      await request(app).post('/password/forgot').send({ email: account.email });
      const resetToken = linkToken(await smtp.waitFor(account.email, 2), 'reset-password');
      await request(app).post('/login/email-code').send({ email: account.email });
      const code = signInCode(await smtp.waitFor(account.email, 3));

      await request(app)
        .patch('/me')
        .set(...bearer(account.accessToken))
        .send({ email: newEmail, currentPassword: account.password });
      const changed = await request(app)
        .post('/email/verify')
        .send({ token: linkToken(await smtp.waitFor(newEmail), 'verify-email') });
      const reset = await request(app).post('/password/reset').send({ token: resetToken, password: 'a brand new passphrase' });
      const codeToOld = await request(app).post('/login/email-code/verify').send({ email: account.email, code });
      const codeToNew = await request(app).post('/login/email-code/verify').send({ email: newEmail, code });

      expect(changed.status).toBe(200);
      expect(changed.body).toMatchObject({ email: newEmail, emailVerified: true });
      expect(reset.status).toBe(401);
      expect(reset.body.error.code).toBe('invalid_token');
      expect(codeToOld.status).toBe(401);
      expect(codeToNew.status).toBe(401);
      expect(await backends.db.prisma.emailToken.count({ where: { userId: account.id, usedAt: null } })).toBe(0);
      expect((await login(app, account)).accessToken).toEqual(expect.any(String));
    });

    it('when the account no longer has the address a link or code was sent to, however it changed, then they are refused like invalid ones', async () => {
      const { app } = setup();
      const account = await registered(app);
      await request(app).post('/password/forgot').send({ email: account.email });
      const resetToken = linkToken(await smtp.waitFor(account.email, 2), 'reset-password');
      await request(app).post('/login/email-code').send({ email: account.email });
      const code = signInCode(await smtp.waitFor(account.email, 3));
      // Not through the change-of-address link, so nothing revoked the tokens: only the check when they are spent.
      await backends.db.prisma.user.update({ where: { id: account.id }, data: { email: `${uniqueName('elsewhere')}@example.com` } });

      const reset = await request(app).post('/password/reset').send({ token: resetToken, password: 'a brand new passphrase' });
      const signIn = await request(app).post('/login/email-code/verify').send({ email: account.email, code });

      expect(reset.status).toBe(401);
      expect(reset.body.error.code).toBe('invalid_token');
      expect(signIn.status).toBe(401);
      expect(signIn.body.error.code).toBe('invalid_credentials');
      expect((await login(app, account)).accessToken).toEqual(expect.any(String));
    });

    it('when a second change is asked for before the first is confirmed, then only the newest link works, for its own address', async () => {
      const { app } = setup();
      const account = await registerAndLogin(app);
      await smtp.waitFor(account.email);
      const [first, second] = [`${uniqueName('first')}@example.com`, `${uniqueName('second')}@example.com`];

      await request(app)
        .patch('/me')
        .set(...bearer(account.accessToken))
        .send({ email: first, currentPassword: account.password });
      const firstToken = linkToken(await smtp.waitFor(first), 'verify-email');
      await request(app)
        .patch('/me')
        .set(...bearer(account.accessToken))
        .send({ email: second, currentPassword: account.password });
      const secondToken = linkToken(await smtp.waitFor(second), 'verify-email');
      const stale = await request(app).post('/email/verify').send({ token: firstToken });
      const confirmed = await request(app).post('/email/verify').send({ token: secondToken });

      expect(stale.status).toBe(401);
      expect(confirmed.body).toMatchObject({ email: second, emailVerified: true });
    });
  });

  describe('resetting a password', () => {
    it('when an address has an account, then the link sets a new password once, ends every session, and a notice follows', async () => {
      const { app } = setup();
      const account = await registerAndLogin(app);
      await smtp.waitFor(account.email);

      const forgot = await request(app).post('/password/forgot').send({ email: account.email.toUpperCase() });
      const mail = await smtp.waitFor(account.email, 2);
      const token = linkToken(mail, 'reset-password');
      const weak = await request(app).post('/password/reset').send({ token, password: 'password123' });
      const reset = await request(app).post('/password/reset').send({ token, password: 'a brand new passphrase' });
      const again = await request(app).post('/password/reset').send({ token, password: 'another new passphrase' });
      const refresh = await request(app).post('/refresh').send({ refresh_token: account.refreshToken });
      const oldPassword = await request(app).post('/login').send({ username: account.username, password: account.password });
      const newPassword = await request(app).post('/login').send({ username: account.username, password: 'a brand new passphrase' });
      const notice = await smtp.waitFor(account.email, 3);

      expect(forgot.status).toBe(202);
      expect(mail.subject).toMatch(/Reset your .* password/);
      expect(weak.status).toBe(400);
      expect(weak.body.error.code).toBe('weak_password');
      expect(reset.status).toBe(204);
      expect(again.status).toBe(401);
      expect(refresh.status).toBe(401);
      expect(oldPassword.status).toBe(401);
      expect(newPassword.status).toBe(200);
      expect(newPassword.body.user.emailVerified).toBe(true);
      expect(notice.subject).toMatch(/password was changed/);
    });

    it('when an address has no account, then the answer is the same and nothing is sent', async () => {
      const { app, mail } = setup();
      const account = await registered(app);
      const nobody = `${uniqueName('nobody')}@example.com`;

      const known = await request(app).post('/password/forgot').send({ email: account.email });
      const unknown = await request(app).post('/password/forgot').send({ email: nobody });
      await smtp.waitFor(account.email, 2);
      await mail.settled();

      expect(unknown.status).toBe(known.status);
      expect(unknown.body).toEqual(known.body);
      expect(Object.keys(unknown.headers).sort()).toEqual(Object.keys(known.headers).sort());
      expect(smtp.to(nobody)).toEqual([]);
    });

    it('when the reset link is older than 30 minutes, or is a confirmation link, then it does not reset', async () => {
      const { app, clock } = setup();
      const account = await registered(app);
      await request(app).post('/password/forgot').send({ email: account.email });
      const token = linkToken(await smtp.waitFor(account.email, 2), 'reset-password');

      const wrongPurpose = await request(app).post('/password/reset').send({ token: account.token, password: 'a brand new passphrase' });
      const wrongWay = await request(app).post('/email/verify').send({ token });
      clock.advance(LINK_TTL_MS.reset_password + 1);
      const expired = await request(app).post('/password/reset').send({ token, password: 'a brand new passphrase' });

      expect(wrongPurpose.status).toBe(401);
      expect(wrongWay.status).toBe(401);
      expect(expired.status).toBe(401);
      expect((await login(app, account)).accessToken).toEqual(expect.any(String));
    });
  });

  describe('replacing an older link', () => {
    it('when several reset links are asked for at once, then exactly one of them works and the others are refused', async () => {
      const { app, mail } = setup({ perAddress: { max: 20, windowMs: 15 * 60_000 } });
      const account = await registered(app);

      await Promise.all([1, 2, 3, 4, 5].map(() => request(app).post('/password/forgot').send({ email: account.email })));
      await smtp.waitFor(account.email, 6);
      await mail.settled();
      const tokens = smtp
        .to(account.email)
        .slice(1)
        .map((message) => linkToken(message, 'reset-password'));
      const live = await backends.db.prisma.emailToken.count({ where: { userId: account.id, purpose: 'reset_password', usedAt: null } });
      const statuses = [];
      for (const token of tokens) statuses.push((await request(app).post('/password/reset').send({ token, password: 'a brand new passphrase' })).status);

      expect(live).toBe(1);
      expect(statuses.filter((status) => status === 204)).toHaveLength(1);
      expect(statuses.filter((status) => status === 401)).toHaveLength(4);
    });
  });

  describe('signing in with a code', () => {
    it('when a person asks for a code, then it signs them in once, with amr otp, and confirms the address', async () => {
      const { app } = setup();
      const account = await registered(app);

      const asked = await request(app).post('/login/email-code').send({ email: account.email });
      const code = signInCode(await smtp.waitFor(account.email, 2));
      const res = await request(app).post('/login/email-code/verify').send({ email: account.email, code });
      const again = await request(app).post('/login/email-code/verify').send({ email: account.email, code });

      expect(asked.status).toBe(202);
      expect(res.status).toBe(200);
      expect(res.body.user).toMatchObject({ id: account.id, emailVerified: true });
      expect(JSON.parse(Buffer.from((res.body.access_token as string).split('.')[1] ?? '', 'base64url').toString()).amr).toEqual(['otp']);
      expect(again.status).toBe(401);
      expect(again.body.error.code).toBe('invalid_credentials');
    });

    it(`when ${CODE_ATTEMPTS} wrong codes were tried, then the right one no longer works`, async () => {
      const { app } = setup();
      const account = await registered(app);
      await request(app).post('/login/email-code').send({ email: account.email });
      const code = signInCode(await smtp.waitFor(account.email, 2));
      const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');

      for (let i = 0; i < CODE_ATTEMPTS; i++)
        expect((await request(app).post('/login/email-code/verify').send({ email: account.email, code: wrong })).status).toBe(401);
      const right = await request(app).post('/login/email-code/verify').send({ email: account.email, code });

      expect(right.status).toBe(401);
    });

    it('when the code is older than 10 minutes, or the address has no account, then one answer', async () => {
      const { app, clock } = setup();
      const account = await registered(app);
      await request(app).post('/login/email-code').send({ email: account.email });
      const code = signInCode(await smtp.waitFor(account.email, 2));
      clock.advance(CODE_TTL_MS + 1);

      const expired = await request(app).post('/login/email-code/verify').send({ email: account.email, code });
      const unknown = await request(app)
        .post('/login/email-code/verify')
        .send({ email: `${uniqueName('nobody')}@example.com`, code });

      expect(expired.status).toBe(401);
      expect(unknown.status).toBe(401);
      expect(unknown.body.error.message).toBe(expired.body.error.message);
    });

    it('when two-factor is on, then the code is only the first step', async () => {
      const { app, clock } = setup();
      const account = await enrolmentReady(app);
      const enrolment = await request(app)
        .post('/mfa/totp/setup')
        .set(...bearer(account.accessToken));
      await request(app)
        .post('/mfa/totp/enable')
        .set(...bearer(account.accessToken))
        .send({ code: codeAt(enrolment.body.secret as string, clock.now()) });
      clock.advance(STEP_SECONDS * 1000);
      const before = smtp.to(account.email).length;
      await request(app).post('/login/email-code').send({ email: account.email });
      const code = signInCode(await waitForSubject(account.email, /sign-in code/, before));

      const first = await request(app).post('/login/email-code/verify').send({ email: account.email, code });
      const second = await request(app)
        .post('/login/mfa')
        .send({ mfa_token: first.body.mfa_token, code: codeAt(enrolment.body.secret as string, clock.now()) });

      expect(first.body).toMatchObject({ mfa_required: true });
      expect(second.status).toBe(200);
      expect(JSON.parse(Buffer.from((second.body.access_token as string).split('.')[1] ?? '', 'base64url').toString()).amr).toEqual(['otp', 'mfa']);
    });
  });

  describe('what is stored', () => {
    it('when a sign-in code waits in the queue, then neither its subject nor any other stored field holds the code in clear', async () => {
      const { app, clock, mail, config } = setup();
      const account = await registered(app);
      await smtp.stop();
      let waiting;
      try {
        await request(app).post('/login/email-code').send({ email: account.email });
        await expect
          .poll(
            async () =>
              (await backends.db.prisma.outboundEmail.findFirst({ where: { recipient: account.email, template: 'sign-in-code' } }))?.lastError ?? null,
          )
          .not.toBeNull();
        waiting = await backends.db.prisma.outboundEmail.findFirstOrThrow({ where: { recipient: account.email, template: 'sign-in-code' } });
      } finally {
        await smtp.restart();
      }
      clock.advance(retryDelayMs(1));
      await mail.deliverDue();
      const delivered = await smtp.waitFor(account.email, 2);
      const code = signInCode(delivered);
      const sent = await backends.db.prisma.outboundEmail.findFirstOrThrow({ where: { recipient: account.email, template: 'sign-in-code' } });

      expect(waiting.subject).toBe(`Your ${config.email.productName} sign-in code`);
      expect(waiting.bodySealed).not.toBe('');
      expect(JSON.stringify(waiting)).not.toContain(code);
      expect(JSON.stringify(waiting)).not.toContain('Your code to sign in');
      expect(JSON.stringify(sent)).not.toContain(code);
      expect(delivered.subject).not.toContain(code);
    });

    it('when a template puts anything but the product in its subject, then the templates refuse to load', async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'templates-'));
      try {
        await cp(TEMPLATES_DIR, dir, { recursive: true });
        const file = path.join(dir, 'sign-in-code.txt');
        await writeFile(file, (await readFile(file, 'utf8')).replace(/^Subject: .*$/m, 'Subject: Your {{product}} sign-in code: {{code}}'));

        expect(() => new MailTemplates({ product: 'authkit', baseUrl: 'http://localhost' }, dir)).toThrow(/subject may name only/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  describe('budgets', () => {
    it('when one address is asked for more than EMAIL_PER_ADDRESS_MAX messages at once, then the rest are dropped and the answers stay the same', async () => {
      const { app, mail } = setup({ perAddress: { max: 2, windowMs: 15 * 60_000 } });
      const account = await registered(app);

      // At once: the background sends race for the address's count.
      const answers = (await Promise.all([1, 2, 3, 4, 5, 6].map(() => request(app).post('/password/forgot').send({ email: account.email })))).map(
        (res) => res.status,
      );
      await smtp.waitFor(account.email, 2);
      await mail.settled();
      await new Promise((resolve) => setTimeout(resolve, 200));

      expect(answers).toEqual([202, 202, 202, 202, 202, 202]);
      // Every message counts: the confirmation link from registration, then one reset link.
      expect(smtp.to(account.email)).toHaveLength(2);
    });

    it('when ten PATCH /me ask to move an account to one victim address, then at most EMAIL_PER_ADDRESS_MAX messages reach it, and every answer is the same', async () => {
      const { app, mail } = setup({ perAddress: { max: 3, windowMs: 15 * 60_000 } });
      const attacker = await registerAndLogin(app);
      const victim = `${uniqueName('victim')}@example.com`;

      const answers = [];
      for (let i = 0; i < 10; i++) {
        const res = await request(app)
          .patch('/me')
          .set(...bearer(attacker.accessToken))
          .send({ email: victim, currentPassword: attacker.password });
        answers.push({ status: res.status, pendingEmail: res.body.pendingEmail });
      }
      await smtp.waitFor(victim, 3);
      await mail.settled();
      await new Promise((resolve) => setTimeout(resolve, 200));

      expect(answers).toEqual(Array.from({ length: 10 }, () => ({ status: 200, pendingEmail: victim })));
      expect(smtp.to(victim)).toHaveLength(3);
      expect(await backends.db.prisma.outboundEmail.count({ where: { recipient: victim } })).toBe(3);
    });

    it('when an address has had its share, then a notice still reaches it once its account confirmed it, and not before', async () => {
      const { app, clock, mail } = setup({ perAddress: { max: 1, windowMs: 60 * 60_000 } });
      const account = await registered(app);
      clock.advance(11 * 60_000);

      await request(app).post('/login').send({ username: account.username, password: account.password });
      await mail.settled();
      await new Promise((resolve) => setTimeout(resolve, 200));
      const beforeConfirming = smtp.to(account.email).length;
      await request(app).post('/email/verify').send({ token: account.token });
      await request(app).post('/login').send({ username: account.username, password: account.password });
      const notice = await smtp.waitFor(account.email, 2);

      expect(beforeConfirming).toBe(1);
      expect(notice.subject).toMatch(/New sign-in/);
    });

    it('when one client address asks too often, whatever the addresses, then the per-IP email budget answers 429', async () => {
      const base = testConfig();
      const config = testConfig({
        email: { ...base.email, smtpUrl: smtp.url },
        rateLimit: { ...base.rateLimit, budgets: { ...base.rateLimit.budgets, email: { limit: 2, windowMs: 60_000, keyBy: 'ip' } } },
      });
      // A store of its own: the budget's counter starts at zero whatever earlier tests spent from this address.
      const { app } = buildApp(backends, { config, clock: new ManualClock(), store: freshStore(backends) });

      const statuses = [];
      for (let i = 0; i < 3; i++)
        statuses.push(
          (
            await request(app)
              .post('/login/email-code')
              .send({ email: `${uniqueName('x')}@example.com` })
          ).status,
        );

      expect(statuses).toEqual([202, 202, 429]);
    });
  });

  describe('security notices', () => {
    it('when the password changes, two-factor goes off, or an API key is made, then the owner is told', async () => {
      const { app, clock } = setup();
      const account = await enrolmentReady(app);

      await request(app)
        .post('/api-keys')
        .set(...bearer(account.accessToken))
        .send({ name: 'deploy bot' });
      const keyNotice = await waitForSubject(account.email, /new API key/);
      const enrolment = await request(app)
        .post('/mfa/totp/setup')
        .set(...bearer(account.accessToken));
      await request(app)
        .post('/mfa/totp/enable')
        .set(...bearer(account.accessToken))
        .send({ code: codeAt(enrolment.body.secret as string, clock.now()) });
      const enabledNotice = await waitForSubject(account.email, /Two-factor sign-in was turned on/);
      clock.advance(STEP_SECONDS * 1000);
      await request(app)
        .post('/mfa/totp/disable')
        .set(...bearer(account.accessToken))
        .send({ password: account.password, code: codeAt(enrolment.body.secret as string, clock.now()) });
      const mfaNotice = await waitForSubject(account.email, /Two-factor authentication was turned off/);
      await request(app)
        .patch('/me')
        .set(...bearer(account.accessToken))
        .send({ password: 'a different passphrase', currentPassword: account.password });
      const passwordNotice = await waitForSubject(account.email, /password was changed/);
      expect(enabledNotice.text).toContain('turned on');

      expect(keyNotice.subject).toMatch(/new API key/);
      expect(keyNotice.text).toContain('"deploy bot"');
      expect(mfaNotice.subject).toMatch(/Two-factor authentication was turned off/);
      expect(passwordNotice.subject).toMatch(/password was changed/);
    });

    it('when an account signs in from a browser it has not seen, then the owner is told; from a known one, not', async () => {
      const { app, clock, mail } = setup();
      const account = await registered(app);
      clock.advance(11 * 60_000);

      const fresh = await request(app).post('/login').set('User-Agent', 'TestBrowser/1.0').send({ username: account.username, password: account.password });
      const notice = await smtp.waitFor(account.email, 2);
      const cookie = (fresh.headers['set-cookie'] as unknown as string[])[0]?.split(';')[0] ?? '';
      await request(app).post('/login').set('Cookie', cookie).send({ username: account.username, password: account.password });
      await mail.settled();
      await new Promise((resolve) => setTimeout(resolve, 200));

      expect(notice.subject).toMatch(/New sign-in/);
      expect(notice.text).toContain('Device (as the browser reports it): an unrecognised browser');
      expect(notice.text).not.toContain('TestBrowser');
      expect(smtp.to(account.email)).toHaveLength(2);
    });
  });

  describe('describing the device of a sign-in', () => {
    it('when a browser sends a hostile User-Agent, then the notice names browser and system in its own words and quotes none of it', async () => {
      const { app, clock } = setup();
      const account = await registered(app);
      clock.advance(11 * 60_000);
      const hostile =
        'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0 <b>recognised device</b>, no action needed. Questions? https://evil.example/help';

      await request(app).post('/login').set('User-Agent', hostile).send({ username: account.username, password: account.password });
      const notice = await smtp.waitFor(account.email, 2);

      expect(notice.text).toContain('Device (as the browser reports it): Firefox 128 on Linux\n');
      for (const body of [notice.text, notice.html, notice.subject]) {
        expect(body).not.toContain('no action needed');
        expect(body).not.toContain('evil.example');
        expect(body).not.toContain('recognised device');
      }
    });

    it('when User-Agents are known browsers, odd or hostile, then each becomes a short phrase from a fixed vocabulary', () => {
      const described = {
        chromeWindows: describeDevice('Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'),
        edge: describeDevice('Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0'),
        safariIphone: describeDevice(
          'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
        ),
        safariMac: describeDevice('Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15'),
        chromeAndroid: describeDevice('Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36'),
        curl: describeDevice('curl/8.5.0'),
        missing: describeDevice(undefined),
        sentences: describeDevice('Firefox/99 on Windows.\r\nSubject: all fine\r\n\r\nThis sign-in was you; ignore this message. https://evil.example'),
        huge: describeDevice(`${'A'.repeat(100_000)} Firefox/128.0`),
        longVersion: describeDevice('Chrome/99999999999999999999'),
      };

      expect(described).toEqual({
        chromeWindows: 'Chrome 131 on Windows',
        edge: 'Edge 131 on Windows',
        safariIphone: 'Safari 17 on iOS',
        safariMac: 'Safari 17 on macOS',
        chromeAndroid: 'Chrome 131 on Android',
        curl: 'an unrecognised browser',
        missing: 'an unrecognised browser',
        sentences: 'Firefox 99 on Windows',
        huge: 'an unrecognised browser',
        longVersion: 'Chrome 9999',
      });
      for (const phrase of Object.values(described)) expect(phrase).toMatch(/^[A-Za-z0-9 ]{1,40}$/);
      expect([describeIp('203.0.113.9'), describeIp('2001:db8::1'), describeIp('no action needed https://evil.example'), describeIp(undefined)]).toEqual([
        '203.0.113.9',
        '2001:db8::1',
        'unknown',
        'unknown',
      ]);
    });
  });

  describe('the queue', () => {
    it('when the SMTP server is down, then the request still answers, the message waits sealed, and goes out once it is back', async () => {
      const { app, clock, mail } = setup();
      const account = await registered(app);
      await smtp.stop();
      try {
        const res = await request(app).post('/password/forgot').send({ email: account.email });
        await expect
          .poll(
            async () =>
              (await backends.db.prisma.outboundEmail.findFirst({ where: { recipient: account.email, template: 'password-reset' } }))?.lastError ?? null,
          )
          .not.toBeNull();
        const waiting = await backends.db.prisma.outboundEmail.findFirstOrThrow({ where: { recipient: account.email, template: 'password-reset' } });

        expect(res.status).toBe(202);
        expect(waiting).toMatchObject({ attempts: 1, sentAt: null, failedAt: null });
        expect(waiting.bodySealed).not.toContain('reset-password');
      } finally {
        await smtp.restart();
      }
      clock.advance(retryDelayMs(1));
      await mail.deliverDue();

      const delivered = await smtp.waitFor(account.email, 2);
      const sent = await backends.db.prisma.outboundEmail.findFirstOrThrow({ where: { recipient: account.email, template: 'password-reset' } });
      expect(delivered.subject).toMatch(/Reset your/);
      expect(sent).toMatchObject({ attempts: 2, bodySealed: '' });
      expect(sent.sentAt).not.toBeNull();
    });
  });

  describe('the development outbox', () => {
    it('when the server runs in development without SMTP_URL, then GET /dev/outbox lists the messages and shows each', async () => {
      const base = testConfig();
      const { app } = buildApp(backends, { config: { ...base, env: 'development' } });
      const account = await register(app);

      await expect.poll(async () => ((await request(app).get('/dev/outbox')).body.messages as unknown[]).length).toBeGreaterThan(0);
      const list = await request(app).get('/dev/outbox');
      const message = (list.body.messages as Array<{ id: string; to: string; text: string }>).find((entry) => entry.to === account.email);
      const shown = await request(app).get(`/dev/outbox/${message?.id}`);

      expect(message?.text).toContain('#verify-email=');
      expect(shown.status).toBe(200);
      expect(shown.headers['content-type']).toMatch(/text\/html/);
      expect(shown.text).toContain('Confirm my address');
    });

    it('when the server runs in production, then there is no /dev/outbox', async () => {
      const base = testConfig();
      const { app } = buildApp(backends, { config: { ...base, env: 'production' } });

      expect((await request(app).get('/dev/outbox')).status).toBe(404);
    });
  });
});

describe('the outbox', () => {
  it('when a message is being written while the outbox is read, then the reader sees whole messages only', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'authkit-outbox-'));
    try {
      const transport = createTransport({ from: 'authkit <no-reply@localhost>', outboxDir: dir }, { clock: new ManualClock(), logger: silentLogger });
      // Large messages take several writes each: a reader polling meanwhile would meet a file that is half there.
      const message = { id: 'm1', to: 'ada@example.com', subject: 'Hello', text: 'x'.repeat(4_000_000), html: '<p>hi</p>' };
      const writes = Promise.all(Array.from({ length: 6 }, (_, i) => transport.send({ ...message, id: `m${i}` })));
      let writing = true;
      void writes.finally(() => (writing = false));
      let reads = 0;
      while (writing) {
        for (const entry of await readOutbox(dir, 500)) expect(entry.subject).toBe('Hello');
        reads += 1;
      }
      await writes;
      expect(reads).toBeGreaterThan(0);
      expect(await readOutbox(dir, 500)).toHaveLength(6);
      // A message half written by a process that died is not a message.
      await writeFile(path.join(dir, 'zz-crashed.json.partial'), '{"id":"half');
      expect(await readOutbox(dir, 500)).toHaveLength(6);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
