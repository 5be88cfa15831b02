import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { codeAt, STEP_SECONDS } from '../src/kernel/verifiers/totp.js';
import { bearer, readyToEnrol } from './support/accounts.js';
import { buildApp, testConfig, useBackends } from './support/test-app.js';

describe('re-authentication for sensitive changes', () => {
  const backends = useBackends();

  function setup() {
    const clock = new ManualClock();
    const config = testConfig();
    const { app } = buildApp(backends, { config, clock });
    const later = () => clock.advance((config.reauthMaxAgeS + 1) * 1000);
    return { app, clock, later };
  }

  it.each([
    [
      'create an API key',
      (token: string, app: Parameters<typeof request>[0]) =>
        request(app)
          .post('/api-keys')
          .set(...bearer(token))
          .send({ name: 'stolen' }),
    ],
    [
      'start two-factor enrolment',
      (token: string, app: Parameters<typeof request>[0]) =>
        request(app)
          .post('/mfa/totp/setup')
          .set(...bearer(token)),
    ],
    [
      'confirm two-factor enrolment',
      (token: string, app: Parameters<typeof request>[0]) =>
        request(app)
          .post('/mfa/totp/enable')
          .set(...bearer(token))
          .send({ code: '123456' }),
    ],
  ])('when the sign-in is older than REAUTH_MAX_AGE_S, then a token alone cannot %s', async (_case, call) => {
    const { app, later } = setup();
    const user = await readyToEnrol(app);
    later();

    const res = await call(user.accessToken, app);

    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('reauthentication_required');
    expect(res.headers['www-authenticate']).toMatch(/error="insufficient_user_authentication", max_age=\d+/);
    expect(await backends.db.prisma.apiKey.count({ where: { userId: user.id } })).toBe(0);
  });

  it('when the user confirms the password, then the fresh token may create the key, in the same session', async () => {
    const { app, later } = setup();
    const user = await readyToEnrol(app);
    later();

    const wrong = await request(app)
      .post('/reauthenticate')
      .set(...bearer(user.accessToken))
      .send({ password: 'not the password' });
    const step = await request(app)
      .post('/reauthenticate')
      .set(...bearer(user.accessToken))
      .send({ password: user.password });
    const key = await request(app)
      .post('/api-keys')
      .set(...bearer(step.body.access_token))
      .send({ name: 'backup' });
    const refresh = await request(app).post('/refresh').send({ refresh_token: user.refreshToken });

    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('invalid_credentials');
    expect(step.status).toBe(200);
    expect(Object.keys(step.body).sort()).toEqual(['access_token', 'expires_in', 'token_type']);
    expect(key.status).toBe(201);
    expect(refresh.status).toBe(200);
  });

  it('when the session was only refreshed, then that does not count as signing in again', async () => {
    const { app, later } = setup();
    const user = await readyToEnrol(app);
    later();
    const refreshed = await request(app).post('/refresh').send({ refresh_token: user.refreshToken });

    const res = await request(app)
      .post('/api-keys')
      .set(...bearer(refreshed.body.access_token))
      .send({ name: 'x' });

    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('reauthentication_required');
  });

  it('when two-factor is on, then re-authenticating needs a code as well as the password', async () => {
    const { app, clock, later } = setup();
    const user = await readyToEnrol(app);
    const enrolment = await request(app)
      .post('/mfa/totp/setup')
      .set(...bearer(user.accessToken));
    await request(app)
      .post('/mfa/totp/enable')
      .set(...bearer(user.accessToken))
      .send({ code: codeAt(enrolment.body.secret, clock.now()) });
    clock.advance(STEP_SECONDS * 1000);
    later();

    const passwordOnly = await request(app)
      .post('/reauthenticate')
      .set(...bearer(user.accessToken))
      .send({ password: user.password });
    const withCode = await request(app)
      .post('/reauthenticate')
      .set(...bearer(user.accessToken))
      .send({ password: user.password, code: codeAt(enrolment.body.secret, clock.now()) });

    expect(passwordOnly.status).toBe(401);
    expect(passwordOnly.body.error.code).toBe('invalid_mfa_code');
    expect(withCode.status).toBe(200);
  });

  it('when the body is malformed or the token missing, then a clear 4xx and no token', async () => {
    const { app } = setup();
    const user = await readyToEnrol(app);

    const extra = await request(app)
      .post('/reauthenticate')
      .set(...bearer(user.accessToken))
      .send({ password: user.password, admin: true });
    const wrongType = await request(app)
      .post('/reauthenticate')
      .set(...bearer(user.accessToken))
      .send({ password: 42 });
    const anonymous = await request(app).post('/reauthenticate').send({ password: user.password });

    expect([extra.status, wrongType.status, anonymous.status]).toEqual([400, 400, 401]);
  });
});
