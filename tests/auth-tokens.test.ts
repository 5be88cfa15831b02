import { createHmac, createPublicKey, generateKeyPairSync } from 'node:crypto';
import jwt from 'jsonwebtoken';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { issuedAtMs } from '../src/kernel/tokens/tokens.js';
import { bearer, jwtSegment, registerAndLogin } from './support/accounts.js';
import { pruneEndedSessions } from '../src/kernel/sessions/sessions.js';
import { buildApp, testConfig, useBackends, usingRedis } from './support/test-app.js';

describe('access and refresh tokens', () => {
  const backends = useBackends();

  describe('forged and misused access tokens', () => {
    it('when no token is sent, then 401 with a Bearer challenge and no error attribute', async () => {
      const { app } = buildApp(backends);
      const res = await request(app).get('/protected');
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('unauthorized');
      expect(res.headers['www-authenticate']).toBe('Bearer realm="authkit"');
    });

    it('when the header is not a Bearer token, then 401 invalid_token', async () => {
      const { app } = buildApp(backends);
      const res = await request(app).get('/protected').set('Authorization', 'Basic dXNlcjpwYXNz');
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toContain('error="invalid_token"');
    });

    it('when tokens are forged or misused, then each one gets 401 invalid_token', async () => {
      const config = testConfig();
      const clock = new ManualClock();
      const { app, deps } = buildApp(backends, { config, clock });
      const account = await registerAndLogin(app);
      const [header, payload, signature] = account.accessToken.split('.') as [string, string, string];
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
      // Our own current key: a token it signs fails only for what the case changes.
      const ours = deps.signingKeys.signing();
      const signWith = (overrides: Record<string, unknown>, extraHeader: Record<string, unknown> = {}, key = ours.key, kid: string | null = ours.kid) =>
        jwt.sign({ ...claims, ...overrides }, key, { algorithm: 'ES256', ...(kid !== null && { keyid: kid }), header: { alg: 'ES256', ...extraHeader } });
      const publicPem = createPublicKey(ours.key).export({ format: 'pem', type: 'spki' }).toString();
      const publicJwk = JSON.stringify(createPublicKey(ours.key).export({ format: 'jwk' }));
      const hmacWith = (secret: string) => {
        const confusedHeader = jwtSegment({ alg: 'HS256', typ: 'JWT', kid: ours.kid });
        return `${confusedHeader}.${payload}.${createHmac('sha256', secret).update(`${confusedHeader}.${payload}`).digest('base64url')}`;
      };
      const strangerKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;

      const forged: Record<string, string> = {
        'alg none': `${jwtSegment({ alg: 'none', typ: 'JWT', kid: ours.kid })}.${payload}.`,
        'a key pair of its own under our kid': signWith({}, {}, strangerKey),
        'an unknown kid': signWith({}, {}, ours.key, 'no-such-key'),
        'no kid': signWith({}, {}, ours.key, null),
        'a jku header': signWith({}, { jku: 'https://attacker.example/jwks.json' }),
        'a jwk header': signWith({}, { jwk: JSON.parse(publicJwk) as object }),
        'an x5u header': signWith({}, { x5u: 'https://attacker.example/cert.pem' }),
        'HS256 with our public key (PEM) as the secret': hmacWith(publicPem),
        'HS256 with our public key (JWK) as the secret': hmacWith(publicJwk),
        'a tampered payload': `${header}.${jwtSegment({ ...claims, roles: ['user', 'admin'] })}.${signature}`,
        'a wrong issuer': signWith({ iss: 'someone-else' }),
        'a wrong audience': signWith({ aud: 'another-api' }),
        'a wrong type': signWith({ typ: 'refresh' }),
        'a refresh token as Bearer': account.refreshToken,
        'a truncated token': account.accessToken.slice(0, -5),
        'a header that is not JSON': `${Buffer.from('{not json').toString('base64url')}.${payload}.${signature}`,
      };
      for (const [name, token] of Object.entries(forged)) {
        const res = await request(app)
          .get('/protected')
          .set(...bearer(token));
        expect(res.status, name).toBe(401);
        expect(res.body.error.code, name).toBe('invalid_token');
      }
      // The same signing, unchanged, is accepted: the refusals above are for what each case changed.
      expect(
        (
          await request(app)
            .get('/protected')
            .set(...bearer(signWith({})))
        ).status,
      ).toBe(200);
      const genuine = await request(app)
        .get('/protected')
        .set(...bearer(account.accessToken));
      expect(genuine.status).toBe(200);
    });

    it('when JWT_ALGORITHM is HS256, then tokens are HMACs under JWT_SECRET with a kid, and an ES256 token is refused', async () => {
      const config = testConfig({ accessTokenAlgorithm: 'HS256' });
      const { app } = buildApp(backends, { config });
      const account = await registerAndLogin(app);
      const header = JSON.parse(Buffer.from(account.accessToken.split('.')[0] ?? '', 'base64url').toString()) as { alg: string; kid: string };
      expect(header).toMatchObject({ alg: 'HS256', kid: expect.stringMatching(/^hs256-/) });
      expect(jwt.verify(account.accessToken, config.jwtSecret, { algorithms: ['HS256'] })).toMatchObject({ sub: account.id });

      const es256 = buildApp(backends);
      const other = await registerAndLogin(es256.app);
      expect(
        (
          await request(app)
            .get('/protected')
            .set(...bearer(other.accessToken))
        ).status,
      ).toBe(401);
      expect(
        (
          await request(app)
            .get('/protected')
            .set(...bearer(account.accessToken))
        ).status,
      ).toBe(200);
    });

    it('when a token is issued, then iat is whole seconds (PyJWT refuses a fractional one) and the jti, a UUIDv7, holds the millisecond', async () => {
      const clock = new ManualClock(1_795_000_000_123);
      const { app } = buildApp(backends, { clock });
      const account = await registerAndLogin(app);
      const claims = jwt.decode(account.accessToken) as { iat: number; jti: string };
      expect(claims.iat).toBe(1_795_000_000);
      expect(claims.jti).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(issuedAtMs(claims)).toBe(1_795_000_000_123);
      // A jti whose time contradicts the signed iat is not believed.
      expect(issuedAtMs({ ...claims, iat: claims.iat + 10 })).toBe((claims.iat + 10) * 1000);
    });

    it('when the token has expired beyond the clock tolerance, then 401 saying so', async () => {
      const clock = new ManualClock();
      const config = testConfig();
      const { app } = buildApp(backends, { config, clock });
      const account = await registerAndLogin(app);

      clock.advance((config.accessTokenTtlS + config.jwtClockToleranceS - 1) * 1000);
      const withinTolerance = await request(app)
        .get('/protected')
        .set(...bearer(account.accessToken));
      clock.advance(2_000);
      const expired = await request(app)
        .get('/protected')
        .set(...bearer(account.accessToken));

      expect(withinTolerance.status).toBe(200);
      expect(expired.status).toBe(401);
      expect(expired.headers['www-authenticate']).toContain('expired');
    });
  });

  describe('POST /refresh', () => {
    it('when a refresh token is used, then a new pair comes back and the user is included', async () => {
      const { app } = buildApp(backends);
      const account = await registerAndLogin(app);
      const res = await request(app).post('/refresh').send({ refresh_token: account.refreshToken });
      expect(res.status).toBe(200);
      expect(res.body.refresh_token).not.toBe(account.refreshToken);
      expect(res.body.user.id).toBe(account.id);
      const use = await request(app)
        .get('/protected')
        .set(...bearer(res.body.access_token));
      expect(use.status).toBe(200);
    });

    it('when an access token is sent as the refresh token, then 401', async () => {
      const { app } = buildApp(backends);
      const account = await registerAndLogin(app);
      const res = await request(app).post('/refresh').send({ refresh_token: account.accessToken });
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('invalid_token');
    });

    it('when several tabs refresh with one token at once, inside the grace interval, then all get the same successor', async () => {
      const { app } = buildApp(backends);
      const account = await registerAndLogin(app);

      const results = await Promise.all(Array.from({ length: 5 }, () => request(app).post('/refresh').send({ refresh_token: account.refreshToken })));

      expect(results.map((res) => res.status)).toEqual([200, 200, 200, 200, 200]);
      expect(new Set(results.map((res) => res.body.refresh_token as string)).size).toBe(1);
      const live = await backends.db.prisma.refreshToken.count({ where: { session: { userId: account.id }, rotatedAt: null } });
      expect(live).toBe(1);
      const next = await request(app).post('/refresh').send({ refresh_token: results[0]?.body.refresh_token });
      expect(next.status).toBe(200);
    });

    it('when a thief replays a rotated token inside the grace interval, then it gets the same chain, and reuse later ends the session', async () => {
      const clock = new ManualClock();
      const config = testConfig();
      const { app } = buildApp(backends, { config, clock });
      const account = await registerAndLogin(app);
      const client = await request(app).post('/refresh').send({ refresh_token: account.refreshToken });
      const thief = await request(app).post('/refresh').send({ refresh_token: account.refreshToken });
      const clientAgain = await request(app).post('/refresh').send({ refresh_token: client.body.refresh_token });

      clock.advance((config.refreshReuseIntervalS + 1) * 1000);
      const thiefLater = await request(app).post('/refresh').send({ refresh_token: thief.body.refresh_token });

      expect(thief.body.refresh_token).toBe(client.body.refresh_token);
      expect(clientAgain.status).toBe(200);
      expect(thiefLater.status).toBe(401);
      expect((await request(app).post('/refresh').send({ refresh_token: clientAgain.body.refresh_token })).status).toBe(401);
    });

    it('when a rotated token is replayed after the grace interval, then 401 and the whole session is revoked', async () => {
      const clock = new ManualClock();
      const config = testConfig();
      const { app } = buildApp(backends, { config, clock });
      const account = await registerAndLogin(app);
      const rotated = await request(app).post('/refresh').send({ refresh_token: account.refreshToken });
      expect(rotated.status).toBe(200);

      clock.advance((config.refreshReuseIntervalS + 1) * 1000);
      const replay = await request(app).post('/refresh').send({ refresh_token: account.refreshToken });
      const successor = await request(app).post('/refresh').send({ refresh_token: rotated.body.refresh_token });
      const liveAccess = await request(app)
        .get('/protected')
        .set(...bearer(rotated.body.access_token));
      const firstAccess = await request(app)
        .get('/protected')
        .set(...bearer(account.accessToken));

      expect(replay.status).toBe(401);
      expect(successor.status).toBe(401);
      expect(liveAccess.status).toBe(401);
      expect(firstAccess.status).toBe(401);
      const session = await backends.db.prisma.session.findFirst({ where: { userId: account.id } });
      expect(session?.revokedReason).toBe('refresh_token_reuse');
    });

    it('when the session is older than its absolute lifetime, then refresh fails however recently it was used', async () => {
      const clock = new ManualClock();
      const config = testConfig({ sessionTtlS: 3_600 });
      const { app } = buildApp(backends, { config, clock });
      const account = await registerAndLogin(app);
      let refreshToken = account.refreshToken;
      for (let step = 0; step < 3; step++) {
        clock.advance(1_000 * 1_000);
        const res = await request(app).post('/refresh').send({ refresh_token: refreshToken });
        expect(res.status).toBe(200);
        refreshToken = res.body.refresh_token;
      }
      clock.advance(1_000 * 1_000);
      const res = await request(app).post('/refresh').send({ refresh_token: refreshToken });
      expect(res.status).toBe(401);
    });

    it.each([
      ['a missing field', {}],
      ['an extra field', { refresh_token: 'rt_x', user: 'me' }],
      ['a wrong type', { refresh_token: 42 }],
    ])('when the body has %s, then 400', async (_case, body) => {
      const { app } = buildApp(backends);
      const res = await request(app).post('/refresh').send(body);
      expect(res.status).toBe(400);
    });

    it('when the refresh token is unknown, then 401', async () => {
      const { app } = buildApp(backends);
      const res = await request(app).post('/refresh').send({ refresh_token: 'rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' });
      expect(res.status).toBe(401);
    });
  });

  describe('logout', () => {
    it('when a user logs out, then 204, and that access token and refresh token stop working', async () => {
      const { app } = buildApp(backends);
      const account = await registerAndLogin(app);
      const res = await request(app)
        .post('/logout')
        .set(...bearer(account.accessToken));
      const reuse = await request(app)
        .get('/protected')
        .set(...bearer(account.accessToken));
      const refresh = await request(app).post('/refresh').send({ refresh_token: account.refreshToken });
      expect(res.status).toBe(204);
      expect(reuse.status).toBe(401);
      expect(reuse.headers['www-authenticate']).toContain('revoked');
      expect(refresh.status).toBe(401);
    });

    it.runIf(usingRedis)('when a user logs out on one instance, then a second instance sharing Redis rejects the token', async () => {
      const config = testConfig();
      const first = buildApp(backends, { config }).app;
      const second = buildApp(backends, { config }).app;
      const account = await registerAndLogin(first);
      expect(
        (
          await request(second)
            .get('/protected')
            .set(...bearer(account.accessToken))
        ).status,
      ).toBe(200);

      await request(first)
        .post('/logout')
        .set(...bearer(account.accessToken))
        .expect(204);
      const res = await request(second)
        .get('/protected')
        .set(...bearer(account.accessToken));
      expect(res.status).toBe(401);
    });

    it('when a user logs out everywhere, then every session and access token dies, and a new login works at once', async () => {
      const config = testConfig();
      const instances = usingRedis ? [buildApp(backends, { config }).app, buildApp(backends, { config }).app] : [buildApp(backends, { config }).app];
      const [app] = instances as [(typeof instances)[0]];
      const account = await registerAndLogin(app);
      const laptop = await registerAndLoginAgain(app, account);

      const res = await request(app)
        .post('/logout/all')
        .set(...bearer(account.accessToken));
      expect(res.status).toBe(204);
      for (const instance of instances) {
        expect(
          (
            await request(instance)
              .get('/protected')
              .set(...bearer(account.accessToken))
          ).status,
        ).toBe(401);
        expect(
          (
            await request(instance)
              .get('/protected')
              .set(...bearer(laptop.accessToken))
          ).status,
        ).toBe(401);
      }
      expect((await request(app).post('/refresh').send({ refresh_token: laptop.refreshToken })).status).toBe(401);

      const fresh = await registerAndLoginAgain(app, account);
      expect(
        (
          await request(app)
            .get('/protected')
            .set(...bearer(fresh.accessToken))
        ).status,
      ).toBe(200);
    });
  });
});

async function registerAndLoginAgain(app: Parameters<typeof request>[0], account: { username: string; password: string }) {
  const res = await request(app).post('/login').send({ username: account.username, password: account.password });
  expect(res.status).toBe(200);
  return { accessToken: res.body.access_token as string, refreshToken: res.body.refresh_token as string };
}

describe('pruning ended sessions', () => {
  const backends = useBackends();

  it('when sessions expired or were revoked over a day ago, then they and their refresh tokens are deleted, and no other', async () => {
    const clock = new ManualClock();
    const config = testConfig({ sessionTtlS: 3_600 });
    const { app } = buildApp(backends, { config, clock });
    const expiring = await registerAndLogin(app);
    const loggedOut = await registerAndLogin(app);
    await request(app)
      .post('/logout')
      .set(...bearer(loggedOut.accessToken));
    clock.advance(3_600_000 + 24 * 3_600_000 + 1_000);
    const fresh = await registerAndLogin(app);
    const sessionsOf = (userId: string) => backends.db.prisma.session.count({ where: { userId } });
    const orphanTokens = () => backends.db.prisma.refreshToken.count({ where: { session: { userId: { in: [expiring.id, loggedOut.id] } } } });

    const pruned = await pruneEndedSessions(backends.db.prisma, clock);

    expect(pruned).toBeGreaterThanOrEqual(2);
    expect([await sessionsOf(expiring.id), await sessionsOf(loggedOut.id), await sessionsOf(fresh.id)]).toEqual([0, 0, 1]);
    expect(await orphanTokens()).toBe(0);
    expect((await request(app).post('/refresh').send({ refresh_token: fresh.refreshToken })).status).toBe(200);
  });
});
