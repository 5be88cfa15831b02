// Security events: what a use case did, told to whoever subscribed (the audit log, the notices, the webhooks).
import type { Logger } from '../../core/logger.js';
import type { LoginOutcome, Metrics } from '../../core/metrics.js';

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
  'identity.linked',
  'identity.unlinked',
  'org.created',
  'org.updated',
  'org.deleted',
  'org.member_role_changed',
  'org.member_removed',
  'org.invitation_sent',
  'org.invitation_accepted',
  'org.invitation_revoked',
  'org.role_defined',
  'org.role_deleted',
  'users.imported',
  'users.exported',
  'account.exported',
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
  'identity.linked': 'Outside sign-in linked',
  'identity.unlinked': 'Outside sign-in unlinked',
  'org.created': 'Organization created',
  'org.updated': 'Organization changed',
  'org.deleted': 'Organization deleted',
  'org.member_role_changed': "A member's role in an organization changed",
  'org.member_removed': 'A member left or was removed from an organization',
  'org.invitation_sent': 'Invitation to an organization sent',
  'org.invitation_accepted': 'Invitation to an organization accepted',
  'org.invitation_revoked': 'Invitation to an organization withdrawn',
  'org.role_defined': 'Organization role defined or changed',
  'org.role_deleted': 'Organization role deleted',
  'users.imported': 'Users imported by an administrator',
  'users.exported': 'Users exported by an administrator',
  'account.exported': 'Account data downloaded',
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

/** Where a use case reports what it did: the audit log, the notices and the webhooks subscribe to it. */
export interface SecurityEvents {
  record(event: SecurityEvent, context: EventContext): void;
}

/** Told of each event once the audit log has written it, with its id and time (the webhooks' queue). */
export type WrittenEventListener = (event: {
  id: string;
  type: SecurityEventType;
  targetId: string | null;
  actorId: string | null;
  details: unknown;
  createdAt: Date;
}) => Promise<void>;

/** Told of each event as it is recorded, in the request that caused it; it must not throw or wait. */
export type SecurityEventSubscriber = (event: SecurityEvent, context: EventContext) => void;

/**
 * The one place events go: each subscriber hears every event, in the order they subscribed. A subscriber that throws
 * is logged and the others still hear the event, so a broken notice never fails a sign-in.
 */
export class SecurityEventBus implements SecurityEvents {
  private readonly subscribers: SecurityEventSubscriber[] = [];

  constructor(private readonly logger: Logger) {}

  subscribe(subscriber: SecurityEventSubscriber): void {
    this.subscribers.push(subscriber);
  }

  record(event: SecurityEvent, context: EventContext): void {
    for (const subscriber of this.subscribers) {
      try {
        subscriber(event, context);
      } catch (err) {
        this.logger.error({ err: err instanceof Error ? err.message : String(err), type: event.type }, 'a security event subscriber failed');
      }
    }
  }
}

/** `password_confirmation`: a signed-in user typing their password again (step-up, account changes). */
export type SignInMethod = 'password' | 'password_confirmation' | 'passkey' | 'email_code' | 'totp' | 'recovery_code' | 'passkey_second_factor' | 'provider';

/** Every sign-in attempt, counted by method and outcome, and written to the audit log when it succeeds or fails. */
export class SignInRecorder {
  constructor(
    private readonly events: SecurityEvents,
    private readonly metrics: Metrics,
  ) {}

  /** `newBrowser`: the browser carried no device cookie for this account (its owner is told by email). */
  succeeded(userId: string, method: SignInMethod, context: EventContext, { newBrowser, provider }: { newBrowser: boolean; provider?: string }): void {
    this.metrics.logins.inc({ method, outcome: 'success' });
    const details = { method, newBrowser, ...(provider !== undefined && { provider }) };
    this.events.record({ type: 'session.signed_in', actorId: userId, targetId: userId, details }, context);
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
