import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { AppError, ERROR_REASONS, ERROR_STATUS, type ErrorReason, errorBody } from '../src/core/errors.js';
import { codeAt, STEP_SECONDS } from '../src/kernel/verifiers/totp.js';
import { bearer, createAdmin, login, readyToEnrol, registerAndLogin, uniqueName } from './support/accounts.js';
import { buildApp, testConfig, useBackends, withOwnBackends } from './support/test-app.js';

const reasons = Object.entries(ERROR_REASONS) as Array<[ErrorReason, (typeof ERROR_REASONS)[ErrorReason]]>;

describe('the error map', () => {
  it('when any reason is read, then its family has a status and its default message is a sentence', () => {
    for (const [reason, spec] of reasons) {
      expect(ERROR_STATUS[spec.code], reason).toBeGreaterThanOrEqual(400);
      expect(spec.message.length, reason).toBeGreaterThan(0);
      expect(spec.message, reason).toMatch(/[.!?]$/);
      expect(reason, reason).toMatch(/^[a-z][a-z0-9_]*$/);
    }
  });

  it('when any family is read, then it is also a reason of its own family (what a refusal with nothing finer says)', () => {
    for (const code of Object.keys(ERROR_STATUS) as Array<keyof typeof ERROR_STATUS>) {
      expect(ERROR_REASONS[code]?.code, code).toBe(code);
    }
  });

  it('when reasons are listed, then no two share a name and none shadows another family', () => {
    const names = reasons.map(([reason]) => reason);
    expect(new Set(names).size).toBe(names.length);
    for (const [reason, spec] of reasons) {
      if (reason in ERROR_STATUS) expect(spec.code, reason).toBe(reason);
    }
  });

  it('when a reason declares a details shape, then what its throw sites send fits it', () => {
    const samples: Partial<Record<ErrorReason, unknown>> = {
      last_admin: { reason: 'last_admin' },
      rate_limited: { budget: 'auth', limit: 5, windowSeconds: 60, retryAfterSeconds: 42 },
      mfa_locked: { retryAfterSeconds: 900 },
      password_too_short: { path: 'password', reason: 'too_short' },
      username_taken: [{ path: 'username', message: 'taken' }],
    };
    for (const [reason, details] of Object.entries(samples) as Array<[ErrorReason, unknown]>) {
      const schema = (ERROR_REASONS[reason] as { details?: { safeParse(value: unknown): { success: boolean } } }).details;
      expect(schema?.safeParse(details).success, reason).toBe(true);
    }
  });

  it('when an AppError is made from a reason alone, then it carries the family, status and default message', () => {
    const error = new AppError('refresh_token_reused');

    expect(error).toMatchObject({ code: 'invalid_token', reason: 'refresh_token_reused', status: 401, message: ERROR_REASONS.refresh_token_reused.message });
    expect(errorBody(error, 'req-1')).toEqual({ error: { code: 'invalid_token', reason: 'refresh_token_reused', message: error.message, requestId: 'req-1' } });
  });

  it('when an AppError is made from a family code, then the reason is the code, and a message or options may follow', () => {
    const plain = new AppError('not_found', 'No such thing.');
    const withOptions = new AppError('last_admin', { details: { reason: 'last_admin' } });

    expect(plain).toMatchObject({ code: 'not_found', reason: 'not_found', status: 404, message: 'No such thing.' });
    expect(withOptions).toMatchObject({ code: 'conflict', reason: 'last_admin', status: 409, details: { reason: 'last_admin' } });
  });
});

describe('error reasons a client can act on', () => {
  const backends = useBackends();

  it('when the API document is read, then the error code and reason are enums of every family and reason', async () => {
    const { app } = buildApp(backends);

    const doc = (await request(app).get('/openapi.json')).body;

    const error = doc.components.schemas.Error.properties.error;
    expect(error.required).toEqual(expect.arrayContaining(['code', 'reason', 'message', 'requestId']));
    expect([...error.properties.code.enum].sort()).toEqual(Object.keys(ERROR_STATUS).sort());
    expect([...error.properties.reason.enum].sort()).toEqual(Object.keys(ERROR_REASONS).sort());
  });

  describe('refresh tokens', () => {
    it('when a rotated refresh token is replayed after the grace interval, then refresh_token_reused, and the session is then session_revoked', async () => {
      const clock = new ManualClock();
      const config = testConfig();
      const { app } = buildApp(backends, { config, clock });
      const account = await registerAndLogin(app);
      const rotated = await request(app).post('/refresh').send({ refresh_token: account.refreshToken });
      clock.advance((config.refreshReuseIntervalS + 1) * 1000);

      const replay = await request(app).post('/refresh').send({ refresh_token: account.refreshToken });
      const successor = await request(app).post('/refresh').send({ refresh_token: rotated.body.refresh_token });

      expect(replay.status).toBe(401);
      expect(replay.body.error).toMatchObject({ code: 'invalid_token', reason: 'refresh_token_reused' });
      expect(successor.status).toBe(401);
      expect(successor.body.error).toMatchObject({ code: 'invalid_token', reason: 'session_revoked' });
    });

    it('when the session has outlived its lifetime, then session_expired, not refresh_token_reused', async () => {
      const clock = new ManualClock();
      const config = testConfig({ sessionTtlS: 3_600 });
      const { app } = buildApp(backends, { config, clock });
      const account = await registerAndLogin(app);
      clock.advance(3_601 * 1000);

      const res = await request(app).post('/refresh').send({ refresh_token: account.refreshToken });

      expect(res.status).toBe(401);
      expect(res.body.error).toMatchObject({ code: 'invalid_token', reason: 'session_expired' });
    });

    it.each([
      ['unknown', 'rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
      ['malformed', 'not a refresh token at all'],
    ])('when the refresh token is %s, then refresh_token_invalid', async (_case, token) => {
      const { app } = buildApp(backends);

      const res = await request(app).post('/refresh').send({ refresh_token: token });

      expect(res.status).toBe(401);
      expect(res.body.error).toMatchObject({ code: 'invalid_token', reason: 'refresh_token_invalid' });
    });

    it('when the user signed out, then the refresh token is session_revoked', async () => {
      const { app } = buildApp(backends);
      const account = await registerAndLogin(app);
      await request(app)
        .post('/logout')
        .set(...bearer(account.accessToken))
        .expect(204);

      const res = await request(app).post('/refresh').send({ refresh_token: account.refreshToken });

      expect(res.body.error).toMatchObject({ code: 'invalid_token', reason: 'session_revoked' });
    });
  });

  describe('access tokens', () => {
    it('when the access token has expired, then access_token_expired; when it was revoked, then access_token_revoked', async () => {
      const clock = new ManualClock();
      const config = testConfig();
      const { app } = buildApp(backends, { config, clock });
      const old = await registerAndLogin(app);
      clock.advance((config.accessTokenTtlS + config.jwtClockToleranceS + 1) * 1000);
      const fresh = await registerAndLogin(app);
      await request(app)
        .post('/logout')
        .set(...bearer(fresh.accessToken))
        .expect(204);

      const expired = await request(app)
        .get('/protected')
        .set(...bearer(old.accessToken));
      const revoked = await request(app)
        .get('/protected')
        .set(...bearer(fresh.accessToken));

      expect(expired.status).toBe(401);
      expect(expired.body.error).toMatchObject({ code: 'invalid_token', reason: 'access_token_expired' });
      expect(revoked.status).toBe(401);
      expect(revoked.body.error).toMatchObject({ code: 'invalid_token', reason: 'access_token_revoked' });
    });

    it('when the access token is tampered with or the header is not Bearer, then access_token_invalid or bearer_header_malformed', async () => {
      const { app } = buildApp(backends);
      const account = await registerAndLogin(app);

      const tampered = await request(app)
        .get('/protected')
        .set(...bearer(`${account.accessToken.slice(0, -4)}AAAA`));
      const basic = await request(app).get('/protected').set('Authorization', 'Basic dXNlcjpwYXNz');
      const none = await request(app).get('/protected');

      expect(tampered.body.error).toMatchObject({ code: 'invalid_token', reason: 'access_token_invalid' });
      expect(basic.body.error).toMatchObject({ code: 'invalid_token', reason: 'bearer_header_malformed' });
      expect(none.body.error).toMatchObject({ code: 'unauthorized', reason: 'unauthorized' });
    });
  });

  describe('mfa tokens', () => {
    it('when an mfa_token was already used, has expired, or is not one, then mfa_token_used, mfa_token_expired or mfa_token_invalid', async () => {
      const clock = new ManualClock();
      const { app } = buildApp(backends, { clock });
      const user = await readyToEnrol(app);
      const setup = await request(app)
        .post('/mfa/totp/setup')
        .set(...bearer(user.accessToken));
      await request(app)
        .post('/mfa/totp/enable')
        .set(...bearer(user.accessToken))
        .send({ code: codeAt(setup.body.secret, clock.now()) })
        .expect(200);
      clock.advance(STEP_SECONDS * 1000);
      const passwordStep = () => request(app).post('/login').send({ username: user.username, password: user.password }).expect(200);
      const used = await passwordStep();
      await request(app)
        .post('/login/mfa')
        .send({ mfa_token: used.body.mfa_token, code: codeAt(setup.body.secret, clock.now()) })
        .expect(200);
      clock.advance(STEP_SECONDS * 1000);
      const expiring = await passwordStep();

      const reused = await request(app)
        .post('/login/mfa')
        .send({ mfa_token: used.body.mfa_token, code: codeAt(setup.body.secret, clock.now()) });
      clock.advance(301_000);
      const expired = await request(app)
        .post('/login/mfa')
        .send({ mfa_token: expiring.body.mfa_token, code: codeAt(setup.body.secret, clock.now()) });
      const notOne = await request(app)
        .post('/login/mfa')
        .send({ mfa_token: user.accessToken, code: codeAt(setup.body.secret, clock.now()) });

      expect(reused.body.error).toMatchObject({ code: 'invalid_token', reason: 'mfa_token_used' });
      expect(expired.body.error).toMatchObject({ code: 'invalid_token', reason: 'mfa_token_expired' });
      expect(notOne.body.error).toMatchObject({ code: 'invalid_token', reason: 'mfa_token_invalid' });
    });
  });

  describe('conflicts', () => {
    it('when two-factor is already on and set up again, then 409 conflict with reason mfa_already_enabled', async () => {
      const clock = new ManualClock();
      const { app } = buildApp(backends, { clock });
      const user = await readyToEnrol(app);
      const setup = await request(app)
        .post('/mfa/totp/setup')
        .set(...bearer(user.accessToken));
      await request(app)
        .post('/mfa/totp/enable')
        .set(...bearer(user.accessToken))
        .send({ code: codeAt(setup.body.secret, clock.now()) })
        .expect(200);

      const again = await request(app)
        .post('/mfa/totp/setup')
        .set(...bearer(user.accessToken));

      expect(again.status).toBe(409);
      expect(again.body.error).toMatchObject({ code: 'conflict', reason: 'mfa_already_enabled' });
    });

    it('when the only administrator demotes themselves, then 409 conflict with reason last_admin, and the role stays', async () => {
      await withOwnBackends(async (own) => {
        const { app, deps } = buildApp(own);
        const username = uniqueName('admin');
        const password = 'admin password 123';
        const { user: admin } = await createAdmin(deps, { email: `${username}@example.com`, username, password });
        const session = await login(app, { username, password });

        const res = await request(app)
          .patch(`/admin/users/${admin.id}/roles`)
          .set(...bearer(session.accessToken))
          .send({ roles: ['user'] });

        expect(res.status).toBe(409);
        expect(res.body.error).toMatchObject({ code: 'conflict', reason: 'last_admin', details: { reason: 'last_admin' } });
        const roles = await own.db.prisma.userRole.findMany({ where: { userId: admin.id } });
        expect(roles.map((role) => role.roleName)).toContain('admin');
      });
    });
  });
});
