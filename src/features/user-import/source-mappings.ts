// Ready-made mappings from the exports people have (Supabase's auth.users, Auth0's with password hashes, Firebase's
// auth:export, Keycloak's realm export, CSV such as Django's auth_user) to the native import record.
import type { Readable } from 'node:stream';
import type { ImportRecordInput } from './import-record.js';
import { peek, readCsv, readJsonDocument, readNdjson } from './source-readers.js';
import type { SourceItem } from './user-import.js';

export const SOURCE_FORMATS = ['ndjson', 'json', 'csv', 'supabase', 'auth0', 'firebase', 'keycloak'] as const;
export type SourceFormat = (typeof SOURCE_FORMATS)[number];

/** The project-wide parameters of Firebase's scrypt (console → Authentication → Users → ⋮ → Password hash parameters). */
export interface FirebaseHashConfig {
  /** base64_signer_key */
  signerKey: string;
  /** base64_salt_separator */
  saltSeparator: string;
  rounds: number;
  memCost: number;
}

export interface SourceOptions {
  firebase?: FirebaseHashConfig;
}

/** A record the mapping cannot turn into a native one (a deleted account, an unsupported credential). */
export class MappingError extends Error {}

type Row = Record<string, unknown>;
type Mapper = (row: Row, options: SourceOptions) => ImportRecordInput;

const USERNAME = /^[A-Za-z0-9_.-]{3,32}$/;

const present = (value: unknown) => value !== undefined && value !== null && value !== '';
const asString = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);
/** A username the source had, when it fits ours; otherwise one is made from the address. */
const usernameIfValid = (value: unknown) => (typeof value === 'string' && USERNAME.test(value) ? value : undefined);

function asBoolean(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (typeof value !== 'string' || value === '') return undefined;
  return ['t', 'true', '1', 'yes', 'y'].includes(value.trim().toLowerCase());
}

/** ISO 8601, PostgreSQL's text form (`2024-01-02 03:04:05.123456+00`), milliseconds, or Mongo's {"$date": …}. */
function asTimestamp(value: unknown): string | number | undefined {
  if (typeof value === 'number') return value;
  if (value !== null && typeof value === 'object' && '$date' in value) return asTimestamp(value.$date);
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const text = value.trim();
  if (/^\d{10,16}$/.test(text)) return Number(text);
  return text.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00');
}

function json(value: unknown): Row {
  if (value !== null && typeof value === 'object') return value as Row;
  if (typeof value !== 'string' || value === '') return {};
  try {
    const parsed = JSON.parse(value) as unknown;
    return parsed !== null && typeof parsed === 'object' ? (parsed as Row) : {};
  } catch {
    return {};
  }
}

function columns(row: Row, ...names: string[]): unknown {
  for (const name of names) if (present(row[name])) return row[name];
  return undefined;
}

/** Our own record, as is (NDJSON or a JSON array). */
const native: Mapper = (row) => row as ImportRecordInput;

/** CSV with a header row: our field names, or their snake_case forms; Django's auth_user columns too. */
const csv: Mapper = (row) => {
  const lower: Row = Object.fromEntries(Object.entries(row).map(([key, value]) => [key.trim().toLowerCase(), value]));
  const roles = asString(lower.roles);
  return strip({
    email: asString(lower.email),
    username: asString(lower.username),
    emailVerified: asBoolean(columns(lower, 'emailverified', 'email_verified')),
    roles: roles?.split(/[;,\s]+/).filter(Boolean),
    passwordHash: asString(columns(lower, 'passwordhash', 'password_hash', 'password')),
    totpSecret: asString(columns(lower, 'totpsecret', 'totp_secret')),
    createdAt: asTimestamp(columns(lower, 'createdat', 'created_at', 'date_joined')),
  });
};

/** Supabase's auth.users (psql \copy … csv header, or rows as JSON): bcrypt in encrypted_password. */
const supabase: Mapper = (row) => {
  if (present(row.deleted_at)) throw new MappingError('deleted in Supabase (deleted_at is set): not imported');
  return strip({
    email: asString(row.email),
    username: usernameIfValid(json(row.raw_user_meta_data).username),
    emailVerified: present(columns(row, 'email_confirmed_at', 'confirmed_at')),
    passwordHash: asString(row.encrypted_password),
    createdAt: asTimestamp(row.created_at),
  });
};

/** Auth0: the password-hash export its support sends (NDJSON; Mongo's extended JSON), or a users-exports job's file. */
const auth0: Mapper = (row) =>
  strip({
    email: asString(row.email),
    username: usernameIfValid(row.username),
    emailVerified: asBoolean(row.email_verified),
    passwordHash: asString(columns(row, 'passwordHash', 'password_hash')),
    createdAt: asTimestamp(columns(row, 'created_at', 'createdAt')),
  });

/** Firebase's auth:export JSON: its modified scrypt, made whole with the project's hash parameters. */
const firebase: Mapper = (row, options) => {
  if (row.disabled === true) throw new MappingError('disabled in Firebase: not imported');
  let passwordHash: string | undefined;
  const hash = asString(row.passwordHash);
  if (hash) {
    const config = options.firebase;
    if (!config)
      throw new MappingError('the export holds password hashes: give the project’s hash parameters (--hash-key, --salt-separator, --rounds, --mem-cost)');
    const salt = asString(row.salt);
    if (!salt) throw new MappingError('passwordHash without its salt');
    passwordHash = `$fbscrypt$v=1,n=${config.memCost},r=${config.rounds},p=1,ss=${config.saltSeparator},sk=${config.signerKey}$${salt}$${hash}`;
  }
  return strip({
    email: asString(row.email),
    emailVerified: asBoolean(row.emailVerified),
    passwordHash,
    createdAt: asTimestamp(row.createdAt),
  });
};

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32(bytes: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return bits > 0 ? out + BASE32[(value << (5 - bits)) & 31] : out;
}

const b64 = (text: string) => text.replace(/=+$/, '');

/** One Keycloak password credential as a PHC string: PBKDF2 (SHA-1, SHA-256, SHA-512) or Argon2. */
function keycloakPassword(credential: Row): string {
  const secret = { ...json(credential.secretData), ...(present(credential.value) ? { value: credential.value, salt: credential.salt } : {}) };
  const data = { ...json(credential.credentialData), ...(present(credential.algorithm) ? credential : {}) };
  const value = asString(secret.value);
  const salt = asString(secret.salt);
  const algorithm = asString(data.algorithm) ?? 'pbkdf2-sha256';
  if (!value || !salt) throw new MappingError('a password credential without its value or salt');
  const parameter = (name: string, fallback: string) => {
    const raw = json(data.additionalParameters)[name];
    return String(Array.isArray(raw) ? raw[0] : (raw ?? fallback));
  };
  if (algorithm === 'argon2') {
    const type = parameter('type', 'id');
    const version = parameter('version', '1.3') === '1.0' ? 16 : 19;
    const params = `m=${parameter('memory', '7168')},t=${parameter('iterations', '5')},p=${parameter('parallelism', '1')}`;
    return `$argon2${type}$v=${version}$${params}$${b64(salt)}$${b64(value)}`;
  }
  const digest = { pbkdf2: 'pbkdf2', 'pbkdf2-sha256': 'pbkdf2-sha256', 'pbkdf2-sha512': 'pbkdf2-sha512' }[algorithm];
  if (!digest) throw new MappingError(`Keycloak password algorithm ${algorithm} is not one this server reads`);
  return `$${digest}$i=${String(data.hashIterations)}$${b64(salt)}$${b64(value)}`;
}

/** Keycloak's OTP credential, when it is TOTP as authenticator apps run it (SHA-1, 6 digits, 30 s). */
function keycloakTotp(credential: Row): string {
  const data = json(credential.credentialData);
  const value = asString(json(credential.secretData).value);
  const standard =
    (data.subType ?? 'totp') === 'totp' && (data.digits ?? 6) === 6 && (data.period ?? 30) === 30 && (data.algorithm ?? 'HmacSHA1') === 'HmacSHA1';
  if (!value || !standard) throw new MappingError('a one-time-password credential other than TOTP with SHA-1, 6 digits and 30 s: not imported');
  // Keycloak keeps the secret as text; authenticator apps were given base32 of its bytes.
  return base32(Buffer.from(value, 'utf8'));
}

/** Keycloak's realm export (kc.sh export): users with their password and OTP credentials. */
const keycloak: Mapper = (row) => {
  if (row.enabled === false) throw new MappingError('disabled in Keycloak: not imported');
  const credentials = Array.isArray(row.credentials) ? (row.credentials as Row[]) : [];
  const password = credentials.find((credential) => credential.type === 'password');
  const otp = credentials.find((credential) => credential.type === 'otp');
  return strip({
    email: asString(row.email),
    username: usernameIfValid(row.username),
    emailVerified: asBoolean(row.emailVerified),
    passwordHash: password ? keycloakPassword(password) : undefined,
    totpSecret: otp ? keycloakTotp(otp) : undefined,
    createdAt: asTimestamp(row.createdTimestamp),
  });
};

const MAPPERS: Record<SourceFormat, Mapper> = { ndjson: native, json: native, csv, supabase, auth0, firebase, keycloak };

/** Drops the fields a source did not have, so the record says only what it knows. */
function strip(record: Record<string, unknown>): ImportRecordInput {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as ImportRecordInput;
}

/** Every record of `input` in `format`, as native records (or the rejection of one that cannot be mapped). */
export async function* readSource(format: SourceFormat, input: Readable, options: SourceOptions = {}): AsyncGenerator<SourceItem> {
  const { first, input: again } = await peek(input);
  const jsonDocument = format === 'json' || format === 'firebase' || format === 'keycloak' || first === '[';
  const reader = jsonDocument ? readJsonDocument : format === 'csv' || (format === 'supabase' && first !== '{') ? readCsv : readNdjson;
  const map = MAPPERS[format];
  for await (const item of reader(again)) {
    if ('rejection' in item) {
      yield item;
      continue;
    }
    try {
      yield {
        line: item.line,
        value: item.value !== null && typeof item.value === 'object' && !Array.isArray(item.value) ? map(item.value as Row, options) : item.value,
      };
    } catch (err) {
      if (!(err instanceof MappingError)) throw err;
      const email = asString((item.value as Row).email)?.toLowerCase();
      yield { line: item.line, rejection: { line: item.line, email, code: 'mapping_failed', message: err.message } };
    }
  }
}
