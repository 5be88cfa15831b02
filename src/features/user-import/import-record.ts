// The native import record (one NDJSON line), checked one at a time: what a valid one becomes, and why a bad one is
// refused, with a code and a message a person can act on.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { HashFormatError } from '../../kernel/passwords/hash-formats.js';
import type { PasswordHasher } from '../../kernel/passwords/passwords.js';
import { Username } from '../../kernel/identity/user-schemas.js';

/** Why a record was not imported: a stable code, a message, and where it was (line, or place in a JSON array). */
export interface Rejection {
  line: number;
  email?: string;
  code: RejectionCode;
  message: string;
}

export type RejectionCode =
  | 'invalid_json'
  | 'invalid_csv'
  | 'validation_failed'
  | 'mapping_failed'
  | 'password_hash_unrecognised'
  | 'password_hash_malformed'
  | 'password_hash_too_costly'
  | 'password_hash_legacy_disabled'
  | 'totp_secret_invalid'
  | 'unknown_role'
  | 'duplicate_email'
  | 'username_taken'
  | 'account_not_imported'
  | 'account_created_meanwhile';

/** What PostgreSQL cannot keep in text: refused per record, rather than failing the batch that holds it. */
const noNul = (value: string) => !value.includes('\u0000');
const text = (max: number) => z.string().max(max).refine(noNul, 'may not hold the character U+0000');

/** A TOTP secret in base32 (RFC 4648; spaces, lower case and padding forgiven), 80 bits or more. */
const TOTP_SECRET = /^[A-Z2-7]{16,128}$/;

/** ISO 8601 with an offset, or milliseconds since 1970 (Firebase and Keycloak write those). */
const Timestamp = z.union([z.iso.datetime({ offset: true }), z.number().int().min(0).max(8_640_000_000_000_000)]).transform((value) => new Date(value));

export const ImportRecord = z
  .object({
    email: text(254).trim().toLowerCase().pipe(z.email()),
    username: Username.optional(),
    emailVerified: z.boolean().optional(),
    roles: z.array(text(64).min(1)).max(20).optional(),
    passwordHash: text(2_048).min(1).nullable().optional(),
    totpSecret: text(256).nullable().optional(),
    createdAt: Timestamp.optional(),
  })
  .strict();

export type ImportRecordInput = z.input<typeof ImportRecord>;

/** A record that passed every check that needs no database: ready to be written. */
export interface Candidate {
  line: number;
  email: string;
  username?: string;
  emailVerified?: boolean;
  roles?: string[];
  passwordHash?: string;
  /** The format's name (bcrypt, argon2id, …), for the summary. */
  hashFormat?: string;
  totpSecret?: string;
  createdAt?: Date;
}

/** SHA-256 (hex) of a stored hash: how an import recognises later that the hash it wrote is still there. */
export function hashDigest(passwordHash: string): string {
  return createHash('sha256').update(passwordHash, 'utf8').digest('hex');
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => {
      const path = issue.path.join('.');
      if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}

function emailOf(value: unknown): string | undefined {
  const email = value !== null && typeof value === 'object' ? (value as { email?: unknown }).email : undefined;
  return typeof email === 'string' ? email.trim().toLowerCase().slice(0, 254) : undefined;
}

/**
 * Checks one record against the native shape, the password-hash formats this server reads and the roles it knows:
 * a Candidate, or the Rejection saying why not.
 */
export function checkRecord(line: number, value: unknown, passwords: PasswordHasher, knownRoles: ReadonlySet<string>): Candidate | Rejection {
  const parsed = ImportRecord.safeParse(value);
  if (!parsed.success) return { line, email: emailOf(value), code: 'validation_failed', message: describeIssues(parsed.error) };
  const record = parsed.data;
  const candidate: Candidate = {
    line,
    email: record.email,
    username: record.username,
    emailVerified: record.emailVerified,
    roles: record.roles && [...new Set(record.roles)],
    createdAt: record.createdAt,
  };
  const reject = (code: RejectionCode, message: string): Rejection => ({ line, email: record.email, code, message });
  if (record.passwordHash) {
    try {
      candidate.hashFormat = passwords.inspect(record.passwordHash).name;
      candidate.passwordHash = record.passwordHash;
    } catch (err) {
      if (err instanceof HashFormatError) return reject(err.code, `passwordHash: ${err.message}`);
      throw err;
    }
  }
  if (record.totpSecret) {
    const secret = record.totpSecret.replace(/[\s-]/g, '').replace(/=+$/, '').toUpperCase();
    if (!TOTP_SECRET.test(secret)) return reject('totp_secret_invalid', 'totpSecret: expected base32 (A–Z, 2–7) of at least 16 characters (80 bits)');
    candidate.totpSecret = secret;
  }
  const unknown = (candidate.roles ?? []).filter((role) => !knownRoles.has(role));
  if (unknown.length > 0) return reject('unknown_role', `roles: no role named ${unknown.join(', ')} (create it first; an import never creates roles)`);
  if (candidate.createdAt && Number.isNaN(candidate.createdAt.getTime())) return reject('validation_failed', 'createdAt: not a date');
  return candidate;
}

export function isRejection(checked: Candidate | Rejection): checked is Rejection {
  return 'code' in checked;
}

/** A username made from the address when the record names none: its local part, made to fit the username rules. */
export function usernameFromEmail(email: string): string {
  const local = (email.split('@')[0] ?? '').replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 32);
  return local.length >= 3 ? local : `${local}_${hashDigest(email).slice(0, 6)}`;
}

/** The fallback when that name is taken: shortened, with six hex characters of the address's hash. */
export function distinctUsername(email: string): string {
  return `${usernameFromEmail(email).slice(0, 25)}-${hashDigest(email).slice(0, 6)}`;
}
