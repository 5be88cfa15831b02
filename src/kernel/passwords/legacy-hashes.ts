// Legacy password-hash formats, read only where an operator turns them on (PASSWORD_LEGACY_HASHES): salted SHA-1,
// SHA-256, SHA-512 and MD5 as LDAP writes them, Django's salted SHA-1 and MD5, and md5-crypt. Each is one or a few
// fast digests, cheap enough to run on the event loop; that is exactly why they must be replaced at the first sign-in.
import { createHash } from 'node:crypto';
import { decodeBase64, malformed, type PasswordHashFormat, type PreparedHash, sameBytes } from './hash-formats.js';

const LDAP_SCHEMES = { SSHA: ['sha1', 20], SSHA256: ['sha256', 32], SSHA512: ['sha512', 64], SMD5: ['md5', 16] } as const;

function legacyHash(name: string, matches: (password: string) => boolean): PreparedHash {
  return { name, legacy: true, verify: (password) => Promise.resolve(matches(password)) };
}

/** LDAP's `{SSHA}`, `{SSHA256}`, `{SSHA512}` and `{SMD5}`: base64 of digest(password ‖ salt) ‖ salt. */
export const ldapSaltedFormat: PasswordHashFormat = {
  family: 'ldap-salted',
  recognises: (stored) => /^\{S(SHA|SHA256|SHA512|MD5)\}/i.test(stored),
  prepare(stored) {
    const close = stored.indexOf('}');
    const scheme = stored.slice(1, close).toUpperCase() as keyof typeof LDAP_SCHEMES;
    const [algorithm, digestBytes] = LDAP_SCHEMES[scheme];
    const decoded = decodeBase64(`{${scheme}}`, 'the value', stored.slice(close + 1), { min: digestBytes + 1, max: digestBytes + 64 });
    const expected = decoded.subarray(0, digestBytes);
    const salt = decoded.subarray(digestBytes);
    return legacyHash(scheme.toLowerCase(), (password) =>
      sameBytes(
        createHash(algorithm)
          .update(Buffer.concat([Buffer.from(password, 'utf8'), salt]))
          .digest(),
        expected,
      ),
    );
  },
};

/** Django's SHA1PasswordHasher and MD5PasswordHasher: `sha1$salt$hex(sha1(salt ‖ password))`, `md5$salt$hex…`. */
export const djangoSaltedFormat: PasswordHashFormat = {
  family: 'django-salted',
  recognises: (stored) => /^(sha1|md5)\$/.test(stored),
  prepare(stored) {
    const [algorithm = '', salt = '', hex = '', ...extra] = stored.split('$');
    const family = `django-${algorithm}`;
    const digestHex = algorithm === 'sha1' ? 40 : 32;
    if (extra.length > 0 || salt.length > 128 || !new RegExp(`^[0-9a-f]{${digestHex}}$`).test(hex))
      throw malformed(family, `expected ${algorithm}$salt$<${digestHex} lower-case hex digits>`);
    const expected = Buffer.from(hex, 'hex');
    return legacyHash(family, (password) =>
      sameBytes(
        createHash(algorithm)
          .update(salt + password, 'utf8')
          .digest(),
        expected,
      ),
    );
  },
};

const CRYPT_ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

const md5 = (...parts: Buffer[]) => createHash('md5').update(Buffer.concat(parts)).digest();

/** md5-crypt's 22 characters for a password and salt (Poul-Henning Kamp's algorithm, as FreeBSD and OpenSSL run it). */
function md5Crypt(password: Buffer, salt: Buffer): string {
  const magic = Buffer.from('$1$');
  let final = md5(password, salt, password);
  const context: Buffer[] = [password, magic, salt];
  for (let left = password.length; left > 0; left -= 16) context.push(final.subarray(0, Math.min(left, 16)));
  for (let bits = password.length; bits > 0; bits >>= 1) context.push(bits & 1 ? Buffer.alloc(1) : password.subarray(0, 1));
  final = md5(...context);
  for (let round = 0; round < 1000; round++) {
    const parts = [round & 1 ? password : final];
    if (round % 3) parts.push(salt);
    if (round % 7) parts.push(password);
    parts.push(round & 1 ? final : password);
    final = md5(...parts);
  }
  let out = '';
  const encode = (value: number, characters: number) => {
    for (let i = 0; i < characters; i++, value >>= 6) out += CRYPT_ALPHABET[value & 0x3f];
  };
  const at = (index: number) => final[index] ?? 0;
  for (const [a, b, c] of [
    [0, 6, 12],
    [1, 7, 13],
    [2, 8, 14],
    [3, 9, 15],
    [4, 10, 5],
  ] as const)
    encode((at(a) << 16) | (at(b) << 8) | at(c), 4);
  encode(at(11), 2);
  return out;
}

/** md5-crypt, `$1$<salt of up to 8 characters>$<22 characters>` (openssl passwd -1, old /etc/shadow, Apache). */
export const md5CryptFormat: PasswordHashFormat = {
  family: 'md5-crypt',
  recognises: (stored) => stored.startsWith('$1$'),
  prepare(stored) {
    const match = /^\$1\$([^$:\n]{0,8})\$([./0-9A-Za-z]{22})$/.exec(stored);
    if (!match) throw malformed('md5-crypt', 'expected $1$<salt of up to 8 characters>$<22 characters>');
    const salt = Buffer.from(match[1] ?? '', 'utf8');
    const expected = Buffer.from(match[2] ?? '', 'ascii');
    return legacyHash('md5-crypt', (password) => sameBytes(Buffer.from(md5Crypt(Buffer.from(password, 'utf8'), salt), 'ascii'), expected));
  },
};
