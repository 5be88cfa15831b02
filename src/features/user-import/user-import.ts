// Bulk import: records checked one by one, written a batch per transaction (INSERT … FROM unnest), idempotent by
// email, with a report of every record refused and why.
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import { isUniqueViolation, type Prisma } from '../../core/db.js';
import type { Sealer } from '../../core/secret-box.js';
import { DEFAULT_ROLE } from '../../kernel/identity/roles.js';
import { NO_PASSWORD_HASH, type PasswordHasher } from '../../kernel/passwords/passwords.js';
import { type Candidate, checkRecord, distinctUsername, hashDigest, isRejection, type Rejection, usernameFromEmail } from './import-record.js';
import { BatchCollision, type BatchRows, writeBatch } from './import-sql.js';

/** One record as a source gave it: its place (line, or position in a JSON array), and the value or why it was unreadable. */
export type SourceItem = { line: number; value: unknown } | { line: number; rejection: Rejection };

export interface ImportOptions {
  /** Check everything (against the database too) and write nothing. */
  dryRun?: boolean;
  /** Told after each batch (the CLI's progress bar). */
  onProgress?: (progress: ImportProgress) => void;
  /** Told of every refused record (the CLI's report file); the summary keeps the first REJECTIONS_KEPT. */
  onRejected?: (rejection: Rejection) => void;
}

export interface ImportProgress {
  records: number;
  created: number;
  updated: number;
  rejected: number;
}

export interface ImportSummary extends ImportProgress {
  dryRun: boolean;
  /** Existing imported accounts whose password was set here since (a sign-in re-hashed it, or a change): kept. */
  passwordsKept: number;
  /** How many hashes of each format were written. */
  hashFormats: Record<string, number>;
  /** The first REJECTIONS_KEPT refusals, in order; `rejected` counts them all. */
  rejections: Rejection[];
}

export const BATCH_SIZE = 1_000;
export const REJECTIONS_KEPT = 1_000;

export interface UserImportDeps {
  prisma: Prisma;
  passwords: PasswordHasher;
  /** Seals TOTP secrets as two-factor enrolment does (the `totp` purpose key). */
  totpBox: Sealer;
  clock: Clock;
  batchSize?: number;
}

/** An existing account the batch names, read under a row lock. */
export interface ExistingAccount {
  id: string;
  email: string;
  username: string;
  usernameKey: string;
  importedAt: Date | null;
  passwordHash: string;
  importedHashDigest: string | null;
  emailVerifiedAt: Date | null;
  createdAt: Date;
  hasPassword: boolean;
}

class DryRun extends Error {
  constructor(readonly outcome: BatchRows['outcome']) {
    super('dry run: rolled back');
  }
}

export class UserImport {
  constructor(private readonly deps: UserImportDeps) {}

  /** Imports every record `source` yields; a bad record is reported, never a reason to stop. */
  async run(source: AsyncIterable<SourceItem> | Iterable<SourceItem>, options: ImportOptions = {}): Promise<ImportSummary> {
    const summary: ImportSummary = {
      dryRun: options.dryRun ?? false,
      records: 0,
      created: 0,
      updated: 0,
      rejected: 0,
      passwordsKept: 0,
      hashFormats: {},
      rejections: [],
    };
    const reject = (rejection: Rejection) => {
      summary.rejected++;
      if (summary.rejections.length < REJECTIONS_KEPT) summary.rejections.push(rejection);
      options.onRejected?.(rejection);
    };
    const knownRoles = new Set((await this.deps.prisma.role.findMany({ select: { name: true } })).map((role) => role.name));
    // The line each address was first seen on: a second record for it in the same import is refused, not merged.
    const seen = new Map<string, number>();
    let batch: Candidate[] = [];
    // One batch is written while the next is read and checked: the database's time and ours overlap. Writes still
    // run one after another, in order.
    let writing: Promise<void> = Promise.resolve();
    const flush = async () => {
      const full = batch;
      batch = [];
      await writing;
      if (full.length === 0) return;
      writing = this.writeWithRetry(full, summary.dryRun).then((written) => {
        summary.created += written.created;
        summary.updated += written.updated;
        summary.passwordsKept += written.passwordsKept;
        for (const [format, count] of Object.entries(written.hashFormats)) summary.hashFormats[format] = (summary.hashFormats[format] ?? 0) + count;
        for (const rejection of written.rejections) reject(rejection);
        options.onProgress?.({ records: summary.records, created: summary.created, updated: summary.updated, rejected: summary.rejected });
      });
      // Awaited at the next flush; until then a failure must not count as unhandled.
      writing.catch(() => {});
    };
    for await (const item of source) {
      summary.records++;
      if ('rejection' in item) {
        reject(item.rejection);
        continue;
      }
      const checked = checkRecord(item.line, item.value, this.deps.passwords, knownRoles);
      if (isRejection(checked)) {
        reject(checked);
        continue;
      }
      const first = seen.get(checked.email);
      if (first !== undefined) {
        reject({ line: item.line, email: checked.email, code: 'duplicate_email', message: `this address was already imported from line ${first}` });
        continue;
      }
      seen.set(checked.email, item.line);
      batch.push(checked);
      if (batch.length >= (this.deps.batchSize ?? BATCH_SIZE)) await flush();
    }
    await flush();
    await writing;
    // A batch's refusals arrive after the later records' own checks: put them back in line order.
    summary.rejections.sort((a, b) => a.line - b.line);
    return summary;
  }

  /**
   * One batch in one transaction. A registration that takes an address or a username between the batch's read and
   * its write is met by reading the batch again and retrying once; what still collides then is reported.
   */
  private async writeWithRetry(batch: Candidate[], dryRun: boolean): Promise<BatchRows['outcome']> {
    try {
      return await this.writeOnce(batch, dryRun, false);
    } catch (err) {
      if (!(err instanceof BatchCollision) && !collided(err)) throw err;
      return this.writeOnce(batch, dryRun, true);
    }
  }

  private async writeOnce(batch: Candidate[], dryRun: boolean, lastTry: boolean): Promise<BatchRows['outcome']> {
    const now = new Date(this.deps.clock.now());
    try {
      return await this.deps.prisma.$transaction(
        async (tx) => {
          const rows = await writeBatch(tx, batch, (existing, taken) => this.plan(batch, existing, taken, now), { lastTry, now });
          // A dry run learns exactly what the write would do, then rolls it back.
          if (dryRun) throw new DryRun(rows.outcome);
          return rows.outcome;
        },
        { timeout: 120_000, maxWait: 60_000 },
      );
    } catch (err) {
      if (err instanceof DryRun) return err.outcome;
      throw err;
    }
  }

  /**
   * What to write for a batch, given the accounts its addresses already have (locked) and the usernames taken:
   * new accounts, updates of accounts an import created, and the records refused.
   */
  private plan(batch: Candidate[], existing: Map<string, ExistingAccount>, taken: Map<string, string>, now: Date): BatchRows {
    const rows: BatchRows = {
      inserts: [],
      updates: [],
      roles: [],
      factors: [],
      outcome: { created: 0, updated: 0, passwordsKept: 0, hashFormats: {}, rejections: [] },
    };
    const { outcome } = rows;
    const claim = (name: string, email: string) => {
      const owner = taken.get(name.toLowerCase());
      if (owner !== undefined && owner !== email) return false;
      taken.set(name.toLowerCase(), email);
      return true;
    };
    const countFormat = (candidate: Candidate) => {
      if (candidate.hashFormat) outcome.hashFormats[candidate.hashFormat] = (outcome.hashFormats[candidate.hashFormat] ?? 0) + 1;
    };
    for (const candidate of batch) {
      const refuse = (code: Rejection['code'], message: string) => outcome.rejections.push({ line: candidate.line, email: candidate.email, code, message });
      const account = existing.get(candidate.email);
      if (account && account.importedAt === null) {
        refuse(
          'account_not_imported',
          'an account registered here holds this address: an import never changes it (anyone may have registered the address first)',
        );
        continue;
      }
      let username = account?.username;
      if (candidate.username !== undefined && candidate.username.toLowerCase() !== account?.usernameKey) {
        if (!claim(candidate.username, candidate.email)) {
          refuse('username_taken', `username: ${candidate.username} belongs to another account`);
          continue;
        }
        username = candidate.username;
      } else if (username === undefined) {
        username = [usernameFromEmail(candidate.email), distinctUsername(candidate.email)].find((name) => claim(name, candidate.email));
        if (username === undefined) {
          refuse('username_taken', 'no username was given and the ones made from the address are taken: give one');
          continue;
        }
      }
      const userId = account?.id ?? randomUUID();
      if (candidate.roles) for (const role of candidate.roles) rows.roles.push({ userId, role });
      if (candidate.totpSecret) rows.factors.push({ userId, secretSealed: this.deps.totpBox.seal(candidate.totpSecret) });
      if (!account) {
        const passwordHash = candidate.passwordHash ?? NO_PASSWORD_HASH;
        if (!candidate.roles) rows.roles.push({ userId, role: DEFAULT_ROLE });
        rows.inserts.push({
          id: userId,
          username,
          email: candidate.email,
          passwordHash,
          hasPassword: candidate.passwordHash !== undefined,
          emailVerifiedAt: candidate.emailVerified ? (candidate.createdAt ?? now) : null,
          createdAt: candidate.createdAt ?? now,
          importedHashDigest: hashDigest(passwordHash),
        });
        outcome.created++;
        countFormat(candidate);
        continue;
      }
      // The hash an import wrote is replaced only while it is still there: a password set here since stays.
      const hashStillImported = account.importedHashDigest !== null && hashDigest(account.passwordHash) === account.importedHashDigest;
      const replaceHash = candidate.passwordHash !== undefined && hashStillImported;
      if (candidate.passwordHash !== undefined && !hashStillImported) outcome.passwordsKept++;
      if (replaceHash) countFormat(candidate);
      const passwordHash = replaceHash ? (candidate.passwordHash as string) : account.passwordHash;
      rows.updates.push({
        id: account.id,
        username,
        passwordHash,
        hasPassword: replaceHash ? true : account.hasPassword,
        importedHashDigest: replaceHash ? hashDigest(passwordHash) : account.importedHashDigest,
        // An import proves an address the source had proven; it never takes back one proven since.
        emailVerifiedAt: account.emailVerifiedAt ?? (candidate.emailVerified ? (candidate.createdAt ?? now) : null),
        createdAt: candidate.createdAt ?? account.createdAt,
      });
      outcome.updated++;
    }
    return rows;
  }
}

/** A unique violation, as Prisma reports it for a model query (P2002) or a raw statement (SQLSTATE 23505). */
function collided(err: unknown): boolean {
  return isUniqueViolation(err) || (err instanceof Error && /23505|duplicate key value/.test(`${err.message} ${JSON.stringify(err)}`));
}
