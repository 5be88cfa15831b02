import { Writable } from 'node:stream';
import type { Express } from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { createLogger } from '../src/core/logger.js';
import { CHALLENGE_TTL_MS } from '../src/kernel/challenges/webauthn-challenges.js';
import { codeAt, STEP_SECONDS } from '../src/kernel/verifiers/totp.js';
import { bearer, type LoggedIn, readyToEnrol } from './support/accounts.js';
import { type AuthenticatorOptions, type ResponseOverrides, SoftAuthenticator } from './support/authenticator.js';
import { buildApp, testConfig, useBackends, usingRedis } from './support/test-app.js';

const ORIGIN = 'http://localhost:3000';

function claimsOf(accessToken: string): { amr: string[]; sub: string } {
  return JSON.parse(Buffer.from(accessToken.split('.')[1] ?? '', 'base64url').toString()) as { amr: string[]; sub: string };
}

describe('passkeys', () => {
  const backends = useBackends();

  function setup() {
    const clock = new ManualClock();
    const config = testConfig();
    const warnings: string[] = [];
    const logger = createLogger(
      { level: 'warn', pretty: false },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          warnings.push(chunk.toString());
          done();
        },
      }),
    );
    const { app } = buildApp(backends, { config, clock, logger });
    return { app, clock, config, warnings };
  }

  async function addPasskey(app: Express, user: LoggedIn, authenticator: SoftAuthenticator, overrides: ResponseOverrides = {}) {
    const options = await request(app)
      .post('/passkeys/register/options')
      .set(...bearer(user.accessToken));
    expect(options.status, JSON.stringify(options.body)).toBe(200);
    return request(app)
      .post('/passkeys/register')
      .set(...bearer(user.accessToken))
      .send({ response: authenticator.create(options.body, overrides), name: 'My key' });
  }

  async function withPasskey(app: Express, options: Partial<AuthenticatorOptions> = {}) {
    const user = await readyToEnrol(app);
    const authenticator = new SoftAuthenticator({ origin: ORIGIN, ...options });
    const added = await addPasskey(app, user, authenticator);
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    return { user, authenticator, passkeyId: added.body.id as string };
  }

  async function signIn(app: Express, authenticator: SoftAuthenticator, overrides: ResponseOverrides = {}) {
    const options = await request(app).post('/login/passkey/options');
    expect(options.status).toBe(200);
    return request(app)
      .post('/login/passkey')
      .send({ response: authenticator.get(options.body, overrides) });
  }

  async function passkeysOf(userId: string) {
    return backends.db.prisma.passkey.count({ where: { userId } });
  }

  describe('registering and signing in', () => {
    it('when a user adds a device-bound passkey, then it is listed and signs in usernameless with amr hwk, user and mfa', async () => {
      const { app } = setup();
      const { user, authenticator, passkeyId } = await withPasskey(app);

      const list = await request(app)
        .get('/passkeys')
        .set(...bearer(user.accessToken));
      const res = await signIn(app, authenticator);

      expect(list.body.passkeys).toEqual([
        { id: passkeyId, name: 'My key', deviceType: 'singleDevice', backedUp: false, transports: ['usb'], createdAt: expect.any(String), lastUsedAt: null },
      ]);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.user.id).toBe(user.id);
      expect(res.body.refresh_token).toEqual(expect.any(String));
      expect(claimsOf(res.body.access_token as string).amr).toEqual(['hwk', 'user', 'mfa']);
      const stored = await backends.db.prisma.passkey.findUniqueOrThrow({ where: { id: passkeyId } });
      expect(stored.signCount).toBe(1n);
      expect(stored.lastUsedAt).not.toBeNull();
    });

    it('when the passkey is a synced one, then the token says swk', async () => {
      const { app } = setup();
      const { authenticator } = await withPasskey(app, { synced: true, keepsCounter: false });

      const first = await signIn(app, authenticator);
      const second = await signIn(app, authenticator);

      expect(first.status).toBe(200);
      expect(second.status).toBe(200);
      expect(claimsOf(first.body.access_token as string).amr).toEqual(['swk', 'user', 'mfa']);
    });

    it('when the authenticator cannot verify the user, then it may be added but cannot sign in on its own', async () => {
      const { app } = setup();
      const { authenticator } = await withPasskey(app, { verifiesUser: false });

      const res = await signIn(app, authenticator);

      expect(res.status).toBe(401);
      expect(res.body.error).toMatchObject({ code: 'invalid_passkey', details: { reason: 'user_verification' } });
    });

    it('when the sign-in is older than REAUTH_MAX_AGE_S, then adding a passkey needs a step-up, which a passkey can give', async () => {
      const { app, clock, config } = setup();
      const { user, authenticator } = await withPasskey(app);
      clock.advance((config.reauthMaxAgeS + 1) * 1000);

      const refused = await request(app)
        .post('/passkeys/register/options')
        .set(...bearer(user.accessToken));
      const options = await request(app)
        .post('/reauthenticate/passkey/options')
        .set(...bearer(user.accessToken));
      const step = await request(app)
        .post('/reauthenticate/passkey')
        .set(...bearer(user.accessToken))
        .send({ response: authenticator.get(options.body) });
      const allowed = await request(app)
        .post('/passkeys/register/options')
        .set(...bearer(step.body.access_token as string));

      expect(refused.status).toBe(401);
      expect(refused.body.error.code).toBe('reauthentication_required');
      expect(options.body.allowCredentials).toHaveLength(1);
      expect(step.status, JSON.stringify(step.body)).toBe(200);
      expect(allowed.status).toBe(200);
    });

    it.runIf(usingRedis)('when one instance starts the ceremony, then another sharing Redis finishes it', async () => {
      const config = testConfig();
      const [first, second] = [buildApp(backends, { config }).app, buildApp(backends, { config }).app];
      const { authenticator } = await withPasskey(first);

      const options = await request(first).post('/login/passkey/options');
      const res = await request(second)
        .post('/login/passkey')
        .send({ response: authenticator.get(options.body) });

      expect(res.status).toBe(200);
    });
  });

  describe('as the second factor', () => {
    async function withTwoFactor(app: Express, clock: ManualClock) {
      const { user, authenticator } = await withPasskey(app);
      const enrolment = await request(app)
        .post('/mfa/totp/setup')
        .set(...bearer(user.accessToken));
      await request(app)
        .post('/mfa/totp/enable')
        .set(...bearer(user.accessToken))
        .send({ code: codeAt(enrolment.body.secret as string, clock.now()) });
      clock.advance(STEP_SECONDS * 1000);
      const login = await request(app).post('/login').send({ username: user.username, password: user.password });
      expect(login.body.mfa_required).toBe(true);
      return { user, authenticator, enrolment, mfaToken: login.body.mfa_token as string, methods: login.body.methods as string[] };
    }

    it('when two-factor is on, then the mfa_required step can be answered with a passkey, once', async () => {
      const { app, clock } = setup();
      const { user, authenticator, enrolment, mfaToken, methods } = await withTwoFactor(app, clock);

      const options = await request(app).post('/login/mfa/passkey/options').send({ mfa_token: mfaToken });
      const res = await request(app)
        .post('/login/mfa/passkey')
        .send({ mfa_token: mfaToken, response: authenticator.get(options.body) });
      const again = await request(app)
        .post('/login/mfa')
        .send({ mfa_token: mfaToken, code: codeAt(enrolment.body.secret as string, clock.now()) });

      expect(methods).toEqual(['totp', 'recovery_code', 'passkey']);
      expect(options.body.allowCredentials).toHaveLength(1);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.user.id).toBe(user.id);
      expect(claimsOf(res.body.access_token as string).amr).toEqual(['pwd', 'hwk', 'user', 'mfa']);
      expect(again.status).toBe(401);
      expect(again.body.error.code).toBe('invalid_token');
    });

    it("when the answer comes from another account's passkey, then it is refused and the mfa_token stays unspent", async () => {
      const { app, clock } = setup();
      const { mfaToken } = await withTwoFactor(app, clock);
      const other = await withPasskey(app);

      const options = await request(app).post('/login/mfa/passkey/options').send({ mfa_token: mfaToken });
      const res = await request(app)
        .post('/login/mfa/passkey')
        .send({ mfa_token: mfaToken, response: other.authenticator.get(options.body, {}, other.authenticator.credentials[0]) });

      expect(res.status).toBe(401);
      expect(res.body.error).toMatchObject({ code: 'invalid_passkey', details: { reason: 'wrong_user' } });
      expect((await request(app).post('/login/mfa/passkey/options').send({ mfa_token: mfaToken })).status).toBe(200);
    });

    it('when the mfa_token is forged, then no options are issued', async () => {
      const { app } = setup();

      const res = await request(app).post('/login/mfa/passkey/options').send({ mfa_token: 'eyJhbGciOiJIUzI1NiJ9.e30.forged' });

      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('invalid_token');
    });
  });

  describe('managing them', () => {
    it('when a user renames and deletes a passkey, then it is gone and can no longer sign in', async () => {
      const { app } = setup();
      const { user, authenticator, passkeyId } = await withPasskey(app);

      const renamed = await request(app)
        .patch(`/passkeys/${passkeyId}`)
        .set(...bearer(user.accessToken))
        .send({ name: 'Laptop' });
      const deleted = await request(app)
        .delete(`/passkeys/${passkeyId}`)
        .set(...bearer(user.accessToken));
      const res = await signIn(app, authenticator);

      expect(renamed.status).toBe(200);
      expect(renamed.body.name).toBe('Laptop');
      expect(deleted.status).toBe(204);
      expect(await passkeysOf(user.id)).toBe(0);
      expect(res.status).toBe(401);
      expect(res.body.error).toMatchObject({ code: 'invalid_passkey', details: { reason: 'unknown_credential' } });
    });

    it("when a user names another account's passkey, then it is not found and stays", async () => {
      const { app } = setup();
      const victim = await withPasskey(app);
      const attacker = await readyToEnrol(app);

      const rename = await request(app)
        .patch(`/passkeys/${victim.passkeyId}`)
        .set(...bearer(attacker.accessToken))
        .send({ name: 'mine' });
      const remove = await request(app)
        .delete(`/passkeys/${victim.passkeyId}`)
        .set(...bearer(attacker.accessToken));

      expect(rename.status).toBe(404);
      expect(remove.status).toBe(404);
      expect(await passkeysOf(victim.user.id)).toBe(1);
    });

    it('when the sign-in is old, then deleting a passkey needs a step-up', async () => {
      const { app, clock, config } = setup();
      const { user, passkeyId } = await withPasskey(app);
      clock.advance((config.reauthMaxAgeS + 1) * 1000);

      const res = await request(app)
        .delete(`/passkeys/${passkeyId}`)
        .set(...bearer(user.accessToken));

      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('reauthentication_required');
      expect(await passkeysOf(user.id)).toBe(1);
    });

    it('when an authenticator registers the same credential twice, then the second is refused', async () => {
      const { app } = setup();
      const { user, authenticator } = await withPasskey(app);
      const options = await request(app)
        .post('/passkeys/register/options')
        .set(...bearer(user.accessToken));

      const res = await request(app)
        .post('/passkeys/register')
        .set(...bearer(user.accessToken))
        .send({ response: authenticator.create(options.body, {}, authenticator.credentials[0]) });

      expect(options.body.excludeCredentials).toHaveLength(1);
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe('conflict');
      expect(await passkeysOf(user.id)).toBe(1);
    });

    it('when the response names a credential id other than the one its authenticator data holds, then it is refused', async () => {
      const { app } = setup();
      const { user, authenticator } = await withPasskey(app);
      const options = await request(app)
        .post('/passkeys/register/options')
        .set(...bearer(user.accessToken));
      const response = authenticator.create(options.body);
      response.id = response.rawId = authenticator.credentials[0]?.id.toString('base64url') ?? '';

      const res = await request(app)
        .post('/passkeys/register')
        .set(...bearer(user.accessToken))
        .send({ response });

      expect(res.status).toBe(400);
      expect(res.body.error.details.reason).toBe('malformed');
      expect(await passkeysOf(user.id)).toBe(1);
    });
  });

  describe('bad input: each a 4xx in the one shape, nothing stored', () => {
    it.each<[string, ResponseOverrides, string]>([
      ['a wrong origin', { origin: 'https://evil.example' }, 'origin'],
      ['a wrong RP ID', { rpId: 'evil.example' }, 'rp_id'],
      ['an unknown challenge', { challenge: 'bm90LWEtY2hhbGxlbmdl' }, 'challenge'],
      ['the wrong ceremony type', { type: 'webauthn.get' }, 'malformed'],
    ])('when a registration carries %s, then it is refused', async (_case, overrides, reason) => {
      const { app } = setup();
      const user = await readyToEnrol(app);

      const res = await addPasskey(app, user, new SoftAuthenticator({ origin: ORIGIN }), overrides);

      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'passkey_rejected', details: { reason } });
      expect(await passkeysOf(user.id)).toBe(0);
    });

    it.each<[string, ResponseOverrides, string]>([
      ['a wrong origin', { origin: 'https://evil.example' }, 'origin'],
      ['a wrong RP ID', { rpId: 'evil.example' }, 'rp_id'],
      ['an unknown challenge', { challenge: 'bm90LWEtY2hhbGxlbmdl' }, 'challenge'],
    ])('when a sign-in carries %s, then it is refused', async (_case, overrides, reason) => {
      const { app } = setup();
      const { authenticator } = await withPasskey(app);

      const res = await signIn(app, authenticator, overrides);

      expect(res.status).toBe(401);
      expect(res.body.error).toMatchObject({ code: 'invalid_passkey', details: { reason } });
    });

    it('when a sign-in response is replayed, then the spent challenge refuses it', async () => {
      const { app } = setup();
      const { authenticator } = await withPasskey(app);
      const options = await request(app).post('/login/passkey/options');
      const response = authenticator.get(options.body);

      const first = await request(app).post('/login/passkey').send({ response });
      const replay = await request(app).post('/login/passkey').send({ response });

      expect(first.status).toBe(200);
      expect(replay.status).toBe(401);
      expect(replay.body.error.details.reason).toBe('challenge');
    });

    it('when the challenge is older than 5 minutes, then it has expired', async () => {
      const { app, clock } = setup();
      const { authenticator } = await withPasskey(app);
      const options = await request(app).post('/login/passkey/options');
      clock.advance(CHALLENGE_TTL_MS + 1);

      const res = await request(app)
        .post('/login/passkey')
        .send({ response: authenticator.get(options.body) });

      expect(res.status).toBe(401);
      expect(res.body.error.details.reason).toBe('challenge');
    });

    it('when a user answers a registration challenge issued to another user, then it is refused', async () => {
      const { app } = setup();
      const [victim, attacker] = [await readyToEnrol(app), await readyToEnrol(app)];
      const victimOptions = await request(app)
        .post('/passkeys/register/options')
        .set(...bearer(victim.accessToken));

      const res = await request(app)
        .post('/passkeys/register')
        .set(...bearer(attacker.accessToken))
        .send({ response: new SoftAuthenticator({ origin: ORIGIN }).create(victimOptions.body) });

      expect(res.status).toBe(400);
      expect(res.body.error.details.reason).toBe('challenge');
      expect(await passkeysOf(attacker.id)).toBe(0);
    });

    it('when a sign-in challenge is answered at the registration route, then it is refused', async () => {
      const { app } = setup();
      const user = await readyToEnrol(app);
      const signInOptions = await request(app).post('/login/passkey/options');

      const res = await request(app)
        .post('/passkeys/register')
        .set(...bearer(user.accessToken))
        .send({
          response: new SoftAuthenticator({ origin: ORIGIN }).create({
            challenge: signInOptions.body.challenge as string,
            rp: { id: 'localhost' },
            user: { id: 'AAAA' },
          }),
        });

      expect(res.status).toBe(400);
      expect(res.body.error.details.reason).toBe('challenge');
    });

    it('when the signature is tampered with, then it does not verify', async () => {
      const { app } = setup();
      const { authenticator } = await withPasskey(app);
      const options = await request(app).post('/login/passkey/options');
      const response = authenticator.get(options.body);
      const signature = Buffer.from(response.response.signature, 'base64url');
      signature[signature.length - 1] = (signature.at(-1) ?? 0) ^ 0x01;
      response.response.signature = signature.toString('base64url');

      const res = await request(app).post('/login/passkey').send({ response });

      expect(res.status).toBe(401);
      expect(res.body.error).toMatchObject({ code: 'invalid_passkey', details: { reason: 'signature' } });
    });

    it('when the attestation object is not CBOR, then the registration is refused as malformed', async () => {
      const { app } = setup();
      const user = await readyToEnrol(app);
      const options = await request(app)
        .post('/passkeys/register/options')
        .set(...bearer(user.accessToken));
      const response = new SoftAuthenticator({ origin: ORIGIN }).create(options.body);
      response.response.attestationObject = Buffer.from('not cbor at all').toString('base64url');

      const res = await request(app)
        .post('/passkeys/register')
        .set(...bearer(user.accessToken))
        .send({ response });

      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'passkey_rejected', details: { reason: 'malformed' } });
      expect(await passkeysOf(user.id)).toBe(0);
    });

    it('when the client data is not JSON, then the sign-in is refused as malformed', async () => {
      const { app } = setup();
      const { authenticator } = await withPasskey(app);
      const options = await request(app).post('/login/passkey/options');
      const response = authenticator.get(options.body);
      response.response.clientDataJSON = Buffer.from('{not json').toString('base64url');

      const res = await request(app).post('/login/passkey').send({ response });

      expect(res.status).toBe(401);
      expect(res.body.error.details.reason).toBe('malformed');
    });

    it('when the credential id is unknown, then the sign-in is refused', async () => {
      const { app } = setup();
      const stranger = new SoftAuthenticator({ origin: ORIGIN });
      stranger.create({ challenge: 'x', rp: { id: 'localhost' }, user: { id: 'AAAA' } });

      const res = await signIn(app, stranger);

      expect(res.status).toBe(401);
      expect(res.body.error.details.reason).toBe('unknown_credential');
    });

    it('when the signature counter goes backwards, then the sign-in is refused and the log says so', async () => {
      const { app, warnings } = setup();
      const { authenticator, passkeyId } = await withPasskey(app);
      expect((await signIn(app, authenticator)).status).toBe(200);

      const res = await signIn(app, authenticator, { counter: 1 });

      expect(res.status).toBe(401);
      expect(res.body.error.details.reason).toBe('counter');
      expect(warnings.join('')).toContain('signature counter went backwards');
      expect(warnings.join('')).toContain(passkeyId);
    });

    it.each([
      ['no response', {}],
      ['an extra field', { response: {}, admin: true }],
      ['a response of the wrong type', { response: 'a string' }],
      ['a credential with a non-base64url id', { response: { id: 'a b', rawId: 'ab', type: 'public-key', response: {}, clientExtensionResults: {} } }],
    ])('when the sign-in body has %s, then 400 validation_failed', async (_case, body) => {
      const { app } = setup();

      const res = await request(app).post('/login/passkey').send(body);

      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
    });

    it('when an API key tries to list passkeys, then it is refused', async () => {
      const { app } = setup();
      const user = await readyToEnrol(app);
      const key = await request(app)
        .post('/api-keys')
        .set(...bearer(user.accessToken))
        .send({ name: 'k' });

      const res = await request(app)
        .get('/passkeys')
        .set('X-API-Key', key.body.key as string);

      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('forbidden');
    });
  });
});
