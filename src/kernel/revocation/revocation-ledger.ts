// The database's record of the revocations the shared store holds, so a store that lost them (a Redis failover to a
// replica that had not received them yet, a restarted Redis, an embedded server's restart) is given them again.
import type { Prisma } from '../../core/db.js';

export interface RevocationRecord {
  /** The store's key for it, without the prefix. */
  key: string;
  /** Until when it voids tokens (ms since the epoch). */
  deadlineMs: number;
  /** For a cutoff: tokens issued before this instant are void. */
  cutoffMs?: number;
}

export interface RevocationLedger {
  /** Records entries; an entry already recorded keeps the later cutoff and the later deadline. */
  record(entries: RevocationRecord[]): Promise<void>;
  /** Every entry whose deadline is still ahead of `nowMs`. */
  live(nowMs: number): Promise<RevocationRecord[]>;
  /** Deletes the entries whose deadline has passed; answers how many. */
  prune(nowMs: number): Promise<number>;
}

export class PrismaRevocationLedger implements RevocationLedger {
  constructor(private readonly prisma: Prisma) {}

  async record(entries: RevocationRecord[]): Promise<void> {
    if (entries.length === 0) return;
    // One statement for any number of entries; a cutoff or deadline only ever moves later (GREATEST skips NULL).
    await this.prisma.$executeRaw`
      INSERT INTO revocation_entries (key, cutoff_ms, deadline_ms)
      SELECT * FROM unnest(${entries.map((entry) => entry.key)}::text[], ${entries.map((entry) => (entry.cutoffMs === undefined ? null : String(Math.floor(entry.cutoffMs))))}::bigint[], ${entries.map((entry) => String(Math.ceil(entry.deadlineMs)))}::bigint[])
      ON CONFLICT (key) DO UPDATE SET
        cutoff_ms = GREATEST(revocation_entries.cutoff_ms, EXCLUDED.cutoff_ms),
        deadline_ms = GREATEST(revocation_entries.deadline_ms, EXCLUDED.deadline_ms)`;
  }

  async live(nowMs: number): Promise<RevocationRecord[]> {
    const rows = await this.prisma.revocationEntry.findMany({ where: { deadlineMs: { gt: BigInt(Math.floor(nowMs)) } } });
    return rows.map((row) => ({ key: row.key, deadlineMs: Number(row.deadlineMs), ...(row.cutoffMs !== null && { cutoffMs: Number(row.cutoffMs) }) }));
  }

  async prune(nowMs: number): Promise<number> {
    return (await this.prisma.revocationEntry.deleteMany({ where: { deadlineMs: { lte: BigInt(Math.floor(nowMs)) } } })).count;
  }
}
