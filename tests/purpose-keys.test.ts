import { createHmac } from 'node:crypto';
import type { Express } from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { deriveKey } from '../src/core/derived-keys.js';
import { SecretBox } from '../src/core/secret-box.js';
import type { AppDeps } from '../src/composition.js';
import { keyBox } from '../src/kernel/keys/key-ring.js';
import { KEY_PURPOSES, PURPOSE_KEY_ACTIVATION_DELAY_MS, PurposeKeys, VersionedBox, VersionedHmac } from '../src/kernel/keys/purpose-keys.js';
import { codeAt, STEP_SECONDS } from '../src/kernel/verifiers/totp.js';
import { bearer, createAdmin, login, readyToEnrol, uniqueName } from './support/accounts.js';
import { png } from './support/images.js';
import { buildApp, openBackends, withOwnBackends } from './support/test-app.js';

describe('purpose keys (TOTP secrets, recovery codes, MFA tokens, image links)', () => {
  /** An app over its own backends and key set, on a clock the test moves. */
  async function setup() {
    const own = await openBackends();
    const clock = new ManualClock();
    const purposeKeys = await PurposeKeys.open(own.db.prisma, keyBox(own.keyEncryptionKey), clock, own.jwtSecret);
    const { app, deps } = buildApp(own, { clock, purposeKeys });
    return { own, clock, purposeKeys, app, deps };
  }

  async function enrolled(app: Express, clock: ManualClock) {
    const user = await readyToEnrol(app);
    const setupRes = await request(app)
      .post('/mfa/totp/setup')
      .set(...bearer(user.accessToken));
    const enable = await request(app)
      .post('/mfa/totp/enable')
      .set(...bearer(user.accessToken))
      .send({ code: codeAt(setupRes.body.secret, clock.now()) });
    expect(enable.status).toBe(200);
    clock.advance(STEP_SECONDS * 1000);
    return { ...user, secret: setupRes.body.secret as string, recoveryCodes: enable.body.recoveryCodes as string[] };
  }

  async function rotateAll(app: Express, deps: AppDeps, clock: ManualClock) {
    const username = uniqueName('keyadmin');
    await createAdmin(deps, { email: `${username}@example.com`, username, password: 'admin password 123' });
    const { accessToken } = await login(app, { username, password: 'admin password 123' });
    for (const purpose of KEY_PURPOSES) {
      const res = await request(app)
        .post(`/admin/purpose-keys/${purpose}/rotate`)
        .set(...bearer(accessToken));
      expect(res.status, purpose).toBe(201);
      expect(res.body, purpose).toMatchObject({ purpose, generation: 2, state: 'next' });
    }
    clock.advance(PURPOSE_KEY_ACTIVATION_DELAY_MS);
    const list = await request(app)
      .get('/admin/purpose-keys')
      .set(...bearer(accessToken));
    expect((list.body.keys as Array<{ generation: number; state: string }>).map((key) => `${key.generation}:${key.state}`)).toEqual(
      KEY_PURPOSES.flatMap(() => ['1:previous', '2:current']),
    );
    expect(JSON.stringify(list.body)).not.toMatch(/secret|sealed/);
  }

  it('when every purpose key is rotated, then enrolments, recovery codes, a pending mfa_token and image links made before keep working, and new ones use the new keys', async () => {
    const { own, clock, purposeKeys, app, deps } = await setup();
    try {
      const user = await enrolled(app, clock);
      const other = await enrolled(app, clock);
      const pending = await request(app).post('/login').send({ username: user.username, password: user.password });
      const upload = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', png(), 'before.png');
      expect(upload.body.url).toMatch(/&k=1&/);

      await rotateAll(app, deps, clock);

      // A TOTP enrolment sealed under the old key still signs in (completing the mfa_token issued before, too).
      const completed = await request(app)
        .post('/login/mfa')
        .send({ mfa_token: pending.body.mfa_token, code: codeAt(user.secret, clock.now()) });
      expect(completed.status).toBe(200);
      // A recovery code hashed under the old key still works, once.
      const second = await request(app).post('/login').send({ username: other.username, password: other.password });
      const recovered = await request(app).post('/login/mfa').send({ mfa_token: second.body.mfa_token, code: other.recoveryCodes[0] });
      expect(recovered.status).toBe(200);
      const mfaHeader = JSON.parse(Buffer.from(String(second.body.mfa_token).split('.')[0] ?? '', 'base64url').toString()) as { kid: string };
      expect(mfaHeader.kid).toBe('2');
      // The image link signed before the rotation still opens; a new one names the new key.
      expect((await request(app).get(upload.body.url as string)).status).toBe(200);
      const relisted = await request(app)
        .get(`/images/${upload.body.id}`)
        .set(...bearer(completed.body.access_token));
      expect(relisted.body.url).toMatch(/&k=2&/);
      expect((await request(app).get(relisted.body.url as string)).status).toBe(200);

      // New enrolments and recovery codes are protected by generation 2.
      const fresh = await enrolled(app, clock);
      const factor = await own.db.prisma.mfaFactor.findUniqueOrThrow({ where: { userId: fresh.id } });
      expect(factor.secretEnc).toMatch(/^k2\./);
      const codes = await own.db.prisma.mfaRecoveryCode.findMany({ where: { userId: fresh.id } });
      expect(codes.every((code) => code.codeHash.startsWith('k2:'))).toBe(true);
      expect(purposeKeys.current('totp').generation).toBe(2);
    } finally {
      await own.close();
    }
  });

  it('when a link names a key generation that does not exist, or another than signed it, then 403 invalid_signature', async () => {
    const { own, clock, app, deps } = await setup();
    try {
      const user = await readyToEnrol(app);
      await rotateAll(app, deps, clock);
      const upload = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', png(), 'x.png');
      const url = upload.body.url as string;
      for (const forged of [url.replace('&k=2&', '&k=1&'), url.replace('&k=2&', '&k=99&'), url.replace('&k=2&', '&')]) {
        const res = await request(app).get(forged);
        expect(res.status, forged).toBe(403);
        expect(res.body.error.code).toBe('invalid_signature');
      }
      expect((await request(app).get(url.replace('&k=2&', '&k=two&'))).status).toBe(400);
    } finally {
      await own.close();
    }
  });

  it('when data was protected before keys were stored (keys derived from JWT_SECRET), then it stays readable, and a later JWT_SECRET change does not matter', async () => {
    await withOwnBackends(async (own) => {
      // Written as earlier versions did: sealed and hashed under keys derived from JWT_SECRET, with no generation.
      const legacySealed = new SecretBox(deriveKey(own.jwtSecret, 'authkit totp secrets v1')).seal('JBSWY3DPEHPK3PXP');
      const legacyHash = createHmac('sha256', deriveKey(own.jwtSecret, 'authkit recovery codes v1')).update('abcde-23456').digest('hex');

      // Opened later with another JWT_SECRET: the stored generation 1 still reads both.
      const reopened = await PurposeKeys.open(own.db.prisma, keyBox(own.keyEncryptionKey), new ManualClock(), 'a-different-jwt-secret-of-enough-bytes');
      expect(new VersionedBox(reopened, 'totp').open(legacySealed)).toBe('JBSWY3DPEHPK3PXP');
      expect(new VersionedHmac(reopened, 'recovery-codes').candidates('abcde-23456')).toContain(legacyHash);
    });
  });

  it('when two instances open an empty key set at once, then each purpose gets one generation 1', async () => {
    await withOwnBackends(async (own) => {
      await own.db.prisma.purposeKey.deleteMany();
      const clock = new ManualClock();
      const [a, b] = await Promise.all([
        PurposeKeys.open(own.db.prisma, keyBox(own.keyEncryptionKey), clock, own.jwtSecret),
        PurposeKeys.open(own.db.prisma, keyBox(own.keyEncryptionKey), clock, own.jwtSecret),
      ]);
      expect(await own.db.prisma.purposeKey.count()).toBe(KEY_PURPOSES.length);
      expect(a.current('totp').key.equals(b.current('totp').key)).toBe(true);
    });
  });
});
