import type { Express } from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { codeAt, STEP_SECONDS } from '../src/kernel/verifiers/totp.js';
import { bearer, createAdmin, emailedCodeStepUp, login, readyToEnrol, uniqueName } from './support/accounts.js';
import { buildApp, freshStore, testConfig, useBackends, usingRedis } from './support/test-app.js';

type App = Express;

describe('two-factor authentication', () => {
  const backends = useBackends();

  /** A user with TOTP turned on; the clock has moved past the step used to enable it. */
  async function enrolled(app: App, clock: ManualClock) {
    const user = await readyToEnrol(app);
    const setup = await request(app)
      .post('/mfa/totp/setup')
      .set(...bearer(user.accessToken));
    expect(setup.status).toBe(200);
    const enable = await request(app)
      .post('/mfa/totp/enable')
      .set(...bearer(user.accessToken))
      .send({ code: codeAt(setup.body.secret, clock.now()) });
    expect(enable.status).toBe(200);
    clock.advance(STEP_SECONDS * 1000);
    return { ...user, secret: setup.body.secret as string, recoveryCodes: enable.body.recoveryCodes as string[] };
  }

  async function passwordStep(app: App, user: { username: string; password: string }) {
    const res = await request(app).post('/login').send({ username: user.username, password: user.password });
    expect(res.status).toBe(200);
    return res;
  }

  it('when a user sets up TOTP, then a secret, an otpauth URI and a QR code come back, and a wrong code does not enable it', async () => {
    const clock = new ManualClock();
    const { app } = buildApp(backends, { clock });
    const user = await readyToEnrol(app);
    const setup = await request(app)
      .post('/mfa/totp/setup')
      .set(...bearer(user.accessToken));
    expect(setup.body.secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(setup.body.otpauthUri).toMatch(/^otpauth:\/\/totp\/authkit:.+\?.*secret=/);
    expect(setup.body.qrCode).toMatch(/^data:image\/png;base64,/);
    // A code from ten steps ahead: valid for this secret, but not now.
    const wrong = await request(app)
      .post('/mfa/totp/enable')
      .set(...bearer(user.accessToken))
      .send({ code: codeAt(setup.body.secret, clock.now() + 10 * STEP_SECONDS * 1000) });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('invalid_mfa_code');
    expect(
      (
        await request(app)
          .get('/mfa')
          .set(...bearer(user.accessToken))
      ).body,
    ).toEqual({ enabled: false, recoveryCodesLeft: 0 });
  });

  it('when TOTP is on, then login asks for a code, and the code completes it with amr recording otp', async () => {
    const clock = new ManualClock();
    const { app } = buildApp(backends, { clock });
    const user = await enrolled(app, clock);
    expect(user.recoveryCodes).toHaveLength(10);
    expect(
      (
        await request(app)
          .get('/mfa')
          .set(...bearer(user.accessToken))
      ).body,
    ).toEqual({ enabled: true, recoveryCodesLeft: 10 });

    const first = await passwordStep(app, user);
    expect(first.body).toEqual({ mfa_required: true, mfa_token: expect.any(String), expires_in: 300, methods: ['totp', 'recovery_code'] });
    expect(first.body.access_token).toBeUndefined();
    const done = await request(app)
      .post('/login/mfa')
      .send({ mfa_token: first.body.mfa_token, code: codeAt(user.secret, clock.now()) });
    expect(done.status).toBe(200);
    const claims = JSON.parse(Buffer.from((done.body.access_token as string).split('.')[1] as string, 'base64url').toString()) as { amr: string[] };
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(
      (
        await request(app)
          .get('/me')
          .set(...bearer(done.body.access_token))
      ).status,
    ).toBe(200);
  });

  it('when a code is replayed, then it is refused, and the next step’s code works', async () => {
    const clock = new ManualClock();
    const { app } = buildApp(backends, { clock });
    const user = await enrolled(app, clock);
    const code = codeAt(user.secret, clock.now());
    const firstLogin = await passwordStep(app, user);
    expect((await request(app).post('/login/mfa').send({ mfa_token: firstLogin.body.mfa_token, code })).status).toBe(200);

    const secondLogin = await passwordStep(app, user);
    const replay = await request(app).post('/login/mfa').send({ mfa_token: secondLogin.body.mfa_token, code });
    expect(replay.status).toBe(401);
    expect(replay.body.error.message).toMatch(/already used/);
    clock.advance(STEP_SECONDS * 1000);
    const next = await request(app)
      .post('/login/mfa')
      .send({ mfa_token: secondLogin.body.mfa_token, code: codeAt(user.secret, clock.now()) });
    expect(next.status).toBe(200);
  });

  it('when a recovery code is used, then it logs in once and never again', async () => {
    const clock = new ManualClock();
    const { app } = buildApp(backends, { clock });
    const user = await enrolled(app, clock);
    const recovery = user.recoveryCodes[0] as string;
    const first = await passwordStep(app, user);
    expect((await request(app).post('/login/mfa').send({ mfa_token: first.body.mfa_token, code: recovery.toUpperCase() })).status).toBe(200);
    const second = await passwordStep(app, user);
    expect((await request(app).post('/login/mfa').send({ mfa_token: second.body.mfa_token, code: recovery })).status).toBe(401);
    expect(
      (
        await request(app)
          .get('/mfa')
          .set(...bearer(user.accessToken))
      ).body.recoveryCodesLeft,
    ).toBe(9);
  });

  it('when the mfa_token is expired, reused, forged or an access token, then 401', async () => {
    const clock = new ManualClock();
    const { app } = buildApp(backends, { clock });
    const user = await enrolled(app, clock);
    const used = await passwordStep(app, user);
    await request(app)
      .post('/login/mfa')
      .send({ mfa_token: used.body.mfa_token, code: codeAt(user.secret, clock.now()) })
      .expect(200);
    clock.advance(STEP_SECONDS * 1000);
    const reused = await request(app)
      .post('/login/mfa')
      .send({ mfa_token: used.body.mfa_token, code: codeAt(user.secret, clock.now()) });
    const expiring = await passwordStep(app, user);
    clock.advance(301_000);
    const expired = await request(app)
      .post('/login/mfa')
      .send({ mfa_token: expiring.body.mfa_token, code: codeAt(user.secret, clock.now()) });
    const asAccess = await request(app)
      .post('/login/mfa')
      .send({ mfa_token: user.accessToken, code: codeAt(user.secret, clock.now()) });
    const mfaAsBearer = await request(app)
      .get('/me')
      .set(...bearer(expiring.body.mfa_token as string));
    for (const res of [reused, expired, asAccess, mfaAsBearer]) {
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('invalid_token');
    }
  });

  it('when five wrong codes are sent, then the second factor locks for 15 minutes, even for a right code', async () => {
    const clock = new ManualClock();
    const { app } = buildApp(backends, { clock });
    const user = await enrolled(app, clock);
    const challenge = await passwordStep(app, user);
    const wrong = codeAt(user.secret, clock.now() + 10 * STEP_SECONDS * 1000);
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await request(app).post('/login/mfa').send({ mfa_token: challenge.body.mfa_token, code: wrong })).status);
    const right = await request(app)
      .post('/login/mfa')
      .send({ mfa_token: challenge.body.mfa_token, code: codeAt(user.secret, clock.now()) });
    expect(statuses).toEqual([401, 401, 401, 401, 423]);
    expect(right.status).toBe(423);
    expect(right.body.error.code).toBe('mfa_locked');
    expect(Number(right.headers['retry-after'])).toBeGreaterThan(800);

    if (!usingRedis) {
      // The in-process lock follows the injected clock (Redis keeps its own time).
      clock.advance(15 * 60 * 1000 + 1_000);
      const fresh = await passwordStep(app, user);
      expect(
        (
          await request(app)
            .post('/login/mfa')
            .send({ mfa_token: fresh.body.mfa_token, code: codeAt(user.secret, clock.now()) })
        ).status,
      ).toBe(200);
    }
  });

  it.runIf(usingRedis)('when wrong codes are spread over two instances, then the lock is shared', async () => {
    const clock = new ManualClock();
    const config = testConfig();
    const store = freshStore(backends);
    const [a, b] = [buildApp(backends, { clock, config, store }).app, buildApp(backends, { clock, config, store }).app];
    const user = await enrolled(a, clock);
    const challenge = await passwordStep(a, user);
    const wrong = codeAt(user.secret, clock.now() + 10 * STEP_SECONDS * 1000);
    for (let i = 0; i < 5; i++)
      await request(i % 2 ? b : a)
        .post('/login/mfa')
        .send({ mfa_token: challenge.body.mfa_token, code: wrong });
    const res = await request(b)
      .post('/login/mfa')
      .send({ mfa_token: challenge.body.mfa_token, code: codeAt(user.secret, clock.now()) });
    expect(res.status).toBe(423);
  });

  it('when everything was logged out earlier in the same second, then an mfa_token issued after it works and one issued before it does not', async () => {
    const clock = new ManualClock();
    const { app } = buildApp(backends, { clock });
    const user = await enrolled(app, clock);
    // 100 ms into a second: the password step, then "log out everywhere", then the password step again, all in it.
    clock.advance(1000 - (clock.now() % 1000) + 100);
    const before = await passwordStep(app, user);
    clock.advance(100);
    expect(
      (
        await request(app)
          .post('/logout/all')
          .set(...bearer(user.accessToken))
      ).status,
    ).toBe(204);
    clock.advance(100);
    const after = await passwordStep(app, user);

    const late = await request(app).post('/login/mfa').send({ mfa_token: before.body.mfa_token, code: user.recoveryCodes[0] });
    expect(late.status).toBe(401);
    expect(late.body.error.reason).toBe('mfa_token_used');
    const done = await request(app).post('/login/mfa').send({ mfa_token: after.body.mfa_token, code: user.recoveryCodes[1] });
    expect(done.status).toBe(200);
  });

  it('when TOTP is turned off with the password and a code, then login no longer asks for one', async () => {
    const clock = new ManualClock();
    const { app } = buildApp(backends, { clock });
    const user = await enrolled(app, clock);
    const wrongPassword = await request(app)
      .post('/mfa/totp/disable')
      .set(...bearer(user.accessToken))
      .send({ password: 'not it at all', code: codeAt(user.secret, clock.now()) });
    const again = await request(app)
      .post('/mfa/totp/setup')
      .set(...bearer(user.accessToken));
    expect(wrongPassword.status).toBe(401);
    expect(again.status).toBe(409);
    const off = await request(app)
      .post('/mfa/totp/disable')
      .set(...bearer(user.accessToken))
      .send({ password: user.password, code: codeAt(user.secret, clock.now()) });
    expect(off.status).toBe(204);
    const res = await request(app).post('/login').send({ username: user.username, password: user.password });
    expect(res.body.access_token).toEqual(expect.any(String));
  });

  it.each([
    ['/login/mfa', { mfa_token: 'x' }],
    ['/login/mfa', { mfa_token: 'x', code: '123456', extra: 1 }],
    ['/login/mfa', { mfa_token: 5, code: '123456' }],
  ])('when %s gets a malformed body, then 400', async (path, body) => {
    const { app } = buildApp(backends);
    expect((await request(app).post(path).send(body)).status).toBe(400);
  });

  it('when ADMIN_REQUIRE_MFA is set, then admins need a token earned with a code', async () => {
    const clock = new ManualClock();
    const { app, deps } = buildApp(backends, { clock, config: testConfig({ adminRequireMfa: true }) });
    const username = uniqueName('admin');
    const password = 'admin password 1';
    await createAdmin(deps, { email: `${username}@example.com`, username, password });
    const plain = await login(app, { username, password });
    const refused = await request(app)
      .get('/admin/users')
      .set(...bearer(plain.accessToken));
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('mfa_required');

    // The password alone cannot enrol a first second factor: the mailbox must be proven in the same session too.
    const alone = await request(app)
      .post('/mfa/totp/setup')
      .set(...bearer(plain.accessToken));
    expect(alone.status).toBe(403);
    expect(alone.body.error.code).toBe('second_proof_required');
    const twoProofs = await emailedCodeStepUp(app, { email: `${username}@example.com` }, plain.accessToken);
    const setup = await request(app)
      .post('/mfa/totp/setup')
      .set(...bearer(twoProofs));
    await request(app)
      .post('/mfa/totp/enable')
      .set(...bearer(twoProofs))
      .send({ code: codeAt(setup.body.secret, clock.now()) })
      .expect(200);
    clock.advance(STEP_SECONDS * 1000);
    const challenge = await request(app).post('/login').send({ username, password });
    const done = await request(app)
      .post('/login/mfa')
      .send({ mfa_token: challenge.body.mfa_token, code: codeAt(setup.body.secret, clock.now()) });
    expect(
      (
        await request(app)
          .get('/admin/users')
          .set(...bearer(done.body.access_token))
      ).status,
    ).toBe(200);
  });
});
