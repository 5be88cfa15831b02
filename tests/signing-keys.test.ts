import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Server } from 'node:http';
import type { Express } from 'express';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import jwt from 'jsonwebtoken';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { boundPort, closeGracefully, listen } from '../src/core/http/server.js';
import type { AppDeps } from '../src/composition.js';
import { ACTIVATION_DELAY_MS, KeyRingError } from '../src/kernel/keys/key-ring.js';
import { bearer, createAdmin, login, registerAndLogin, uniqueName } from './support/accounts.js';
import { buildApp, openTestKeyRing, testConfig, useBackends, withOwnBackends } from './support/test-app.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** Debian's PyJWT (python3-jwt): a verifier nobody here wrote. CI installs it and sets PYJWT_REQUIRED=1. */
const PYTHON = '/usr/bin/python3';
function pyjwtAvailable(): boolean {
  try {
    execFileSync(PYTHON, ['-c', 'import jwt, cryptography'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const PYJWT_VERIFY = `
import sys, jwt
base, token = sys.argv[1], sys.argv[2]
key = jwt.PyJWKClient(base + "/.well-known/jwks.json").get_signing_key_from_jwt(token)
claims = jwt.decode(token, key.key, algorithms=["ES256"], audience="authkit-api", issuer="authkit")
print("verified", claims["sub"])
`;

function kidOf(token: string): string {
  return (JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()) as { kid: string }).kid;
}

describe('signing keys', () => {
  const backends = useBackends();
  const servers: Server[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await closeGracefully(server, 1_000);
  });

  async function serve(app: Express): Promise<string> {
    const server = await listen(app, 0, '127.0.0.1');
    servers.push(server);
    return `http://127.0.0.1:${boundPort(server)}`;
  }

  async function adminToken(app: Express, deps: AppDeps): Promise<string> {
    const username = uniqueName('keyadmin');
    const password = 'admin password 123';
    await createAdmin(deps, { email: `${username}@example.com`, username, password });
    return (await login(app, { username, password })).accessToken;
  }

  it('when the JWKS is fetched, then it holds the public key that signed our tokens, cacheable, and never a private member', async () => {
    const { app } = buildApp(backends);
    const account = await registerAndLogin(app);
    const res = await request(app).get('/.well-known/jwks.json');
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('public, max-age=300');
    const keys = res.body.keys as Array<Record<string, string>>;
    expect(keys.map((key) => key.kid)).toContain(kidOf(account.accessToken));
    for (const key of keys) {
      expect(Object.keys(key).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
      expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
      expect(createPublicKey({ key, format: 'jwk' }).type).toBe('public');
    }
  });

  it('when the OpenID provider is off and the discovery document is fetched, then it names the issuer, an absolute jwks_uri and ES256', async () => {
    const { app } = buildApp(backends, { config: testConfig({ oauthProvider: false }) });
    const res = await request(app).get('/.well-known/openid-configuration').set('Host', 'auth.example.test');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      issuer: 'authkit',
      jwks_uri: 'http://auth.example.test/.well-known/jwks.json',
      id_token_signing_alg_values_supported: ['ES256'],
    });
    const configured = buildApp(backends, { config: testConfig({ publicUrl: 'https://auth.example.com', oauthProvider: false }) }).app;
    expect((await request(configured).get('/.well-known/openid-configuration')).body.jwks_uri).toBe('https://auth.example.com/.well-known/jwks.json');
  });

  it('when the OpenID provider is on (the default), then discovery names PUBLIC_URL as issuer and the same JWKS, whatever Host says', async () => {
    const { app } = buildApp(backends, { config: testConfig({ publicUrl: 'https://auth.example.com' }) });
    const res = await request(app).get('/.well-known/openid-configuration').set('Host', 'attacker.example');
    expect(res.status).toBe(200);
    expect(res.body.issuer).toBe('https://auth.example.com');
    expect(res.body.jwks_uri).toBe('https://auth.example.com/.well-known/jwks.json');
    expect(res.body.token_endpoint).toBe('https://auth.example.com/oauth2/token');
  });

  it('when JWT_ALGORITHM is HS256, then the JWKS is empty (a shared secret is never published) and there is nothing to rotate', async () => {
    const { app, deps } = buildApp(backends, { config: testConfig({ accessTokenAlgorithm: 'HS256' }) });
    expect((await request(app).get('/.well-known/jwks.json')).body).toEqual({ keys: [] });
    expect((await request(app).get('/.well-known/openid-configuration')).body.id_token_signing_alg_values_supported).toEqual(['HS256']);
    const rotate = await request(app)
      .post('/admin/signing-keys/rotate')
      .set(...bearer(await adminToken(app, deps)));
    expect(rotate.status).toBe(409);
  });

  it('when a key is rotated on one instance, then no session is interrupted anywhere and an outside jose verifier accepts every token throughout', async () => {
    await withOwnBackends(async (own) => {
      const clock = new ManualClock();
      const config = testConfig();
      const ringA = await openTestKeyRing(own.db, own.keyEncryptionKey, clock);
      const ringB = await openTestKeyRing(own.db, own.keyEncryptionKey, clock);
      const a = buildApp(own, { clock, config, signingKeys: ringA });
      const b = buildApp(own, { clock, config, signingKeys: ringB });
      const jwksUrl = new URL(`${await serve(a.app)}/.well-known/jwks.json`);
      let jwks = createRemoteJWKSet(jwksUrl);
      const outside = (token: string) => jwtVerify(token, jwks, { issuer: config.jwtIssuer, audience: config.jwtAudience, currentDate: new Date(clock.now()) });
      const protectedOn = async (app: Express, token: string) =>
        (
          await request(app)
            .get('/protected')
            .set(...bearer(token))
        ).status;

      const before = await registerAndLogin(a.app);
      const oldKid = kidOf(before.accessToken);
      const oldPrivateKey: KeyObject = ringA.signing().key;
      await expect(outside(before.accessToken)).resolves.toBeDefined();

      const rotated = await request(a.app)
        .post('/admin/signing-keys/rotate')
        .set(...bearer(await adminToken(a.app, a.deps)));
      expect(rotated.status).toBe(201);
      expect(rotated.body).toMatchObject({ state: 'next', generation: 2, activatesAt: new Date(clock.now() + ACTIVATION_DELAY_MS).toISOString() });
      const newKid = rotated.body.kid as string;
      // Instance B learns of it at its next periodic refresh, long before it signs.
      await ringB.reload();
      for (const app of [a.app, b.app]) {
        expect(((await request(app).get('/.well-known/jwks.json')).body.keys as Array<{ kid: string }>).map((key) => key.kid)).toEqual([oldKid, newKid]);
      }
      // Published, not yet signing: both instances still sign with the old key.
      const during = await registerAndLogin(b.app);
      expect(kidOf(during.accessToken)).toBe(oldKid);

      clock.advance(ACTIVATION_DELAY_MS);
      // More than the JWKS max-age has passed: the outside verifier's cached set has expired and it fetches anew.
      jwks = createRemoteJWKSet(jwksUrl);
      const afterA = await registerAndLogin(a.app);
      const afterB = await registerAndLogin(b.app);
      expect([kidOf(afterA.accessToken), kidOf(afterB.accessToken)]).toEqual([newKid, newKid]);
      for (const token of [before.accessToken, during.accessToken, afterA.accessToken, afterB.accessToken]) {
        expect([await protectedOn(a.app, token), await protectedOn(b.app, token)]).toEqual([200, 200]);
        await expect(outside(token)).resolves.toBeDefined();
      }
      // A session that began under the old key refreshes into the new one.
      const refreshed = await request(b.app).post('/refresh').send({ refresh_token: before.refreshToken });
      expect(refreshed.status).toBe(200);
      expect(kidOf(refreshed.body.access_token as string)).toBe(newKid);

      // Once every token the old key signed has expired, it leaves the JWKS, and a token it signs is refused.
      clock.advance((config.accessTokenTtlS + config.jwtClockToleranceS) * 1000);
      expect(((await request(a.app).get('/.well-known/jwks.json')).body.keys as Array<{ kid: string }>).map((key) => key.kid)).toEqual([newKid]);
      const claims = jwt.decode(afterA.accessToken) as Record<string, unknown>;
      const nowS = Math.floor(clock.now() / 1000);
      const retiredKeyToken = jwt.sign({ ...claims, iat: nowS, exp: nowS + 60 }, oldPrivateKey, { algorithm: 'ES256', keyid: oldKid });
      for (const app of [a.app, b.app]) {
        const res = await request(app)
          .get('/protected')
          .set(...bearer(retiredKeyToken));
        expect(res.status).toBe(401);
        expect(res.body.error.code).toBe('invalid_token');
      }
      expect(await ringA.pruneRetired()).toBe(1);
      expect(await own.db.prisma.signingKey.count()).toBe(1);
    });
  });

  it('when two instances rotate at the same moment, on demand or on schedule, then one key is added between them', async () => {
    await withOwnBackends(async (own) => {
      const clock = new ManualClock();
      const ringA = await openTestKeyRing(own.db, own.keyEncryptionKey, clock);
      const ringB = await openTestKeyRing(own.db, own.keyEncryptionKey, clock);
      const [fromA, fromB] = await Promise.all([ringA.rotate(), ringB.rotate()]);
      expect(fromA.kid).toBe(fromB.kid);
      expect(await own.db.prisma.signingKey.count()).toBe(2);

      clock.advance(31 * DAY_MS);
      const [dueA, dueB] = await Promise.all([ringA.maintain(30 * DAY_MS), ringB.maintain(30 * DAY_MS)]);
      expect([dueA.rotated, dueB.rotated].filter(Boolean)).not.toHaveLength(0);
      expect(dueA.rotated?.kid ?? dueB.rotated?.kid).toBe(dueB.rotated?.kid ?? dueA.rotated?.kid);
      expect((await own.db.prisma.signingKey.findMany({ select: { generation: true } })).map((key) => key.generation).sort()).toEqual([2, 3]);
    });
  });

  it('when the newest key is older than SIGNING_KEY_ROTATION_DAYS, then the scheduled check rotates, and not before', async () => {
    await withOwnBackends(async (own) => {
      const clock = new ManualClock();
      const ring = await openTestKeyRing(own.db, own.keyEncryptionKey, clock);
      clock.advance(29 * DAY_MS);
      expect(await ring.rotateIfOlderThan(30 * DAY_MS)).toBeUndefined();
      clock.advance(2 * DAY_MS);
      expect(await ring.rotateIfOlderThan(30 * DAY_MS)).toMatchObject({ generation: 2, state: 'next' });
      expect(await ring.rotateIfOlderThan(30 * DAY_MS)).toBeUndefined();
    });
  });

  it('when the private keys are read from the database, then they are sealed, and another KEY_ENCRYPTION_KEY refuses to start', async () => {
    const rows = await backends.db.prisma.signingKey.findMany();
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(row.privateKey).not.toMatch(/BEGIN|PRIVATE/);
    const opening = openTestKeyRing(backends.db, 'another-key-encryption-key-of-32-bytes-or-more', new ManualClock());
    await expect(opening).rejects.toThrow(KeyRingError);
    await expect(opening).rejects.toThrow(/KEY_ENCRYPTION_KEY does not open signing key/);
  });

  it('when a non-admin lists or rotates keys, then 403; an admin sees the lifecycle but no key material', async () => {
    const { app, deps } = buildApp(backends);
    const user = await registerAndLogin(app);
    expect(
      (
        await request(app)
          .get('/admin/signing-keys')
          .set(...bearer(user.accessToken))
      ).status,
    ).toBe(403);
    expect(
      (
        await request(app)
          .post('/admin/signing-keys/rotate')
          .set(...bearer(user.accessToken))
      ).status,
    ).toBe(403);
    const list = await request(app)
      .get('/admin/signing-keys')
      .set(...bearer(await adminToken(app, deps)));
    expect(list.status).toBe(200);
    expect(list.body.keys[0]).toMatchObject({ generation: 1, algorithm: 'ES256', state: 'signing', retiresAt: null });
    expect(JSON.stringify(list.body)).not.toMatch(/"d"|PRIVATE|sealed/);
  });

  it.runIf(process.env.PYJWT_REQUIRED === '1' || pyjwtAvailable())(
    'when PyJWT verifies a fresh access token through our JWKS, then it accepts it at once',
    async () => {
      const { app } = buildApp(backends);
      const base = await serve(app);
      const account = await registerAndLogin(app);
      // No wait: a fractional iat made PyJWT call a token "not yet valid" during its first second.
      // (Asynchronously: the script fetches the JWKS from this very process.)
      const { stdout } = await promisify(execFile)(PYTHON, ['-c', PYJWT_VERIFY, base, account.accessToken], { encoding: 'utf8', timeout: 15_000 });
      expect(stdout.trim()).toBe(`verified ${account.id}`);
    },
  );
});
