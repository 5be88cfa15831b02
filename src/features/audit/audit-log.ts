// Security events: written to the append-only audit log, counted, and handed to the webhooks that asked for them.
// Recording never fails or delays the request that caused it; a write that fails is logged and counted.
import type { Clock } from '../../core/clock.js';
import type { Prisma } from '../../core/db.js';
import type { Logger } from '../../core/logger.js';
import type { LoginOutcome, Metrics } from '../../core/metrics.js';
import { type PageQuery, pageWindow } from '../../core/pagination.js';
import { type ChainVerdict, verifyAuditChain } from './audit-chain.js';

export const SECURITY_EVENT_TYPES = [
  'user.registered',
  'session.signed_in',
  'session.sign_in_failed',
  'session.signed_out',
  'session.signed_out_everywhere',
  'session.refresh_reuse_detected',
  'password.changed',
  'password.reset',
  'email.changed',
  'mfa.enabled',
  'mfa.disabled',
  'mfa.recovery_code_used',
  'passkey.added',
  'passkey.removed',
  'api_key.created',
  'api_key.revoked',
  'role.granted',
  'role.revoked',
  'account.disabled',
  'account.enabled',
  'account.deleted',
  'rate_limit.reset',
] as const;
export type SecurityEventType = (typeof SECURITY_EVENT_TYPES)[number];

/** What each event is called where a person reads it (the browser page asks GET /audit/event-types). */
export const SECURITY_EVENT_LABELS: Record<SecurityEventType, string> = {
  'user.registered': 'Account created',
  'session.signed_in': 'Signed in',
  'session.sign_in_failed': 'Failed sign-in',
  'session.signed_out': 'Signed out',
  'session.signed_out_everywhere': 'Signed out everywhere',
  'session.refresh_reuse_detected': 'A stolen session token was used; that session was ended',
  'password.changed': 'Password changed',
  'password.reset': 'Password reset by email',
  'email.changed': 'Email address changed',
  'mfa.enabled': 'Two-factor turned on',
  'mfa.disabled': 'Two-factor turned off',
  'mfa.recovery_code_used': 'Recovery code used',
  'passkey.added': 'Passkey added',
  'passkey.removed': 'Passkey deleted',
  'api_key.created': 'API key created',
  'api_key.revoked': 'API key revoked',
  'role.granted': 'Role granted',
  'role.revoked': 'Role removed',
  'account.disabled': 'Account disabled',
  'account.enabled': 'Account enabled',
  'account.deleted': 'Account deleted',
  'rate_limit.reset': 'Rate limit reset by an administrator',
};

export interface SecurityEvent {
  type: SecurityEventType;
  /** Who did it (the signed-in user or administrator); absent for an anonymous request. */
  actorId?: string | null;
  /** Whose account it concerns. */
  targetId?: string | null;
  /** A few facts (method, reason, a name); never a secret. */
  details?: Record<string, string | number | boolean | null>;
}

/** Where a request came from, as the log keeps it. */
export interface EventContext {
  ip?: string;
  userAgent?: string;
  requestId?: string;
}

export interface SecurityEvents {
  record(event: SecurityEvent, context: EventContext): void;
}

/** Told of each event once it is written (the webhooks' queue). */
export type EventListener = (event: {
  id: string;
  type: SecurityEventType;
  targetId: string | null;
  actorId: string | null;
  details: unknown;
  createdAt: Date;
}) => Promise<void>;

const USER_AGENT_MAX = 256;

export interface AuditQuery extends PageQuery {
  /** Events the user did or that concern their account. */
  userId?: string;
  types?: SecurityEventType[];
  from?: Date;
  to?: Date;
}

export class AuditLog implements SecurityEvents {
  private readonly pending = new Set<Promise<void>>();
  private readonly listeners: EventListener[] = [];

  constructor(
    private readonly prisma: Prisma,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  onEvent(listener: EventListener): void {
    this.listeners.push(listener);
  }

  record(event: SecurityEvent, context: EventContext): void {
    const write = this.write(event, context).catch((err: unknown) => {
      this.metrics.auditWriteFailures.inc();
      this.logger.error({ err: err instanceof Error ? err.message : String(err), type: event.type }, 'could not write a security event to the audit log');
    });
    this.pending.add(write);
    void write.finally(() => this.pending.delete(write));
  }

  /** Resolves once every event recorded so far is written (or has failed). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
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
    for (const listener of this.listeners) await listener(row as Parameters<EventListener>[0]);
  }

  /** Walks the hash chain and names its first broken link (see audit-chain.ts). */
  verify(): Promise<ChainVerdict> {
    return verifyAuditChain(this.prisma);
  }

  /** Newest first. */
  async list(query: AuditQuery) {
    const where = {
      ...(query.userId !== undefined && { OR: [{ targetId: query.userId }, { actorId: query.userId }] }),
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

/** `password_confirmation`: a signed-in user typing their password again (step-up, account changes). */
export type SignInMethod = 'password' | 'password_confirmation' | 'passkey' | 'email_code' | 'totp' | 'recovery_code' | 'passkey_second_factor';

/** Every sign-in attempt, counted by method and outcome, and written to the audit log when it succeeds or fails. */
export class SignInRecorder {
  constructor(
    private readonly events: SecurityEvents,
    private readonly metrics: Metrics,
  ) {}

  succeeded(userId: string, method: SignInMethod, context: EventContext): void {
    this.metrics.logins.inc({ method, outcome: 'success' });
    this.events.record({ type: 'session.signed_in', actorId: userId, targetId: userId, details: { method } }, context);
  }

  /** `userId` when the attempt named an existing account. */
  failed(method: SignInMethod, reason: Exclude<LoginOutcome, 'success' | 'mfa_required'>, context: EventContext, userId?: string): void {
    this.metrics.logins.inc({ method, outcome: reason });
    this.events.record({ type: 'session.sign_in_failed', targetId: userId ?? null, details: { method, reason } }, context);
  }

  /** The first step passed; the second is asked for (counted, not logged: nobody is signed in yet). */
  secondFactorNeeded(method: SignInMethod): void {
    this.metrics.logins.inc({ method, outcome: 'mfa_required' });
  }

  recoveryCodeUsed(userId: string, context: EventContext): void {
    this.events.record({ type: 'mfa.recovery_code_used', actorId: userId, targetId: userId }, context);
  }
}
