// The password-hash formats of today's systems: bcrypt, Argon2, scrypt, Firebase's modified scrypt and PBKDF2 (PHC
// strings and Django's form). Each key derivation runs in the password-hash pool; the comparison is constant-time.
import { createCipheriv } from 'node:crypto';
import {
  boundedInteger,
  decodeBase64,
  malformed,
  onlyParameters,
  type PasswordHashFormat,
  type PasswordWork,
  phcParameters,
  type PreparedHash,
  sameBytes,
  tooCostly,
} from './hash-formats.js';

/**
 * The most a single verification may cost, whatever an import brought: memory per check (the pool runs one per
 * thread) and time. Hashes beyond them are refused at import rather than left to stall sign-ins.
 */
export const HASH_LIMITS = {
  bcryptCost: 15,
  argon2MemoryKiB: 256 * 1024,
  argon2Passes: 16,
  argon2Parallelism: 16,
  scryptMemoryBytes: 256 * 1024 * 1024,
  scryptParallelism: 16,
  pbkdf2Iterations: 5_000_000,
} as const;

const BCRYPT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;

/** bcrypt in any of its current prefixes ($2a$, $2b$, $2y$) and any cost up to the limit; ours are bcrypt too. */
export const bcryptFormat: PasswordHashFormat = {
  family: 'bcrypt',
  recognises: (stored) => /^\$2[a-z]?\$/.test(stored),
  prepare(stored) {
    const match = BCRYPT.exec(stored);
    if (!match) throw malformed('bcrypt', 'expected $2a$, $2b$ or $2y$, a two-digit cost and 53 characters of salt and digest');
    boundedInteger('bcrypt', 'the cost', match[1], 4, HASH_LIMITS.bcryptCost);
    return { name: 'bcrypt', legacy: false, verify: (password, work) => work.compare(password, stored) };
  },
};

/** A PHC string `$id[$v=19][$params]$salt$hash`, split into its parts. */
function phcParts(family: string, stored: string): { id: string; version?: string; params: string; salt: string; hash: string } {
  const parts = stored.split('$');
  if (parts[0] !== '' || (parts.length !== 5 && parts.length !== 6)) throw malformed(family, 'expected $id$[v=…$]parameters$salt$hash');
  const [, id = '', ...rest] = parts;
  const version = rest.length === 4 ? rest.shift() : undefined;
  const [params = '', salt = '', hash = ''] = rest;
  return { id, version, params, salt, hash };
}

const ARGON2_IDS = ['argon2id', 'argon2i', 'argon2d'] as const;

/** Argon2id, Argon2i (and Argon2d) in the PHC string format, versions 0x10 and 0x13. */
export const argon2Format: PasswordHashFormat = {
  family: 'argon2',
  recognises: (stored) => /^\$argon2(id|i|d)\$/.test(stored),
  prepare(stored) {
    const { id, version, params, salt, hash } = phcParts('argon2', stored);
    const variant = ARGON2_IDS.find((name) => name === id);
    if (!variant) throw malformed('argon2', `unknown variant ${id}`);
    // A hash without v= predates version 0x13: it is 0x10.
    const v = version === undefined ? 16 : version === 'v=19' ? 19 : version === 'v=16' ? 16 : undefined;
    if (v === undefined) throw malformed('argon2', 'the version must be v=16 or v=19');
    const parameters = phcParameters('argon2', params);
    onlyParameters('argon2', parameters, ['m', 't', 'p']);
    const parallelism = boundedInteger('argon2', 'p', parameters.get('p'), 1, HASH_LIMITS.argon2Parallelism);
    const memoryKiB = boundedInteger('argon2', 'm', parameters.get('m'), 8 * parallelism, HASH_LIMITS.argon2MemoryKiB);
    const passes = boundedInteger('argon2', 't', parameters.get('t'), 1, HASH_LIMITS.argon2Passes);
    const saltBytes = decodeBase64('argon2', 'the salt', salt, { min: 8, max: 64 });
    const expected = decodeBase64('argon2', 'the hash', hash, { min: 4, max: 128 });
    return {
      name: variant,
      legacy: false,
      async verify(password, work) {
        const derivation = { kdf: 'argon2', variant, version: v, memoryKiB, passes, parallelism, salt: saltBytes, length: expected.length } as const;
        return sameBytes(await work.derive(password, derivation), expected);
      },
    };
  },
};

/** scrypt's N, r and p, refused beyond the memory a check may take. */
function scryptCost(family: string, log2N: number, blockSize: number, parallelism: number): { cost: number; blockSize: number; parallelism: number } {
  const cost = 2 ** log2N;
  if (128 * cost * blockSize > HASH_LIMITS.scryptMemoryBytes)
    throw tooCostly(family, `N·r needs ${(128 * cost * blockSize) / 2 ** 20} MiB, at most ${HASH_LIMITS.scryptMemoryBytes / 2 ** 20}`);
  return { cost, blockSize, parallelism };
}

/**
 * scrypt in the PHC form `$scrypt$ln=…,r=…,p=…$salt$hash` (passlib's, where ln is log2 N), and the same with ln holding
 * N itself, as Ory Kratos writes it (a power of two of at least 64 cannot be a logarithm).
 */
export const scryptFormat: PasswordHashFormat = {
  family: 'scrypt',
  recognises: (stored) => stored.startsWith('$scrypt$'),
  prepare(stored) {
    const { version, params, salt, hash } = phcParts('scrypt', stored);
    if (version !== undefined) throw malformed('scrypt', 'no version segment is defined');
    const parameters = phcParameters('scrypt', params);
    onlyParameters('scrypt', parameters, ['ln', 'r', 'p']);
    const ln = boundedInteger('scrypt', 'ln', parameters.get('ln'), 1, 2 ** 30);
    const log2N = ln < 64 ? ln : Math.log2(ln);
    if (!Number.isInteger(log2N)) throw malformed('scrypt', 'N must be a power of two');
    const blockSize = boundedInteger('scrypt', 'r', parameters.get('r'), 1, 64);
    const parallelism = boundedInteger('scrypt', 'p', parameters.get('p'), 1, HASH_LIMITS.scryptParallelism);
    const cost = scryptCost('scrypt', log2N, blockSize, parallelism);
    const saltBytes = decodeBase64('scrypt', 'the salt', salt, { min: 1, max: 128 });
    const expected = decodeBase64('scrypt', 'the hash', hash, { min: 8, max: 128 });
    return {
      name: 'scrypt',
      legacy: false,
      async verify(password, work) {
        return sameBytes(await work.derive(password, { kdf: 'scrypt', ...cost, salt: saltBytes, length: expected.length }), expected);
      },
    };
  },
};

/**
 * Firebase Authentication's modified scrypt, in Supabase's self-contained form
 * `$fbscrypt$v=1,n=<mem_cost>,r=<rounds>,p=1,ss=<salt separator>,sk=<signer key>$<salt>$<hash>`: scrypt of the password
 * with salt‖separator gives an AES-256 key; the signer key encrypted with it in CTR mode (zero IV) is the hash.
 */
export const firebaseScryptFormat: PasswordHashFormat = {
  family: 'firebase-scrypt',
  recognises: (stored) => stored.startsWith('$fbscrypt$'),
  prepare(stored) {
    const family = 'firebase-scrypt';
    const { version, params, salt, hash } = phcParts(family, stored);
    if (version !== undefined) throw malformed(family, 'the version is a parameter (v=1)');
    const parameters = phcParameters(family, params);
    onlyParameters(family, parameters, ['v', 'n', 'r', 'p', 'ss', 'sk']);
    if (parameters.get('v') !== '1') throw malformed(family, 'v must be 1');
    const log2N = boundedInteger(family, 'n (mem_cost)', parameters.get('n'), 1, 30);
    const blockSize = boundedInteger(family, 'r (rounds)', parameters.get('r'), 1, 64);
    const parallelism = boundedInteger(family, 'p', parameters.get('p') ?? '1', 1, HASH_LIMITS.scryptParallelism);
    const cost = scryptCost(family, log2N, blockSize, parallelism);
    const separator = parameters.get('ss') === '' ? Buffer.alloc(0) : decodeBase64(family, 'ss (salt separator)', parameters.get('ss') ?? '', { max: 64 });
    const signerKey = decodeBase64(family, 'sk (signer key)', parameters.get('sk') ?? '', { min: 16, max: 256 });
    const saltBytes = decodeBase64(family, 'the salt', salt, { max: 128 });
    const expected = decodeBase64(family, 'the hash', hash, { min: 16, max: 256 });
    if (expected.length !== signerKey.length) throw malformed(family, 'the hash must be as long as the signer key');
    return {
      name: family,
      legacy: false,
      async verify(password, work) {
        const key = await work.derive(password, { kdf: 'scrypt', ...cost, salt: Buffer.concat([saltBytes, separator]), length: 32 });
        const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
        return sameBytes(Buffer.concat([cipher.update(signerKey), cipher.final()]), expected);
      },
    };
  },
};

const PBKDF2_DIGESTS = { pbkdf2: 'sha1', 'pbkdf2-sha1': 'sha1', 'pbkdf2-sha256': 'sha256', 'pbkdf2-sha512': 'sha512' } as const;

function pbkdf2Hash(name: string, digest: 'sha1' | 'sha256' | 'sha512', iterations: number, salt: Buffer, expected: Buffer): PreparedHash {
  return {
    name,
    legacy: false,
    async verify(password: string, work: PasswordWork) {
      return sameBytes(await work.derive(password, { kdf: 'pbkdf2', digest, iterations, salt, length: expected.length }), expected);
    },
  };
}

/**
 * PBKDF2 with SHA-1, SHA-256 or SHA-512 as a PHC string: passlib's `$pbkdf2-sha256$<rounds>$salt$hash` (adapted
 * base64) and the named form `$pbkdf2-sha256$i=<rounds>,l=<length>$salt$hash` (Ory Kratos's, and Keycloak's mapped).
 */
export const pbkdf2Format: PasswordHashFormat = {
  family: 'pbkdf2',
  recognises: (stored) => /^\$pbkdf2(-sha1|-sha256|-sha512)?\$/.test(stored),
  prepare(stored) {
    const { id, version, params, salt, hash } = phcParts('pbkdf2', stored);
    const digest = PBKDF2_DIGESTS[id as keyof typeof PBKDF2_DIGESTS];
    if (!digest || version !== undefined) throw malformed('pbkdf2', 'expected $pbkdf2-sha256$rounds$salt$hash');
    let rounds = params;
    let length: string | undefined;
    if (!/^\d+$/.test(params)) {
      const parameters = phcParameters('pbkdf2', params);
      onlyParameters('pbkdf2', parameters, ['i', 'l']);
      rounds = parameters.get('i') ?? '';
      length = parameters.get('l');
    }
    const iterations = boundedInteger('pbkdf2', 'the rounds', rounds, 1, HASH_LIMITS.pbkdf2Iterations);
    const saltBytes = decodeBase64('pbkdf2', 'the salt', salt, { max: 128 });
    const expected = decodeBase64('pbkdf2', 'the hash', hash, { min: 8, max: 128 });
    if (length !== undefined && Number(length) !== expected.length) throw malformed('pbkdf2', `l=${length} but the hash is ${expected.length} bytes`);
    return pbkdf2Hash(`pbkdf2-${digest}`, digest, iterations, saltBytes, expected);
  },
};

/** Django's own form, `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>` (and pbkdf2_sha1): the salt is text. */
export const djangoPbkdf2Format: PasswordHashFormat = {
  family: 'django-pbkdf2',
  recognises: (stored) => /^pbkdf2_sha(1|256)\$/.test(stored),
  prepare(stored) {
    const family = 'django-pbkdf2';
    const [algorithm = '', rounds, salt = '', hash = '', ...extra] = stored.split('$');
    if (extra.length > 0 || salt === '' || salt.length > 128) throw malformed(family, 'expected pbkdf2_sha256$iterations$salt$hash');
    const iterations = boundedInteger(family, 'the iterations', rounds, 1, HASH_LIMITS.pbkdf2Iterations);
    const expected = decodeBase64(family, 'the hash', hash, { min: 8, max: 128 });
    const digest = algorithm === 'pbkdf2_sha1' ? 'sha1' : 'sha256';
    return pbkdf2Hash(`django-pbkdf2-${digest}`, digest, iterations, Buffer.from(salt, 'utf8'), expected);
  },
};
