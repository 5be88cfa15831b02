// The claim step of the durable queues (mail, webhooks): due rows are leased to one instance at a time, and rows
// another instance holds are skipped rather than waited for.
import { Prisma as Sql } from '../generated/prisma/client.js';
import type { Prisma } from './db.js';

/** How long a claimed row is one instance's to work; past it (the instance died), another may take it. */
export const LEASE_MS = 60_000;
export const BATCH = 20;

/** 30 s, 1, 2, 4 … minutes, capped at an hour. */
export function retryDelayMs(attempts: number): number {
  return Math.min(30_000 * 2 ** Math.max(0, attempts - 1), 60 * 60_000);
}

/** The longest `last_error` a row keeps. */
const ERROR_MAX = 500;

/**
 * What a failed attempt writes to its row: the lease released, the error, and either the next try after the backoff
 * or, once `maxAttempts` is reached, the moment it was given up on.
 */
export function failedAttempt(attempts: number, maxAttempts: number, nowMs: number, error: string) {
  const givingUp = attempts >= maxAttempts;
  const data = {
    lockedUntil: null,
    lastError: error.slice(0, ERROR_MAX),
    ...(givingUp ? { failedAt: new Date(nowMs) } : { nextAttemptAt: new Date(nowMs + retryDelayMs(attempts)) }),
  };
  return { givingUp, data };
}

/**
 * Leases up to BATCH due rows of `table` (not done, not given up on, due, unleased) and counts the attempt.
 * `done` names the column set when a row succeeds; `columns` the ones to return (as `"column" AS "field"`).
 */
export async function claimDue<T>(
  prisma: Prisma,
  table: 'outbound_emails' | 'webhook_deliveries',
  done: 'sent_at' | 'delivered_at',
  columns: string,
  nowMs: number,
): Promise<T[]> {
  const now = new Date(nowMs);
  const leaseUntil = new Date(nowMs + LEASE_MS);
  return prisma.$queryRaw<T[]>(Sql.sql`
    UPDATE ${Sql.raw(table)} SET locked_until = ${leaseUntil}, attempts = attempts + 1
    WHERE id IN (
      SELECT id FROM ${Sql.raw(table)}
      WHERE ${Sql.raw(done)} IS NULL AND failed_at IS NULL AND next_attempt_at <= ${now} AND (locked_until IS NULL OR locked_until <= ${now})
      ORDER BY next_attempt_at
      LIMIT ${BATCH}
      FOR UPDATE SKIP LOCKED
    )
    RETURNING ${Sql.raw(columns)}`);
}

/**
 * Runs `pass` again and again until it claims less than a batch, one run at a time per process, in the background;
 * a kick during a run asks for one more. Never rejects (failures go to `onError`).
 */
export class Kicker {
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;

  constructor(
    private readonly pass: () => Promise<number>,
    private readonly onError: (err: unknown) => void,
  ) {}

  kick(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          while ((await this.pass()) === BATCH);
        } catch (err) {
          this.onError(err);
        }
      } while (this.again && !this.closed);
    })().finally(() => {
      this.running = undefined;
    });
  }

  /** Resolves when the current run (if any) is over. */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.settled();
  }
}
