// The audit log's hash chain: each event's canonical form, and the walk that checks every link from the oldest event.
// The database writes the chain (the audit_events_chain trigger); this file recomputes it on its own, so a changed
// trigger or hash function in the database cannot vouch for itself.
import { createHash } from 'node:crypto';
import type { Prisma } from '../../core/db.js';

/** The prevHash of the first event ever written. */
export const GENESIS_HASH = '0'.repeat(64);
const FORMAT = 'authkit-audit-v1';
const BATCH = 1_000;
const BEFORE_ANY_SEQ = '-9223372036854775808';

/** An event as the chain covers it: every field as text, as the database's audit_event_hash reads it. */
export interface ChainedEvent {
  seq: bigint;
  id: string;
  type: string;
  actorId: string | null;
  targetId: string | null;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  /** jsonb's own text form (keys sorted), as `details::text` gives it. */
  details: string;
  createdAt: Date;
  prevHash: string;
}

/**
 * SHA-256 (hex) of the canonical form: the fields in this order, each `<length in UTF-8 bytes>:<text>` or `-` for
 * null, joined by `|`. Must match audit_event_hash in the migration 20261207030616_audit_hash_chain.
 */
export function eventHash(event: ChainedEvent): string {
  const fields = [
    FORMAT,
    event.seq.toString(),
    event.id,
    event.type,
    event.actorId,
    event.targetId,
    event.ip,
    event.userAgent,
    event.requestId,
    event.details,
    event.createdAt.toISOString(),
    event.prevHash,
  ];
  const text = fields.map((field) => (field === null ? '-' : `${Buffer.byteLength(field, 'utf8')}:${field}`)).join('|');
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * How a link broke. `altered`: the event's fields no longer give its hash (edited after it was written). `missing`:
 * events between the previous one and this are gone. `relinked`: its prevHash is not the previous event's hash (that
 * event was replaced, or this one was chained elsewhere). `out_of_order`: a seq that cannot follow the previous one
 * (repeated, or below 1: written with the chaining trigger off).
 */
export type ChainBreak = 'altered' | 'missing' | 'relinked' | 'out_of_order';

export type ChainVerdict =
  | {
      ok: true;
      /** Events checked: every event in the log. */
      events: number;
      /** seq of the oldest retained event (1 until the first prune); null for an empty log. */
      firstSeq: number | null;
      /** The newest event: record it elsewhere to detect a rewrite of the whole chain later. */
      head: { seq: number; hash: string; createdAt: string } | null;
    }
  | {
      ok: false;
      /** Events checked and found intact before the first broken link. */
      events: number;
      firstBrokenSeq: number;
      eventId: string;
      reason: ChainBreak;
      message: string;
    };

interface EventRow {
  seq: string;
  id: string;
  type: string;
  actor_id: string | null;
  target_id: string | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  details: string;
  created_ms: string;
  prev_hash: string;
  hash: string;
}

function chainedEvent(row: EventRow): ChainedEvent {
  return {
    seq: BigInt(row.seq),
    id: row.id,
    type: row.type,
    actorId: row.actor_id,
    targetId: row.target_id,
    ip: row.ip,
    userAgent: row.user_agent,
    requestId: row.request_id,
    details: row.details,
    createdAt: new Date(Number(row.created_ms)),
    prevHash: row.prev_hash,
  };
}

/** What is wrong with the link from `previous` (undefined for the oldest event) to `event`, if anything. */
function brokenLink(
  event: ChainedEvent,
  storedHash: string,
  previous: { seq: bigint; hash: string } | undefined,
): { reason: ChainBreak; message: string } | undefined {
  if (previous === undefined) {
    if (event.seq < 1n) return { reason: 'out_of_order', message: `seq ${event.seq} is below 1: the event was written without the chaining trigger` };
    if (event.seq === 1n && event.prevHash !== GENESIS_HASH) return { reason: 'relinked', message: 'the first event does not start from the genesis hash' };
  } else {
    if (event.seq <= previous.seq) return { reason: 'out_of_order', message: `seq ${event.seq} follows seq ${previous.seq}` };
    if (event.seq > previous.seq + 1n) {
      const gap = event.seq - previous.seq - 1n;
      const range = gap === 1n ? `event ${previous.seq + 1n} is` : `events ${previous.seq + 1n} to ${event.seq - 1n} are`;
      return { reason: 'missing', message: `${range} missing between seq ${previous.seq} and seq ${event.seq}` };
    }
    if (event.prevHash !== previous.hash)
      return { reason: 'relinked', message: `its prevHash is not the hash of event ${previous.seq}: one of the two was replaced` };
  }
  if (eventHash(event) !== storedHash) return { reason: 'altered', message: 'its fields do not give its hash: it was changed after it was written' };
  return undefined;
}

/**
 * Walks the chain in seq order from the oldest retained event (whose prevHash is taken as the anchor) and names the
 * first broken link. Reads in batches; safe while events are appended or pruned.
 */
export async function verifyAuditChain(prisma: Prisma, batchSize = BATCH): Promise<ChainVerdict> {
  let previous: { seq: bigint; hash: string; createdAt: Date } | undefined;
  let firstSeq: bigint | undefined;
  let events = 0;
  let after = BEFORE_ANY_SEQ;
  for (;;) {
    // Qualified: the output column `seq` is text, and ORDER BY seq would sort by it (10 before 9).
    const rows = await prisma.$queryRaw<EventRow[]>`
      SELECT seq::text AS seq, id::text AS id, type, actor_id::text AS actor_id, target_id::text AS target_id, ip,
             user_agent, request_id, details::text AS details,
             (extract(epoch FROM created_at) * 1000)::bigint::text AS created_ms, prev_hash, hash
      FROM audit_events WHERE audit_events.seq > ${after}::bigint ORDER BY audit_events.seq LIMIT ${batchSize}`;
    for (const row of rows) {
      const event = chainedEvent(row);
      let broken = brokenLink(event, row.hash, previous);
      if (broken?.reason === 'missing' && (await nothingOlderThan(prisma, event.seq))) {
        // The retention sweep removed the start of the chain while this walk read it: this event is the anchor now.
        previous = undefined;
        events = 0;
        broken = brokenLink(event, row.hash, previous);
      }
      if (broken) return { ok: false, events, firstBrokenSeq: Number(event.seq), eventId: event.id, ...broken };
      firstSeq = previous === undefined ? event.seq : firstSeq;
      previous = { seq: event.seq, hash: row.hash, createdAt: event.createdAt };
      events += 1;
    }
    if (rows.length < batchSize) break;
    after = rows[rows.length - 1]?.seq ?? after;
  }
  return {
    ok: true,
    events,
    firstSeq: firstSeq === undefined ? null : Number(firstSeq),
    head: previous === undefined ? null : { seq: Number(previous.seq), hash: previous.hash, createdAt: previous.createdAt.toISOString() },
  };
}

async function nothingOlderThan(prisma: Prisma, seq: bigint): Promise<boolean> {
  const [row] = await prisma.$queryRaw<Array<{ older: boolean }>>`SELECT EXISTS (SELECT 1 FROM audit_events WHERE seq < ${seq.toString()}::bigint) AS older`;
  return row?.older === false;
}
