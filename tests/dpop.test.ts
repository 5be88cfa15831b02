// DPoP (RFC 9449) for this service's own tokens: a sign-in with a proof gets tokens bound to the proof's key, and a
// stolen access or refresh token is useless without that key. Every forgery the RFC names is a case here.
import { randomUUID } from 'node:crypto';
import type { Express } from 'express';
import * as jose from 'jose';
import request from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ManualClock } from '../src/core/clock.js';
import { accessTokenHash } from '../src/kernel/tokens/dpop.js';
import { register } from './support/accounts.js';
import { buildApp, testConfig, useBackends } from './support/test-app.js';

const SITE = 'https://auth.example.test';

interface Holder {
  privateKey: Awaited<ReturnType<typeof jose.generateKeyPair>>['privateKey'];
  jwk: jose.JWK;
}

async function holder(alg = 'ES256'): Promise<Holder> {
  const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true });
  return { privateKey, jwk: await jose.exportJWK(publicKey) };
}

interface ProofOptions {
  htm?: string;
  path?: string;
  accessToken?: string;
  iat?: number;
  jti?: string;
  typ?: string;
  jwk?: jose.JWK;
}

function proof(key: Holder, method: string, path: string, clock: ManualClock, options: ProofOptions = {}): Promise<string> {
  return new jose.SignJWT({
    htm: options.htm ?? method,
    htu: `${SITE}${options.path ?? path}`,
    jti: options.jti ?? randomUUID(),
    iat: options.iat ?? Math.floor(clock.now() / 1000),
    ...(options.accessToken !== undefined && { ath: accessTokenHash(options.accessToken) }),
  })
    .setProtectedHeader({ alg: 'ES256', typ: options.typ ?? 'dpop+jwt', jwk: options.jwk ?? key.jwk })
    .sign(key.privateKey);
}

describe('DPoP-bound tokens of our own', () => {
  const backends = useBackends();
  let app: Express;
  let clock: ManualClock;

  beforeAll(() => {
    const built = buildApp(backends, { config: testConfig({ publicUrl: SITE }) });
    app = built.app;
    clock = built.deps.clock as ManualClock;
  });

  async function boundSignIn() {
    const account = await register(app);
    const key = await holder();
    const res = await request(app)
      .post('/login')
      .set('DPoP', await proof(key, 'POST', '/login', clock))
      .send({ username: account.username, password: account.password });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return { account, key, accessToken: res.body.access_token as string, refreshToken: res.body.refresh_token as string, body: res.body };
  }

  const me = async (accessToken: string, dpop?: string, scheme = 'DPoP') => {
    const call = request(app).get('/me').set('Authorization', `${scheme} ${accessToken}`);
    return dpop === undefined ? call : call.set('DPoP', dpop);
  };

  it('when a sign-in sends a proof, then its tokens are DPoP tokens bound to the key, and a request with a fresh proof is served', async () => {
    const { key, accessToken, body } = await boundSignIn();

    expect(body.token_type).toBe('DPoP');
    const claims = jose.decodeJwt(accessToken);
    expect(claims.cnf).toEqual({ jkt: await jose.calculateJwkThumbprint(key.jwk) });
    const res = await me(accessToken, await proof(key, 'GET', '/me', clock, { accessToken }));
    expect(res.status).toBe(200);
  });

  it('when a bound token comes as Bearer, without a proof, or with a proof by another key, then it is refused', async () => {
    const { accessToken } = await boundSignIn();
    const thief = await holder();

    for (const res of [
      await me(accessToken, undefined, 'Bearer'),
      await me(accessToken),
      await me(accessToken, await proof(thief, 'GET', '/me', clock, { accessToken })),
    ]) {
      expect(res.status).toBe(401);
      expect(res.body.error.reason).toBe('dpop_proof_invalid');
      expect(res.headers['www-authenticate']).toMatch(/^DPoP /);
    }
  });

  it('when a proof is replayed, made for another URL or method, old, without ath, or not a DPoP JWT, then it is refused', async () => {
    const { key, accessToken } = await boundSignIn();
    const good = await proof(key, 'GET', '/me', clock, { accessToken });
    expect((await me(accessToken, good)).status).toBe(200);

    const forged = [
      good,
      await proof(key, 'GET', '/me', clock, { accessToken, path: '/sessions' }),
      await proof(key, 'GET', '/me', clock, { accessToken, htm: 'POST' }),
      await proof(key, 'GET', '/me', clock, { accessToken, iat: Math.floor(clock.now() / 1000) - 120 }),
      await proof(key, 'GET', '/me', clock, { accessToken, iat: Math.floor(clock.now() / 1000) + 60 }),
      await proof(key, 'GET', '/me', clock),
      await proof(key, 'GET', '/me', clock, { accessToken: 'another token' }),
      await proof(key, 'GET', '/me', clock, { accessToken, typ: 'JWT' }),
      'not.a.jwt',
      'x'.repeat(9_000),
    ];
    for (const dpop of forged) {
      const res = await me(accessToken, dpop);
      expect(res.status, dpop.slice(0, 40)).toBe(401);
      expect(res.body.error.reason).toBe('dpop_proof_invalid');
    }
  });

  it('when an unbound token is sent with the DPoP scheme, then it is refused', async () => {
    const account = await register(app);
    const login = await request(app).post('/login').send({ username: account.username, password: account.password });
    expect(login.body.token_type).toBe('Bearer');
    const key = await holder();

    const res = await me(login.body.access_token as string, await proof(key, 'GET', '/me', clock, { accessToken: login.body.access_token as string }));

    expect(res.status).toBe(401);
    expect(res.body.error.reason).toBe('dpop_proof_invalid');
  });

  it('when a bound session refreshes, then only a proof by its key works, and the new pair is bound too', async () => {
    const { key, refreshToken } = await boundSignIn();
    const thief = await holder();

    const bare = await request(app).post('/refresh').send({ refresh_token: refreshToken });
    const stolen = await request(app)
      .post('/refresh')
      .set('DPoP', await proof(thief, 'POST', '/refresh', clock))
      .send({ refresh_token: refreshToken });
    const rightful = await request(app)
      .post('/refresh')
      .set('DPoP', await proof(key, 'POST', '/refresh', clock))
      .send({ refresh_token: refreshToken });

    expect(bare.status).toBe(401);
    expect(bare.body.error.reason).toBe('dpop_proof_invalid');
    expect(stolen.status).toBe(401);
    expect(rightful.status).toBe(200);
    expect(rightful.body.token_type).toBe('DPoP');
    expect(jose.decodeJwt(rightful.body.access_token as string).cnf).toEqual({ jkt: await jose.calculateJwkThumbprint(key.jwk) });
  });

  it('when a sign-in sends a forged proof, then it is refused and no session is made', async () => {
    const account = await register(app);
    const key = await holder();
    const { privateKey, publicKey } = await jose.generateKeyPair('ES256', { extractable: true });
    const withPrivate = await new jose.SignJWT({ htm: 'POST', htu: `${SITE}/login`, jti: randomUUID(), iat: Math.floor(clock.now() / 1000) })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await jose.exportJWK(privateKey) })
      .sign(privateKey);
    const symmetric = await new jose.SignJWT({ htm: 'POST', htu: `${SITE}/login`, jti: randomUUID(), iat: Math.floor(clock.now() / 1000) })
      .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: { kty: 'oct', k: 'c2VjcmV0' } as jose.JWK })
      .sign(new TextEncoder().encode('secret'));
    const otherKey = await proof(key, 'POST', '/login', clock, { jwk: await jose.exportJWK(publicKey) });

    // Keys WebCrypto itself refuses (a point off the curve, an RSA key now that proofs are EC or EdDSA only): 401, never 500.
    const offCurve = await proof(key, 'POST', '/login', clock, { jwk: { ...key.jwk, x: 'AAAA', y: 'AAAA' } });
    const rsa = await jose.generateKeyPair('RS256', { extractable: true });
    const rsaProof = await new jose.SignJWT({ htm: 'POST', htu: `${SITE}/login`, jti: randomUUID(), iat: Math.floor(clock.now() / 1000) })
      .setProtectedHeader({ alg: 'RS256', typ: 'dpop+jwt', jwk: await jose.exportJWK(rsa.publicKey) })
      .sign(rsa.privateKey);
    for (const dpop of [withPrivate, symmetric, otherKey, offCurve, rsaProof, await proof(key, 'POST', '/login', clock, { path: '/register' })]) {
      const res = await request(app).post('/login').set('DPoP', dpop).send({ username: account.username, password: account.password });
      expect(res.status, dpop.slice(0, 60)).toBe(401);
      expect(res.body.error.reason).toBe('dpop_proof_invalid');
    }
    const twice = await request(app)
      .post('/login')
      .set('DPoP', [await proof(key, 'POST', '/login', clock), await proof(key, 'POST', '/login', clock)] as unknown as string)
      .send({ username: account.username, password: account.password });
    expect(twice.status).toBe(401);
    const signedIn = await request(app).post('/login').send({ username: account.username, password: account.password });
    const sessions = await request(app)
      .get('/sessions')
      .set('Authorization', `Bearer ${signedIn.body.access_token as string}`);
    expect(sessions.body.sessions).toHaveLength(1);
  });
});
