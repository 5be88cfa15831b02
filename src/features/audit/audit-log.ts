// Security events: written to the append-only audit log, counted, and handed to the webhooks that asked for them.
// Recording never fails or delays the request that caused it; a write that fails is logged and counted.
import { BackgroundWork } from '../../core/background-work.js';
import type { Clock } from '../../core/clock.js';
import type { Prisma } from '../../core/db.js';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import { type PageQuery, pageWindow } from '../../core/pagination.js';
import { type ChainVerdict, verifyAuditChain } from './audit-chain.js';
import type { EventContext, SecurityEvent, SecurityEventType, WrittenEventListener } from '../../kernel/events/security-events.js';

const USER_AGENT_MAX = 256;

export interface AuditQuery extends PageQuery {
  /** Events the user did or that concern their account. */
  userId?: string;
  /** Events in this organization. */
  orgId?: string;
  types?: SecurityEventType[];
  from?: Date;
  to?: Date;
}

/** The audit log: every security event the bus carries, written in order and chained (see audit-chain.ts). */
export class AuditLog {
  private readonly background = new BackgroundWork();
  private readonly listeners: WrittenEventListener[] = [];

  constructor(
    private readonly prisma: Prisma,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  onEvent(listener: WrittenEventListener): void {
    this.listeners.push(listener);
  }

  record(event: SecurityEvent, context: EventContext): void {
    const write = this.write(event, context).catch((err: unknown) => {
      this.metrics.auditWriteFailures.inc();
      this.logger.error({ err: err instanceof Error ? err.message : String(err), type: event.type }, 'could not write a security event to the audit log');
    });
    this.background.track(write);
  }

  /** Resolves once every event recorded so far is written (or has failed). */
  settled(): Promise<void> {
    return this.background.settled();
  }

  private async write(event: SecurityEvent, context: EventContext): Promise<void> {
    const row = await this.prisma.auditEvent.create({
      data: {
        type: event.type,
        actorId: event.actorId ?? null,
        targetId: event.targetId ?? null,
        ip: context.ip ?? null,
        userAgent: context.userAgent?.slice(0, USER_AGENT_MAX) ?? null,
        requestId: context.requestId ?? null,
        details: event.details ?? {},
        createdAt: new Date(this.clock.now()),
      },
    });
    for (const listener of this.listeners) await listener(row as Parameters<WrittenEventListener>[0]);
  }

  /** Walks the hash chain and names its first broken link (see audit-chain.ts). */
  verify(): Promise<ChainVerdict> {
    return verifyAuditChain(this.prisma);
  }

  /** Newest first. */
  async list(query: AuditQuery) {
    const where = {
      ...(query.userId !== undefined && { OR: [{ targetId: query.userId }, { actorId: query.userId }] }),
      ...(query.orgId !== undefined && { details: { path: ['orgId'], equals: query.orgId } }),
      ...(query.types !== undefined && query.types.length > 0 && { type: { in: query.types } }),
      ...((query.from ?? query.to) && { createdAt: { ...(query.from && { gte: query.from }), ...(query.to && { lt: query.to }) } }),
    };
    const [rows, total] = await Promise.all([
      this.prisma.auditEvent.findMany({ where, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], ...pageWindow(query) }),
      this.prisma.auditEvent.count({ where }),
    ]);
    const events = rows.map((row) => ({
      id: row.id,
      type: row.type,
      actorId: row.actorId,
      targetId: row.targetId,
      ip: row.ip,
      userAgent: row.userAgent,
      requestId: row.requestId,
      details: row.details as Record<string, unknown>,
      createdAt: row.createdAt.toISOString(),
    }));
    return { events, page: query.page, pageSize: query.pageSize, total };
  }
}

/**
 * Deletes events older than `days` through the database's audit_prune (the only DELETE its triggers let through: the
 * oldest events, never the newest, none under a day old); safe on every instance at once. Returns how many.
 */
export async function pruneAuditEvents(prisma: Prisma, clock: Clock, days: number): Promise<number> {
  const before = new Date(clock.now() - days * 24 * 60 * 60_000);
  const [row] = await prisma.$queryRaw<Array<{ pruned: bigint | number | string }>>`SELECT audit_prune(${before}::timestamptz) AS pruned`;
  return Number(row?.pruned ?? 0);
}
