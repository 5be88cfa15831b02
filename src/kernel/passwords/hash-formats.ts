// One interface for every password-hash format a stored hash may be in (ours, and those imported from other systems):
// the format is recognised from the string itself, parsed once, and verified with the work the pool runs.
import { bytesEqualInConstantTime } from '../../core/constant-time.js';
import type { KeyDerivation } from '../../core/password-hash-pool.js';

/** What a verifier may run off the event loop: bcrypt comparisons and key derivations (the password-hash pool). */
export interface PasswordWork {
  compare(password: string, hash: string): Promise<boolean>;
  derive(password: string, derivation: KeyDerivation): Promise<Buffer>;
}

/** Why a stored hash cannot be used; import reports it per record, sign-in treats it as a hash nothing matches. */
export type HashFormatErrorCode = 'password_hash_unrecognised' | 'password_hash_malformed' | 'password_hash_too_costly' | 'password_hash_legacy_disabled';

export class HashFormatError extends Error {
  constructor(
    readonly code: HashFormatErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'HashFormatError';
  }
}

/** A stored hash, parsed: which format it is, and how to check a password against it. */
export interface PreparedHash {
  /** bcrypt, argon2id, argon2i, scrypt, firebase-scrypt, pbkdf2-sha256, django-pbkdf2-sha256, ssha256, md5-crypt, … */
  readonly name: string;
  /** Salted SHA and MD5 formats: usable only where an operator turned legacy hashes on. */
  readonly legacy: boolean;
  verify(password: string, work: PasswordWork): Promise<boolean>;
}

export interface PasswordHashFormat {
  /** The family's name, for documentation and errors. */
  readonly family: string;
  /** Whether the stored string claims to be in this format (by its prefix); `prepare` then says if it really is. */
  recognises(stored: string): boolean;
  /** Parses the string; throws HashFormatError when it is malformed or its parameters are beyond what we verify. */
  prepare(stored: string): PreparedHash;
}

/** Equal bytes, compared in constant time (the lengths come from the stored hash and are not secret). */
export const sameBytes = bytesEqualInConstantTime;

export function malformed(family: string, why: string): HashFormatError {
  return new HashFormatError('password_hash_malformed', `not a valid ${family} hash: ${why}`);
}

export function tooCostly(family: string, why: string): HashFormatError {
  return new HashFormatError('password_hash_too_costly', `${family} parameters beyond what this server verifies: ${why}`);
}

/** An integer parameter within [min, max], or the error saying which bound it broke. */
export function boundedInteger(family: string, name: string, text: string | undefined, min: number, max: number): number {
  if (text === undefined || !/^\d{1,10}$/.test(text)) throw malformed(family, `${name} must be a whole number`);
  const value = Number(text);
  if (value < min) throw malformed(family, `${name} must be at least ${min}`);
  if (value > max) throw tooCostly(family, `${name} is ${value}, at most ${max}`);
  return value;
}

/**
 * Base64 as the formats write it: standard or URL-safe alphabet, passlib's "." for "+", with or without padding.
 * Strict: any other character is an error, not silently skipped as Buffer.from would.
 */
export function decodeBase64(family: string, name: string, text: string, { min = 1, max = 1_024 } = {}): Buffer {
  if (!/^[A-Za-z0-9+/._-]*={0,2}$/.test(text) || text.replace(/=+$/, '').length % 4 === 1) throw malformed(family, `${name} is not base64`);
  const bytes = Buffer.from(text.replaceAll('.', '+').replaceAll('-', '+').replaceAll('_', '/'), 'base64');
  if (bytes.length < min || bytes.length > max) throw malformed(family, `${name} must be ${min} to ${max} bytes`);
  return bytes;
}

/** A comma list of name=value parameters (the PHC string format's), each name once; a value may itself hold "=". */
export function phcParameters(family: string, text: string): Map<string, string> {
  const parameters = new Map<string, string>();
  for (const pair of text.split(',')) {
    const at = pair.indexOf('=');
    const name = pair.slice(0, at);
    if (at <= 0 || !/^[a-z0-9-]{1,32}$/.test(name) || parameters.has(name)) throw malformed(family, `the parameter "${pair}" is not name=value`);
    parameters.set(name, pair.slice(at + 1));
  }
  return parameters;
}

/** Refuses parameters other than `known`: a format's extension we do not implement must not verify as if absent. */
export function onlyParameters(family: string, parameters: Map<string, string>, known: string[]): void {
  const unknown = [...parameters.keys()].filter((name) => !known.includes(name));
  if (unknown.length > 0) throw malformed(family, `unsupported parameter ${unknown.join(', ')}`);
}

/**
 * The formats a server accepts, in one place: which one a stored string is in, and whether it may be used here.
 * Legacy formats (salted SHA, MD5) are recognised always, so a refusal can say why, but pass only with `legacy`.
 */
export class PasswordHashFormats {
  constructor(
    private readonly formats: readonly PasswordHashFormat[],
    private readonly options: { legacy: boolean },
  ) {}

  /** The parsed hash, or a HashFormatError saying why it cannot be used on this server. */
  inspect(stored: string): PreparedHash {
    const format = this.formats.find((candidate) => candidate.recognises(stored));
    if (!format) {
      throw new HashFormatError(
        'password_hash_unrecognised',
        'not a password hash this server reads (bcrypt, Argon2, scrypt, Firebase scrypt, PBKDF2 in PHC or Django form; salted SHA and MD5 with PASSWORD_LEGACY_HASHES)',
      );
    }
    const prepared = format.prepare(stored);
    if (prepared.legacy && !this.options.legacy) {
      throw new HashFormatError(
        'password_hash_legacy_disabled',
        `${prepared.name} is a legacy format (salted SHA or MD5): an operator must turn on PASSWORD_LEGACY_HASHES to accept it`,
      );
    }
    return prepared;
  }
}
