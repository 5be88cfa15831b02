// Every password-hash format a stored hash may be in, checked against hashes the reference tools made (see
// tests/fixtures/make-password-hashes.py for the command behind each vector).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { HashFormatError } from '../src/kernel/passwords/hash-formats.js';
import { NO_PASSWORD_HASH, PasswordHasher } from '../src/kernel/passwords/passwords.js';
import { testPasswordPool } from './support/test-app.js';

interface Vector {
  format: string;
  password: string;
  hash: string;
  legacy: boolean;
  source: string;
}

const fixture = JSON.parse(readFileSync(new URL('./fixtures/password-hashes.json', import.meta.url), 'utf8')) as { vectors: Vector[] };
const vectors = fixture.vectors;

/** Our own cost in these tests; the vectors' bcrypt costs (4, 5, 10) are their own. */
const COST = 4;
const withLegacy = () => new PasswordHasher(testPasswordPool(), COST, undefined, { legacyHashes: true });
const withoutLegacy = () => new PasswordHasher(testPasswordPool(), COST);

function refusal(hasher: PasswordHasher, hash: string): string | undefined {
  try {
    hasher.inspect(hash);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(HashFormatError);
    return (err as HashFormatError).code;
  }
}

describe('password-hash formats: vectors made by the reference implementations', () => {
  it('when the fixture is read, then it covers every format the import accepts', () => {
    expect(new Set(vectors.map((vector) => vector.format))).toEqual(
      new Set([
        'bcrypt',
        'argon2id',
        'argon2i',
        'scrypt',
        'firebase-scrypt',
        'pbkdf2-sha256',
        'pbkdf2-sha512',
        'pbkdf2-sha1',
        'django-pbkdf2-sha256',
        'django-pbkdf2-sha1',
        'django-sha1',
        'django-md5',
        'ssha',
        'ssha256',
        'ssha512',
        'smd5',
        'md5-crypt',
      ]),
    );
  });

  it.each(vectors.map((vector) => [vector.format, vector.hash.slice(0, 40), vector] as const))(
    'when a %s hash (%s…) is checked, then its password matches, a wrong one, a truncated one and one a character off do not',
    async (_format, _prefix, vector) => {
      const hasher = withLegacy();

      expect(hasher.inspect(vector.hash)).toEqual({ name: vector.format, legacy: vector.legacy });
      expect(await hasher.verify(vector.password, vector.hash), vector.source).toBe(true);
      expect(await hasher.verify(`${vector.password}x`, vector.hash)).toBe(false);
      expect(await hasher.verify(vector.password.slice(0, -1), vector.hash)).toBe(false);
      expect(await hasher.verify(vector.password.toUpperCase(), vector.hash)).toBe(false);
    },
  );

  it('when one character of each digest is changed, then the right password no longer matches', async () => {
    const hasher = withLegacy();
    for (const vector of vectors) {
      // Three characters before the end (padding aside): every bit of it is digest, whatever the encoding.
      const at = vector.hash.replace(/=+$/, '').length - 3;
      const was = vector.hash[at] ?? '';
      const now = was === 'a' ? 'b' : was === '0' ? '1' : /[0-9]/.test(was) ? '0' : /[a-f]/.test(was) ? 'a' : was === 'A' ? 'B' : 'A';
      const tampered = vector.hash.slice(0, at) + now + vector.hash.slice(at + 1);

      expect(await hasher.verify(vector.password, tampered), `${vector.format} ${tampered}`).toBe(false);
    }
  });

  it('when legacy hashes are off (the default), then salted SHA and MD5 are refused by name and match nothing, and the others still work', async () => {
    const hasher = withoutLegacy();
    for (const vector of vectors) {
      if (vector.legacy) {
        expect(refusal(hasher, vector.hash), vector.format).toBe('password_hash_legacy_disabled');
        expect(await hasher.verify(vector.password, vector.hash)).toBe(false);
      } else {
        expect(refusal(hasher, vector.hash), vector.format).toBeUndefined();
      }
    }
  });
});

describe('password-hash formats: refusals', () => {
  it.each([
    ['nothing a format claims', 'hunter2', 'password_hash_unrecognised'],
    ['a plain hex digest', '5f4dcc3b5aa765d61d8327deb882cf99', 'password_hash_unrecognised'],
    ['an account with no password', NO_PASSWORD_HASH, 'password_hash_unrecognised'],
    ['bcrypt cut short', '$2b$10$abcdefghijklmnopqrstuv', 'password_hash_malformed'],
    ['bcrypt of the buggy $2x$ prefix', '$2x$10$EfHO4x1GapsPf.zLkQXGOOXG3DChjzZi2AX5iN0oKGYgXHfbGIpGy', 'password_hash_malformed'],
    ['bcrypt at cost 31', '$2b$31$EfHO4x1GapsPf.zLkQXGOOXG3DChjzZi2AX5iN0oKGYgXHfbGIpGy', 'password_hash_too_costly'],
    ['argon2 without a hash', '$argon2id$v=19$m=1024,t=2,p=1$MEpnVHlyc1JCUndLOVQ4aQ', 'password_hash_malformed'],
    ['argon2 of 4 GiB', '$argon2id$v=19$m=4194304,t=2,p=1$MEpnVHlyc1JCUndLOVQ4aQ$eDj2gVUCVEWYf/dLFEzwzhybQbB8p3/UC6EDZHV+d9M', 'password_hash_too_costly'],
    [
      'argon2 with a secret key id',
      '$argon2id$v=19$m=1024,t=2,p=1,keyid=AAAA$MEpnVHlyc1JCUndLOVQ4aQ$eDj2gVUCVEWYf/dLFEzwzhybQbB8p3/UC6EDZHV+d9M',
      'password_hash_malformed',
    ],
    [
      'argon2 of an unknown version',
      '$argon2id$v=20$m=1024,t=2,p=1$MEpnVHlyc1JCUndLOVQ4aQ$eDj2gVUCVEWYf/dLFEzwzhybQbB8p3/UC6EDZHV+d9M',
      'password_hash_malformed',
    ],
    ['argon2 whose salt is not base64', '$argon2id$v=19$m=1024,t=2,p=1$not*base64!$eDj2gVUCVEWYf/dLFEzwzhybQbB8p3/UC6EDZHV+d9M', 'password_hash_malformed'],
    ['scrypt of 1 GiB', '$scrypt$ln=20,r=8,p=1$gXDuvZeyNiYEwNjbO6f0fg$VnoNsY34yFKoFB5jepIszZvCbU+7va5D4h63Rxq5UHg', 'password_hash_too_costly'],
    [
      'scrypt whose N is no power of two',
      '$scrypt$ln=1000,r=8,p=1$gXDuvZeyNiYEwNjbO6f0fg$VnoNsY34yFKoFB5jepIszZvCbU+7va5D4h63Rxq5UHg',
      'password_hash_malformed',
    ],
    ['scrypt missing r', '$scrypt$ln=12,p=1$gXDuvZeyNiYEwNjbO6f0fg$VnoNsY34yFKoFB5jepIszZvCbU+7va5D4h63Rxq5UHg', 'password_hash_malformed'],
    [
      'Firebase scrypt without its signer key',
      '$fbscrypt$v=1,n=14,r=8,p=1,ss=Bw==$42xEC+ixf3L2lw==$lSrfV15cpx95/sZS2W9c9Kp6i/LVgQ==',
      'password_hash_malformed',
    ],
    ['PBKDF2 of a billion rounds', '$pbkdf2-sha256$1000000000$M6YUQkgpBaBUak3p3TtHKA$1QLvcDjiKZuZISJyDQscyVeqq.DjJicejPwE48P9vBI', 'password_hash_too_costly'],
    ['PBKDF2 of an unknown digest', '$pbkdf2-md5$2000$M6YUQkgpBaBUak3p3TtHKA$1QLvcDjiKZuZISJyDQscyVeqq.DjJicejPwE48P9vBI', 'password_hash_unrecognised'],
    [
      'PBKDF2 whose l= is not its length',
      '$pbkdf2-sha256$i=3000,l=64$RBi1KZdWykND9EZ7t+HYwA$tS2QPC11ekx+qJuePQVXQAqN4tIFzMe0vn5vKmz43bU',
      'password_hash_malformed',
    ],
    ["Django's PBKDF2 without a salt", 'pbkdf2_sha256$260000$$2VhrVvCHIstJ9iL/ibuX/b6KImZ2NszcPsyqANKgFCQ=', 'password_hash_malformed'],
    [
      "Django's PBKDF2 with text for iterations",
      'pbkdf2_sha256$many$jKghrTQ3E4u4hZgTB9CQv8$2VhrVvCHIstJ9iL/ibuX/b6KImZ2NszcPsyqANKgFCQ=',
      'password_hash_malformed',
    ],
    ['{SSHA} too short to hold a salt', '{SSHA}t2F9DRm7I3SxnbWm6E+z3l+zZHw=', 'password_hash_malformed'],
    ["Django's salted SHA-1 with a short digest", 'sha1$mOY45vuKvAvFNI106Cx5es$abaf0e2072', 'password_hash_malformed'],
    ['md5-crypt with a long salt', '$1$C2bEqDNjXXXXXXXX$5gp/ZMLkU566zuR7p7cXl/', 'password_hash_malformed'],
  ])('when %s is inspected, then it is refused as %s', async (_what, hash, code) => {
    const hasher = withLegacy();

    expect(refusal(hasher, hash)).toBe(code);
    expect(await hasher.verify('correct horse battery staple', hash)).toBe(false);
  });
});

describe('password-hash formats: what a sign-in does with them', () => {
  it('when a hash is ours (bcrypt at our cost), then it needs no re-hash; another format, a lower cost or none at all are told apart', async () => {
    const hasher = withLegacy();
    const ours = await hasher.hash('correct horse battery staple');
    const byFormat = (format: string) => vectors.find((vector) => vector.format === format)?.hash ?? '';

    expect(hasher.needsRehash(ours)).toBe(false);
    expect(new PasswordHasher(testPasswordPool(), 5).needsRehash(ours)).toBe(true);
    for (const format of ['argon2id', 'scrypt', 'firebase-scrypt', 'pbkdf2-sha256', 'django-pbkdf2-sha256', 'ssha256', 'md5-crypt'])
      expect(hasher.needsRehash(byFormat(format)), format).toBe(true);
    expect(hasher.needsRehash(NO_PASSWORD_HASH)).toBe(false);
  });

  it.each([
    ['argon2id', 2],
    ['scrypt', 2],
    ['firebase-scrypt', 2],
    ['django-pbkdf2-sha256', 2],
    ['pbkdf2-sha512', 2],
    ['ssha256', 1],
    ['md5-crypt', 1],
  ])(
    'when a %s hash is verified, then the pool ran %i tasks: its derivation off the event loop (legacy digests excepted) and one comparison at our cost',
    async (format, tasks) => {
      const vector = vectors.find((entry) => entry.format === format) as Vector;
      const pool = testPasswordPool();
      const before = pool.stats().completed;

      const matches = await withLegacy().verify(vector.password, vector.hash);

      expect(matches).toBe(true);
      expect(pool.stats().completed - before).toBe(tasks);
    },
  );
});
