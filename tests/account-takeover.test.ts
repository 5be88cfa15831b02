// The attacker's run, repeated as tests: password guessing in bursts, password oracles behind a stolen token, races
// for the last administrator, refused logouts, forged client addresses, and the development outbox.
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { ADMIN_ROLE } from '../src/kernel/identity/roles.js';
import { readOutbox } from '../src/features/email/transport.js';
import { bearer, createAdmin, login, proveAddress, readyToEnrol, register, registerAndLogin, uniqueName } from './support/accounts.js';
import { SoftAuthenticator } from './support/authenticator.js';
import { type Backends, buildApp, builtWith, testConfig, useBackends, usingRedis, withOwnBackends } from './support/test-app.js';

const LIMIT = 10;

describe('account takeover defences', () => {
  const backends = useBackends();

  describe('the per-account failure budget', () => {
    function instances() {
      const config = testConfig({ loginLockout: { maxFailures: LIMIT, lockMs: 60_000 } });
      const first = buildApp(backends, { config }).app;
      return [first, usingRedis ? buildApp(backends, { config }).app : first] as const;
    }

    it(`when ${LIMIT * 4} wrong guesses arrive at once on two instances, then at most ${LIMIT} are evaluated and the right password is then refused too`, async () => {
      const [first, second] = instances();
      const account = await register(first);
      const burst = await Promise.all(
        Array.from({ length: LIMIT * 4 }, (_, i) =>
          request(i % 2 ? first : second)
            .post('/login')
            .send({ username: account.username, password: `wrong guess ${i}` }),
        ),
      );
      const evaluated = burst.filter((res) => res.status === 401).length;
      const refused = burst.filter((res) => res.status === 429 && res.body.error.code === 'login_throttled').length;
      expect(evaluated).toBe(LIMIT);
      expect(refused).toBe(LIMIT * 3);
      const right = await request(first).post('/login').send({ username: account.username, password: account.password });
      expect(right.status).toBe(429);
    });

    it('when the right password comes between wrong ones, then it costs nothing of the budget', async () => {
      const [app] = instances();
      const account = await register(app);
      for (let i = 0; i < LIMIT - 1; i++)
        expect(
          (
            await request(app)
              .post('/login')
              .send({ username: account.username, password: `wrong ${i}` })
          ).status,
        ).toBe(401);
      for (let i = 0; i < 3; i++) expect((await request(app).post('/login').send({ username: account.username, password: account.password })).status).toBe(200);
      expect((await request(app).post('/login').send({ username: account.username, password: 'wrong last' })).status).toBe(401);
      expect((await request(app).post('/login').send({ username: account.username, password: account.password })).status).toBe(429);
    });

    it.each([
      [
        'POST /reauthenticate',
        (token: string, password: string, app: Parameters<typeof request>[0]) =>
          request(app)
            .post('/reauthenticate')
            .set(...bearer(token))
            .send({ password }),
      ],
      [
        'PATCH /me',
        (token: string, password: string, app: Parameters<typeof request>[0]) =>
          request(app)
            .patch('/me')
            .set(...bearer(token))
            .send({ password: 'a brand new passphrase 77', currentPassword: password }),
      ],
      [
        'DELETE /me',
        (token: string, password: string, app: Parameters<typeof request>[0]) =>
          request(app)
            .delete('/me')
            .set(...bearer(token))
            .send({ password }),
      ],
    ])('when a stolen access token guesses the password through %s, then the guesses spend the sign-in budget and are audited', async (_name, guess) => {
      const [app] = instances();
      const account = await registerAndLogin(app);
      const answers = await Promise.all(Array.from({ length: LIMIT + 6 }, (_, i) => guess(account.accessToken, `not it ${i}`, app)));
      expect(answers.filter((res) => res.status === 401).length).toBe(LIMIT);
      expect(answers.filter((res) => res.status === 429).length).toBe(6);
      expect((await guess(account.accessToken, account.password, app)).status).toBe(429);
      // The account's sign-in is locked too: it is one budget.
      expect((await request(app).post('/login').send({ username: account.username, password: account.password })).status).toBe(429);
      await expect
        .poll(() => backends.db.prisma.auditEvent.count({ where: { type: 'session.sign_in_failed', targetId: account.id } }))
        .toBeGreaterThanOrEqual(LIMIT);
    });
  });

  describe('the last administrator', () => {
    /** An app over `own` backends whose only administrators are two new ones, each signed in. */
    async function twoAdmins(own: Backends) {
      const { app, deps } = buildApp(own);
      const signIn = async () => {
        const name = uniqueName('admin');
        await createAdmin(deps, { email: `${name}@example.com`, username: name, password: 'admin password 123' });
        const id = (await own.db.prisma.user.findUniqueOrThrow({ where: { usernameKey: name } })).id;
        return { id, ...(await login(app, { username: name, password: 'admin password 123' })) };
      };
      return { app, a: await signIn(), b: await signIn() };
    }

    it('when two administrators demote each other at the same moment, then one change wins and one administrator remains', async () => {
      await withOwnBackends(async (own) => {
        const { app, a, b } = await twoAdmins(own);
        const answers = await Promise.all([
          request(app)
            .patch(`/admin/users/${b.id}/roles`)
            .set(...bearer(a.accessToken))
            .send({ roles: ['user'] }),
          request(app)
            .patch(`/admin/users/${a.id}/roles`)
            .set(...bearer(b.accessToken))
            .send({ roles: ['user'] }),
        ]);
        // The loser is refused as the last administrator (409), or as a caller whose own token the winner voided (401).
        expect(answers.filter((res) => res.status === 200)).toHaveLength(1);
        expect(answers.filter((res) => res.status === 409 || res.status === 401)).toHaveLength(1);
        expect(await own.db.prisma.userRole.count({ where: { roleName: ADMIN_ROLE } })).toBe(1);
      });
    });

    it('when two administrators disable each other at the same moment, then one enabled administrator remains', async () => {
      await withOwnBackends(async (own) => {
        const { app, a, b } = await twoAdmins(own);
        const answers = await Promise.all([
          request(app)
            .post(`/admin/users/${b.id}/disable`)
            .set(...bearer(a.accessToken)),
          request(app)
            .post(`/admin/users/${a.id}/disable`)
            .set(...bearer(b.accessToken)),
        ]);
        // The second may also be refused as 401: the first disable revoked its caller's token.
        expect(answers.filter((res) => res.status === 200)).toHaveLength(1);
        expect(await own.db.prisma.userRole.count({ where: { roleName: ADMIN_ROLE, user: { disabledAt: null } } })).toBe(1);
      });
    });
  });

  describe('ending access is never rate limited', () => {
    it('when the account budget is spent, then logout, ending a session, revoking a key and logging out everywhere still work', async () => {
      const config = testConfig();
      const tight = {
        ...config,
        rateLimit: { ...config.rateLimit, budgets: { ...config.rateLimit.budgets, account: { ...config.rateLimit.budgets.account, limit: 2 } } },
      };
      const { app } = buildApp(backends, { config: tight });
      const account = await registerAndLogin(app);
      const other = await login(app, account);
      const third = await login(app, account);
      for (let i = 0; i < 3; i++)
        await request(app)
          .get('/protected')
          .set(...bearer(account.accessToken));
      expect(
        (
          await request(app)
            .get('/protected')
            .set(...bearer(account.accessToken))
        ).status,
      ).toBe(429);

      const sessions = await backends.db.prisma.session.findMany({ where: { userId: account.id, revokedAt: null }, orderBy: { createdAt: 'asc' } });
      const ended = await request(app)
        .delete(`/sessions/${sessions[1]!.id}`)
        .set(...bearer(account.accessToken));
      expect(ended.status).toBe(204);
      expect((await request(app).post('/refresh').send({ refresh_token: other.refreshToken })).status).toBe(401);
      expect(
        (
          await request(app)
            .post('/logout')
            .set(...bearer(account.accessToken))
        ).status,
      ).toBe(204);
      expect(
        (
          await request(app)
            .post('/logout/all')
            .set(...bearer(third.accessToken))
        ).status,
      ).toBe(204);
      expect((await request(app).post('/refresh').send({ refresh_token: third.refreshToken })).status).toBe(401);
    });
  });

  describe('small holes', () => {
    it('when PATCH /me sets the account’s own email address as the password, then it is refused as personal', async () => {
      const { app } = buildApp(backends);
      const account = await registerAndLogin(app);
      const res = await request(app)
        .patch('/me')
        .set(...bearer(account.accessToken))
        .send({ password: account.email, currentPassword: account.password });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'weak_password', details: { reason: 'personal' } });
    });

    it('when PATCH /me asks for a new address and sets it as the password in one request, then it is refused as personal', async () => {
      const { app } = buildApp(backends);
      const account = await registerAndLogin(app);
      const newEmail = `${uniqueName('new')}@example.org`;
      const res = await request(app)
        .patch('/me')
        .set(...bearer(account.accessToken))
        .send({ email: newEmail, password: newEmail, currentPassword: account.password });
      expect(res.status).toBe(400);
      expect(res.body.error.details).toMatchObject({ reason: 'personal' });
    });

    it('when someone registers through the /auth/signup alias, then it is recorded and confirmed exactly as through /register', async () => {
      const { app } = buildApp(backends);
      const username = uniqueName();
      const res = await request(app)
        .post('/auth/signup')
        .send({ username, email: `${username}@example.com`, password: 'correct horse battery' });
      expect(res.status).toBe(201);
      await expect.poll(() => backends.db.prisma.auditEvent.count({ where: { type: 'user.registered', targetId: res.body.id } })).toBe(1);
      await expect.poll(() => backends.db.prisma.emailToken.count({ where: { userId: res.body.id, purpose: 'verify_email' } })).toBe(1);
    });

    it('when an address already has an account, then registering it answers like a new one and makes nothing', async () => {
      const { app } = buildApp(backends);
      const owner = await register(app);
      const username = uniqueName();
      const fresh = await request(app)
        .post('/register')
        .send({ username: uniqueName(), email: `${uniqueName()}@example.com`, password: 'correct horse battery' });
      const taken = await request(app).post('/register').send({ username, email: owner.email.toUpperCase(), password: 'correct horse battery' });
      expect(taken.status).toBe(fresh.status);
      expect(Object.keys(taken.body).sort()).toEqual(Object.keys(fresh.body).sort());
      expect(taken.body.id).not.toBe(owner.id);
      expect(await backends.db.prisma.user.count({ where: { usernameKey: username } })).toBe(0);
      // A taken username is a public handle: it says so.
      const handle = await request(app)
        .post('/register')
        .send({ username: owner.username, email: `${uniqueName()}@example.com`, password: 'correct horse battery' });
      expect(handle.status).toBe(409);
    });

    it('when the discovery document is built without PUBLIC_URL, then a forged Host never reaches a shared cache', async () => {
      const { app } = buildApp(backends, { config: testConfig({ publicUrl: undefined }) });
      const res = await request(app).get('/.well-known/openid-configuration').set('Host', 'attacker.example').set('X-Forwarded-Proto', 'javascript');
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body.jwks_uri).toMatch(/^http:\/\//);
    });

    it('when PUBLIC_URL is set, then the discovery document names it whatever the request says', async () => {
      const { app } = buildApp(backends, { config: testConfig({ publicUrl: 'https://auth.example.com' }) });
      const res = await request(app).get('/.well-known/openid-configuration').set('Host', 'attacker.example').set('X-Forwarded-Proto', 'http');
      expect(res.body.jwks_uri).toBe('https://auth.example.com/.well-known/jwks.json');
      expect(res.headers['cache-control']).toMatch(/^public/);
    });

    it.each(['not-an-ip', 'evil.example', '1.2.3.4.5', '<script>', 'unknown'])(
      'when TRUST_PROXY is set and X-Forwarded-For says %j, then the request is refused',
      async (forged) => {
        const { app } = buildApp(backends, { config: testConfig({ trustProxy: ['loopback'] }) });
        const res = await request(app).post('/login').set('X-Forwarded-For', forged).send({ username: 'nobody_here', password: 'whatever it is' });
        expect(res.status).toBe(400);
        expect(res.body.error.code).toBe('invalid_forwarded_for');
      },
    );

    it('when TRUST_PROXY is set and X-Forwarded-For is an address, then it is the client address', async () => {
      const { app } = buildApp(backends, { config: testConfig({ trustProxy: ['loopback'] }) });
      const res = await request(app).get('/health').set('X-Forwarded-For', '203.0.113.7');
      expect(res.status).toBe(200);
    });

    it('when the development outbox is asked through a proxy, then it does not exist', async () => {
      const { app } = buildApp(backends, { config: { ...testConfig(), env: 'development', trustProxy: ['loopback'] } });
      expect((await request(app).get('/dev/outbox')).status).toBe(200);
      const viaProxy = await request(app).get('/dev/outbox').set('X-Forwarded-For', '198.51.100.9');
      expect(viaProxy.status).toBe(404);
    });
  });
});

describe('a pre-registered address, and one-factor enrolment', () => {
  const backends = useBackends();

  /** The newest message in the app's outbox to `address` whose subject matches, once it is there. */
  async function mailTo(app: Parameters<typeof builtWith>[0], address: string, subject: RegExp) {
    const { config } = builtWith(app);
    let found: Awaited<ReturnType<typeof readOutbox>>[number] | undefined;
    await expect
      .poll(
        async () => {
          found = (await readOutbox(config.email.outboxDir, 500)).find((mail) => mail.to === address && subject.test(mail.subject));
          return found !== undefined;
        },
        { timeout: 10_000 },
      )
      .toBe(true);
    return found!;
  }

  it('when someone registers an address that is not theirs, then they cannot add a passkey, an API key or two-factor to it', async () => {
    const { app } = buildApp(backends);
    const attacker = await registerAndLogin(app);
    const tries = [
      request(app)
        .post('/api-keys')
        .set(...bearer(attacker.accessToken))
        .send({ name: 'planted' }),
      request(app)
        .post('/passkeys/register/options')
        .set(...bearer(attacker.accessToken)),
      request(app)
        .post('/mfa/totp/setup')
        .set(...bearer(attacker.accessToken)),
      request(app)
        .post('/reauthenticate/email-code/send')
        .set(...bearer(attacker.accessToken)),
    ];
    for (const attempt of tries) {
      const res = await attempt;
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('email_not_verified');
    }
    expect(await backends.db.prisma.apiKey.count({ where: { userId: attacker.id } })).toBe(0);
  });

  it('when the owner proves the address by a reset, then what was planted before (sessions, keys, two-factor) is gone', async () => {
    const { app } = buildApp(backends);
    const planted = await readyToEnrol(app);
    const key = await request(app)
      .post('/api-keys')
      .set(...bearer(planted.accessToken))
      .send({ name: 'planted', scopes: ['images:read'] });
    expect(key.status).toBe(201);
    // The key's notice goes out first (to a confirmed owner, outside the per-address cap): were it still on its way
    // when the address becomes unproven below, it would count against the cap and could crowd out the reset link.
    await mailTo(app, planted.email, /API key/);
    // An account from an older version, where an unproven address could hold a key.
    await backends.db.prisma.user.update({ where: { id: planted.id }, data: { emailVerifiedAt: null } });

    await request(app).post('/password/forgot').send({ email: planted.email }).expect(202);
    const link = /#reset-password=([\w-]+)/.exec((await mailTo(app, planted.email, /Reset/)).text)?.[1];
    await request(app).post('/password/reset').send({ token: link, password: 'the owner’s own passphrase 9' }).expect(204);

    expect(
      (
        await request(app)
          .get('/images')
          .set('X-API-Key', key.body.key as string)
      ).status,
    ).toBe(401);
    expect((await request(app).post('/refresh').send({ refresh_token: planted.refreshToken })).status).toBe(401);
    expect((await request(app).post('/login').send({ username: planted.username, password: planted.password })).status).toBe(401);
    expect(await backends.db.prisma.apiKey.count({ where: { userId: planted.id } })).toBe(0);
  });

  it('when the owner proves the address by a sign-in code, then the password set before stops working and earlier sessions end', async () => {
    const { app } = buildApp(backends);
    const planted = await registerAndLogin(app);
    await request(app).post('/login/email-code').send({ email: planted.email }).expect(202);
    const code = /^\s+(\d{6})\s*$/m.exec((await mailTo(app, planted.email, /sign-in code/)).text)?.[1];
    const owner = await request(app).post('/login/email-code/verify').send({ email: planted.email, code });
    expect(owner.status).toBe(200);
    expect(owner.body.user.emailVerified).toBe(true);
    expect((await request(app).post('/refresh').send({ refresh_token: planted.refreshToken })).status).toBe(401);
    expect((await request(app).post('/login').send({ username: planted.username, password: planted.password })).status).toBe(401);
    expect(
      (
        await request(app)
          .get('/me')
          .set(...bearer(owner.body.access_token as string))
      ).status,
    ).toBe(200);
  });

  it('when a reset asks to remove credentials, then every passkey and API key goes; without it they stay', async () => {
    const base = testConfig();
    // Two resets and a step-up code: more than the default three messages an address gets in 15 minutes.
    const { app } = buildApp(backends, { config: { ...base, email: { ...base.email, perAddress: { ...base.email.perAddress, max: 10 } } } });
    const account = await readyToEnrol(app);
    const created = await request(app)
      .post('/api-keys')
      .set(...bearer(account.accessToken))
      .send({ name: 'one' })
      .expect(201);
    const useKey = async () =>
      (
        await request(app)
          .get('/images')
          .set('X-API-Key', created.body.key as string)
      ).status;
    const reset = async (removeCredentials?: boolean) => {
      const before = new Set((await readOutbox(builtWith(app).config.email.outboxDir, 500)).map((mail) => mail.id));
      await request(app).post('/password/forgot').send({ email: account.email }).expect(202);
      let token: string | undefined;
      await expect
        .poll(
          async () => {
            const mail = (await readOutbox(builtWith(app).config.email.outboxDir, 500)).find(
              (entry) => !before.has(entry.id) && entry.to === account.email && /Reset/.test(entry.subject),
            );
            token = mail ? /#reset-password=([\w-]+)/.exec(mail.text)?.[1] : undefined;
            return token;
          },
          { timeout: 10_000 },
        )
        .toBeDefined();
      await request(app)
        .post('/password/reset')
        .send({ token, password: `a fresh passphrase ${uniqueName()}`, removeCredentials })
        .expect(204);
    };
    await reset();
    expect(await backends.db.prisma.apiKey.count({ where: { userId: account.id } })).toBe(1);
    // Used just before, so the instance keeps it verified: the removal must reach that too.
    expect(await useKey()).toBe(200);
    await reset(true);
    expect(await backends.db.prisma.apiKey.count({ where: { userId: account.id } })).toBe(0);
    expect(await useKey()).toBe(401);
  });

  it('when only the mailbox is known (an emailed-code sign-in), then no first passkey or two-factor can be added without the password', async () => {
    const { app } = buildApp(backends);
    const account = await registerAndLogin(app);
    await proveAddress(app, account);
    await request(app).post('/login/email-code').send({ email: account.email }).expect(202);
    const code = /^\s+(\d{6})\s*$/m.exec((await mailTo(app, account.email, /sign-in code/)).text)?.[1];
    const mailboxOnly = (await request(app).post('/login/email-code/verify').send({ email: account.email, code })).body.access_token as string;
    const refused = await request(app)
      .post('/passkeys/register/options')
      .set(...bearer(mailboxOnly));
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ code: 'second_proof_required', details: { accepted: ['password'] } });
    expect(
      (
        await request(app)
          .post('/mfa/totp/setup')
          .set(...bearer(mailboxOnly))
      ).status,
    ).toBe(403);
    // With the password as well, it may.
    const both = await request(app)
      .post('/reauthenticate')
      .set(...bearer(mailboxOnly))
      .send({ password: account.password });
    expect(both.status).toBe(200);
    expect(
      (
        await request(app)
          .post('/mfa/totp/setup')
          .set(...bearer(both.body.access_token as string))
      ).status,
    ).toBe(200);
  });

  it('when ADMIN_REQUIRE_MFA is on, then neither an administrator’s password alone nor their mailbox alone reaches admin routes', async () => {
    const { app, deps } = buildApp(backends, { config: testConfig({ adminRequireMfa: true }) });
    const name = uniqueName('admin');
    const email = `${name}@example.com`;
    await createAdmin(deps, { email, username: name, password: 'admin password 123' });
    const passwordOnly = await login(app, { username: name, password: 'admin password 123' });
    expect(
      (
        await request(app)
          .get('/admin/users')
          .set(...bearer(passwordOnly.accessToken))
      ).status,
    ).toBe(403);
    expect(
      (
        await request(app)
          .post('/mfa/totp/setup')
          .set(...bearer(passwordOnly.accessToken))
      ).body.error.code,
    ).toBe('second_proof_required');

    await request(app).post('/login/email-code').send({ email }).expect(202);
    const code = /^\s+(\d{6})\s*$/m.exec((await mailTo(app, email, /sign-in code/)).text)?.[1];
    const mailboxOnly = (await request(app).post('/login/email-code/verify').send({ email, code })).body.access_token as string;
    expect(
      (
        await request(app)
          .get('/admin/users')
          .set(...bearer(mailboxOnly))
      ).status,
    ).toBe(403);
    expect(
      (
        await request(app)
          .post('/passkeys/register/options')
          .set(...bearer(mailboxOnly))
      ).body.error.code,
    ).toBe('second_proof_required');
  });

  it('when an address with an account is asked for in PATCH /me, then the answer is as for a free one, and its owner is told', async () => {
    const { app } = buildApp(backends);
    const owner = await register(app);
    const mover = await registerAndLogin(app);
    const free = `${uniqueName('free')}@example.com`;
    const toFree = await request(app)
      .patch('/me')
      .set(...bearer(mover.accessToken))
      .send({ email: free, currentPassword: mover.password });
    const toTaken = await request(app)
      .patch('/me')
      .set(...bearer(mover.accessToken))
      .send({ email: owner.email, currentPassword: mover.password });
    expect(toTaken.status).toBe(toFree.status);
    expect(toTaken.body).toMatchObject({ pendingEmail: owner.email });
    expect(Object.keys(toTaken.body).sort()).toEqual(Object.keys(toFree.body).sort());
    const told = await mailTo(app, owner.email, /Your address was entered/);
    expect(told.text).not.toContain(mover.username);
  });

  it('when a passkey is added, then the owner is told by email', async () => {
    const { app } = buildApp(backends);
    const account = await readyToEnrol(app);
    const authenticator = new SoftAuthenticator({ origin: 'http://localhost:3000' });
    const options = await request(app)
      .post('/passkeys/register/options')
      .set(...bearer(account.accessToken));
    await request(app)
      .post('/passkeys/register')
      .set(...bearer(account.accessToken))
      .send({ response: authenticator.create(options.body), name: 'Planted?' })
      .expect(201);
    expect((await mailTo(app, account.email, /A passkey was added/)).text).toContain('"Planted?"');
  });
});
