// Importing users with the password hashes they had elsewhere: the admin API, the CLI with the ready-made mappings,
// idempotent re-runs, re-hashing at the first sign-in, TOTP, refusals, and 100k users timed.
// Fixtures: supabase-users.csv is psql's own `\copy (…) to … csv header` of a table with auth.users' columns;
// firebase-users.json carries the published example account of the firebase/scrypt README; the bcrypt, PBKDF2 and
// Argon2 hashes of the others were made by python3-bcrypt, hashlib and the argon2 reference CLI.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Express } from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { ManualClock, systemClock } from '../src/core/clock.js';
import { openDatabase } from '../src/core/db.js';
import { PasswordHashPool } from '../src/core/password-hash-pool.js';
import { keyBox } from '../src/kernel/keys/key-ring.js';
import { PurposeKeys } from '../src/kernel/keys/purpose-keys.js';
import { codeAt } from '../src/kernel/verifiers/totp.js';
import { bearer, createAdmin, login, register, uniqueName } from './support/accounts.js';
import { type Backends, buildApp, builtWith, openTestKeyRing, testConfig, useBackends, usingRealServices } from './support/test-app.js';

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;
const vectors = (JSON.parse(readFileSync(fixture('password-hashes.json'), 'utf8')) as { vectors: Array<{ format: string; password: string; hash: string }> })
  .vectors;
const passwords = JSON.parse(readFileSync(fixture('export-passwords.json'), 'utf8')) as Record<string, Record<string, string>>;
const vector = (format: string) => vectors.find((entry) => entry.format === format) as { format: string; password: string; hash: string };

const ndjson = (records: object[]) => records.map((record) => JSON.stringify(record)).join('\n');

/** An app over `backends`, and an administrator's access token for it. */
async function appWithAdmin(backends: Backends, options: Parameters<typeof buildApp>[1] = {}) {
  const { app, deps } = buildApp(backends, options);
  const username = uniqueName('admin');
  const password = 'admin password 123';
  await createAdmin(deps, { email: `${username}@example.com`, username, password });
  return { app, deps, token: (await login(app, { username, password })).accessToken };
}

function postImport(app: Express, token: string, body: string, query = '') {
  return request(app)
    .post(`/admin/users/import${query}`)
    .set(...bearer(token))
    .set('Content-Type', 'application/x-ndjson')
    .send(body);
}

async function signIn(app: Express, email: string, password: string) {
  return request(app).post('/login').send({ email, password });
}

async function storedHash(app: Express, email: string): Promise<string> {
  const user = await builtWith(app).db.prisma.user.findUniqueOrThrow({ where: { email } });
  return user.passwordHash;
}

describe('POST /admin/users/import', () => {
  const backends = useBackends();

  it('when users come with hashes of every modern format, then each signs in with its own password, a wrong one is refused, and the first sign-in re-hashes it with our bcrypt', async () => {
    const { app, token } = await appWithAdmin(backends);
    const tag = uniqueName('fmt');
    const formats = ['bcrypt', 'argon2id', 'argon2i', 'scrypt', 'firebase-scrypt', 'pbkdf2-sha256', 'pbkdf2-sha512', 'django-pbkdf2-sha256'];
    const users = formats.map((format) => ({ email: `${tag}-${format}@example.com`, ...vector(format) }));

    const res = await postImport(app, token, ndjson(users.map(({ email, hash }) => ({ email, passwordHash: hash, emailVerified: true }))));

    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ dryRun: false, records: formats.length, created: formats.length, updated: 0, rejected: [], rejectedCount: 0 });
    for (const user of users) {
      expect((await signIn(app, user.email, `${user.password}!`)).status, user.format).toBe(401);
      const ok = await signIn(app, user.email, user.password);
      expect(ok.status, `${user.format}: ${JSON.stringify(ok.body)}`).toBe(200);
      expect(ok.body.user).toMatchObject({ email: user.email, emailVerified: true, roles: ['user'] });
      // The re-hash runs beside the answer: it lands shortly after. bcrypt at no lower a cost than ours is kept.
      if (user.format === 'bcrypt') expect(await storedHash(app, user.email)).toBe(user.hash);
      else await expect.poll(() => storedHash(app, user.email), { timeout: 10_000 }).toMatch(/^\$2b\$04\$/);
      expect((await signIn(app, user.email, user.password)).status, `${user.format} after the re-hash`).toBe(200);
    }
  });

  it('when the same import runs again, then nothing is duplicated: the accounts it created are updated, and a hash changed at the source replaces the one never used', async () => {
    const { app, token } = await appWithAdmin(backends);
    const tag = uniqueName('again');
    const records = [0, 1, 2].map((i) => ({ email: `${tag}-${i}@example.com`, passwordHash: vector('argon2id').hash, createdAt: '2021-06-01T00:00:00Z' }));
    expect((await postImport(app, token, ndjson(records))).body.created).toBe(3);

    const changed = records.map((record, i) => (i === 2 ? { ...record, passwordHash: vector('firebase-scrypt').hash, username: `${tag}_two` } : record));
    const again = await postImport(app, token, ndjson(changed));

    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ created: 0, updated: 3, rejectedCount: 0 });
    expect(await builtWith(app).db.prisma.user.count({ where: { email: { startsWith: tag } } })).toBe(3);
    const third = await builtWith(app).db.prisma.user.findUniqueOrThrow({ where: { email: records[2]?.email }, include: { roles: true } });
    expect(third).toMatchObject({ username: `${tag}_two`, passwordHash: vector('firebase-scrypt').hash, createdAt: new Date('2021-06-01T00:00:00Z') });
    expect(third.roles.map((role) => role.roleName)).toEqual(['user']);
    expect((await signIn(app, records[2]?.email as string, vector('argon2id').password)).status).toBe(401);
    expect((await signIn(app, records[2]?.email as string, vector('firebase-scrypt').password)).status).toBe(200);
  });

  it('when an imported user has signed in (re-hashed) before the import runs again, then their password stays the one set here', async () => {
    const { app, token } = await appWithAdmin(backends);
    const email = `${uniqueName('kept')}@example.com`;
    await postImport(app, token, ndjson([{ email, passwordHash: vector('pbkdf2-sha256').hash }]));
    expect((await signIn(app, email, vector('pbkdf2-sha256').password)).status).toBe(200);
    await expect.poll(() => storedHash(app, email), { timeout: 10_000 }).toMatch(/^\$2b\$/);
    const ours = await storedHash(app, email);

    const other = vector('firebase-scrypt');
    expect(other.password).not.toBe(vector('pbkdf2-sha256').password);
    const again = await postImport(app, token, ndjson([{ email, passwordHash: other.hash }]));

    expect(again.body).toMatchObject({ updated: 1, passwordsKept: 1 });
    expect(await storedHash(app, email)).toBe(ours);
    expect((await signIn(app, email, other.password)).status).toBe(401);
    expect((await signIn(app, email, vector('pbkdf2-sha256').password)).status).toBe(200);
  });

  it('when an address belongs to an account registered here, then the record is refused and the account is untouched', async () => {
    const { app, token } = await appWithAdmin(backends);
    const local = await register(app);
    const before = await storedHash(app, local.email);

    const res = await postImport(app, token, ndjson([{ email: local.email.toUpperCase(), passwordHash: vector('argon2id').hash, roles: ['admin'] }]));

    expect(res.body.rejected).toEqual([expect.objectContaining({ line: 1, email: local.email, code: 'account_not_imported' })]);
    expect(await storedHash(app, local.email)).toBe(before);
    const roles = await builtWith(app).db.prisma.userRole.findMany({ where: { userId: local.id } });
    expect(roles.map((role) => role.roleName)).toEqual(['user']);
  });

  it('when records are bad in every way, then each is refused with its line and a code, the good ones are imported, and the answer is 200', async () => {
    const { app, token } = await appWithAdmin(backends);
    const tag = uniqueName('bad');
    const at = (name: string) => `${tag}-${name}@example.com`;
    const body = [
      JSON.stringify({ email: at('good'), passwordHash: vector('bcrypt').hash }),
      '{"email": "broken',
      JSON.stringify({ username: 'no_email' }),
      JSON.stringify({ email: at('extra'), admin: true }),
      JSON.stringify({ email: at('wrongtype'), emailVerified: 'yes' }),
      JSON.stringify({ email: at('malformed'), passwordHash: '$argon2id$v=19$m=1024,t=2,p=1$short' }),
      JSON.stringify({ email: at('unknown'), passwordHash: 'plaintext-password' }),
      JSON.stringify({ email: at('legacy'), passwordHash: vector('ssha256').hash }),
      JSON.stringify({ email: at('costly'), passwordHash: '$scrypt$ln=22,r=8,p=1$gXDuvZeyNiYEwNjbO6f0fg$VnoNsY34yFKoFB5jepIszZvCbU+7va5D4h63Rxq5UHg' }),
      JSON.stringify({ email: at('role'), roles: ['superuser'] }),
      JSON.stringify({ email: at('totp'), totpSecret: 'not base32!' }),
      JSON.stringify({ email: at('nul'), passwordHash: 'pbkdf2_sha256$1000$sa\u0000lt$2VhrVvCHIstJ9iL/ibuX/b6KImZ2NszcPsyqANKgFCQ=' }),
      '',
      JSON.stringify({ email: at('good') }),
      '[1, 2, 3]',
    ].join('\n');

    const res = await postImport(app, token, body);

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ records: 14, created: 1, rejectedCount: 13 });
    expect((res.body.rejected as Array<{ line: number; code: string }>).map((rejection) => [rejection.line, rejection.code])).toEqual([
      [2, 'invalid_json'],
      [3, 'validation_failed'],
      [4, 'validation_failed'],
      [5, 'validation_failed'],
      [6, 'password_hash_malformed'],
      [7, 'password_hash_unrecognised'],
      [8, 'password_hash_legacy_disabled'],
      [9, 'password_hash_too_costly'],
      [10, 'unknown_role'],
      [11, 'totp_secret_invalid'],
      [12, 'validation_failed'],
      [14, 'duplicate_email'],
      [15, 'validation_failed'],
    ]);
    expect(res.body.rejected[2].message).toMatch(/unknown field admin/);
    expect(res.body.rejected[6].message).toMatch(/PASSWORD_LEGACY_HASHES/);
    expect(await builtWith(app).db.prisma.user.count({ where: { email: { startsWith: tag } } })).toBe(1);
  });

  it('when legacy hashes are turned on (PASSWORD_LEGACY_HASHES), then salted SHA and MD5 users import and sign in, and are re-hashed', async () => {
    const { app, token } = await appWithAdmin(backends, { config: testConfig({ passwordLegacyHashes: true }) });
    const tag = uniqueName('legacy');
    const users = ['ssha', 'ssha256', 'ssha512', 'smd5', 'django-sha1', 'django-md5', 'md5-crypt'].map((format) => ({
      email: `${tag}-${format}@example.com`,
      ...vector(format),
    }));

    const res = await postImport(app, token, ndjson(users.map(({ email, hash }) => ({ email, passwordHash: hash }))));

    expect(res.body).toMatchObject({ created: users.length, rejectedCount: 0 });
    for (const user of users) {
      expect((await signIn(app, user.email, 'wrong password')).status).toBe(401);
      expect((await signIn(app, user.email, user.password)).status, user.format).toBe(200);
      await expect.poll(() => storedHash(app, user.email), { timeout: 10_000 }).toMatch(/^\$2b\$/);
    }
  });

  it('when a user is imported with a TOTP secret, then the password alone is not enough and a code from that secret completes the sign-in', async () => {
    const clock = new ManualClock();
    const { app, token } = await appWithAdmin(backends, { clock });
    const email = `${uniqueName('totp')}@example.com`;
    const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
    await postImport(app, token, ndjson([{ email, passwordHash: vector('argon2id').hash, totpSecret: secret.toLowerCase().replace(/(.{4})/g, '$1 ') }]));
    const stored = await builtWith(app).db.prisma.mfaFactor.findFirstOrThrow({ where: { user: { email } } });
    expect(stored.secretEnc).not.toContain(secret);

    const first = await signIn(app, email, vector('argon2id').password);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ mfa_required: true });
    const wrong = await request(app).post('/login/mfa').send({ mfa_token: first.body.mfa_token, code: '000000' });
    const second = await request(app)
      .post('/login/mfa')
      .send({ mfa_token: first.body.mfa_token, code: codeAt(secret, clock.now()) });

    expect(wrong.status).toBe(401);
    expect(second.status, JSON.stringify(second.body)).toBe(200);
    expect(second.body.user.email).toBe(email);
  });

  it('when dryRun=true, then the summary says what would happen and nothing is written', async () => {
    const { app, token } = await appWithAdmin(backends);
    const tag = uniqueName('dry');
    const records = [{ email: `${tag}-a@example.com` }, { email: `${tag}-b@example.com`, passwordHash: vector('scrypt').hash }];

    const res = await postImport(app, token, ndjson(records), '?dryRun=true');

    expect(res.body).toMatchObject({ dryRun: true, created: 2, rejectedCount: 0, hashFormats: { scrypt: 1 } });
    expect(await builtWith(app).db.prisma.user.count({ where: { email: { startsWith: tag } } })).toBe(0);
  });

  it('when a non-administrator, nobody, a wrong media type, an unknown query field or an oversized body comes, then 403, 401, 415, 400 and 413 in the error shape, and nothing is written', async () => {
    const { app, token } = await appWithAdmin(backends, { config: testConfig({ userImportMaxMb: 1 }) });
    const user = await register(app);
    const userToken = (await login(app, user)).accessToken;
    const tag = uniqueName('refused');
    const one = ndjson([{ email: `${tag}@example.com` }]);
    const huge = ndjson(Array.from({ length: 20_000 }, (_, i) => ({ email: `${tag}-${i}@example.com`, username: `padding_${i}` })));
    expect(Buffer.byteLength(huge)).toBeGreaterThan(1024 * 1024);

    const answers = [
      await postImport(app, userToken, one),
      await request(app).post('/admin/users/import').set('Content-Type', 'application/x-ndjson').send(one),
      await request(app)
        .post('/admin/users/import')
        .set(...bearer(token))
        .send([{ email: `${tag}@example.com` }]),
      await postImport(app, token, one, '?force=true'),
      await postImport(app, token, huge),
    ];

    expect(answers.map((res) => res.status)).toEqual([403, 401, 415, 400, 413]);
    for (const res of answers)
      expect(res.body.error).toEqual(expect.objectContaining({ code: expect.any(String), message: expect.any(String), requestId: expect.any(String) }));
    expect(answers[4]?.body.error.reason).toBe('import_too_large');
    expect(await builtWith(app).db.prisma.user.count({ where: { email: { startsWith: tag } } })).toBe(0);
  });

  it('when an imported user with a foreign hash or an unknown address signs in wrongly, then each costs one comparison at our bcrypt cost (so neither answers sooner)', async () => {
    const compared: string[] = [];
    const derived: string[] = [];
    class CountingPool extends PasswordHashPool {
      override compare(password: string, hash: string) {
        compared.push(hash);
        return super.compare(password, hash);
      }
      override derive(...args: Parameters<PasswordHashPool['derive']>) {
        derived.push(args[1].kdf);
        return super.derive(...args);
      }
    }
    const pool = new CountingPool({ threads: 2, queueMax: 100 });
    try {
      const { app, token } = await appWithAdmin(backends, { passwordPool: pool, config: testConfig({ passwordLegacyHashes: true }) });
      const tag = uniqueName('timing');
      await postImport(
        app,
        token,
        ndjson(['argon2id', 'ssha256', 'bcrypt'].map((format) => ({ email: `${tag}-${format}@example.com`, passwordHash: vector(format).hash }))),
      );
      const costOf = (hash: string) => Number(/^\$2[aby]\$(\d\d)\$/.exec(hash)?.[1]);

      for (const [who, derivations] of [
        ['nobody', []],
        ['argon2id', ['argon2']],
        ['ssha256', []],
      ] as const) {
        compared.length = 0;
        derived.length = 0;
        expect((await signIn(app, `${tag}-${who}@example.com`, 'not the password')).status).toBe(401);
        expect(compared.map(costOf), who).toEqual([4]);
        expect(derived, who).toEqual(derivations);
      }
      // A bcrypt hash cheaper than ours (cost 4 vs… ours is 4 in tests: equal) costs just its own comparison.
      compared.length = 0;
      expect((await signIn(app, `${tag}-bcrypt@example.com`, 'not the password')).status).toBe(401);
      expect(compared).toEqual([vector('bcrypt').hash]);
    } finally {
      await pool.close();
    }
  });
});

const run = promisify(execFile);
const ROOT = new URL('..', import.meta.url).pathname;

/**
 * Where the CLI writes: the test's own PostgreSQL database (real services), or an embedded data directory of its own
 * (the test's embedded database lives in its memory, out of another process's reach), opened afterwards as backends.
 */
async function cliTarget(backends: Backends) {
  if (backends.url) {
    const env = { DATABASE_URL: backends.url, JWT_SECRET: backends.jwtSecret, KEY_ENCRYPTION_KEY: backends.keyEncryptionKey };
    return { env, open: () => Promise.resolve(backends), close: async () => {} };
  }
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'authkit-import-cli-'));
  const secrets = { jwtSecret: randomBytes(32).toString('base64url'), keyEncryptionKey: randomBytes(32).toString('base64url') };
  let opened: Backends | undefined;
  return {
    env: { DATA_DIR: dataDir, JWT_SECRET: secrets.jwtSecret, KEY_ENCRYPTION_KEY: secrets.keyEncryptionKey },
    open: async (): Promise<Backends> => {
      const db = await openDatabase({ dataDir, migrate: false });
      opened = {
        db,
        redisPrefix: `cli-${randomBytes(4).toString('hex')}:`,
        signingKeys: await openTestKeyRing(db, secrets.keyEncryptionKey, systemClock),
        purposeKeys: await PurposeKeys.open(db.prisma, keyBox(secrets.keyEncryptionKey), systemClock, secrets.jwtSecret),
        ...secrets,
        close: () => db.close(),
      };
      return opened;
    },
    close: async () => {
      await opened?.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Runs `npm run users:import -- …` as a person would (the script itself, through tsx), with the server's settings. */
async function importCli(args: string[], env: Record<string, string>) {
  const { DATABASE_URL: _url, REDIS_URL: _redis, ...inherited } = process.env;
  return run(path.join(ROOT, 'node_modules/.bin/tsx'), ['scripts/users-import.ts', ...args], {
    cwd: ROOT,
    env: { ...inherited, NODE_ENV: 'test', BCRYPT_COST: '4', ...env },
    timeout: 240_000,
    maxBuffer: 16 * 1024 * 1024,
  }).catch((err: Error & { stderr?: string; stdout?: string }) => {
    // The failure's own words, not just "Command failed".
    err.message = `${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`;
    throw err;
  });
}

describe('npm run users:import', () => {
  const backends = useBackends();

  it('when exports from Supabase, Auth0, Firebase and Keycloak are imported with one command each, then their users sign in with the passwords they had (and TOTP where they had it)', async () => {
    const target = await cliTarget(backends);
    try {
      const firebaseConfig = passwords.firebaseHashConfig as unknown as Record<string, string | number>;
      const firebaseFlags = ['--hash-key', String(firebaseConfig.base64_signer_key), '--salt-separator', String(firebaseConfig.base64_salt_separator)];
      const firebaseCosts = ['--rounds', String(firebaseConfig.rounds), '--mem-cost', String(firebaseConfig.mem_cost)];

      const supabase = await importCli([fixture('supabase-users.csv'), '--format', 'supabase'], target.env);
      const auth0 = await importCli([fixture('auth0-users.ndjson'), '--format', 'auth0'], target.env);
      const firebaseDry = await importCli([fixture('firebase-users.json'), '--format', 'firebase', '--dry-run'], target.env);
      const firebase = await importCli([fixture('firebase-users.json'), '--format', 'firebase', ...firebaseFlags, ...firebaseCosts], target.env);
      const keycloak = await importCli([fixture('keycloak-realm.json'), '--format', 'keycloak'], target.env);
      // The same export again: nothing new, nothing duplicated.
      const again = await importCli([fixture('supabase-users.csv'), '--format', 'supabase'], target.env);

      expect(supabase.stdout).toMatch(/^4 records in [\d.]+ s: 3 were created, 0 were updated, 1 rejected$/m);
      expect(supabase.stdout).toMatch(/line 5 \(gone@example.com\): mapping_failed: deleted in Supabase/);
      expect(supabase.stderr).toMatch(/100% \[#{30}\] 4 records .* created 3 {2}updated 0 {2}rejected 1/);
      expect(auth0.stdout).toMatch(/^2 records in [\d.]+ s: 2 were created/m);
      expect(firebaseDry.stdout).toMatch(/^3 records in [\d.]+ s: 1 would be created, 0 would be updated, 2 rejected \(dry run: nothing was written\)$/m);
      expect(firebaseDry.stdout).toMatch(/user1@test.com\): mapping_failed: the export holds password hashes: give the project’s hash parameters/);
      expect(firebase.stdout).toMatch(/^3 records in [\d.]+ s: 2 were created, 0 were updated, 1 rejected$/m);
      expect(firebase.stdout).toMatch(/password hashes: firebase-scrypt 1/);
      expect(keycloak.stdout).toMatch(/^3 records in [\d.]+ s: 2 were created, 0 were updated, 1 rejected$/m);
      expect(keycloak.stdout).toMatch(/henry@example.com\): mapping_failed: a one-time-password credential other than TOTP/);
      expect(again.stdout).toMatch(/^4 records in [\d.]+ s: 0 were created, 3 were updated, 1 rejected$/m);

      const clock = new ManualClock();
      const { app } = buildApp(await target.open(), { clock });
      for (const [source, users] of Object.entries({
        supabase: passwords.supabase,
        auth0: passwords.auth0,
        firebase: passwords.firebase,
        keycloak: { 'grace@example.com': passwords.keycloak?.['grace@example.com'] },
      })) {
        for (const [email, password] of Object.entries(users ?? {})) {
          expect((await signIn(app, email, `${password}?`)).status, `${source} ${email}`).toBe(401);
          const res = await signIn(app, email, password as string);
          expect(res.status, `${source} ${email}: ${JSON.stringify(res.body)}`).toBe(200);
        }
      }
      const alice = await builtWith(app).db.prisma.user.findUniqueOrThrow({ where: { email: 'alice@example.com' } });
      expect(alice).toMatchObject({ username: 'alice_s', createdAt: new Date('2024-03-01T09:59:00.500Z') });
      expect(alice.emailVerifiedAt).not.toBeNull();
      const carol = await builtWith(app).db.prisma.user.findUniqueOrThrow({ where: { email: 'carol@example.com' } });
      expect(carol).toMatchObject({ hasPassword: false, emailVerifiedAt: null });
      expect((await signIn(app, 'carol@example.com', 'anything at all')).status).toBe(401);

      const frank = await signIn(app, 'frank@example.com', passwords.keycloak?.['frank@example.com'] as string);
      expect(frank.body).toMatchObject({ mfa_required: true });
      const secret = base32(Buffer.from(passwords.keycloakTotp?.['frank@example.com'] as string, 'utf8'));
      const second = await request(app)
        .post('/login/mfa')
        .send({ mfa_token: frank.body.mfa_token, code: codeAt(secret, clock.now()) });
      expect(second.status, JSON.stringify(second.body)).toBe(200);

      expect(await builtWith(app).db.prisma.user.count({ where: { email: { in: ['alice@example.com', 'bob@example.com', 'carol@example.com'] } } })).toBe(3);
    } finally {
      await target.close();
    }
  }, 600_000);

  it('when the command is given nothing, an unknown format or half of Firebase’s parameters, then it says how to call it and exits 2', async () => {
    for (const args of [[], ['users.ndjson', '--format', 'xml'], ['users.json', '--format', 'firebase', '--hash-key', 'abc'], ['a', 'b']]) {
      const failed = await importCli(args, {}).then(
        () => undefined,
        (err: { code: number; stderr: string }) => err,
      );
      expect(failed?.code, args.join(' ')).toBe(2);
      expect(failed?.stderr).toMatch(/usage: npm run users:import|--format must be one of|give all four/);
    }
  }, 120_000);
});

/** base32 (RFC 4648, no padding), as Keycloak's secret is shown to authenticator apps. */
function base32(bytes: Buffer): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const byte of bytes) bits += byte.toString(2).padStart(8, '0');
  return (bits.match(/.{1,5}/g) ?? []).map((chunk) => alphabet[parseInt(chunk.padEnd(5, '0'), 2)]).join('');
}

describe('importing 100,000 users', () => {
  const backends = useBackends();

  it('when 100k users with hashes of several formats are posted, then all are created, a second run updates them all and creates none, and the time is printed', async () => {
    const { app, token } = await appWithAdmin(backends);
    const tag = uniqueName('bulk');
    const hashes = ['bcrypt', 'argon2id', 'django-pbkdf2-sha256', 'firebase-scrypt', 'scrypt'].map((format) => vector(format));
    const COUNT = 100_000;
    const body = Array.from({ length: COUNT }, (_, i) =>
      JSON.stringify({
        email: `${tag}-${i}@example.com`,
        emailVerified: i % 2 === 0,
        passwordHash: hashes[i % hashes.length]?.hash,
        createdAt: new Date(Date.UTC(2020, 0, 1) + i * 60_000).toISOString(),
        ...(i % 10 === 0 && { roles: ['user'] }),
      }),
    ).join('\n');
    const backend = usingRealServices ? 'PostgreSQL' : 'embedded PGlite';

    let started = performance.now();
    const first = await postImport(app, token, body);
    const firstSeconds = (performance.now() - started) / 1000;
    started = performance.now();
    const second = await postImport(app, token, body);
    const secondSeconds = (performance.now() - started) / 1000;
    console.log(
      `[import timing] ${COUNT.toLocaleString('en')} users on ${backend}: first import ${firstSeconds.toFixed(1)} s ` +
        `(${Math.round(COUNT / firstSeconds).toLocaleString('en')}/s), re-import ${secondSeconds.toFixed(1)} s`,
    );

    expect(first.status, JSON.stringify(first.body).slice(0, 500)).toBe(200);
    expect(first.body).toMatchObject({ records: COUNT, created: COUNT, updated: 0, rejectedCount: 0 });
    expect(second.body).toMatchObject({ records: COUNT, created: 0, updated: COUNT, rejectedCount: 0 });
    expect(await builtWith(app).db.prisma.user.count({ where: { email: { startsWith: `${tag}-` } } })).toBe(COUNT);
    for (const i of [0, 1, 2, 3, 4, COUNT - 1]) {
      const res = await signIn(app, `${tag}-${i}@example.com`, hashes[i % hashes.length]?.password as string);
      expect(res.status, `user ${i}`).toBe(200);
    }
  }, 900_000);
});
