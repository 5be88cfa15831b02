// The statements of one import batch: read the accounts it names under a row lock, then write every new account,
// update, role and second factor with one statement each (arrays through unnest), whatever the batch's size.
import type { Prisma } from '../../core/db.js';
import { type Candidate, distinctUsername, type Rejection, usernameFromEmail } from './import-record.js';
import type { ExistingAccount } from './user-import.js';

type Transaction = Parameters<Parameters<Prisma['$transaction']>[0]>[0];

/** Imports take turns batch by batch, so two of them naming one address cannot both insert it. */
const IMPORT_LOCK = 7_311_944;

export interface BatchRows {
  inserts: Array<{
    id: string;
    username: string;
    email: string;
    passwordHash: string;
    hasPassword: boolean;
    emailVerifiedAt: Date | null;
    createdAt: Date;
    importedHashDigest: string;
  }>;
  updates: Array<{
    id: string;
    username: string;
    passwordHash: string;
    hasPassword: boolean;
    importedHashDigest: string | null;
    emailVerifiedAt: Date | null;
    createdAt: Date;
  }>;
  roles: Array<{ userId: string; role: string }>;
  factors: Array<{ userId: string; secretSealed: string }>;
  outcome: { created: number; updated: number; passwordsKept: number; hashFormats: Record<string, number>; rejections: Rejection[] };
}

/** A registration took an address or a username between the batch's read and its write: read again and retry. */
export class BatchCollision extends Error {}

const iso = (date: Date | null) => date?.toISOString() ?? null;

/**
 * Runs one batch inside `tx`: `plan` decides from the locked accounts and the taken usernames what to write. On the
 * last try, a record whose address or username was taken meanwhile is reported instead of retried.
 */
export async function writeBatch(
  tx: Transaction,
  batch: Candidate[],
  plan: (existing: Map<string, ExistingAccount>, taken: Map<string, string>) => BatchRows,
  options: { lastTry: boolean; now: Date },
): Promise<BatchRows> {
  await tx.$queryRawUnsafe('SELECT pg_advisory_xact_lock($1::bigint)::text', IMPORT_LOCK);
  const existing = await tx.$queryRawUnsafe<ExistingAccount[]>(
    `SELECT id::text, email, username, username_key AS "usernameKey", imported_at AS "importedAt", password_hash AS "passwordHash",
            imported_hash_digest AS "importedHashDigest", email_verified_at AS "emailVerifiedAt", created_at AS "createdAt", has_password AS "hasPassword"
       FROM users WHERE email = ANY($1::text[]) FOR UPDATE`,
    batch.map((candidate) => candidate.email),
  );
  const names = batch.flatMap((candidate) =>
    candidate.username
      ? [candidate.username.toLowerCase()]
      : [usernameFromEmail(candidate.email), distinctUsername(candidate.email)].map((name) => name.toLowerCase()),
  );
  const taken = await tx.$queryRawUnsafe<Array<{ key: string; email: string }>>(
    'SELECT username_key AS key, email FROM users WHERE username_key = ANY($1::text[])',
    names,
  );
  const rows = plan(new Map(existing.map((account) => [account.email, account])), new Map(taken.map((row) => [row.key, row.email])));
  const now = options.now.toISOString();

  const inserted = new Set<string>();
  if (rows.inserts.length > 0) {
    const created = await tx.$queryRawUnsafe<Array<{ id: string }>>(
      `INSERT INTO users (id, username, username_key, email, password_hash, has_password, email_verified_at, created_at, updated_at, imported_at, imported_hash_digest)
       SELECT id, username, lower(username), email, password_hash, has_password, email_verified_at, created_at, $9::timestamptz, $9::timestamptz, digest
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::boolean[], $6::timestamptz[], $7::timestamptz[], $8::text[])
           AS t(id, username, email, password_hash, has_password, email_verified_at, created_at, digest)
       ON CONFLICT DO NOTHING
       RETURNING id::text`,
      rows.inserts.map((row) => row.id),
      rows.inserts.map((row) => row.username),
      rows.inserts.map((row) => row.email),
      rows.inserts.map((row) => row.passwordHash),
      rows.inserts.map((row) => row.hasPassword),
      rows.inserts.map((row) => iso(row.emailVerifiedAt)),
      rows.inserts.map((row) => iso(row.createdAt)),
      rows.inserts.map((row) => row.importedHashDigest),
      now,
    );
    for (const row of created) inserted.add(row.id);
    const missed = rows.inserts.filter((row) => !inserted.has(row.id));
    if (missed.length > 0 && !options.lastTry) throw new BatchCollision();
    for (const row of missed) {
      const line = batch.find((candidate) => candidate.email === row.email)?.line ?? 0;
      rows.outcome.created--;
      rows.outcome.rejections.push({
        line,
        email: row.email,
        code: 'account_created_meanwhile',
        message: 'an account took this address or username while the import ran: run the import again',
      });
    }
  }

  if (rows.updates.length > 0) {
    await tx.$executeRawUnsafe(
      `UPDATE users AS u
          SET username = v.username, username_key = lower(v.username), password_hash = v.password_hash, has_password = v.has_password,
              imported_hash_digest = v.digest, email_verified_at = v.email_verified_at, created_at = v.created_at, updated_at = $8::timestamptz
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::boolean[], $5::text[], $6::timestamptz[], $7::timestamptz[])
           AS v(id, username, password_hash, has_password, digest, email_verified_at, created_at)
        WHERE u.id = v.id`,
      rows.updates.map((row) => row.id),
      rows.updates.map((row) => row.username),
      rows.updates.map((row) => row.passwordHash),
      rows.updates.map((row) => row.hasPassword),
      rows.updates.map((row) => row.importedHashDigest),
      rows.updates.map((row) => iso(row.emailVerifiedAt)),
      rows.updates.map((row) => iso(row.createdAt)),
      now,
    );
  }

  // Only for accounts that exist now: a new one another registration beat us to has none of this.
  const present = new Set([...inserted, ...rows.updates.map((row) => row.id)]);
  const roles = rows.roles.filter((row) => present.has(row.userId));
  if (roles.length > 0) {
    // Granted, never removed: taking a role away is the admin API's (it voids the tokens that carry it).
    await tx.$executeRawUnsafe(
      'INSERT INTO user_roles (user_id, role_name) SELECT * FROM unnest($1::uuid[], $2::text[]) ON CONFLICT DO NOTHING',
      roles.map((row) => row.userId),
      roles.map((row) => row.role),
    );
  }
  const factors = rows.factors.filter((row) => present.has(row.userId));
  if (factors.length > 0) {
    // An account that has a second factor here keeps it.
    await tx.$executeRawUnsafe(
      `INSERT INTO mfa_factors (user_id, secret_enc, enabled_at, created_at)
       SELECT user_id, secret_enc, $3::timestamptz, $3::timestamptz FROM unnest($1::uuid[], $2::text[]) AS t(user_id, secret_enc)
       ON CONFLICT (user_id) DO NOTHING`,
      factors.map((row) => row.userId),
      factors.map((row) => row.secretSealed),
      now,
    );
  }
  return rows;
}
