// Logins as refresh-token families: start one, rotate its token, list them, and revoke them everywhere.
import type { ClientContext } from '../identity/client-context.js';
import { createHmac } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import type { Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import type { RevocationStore } from '../revocation/revocation-store.js';
import { type AccessTokens, type AccessTokenSubject, hashToken, newRefreshToken, type OrgClaims, REFRESH_TOKEN_PREFIX } from '../tokens/tokens.js';
import { type PublicUser, toPublicUser } from '../identity/user-schemas.js';
import type { SecurityEvents } from '../events/security-events.js';
import type { Metrics } from '../../core/metrics.js';
import type { AuthContext } from '../authenticate/authenticate.js';
import { dpopRefusal } from '../tokens/dpop.js';
import type { OrgAccess } from '../authenticate/org-access.js';
import { orgNotFound } from '../authenticate/org-access.js';

export interface SessionSettings {
  sessionTtlS: number;
  refreshReuseIntervalS: number;
  accessTokenTtlS: number;
  jwtClockToleranceS: number;
}

/**
 * The methods of two proofs made in one session (RFC 8176 values). Knowing the password (`pwd`) and holding the mailbox
 * or an authenticator (`otp`, `hwk`) are two factors, so `mfa` is added when both kinds are there.
 */
export function combineProofs(before: string[], proved: string[]): string[] {
  const amr = new Set([...before, ...proved]);
  if (amr.has('pwd') && (amr.has('otp') || amr.has('hwk'))) amr.add('mfa');
  return [...amr];
}

export interface TokenPair {
  access_token: string;
  /** DPoP when the session is bound to a key (RFC 9449): send the token as `Authorization: DPoP` with a proof. */
  token_type: 'Bearer' | 'DPoP';
  expires_in: number;
  refresh_token: string;
}

/** How a client sends a token: as DPoP when the session is bound to a key (`dpopJkt`), else as Bearer. */
function tokenType(dpopJkt: string | undefined): TokenPair['token_type'] {
  return dpopJkt === undefined ? 'Bearer' : 'DPoP';
}

export interface SessionView {
  id: string;
  createdAt: string;
  lastUsedAt: string;
  expiresAt: string;
  userAgent: string | null;
  ip: string | null;
  current: boolean;
}

const USER_AGENT_MAX = 256;
const ENDED_SESSION_RETENTION_MS = 24 * 60 * 60 * 1000;

/**
 * Deletes sessions that ended (expired or revoked) more than a day ago, with their refresh tokens; until then a
 * revoked session's rotated tokens still identify a replay. Safe to run on every instance at once. Returns how many.
 */
export async function pruneEndedSessions(prisma: Prisma, clock: Clock): Promise<number> {
  const cutoff = new Date(clock.now() - ENDED_SESSION_RETENTION_MS);
  const { count } = await prisma.session.deleteMany({ where: { OR: [{ expiresAt: { lt: cutoff } }, { revokedAt: { lt: cutoff } }] } });
  return count;
}

export interface SessionDeps {
  prisma: Prisma;
  clock: Clock;
  tokens: AccessTokens;
  revocations: RevocationStore;
  settings: SessionSettings;
  /** Derives each refresh token's successor; see `refresh`. */
  successorKey: Buffer;
  events: SecurityEvents;
  metrics: Metrics;
  /** Members' roles, read whenever a token speaks for an organization. */
  orgs: Pick<OrgAccess, 'standing'>;
}

export class Sessions {
  private readonly prisma: Prisma;
  private readonly clock: Clock;
  private readonly tokens: AccessTokens;
  private readonly revocations: RevocationStore;
  private readonly settings: SessionSettings;
  private readonly successorKey: Buffer;
  private readonly events: SecurityEvents;
  private readonly metrics: Metrics;
  private readonly orgs: Pick<OrgAccess, 'standing'>;
  private readonly endedListeners: ((sessionIds: string[]) => void)[] = [];

  constructor(deps: SessionDeps) {
    ({
      prisma: this.prisma,
      clock: this.clock,
      tokens: this.tokens,
      revocations: this.revocations,
      settings: this.settings,
      successorKey: this.successorKey,
      events: this.events,
      metrics: this.metrics,
      orgs: this.orgs,
    } = deps);
  }

  /** How long a revocation must be remembered: as long as any access token it voids can live. */
  get revocationTtlMs(): number {
    return (this.settings.accessTokenTtlS + this.settings.jwtClockToleranceS) * 1000;
  }

  /** Opens a session for a user who just proved who they are, and issues its first token pair. */
  async start(user: { id: string; username: string; roles: string[] }, client: ClientContext, amr: string[]): Promise<TokenPair> {
    const now = new Date(this.clock.now());
    const refresh = newRefreshToken();
    const session = await this.prisma.session.create({
      data: {
        userId: user.id,
        userAgent: client.userAgent?.slice(0, USER_AGENT_MAX) ?? null,
        ip: client.ip ?? null,
        amr,
        dpopJkt: client.dpopJkt ?? null,
        createdAt: now,
        lastUsedAt: now,
        expiresAt: new Date(now.getTime() + this.settings.sessionTtlS * 1000),
        refreshTokens: { create: { tokenHash: refresh.hash, createdAt: now } },
      },
    });
    return this.pair(
      { userId: user.id, username: user.username, sessionId: session.id, roles: user.roles, amr, authTimeMs: now.getTime(), dpopJkt: client.dpopJkt },
      refresh.token,
    );
  }

  /**
   * Exchanges a refresh token for a new pair. A token already exchanged within the reuse interval is another
   * tab refreshing at the same moment and succeeds; after it, it is a stolen copy and the whole session dies.
   */
  async refresh(refreshToken: string, client: ClientContext = {}): Promise<TokenPair & { user: PublicUser }> {
    // The successor is a function of the token (keyed with a secret), so every replay inside the grace interval is
    // handed the one successor the first exchange stored: a session never has two live refresh tokens.
    const record = await this.prisma.refreshToken.findUnique({
      where: { tokenHash: hashToken(refreshToken) },
      include: { session: { include: { user: { include: { roles: true } } } } },
    });
    if (!record) return this.refused('refresh_token_invalid');
    const { session } = record;
    const nowMs = this.clock.now();
    const now = new Date(nowMs);
    if (session.user.disabledAt) return this.refused('account_unavailable');
    if (session.revokedAt) return this.refused('session_revoked');
    if (session.expiresAt.getTime() <= nowMs) return this.refused('session_expired');
    // A bound session's refresh token is worth nothing without a proof by its key (RFC 9449 §5).
    if (session.dpopJkt !== null && session.dpopJkt !== client.dpopJkt) {
      this.metrics.refreshes.inc({ outcome: 'invalid' });
      throw dpopRefusal('this session is bound to a DPoP key: send a proof made with it');
    }

    const successor = this.successorOf(refreshToken);
    const claimed = record.rotatedAt === null && (await this.rotate(record.id, session.id, hashToken(successor), now));
    if (!claimed) {
      // Rotated before (or by a request racing this one): a replay, judged from the moment of rotation.
      const rotatedAt = record.rotatedAt ?? (await this.prisma.refreshToken.findUnique({ where: { id: record.id } }))?.rotatedAt ?? now;
      if (nowMs - rotatedAt.getTime() > this.settings.refreshReuseIntervalS * 1000) {
        await this.revoke({ id: session.id }, 'refresh_token_reuse');
        this.metrics.refreshes.inc({ outcome: 'theft_detected' });
        this.events.record({ type: 'session.refresh_reuse_detected', targetId: session.userId, details: { sessionId: session.id } }, client);
        throw new AppError('refresh_token_reused');
      }
    }
    this.metrics.refreshes.inc({ outcome: claimed ? 'rotated' : 'grace_replay' });
    const user = toPublicUser(session.user);
    // The organization the session speaks for, with the member's role as it is now (or none: they left it).
    const org = session.orgId === null ? undefined : await this.orgClaims(session.orgId, user.id);
    if (session.orgId !== null && org === undefined) await this.prisma.session.updateMany({ where: { id: session.id }, data: { orgId: null } });
    // A refresh proves nothing new: the access token says the user last signed in when the session began.
    const subject = {
      userId: user.id,
      username: user.username,
      sessionId: session.id,
      roles: user.roles,
      amr: session.amr,
      authTimeMs: session.createdAt.getTime(),
      dpopJkt: session.dpopJkt ?? undefined,
      org,
    };
    const pair = this.pair(subject, successor, nowMs);
    return { ...pair, user };
  }

  /**
   * Claims the token and stores its successor, and touches the session, in one statement: they commit together (a
   * successor exists exactly when its token is rotated) and cost one round trip rather than a transaction's five.
   * False when the token was claimed already (by a request racing this one, perhaps).
   */
  private async rotate(tokenId: string, sessionId: string, successorHash: string, now: Date): Promise<boolean> {
    const at = now.toISOString();
    const [row] = await this.prisma.$queryRaw<Array<{ claimed: bigint | number }>>`
      WITH claimed AS (
        UPDATE refresh_tokens SET rotated_at = ${at}::timestamptz WHERE id = ${tokenId}::uuid AND rotated_at IS NULL RETURNING session_id
      ), successor AS (
        INSERT INTO refresh_tokens (id, session_id, token_hash, created_at)
        SELECT gen_random_uuid(), session_id, ${successorHash}, ${at}::timestamptz FROM claimed RETURNING id
      ), touched AS (
        UPDATE sessions SET last_used_at = ${at}::timestamptz WHERE id = ${sessionId}::uuid AND EXISTS (SELECT 1 FROM claimed) RETURNING id
      )
      SELECT count(*) AS claimed FROM successor`;
    return Number(row?.claimed ?? 0) === 1;
  }

  private refused(reason: 'refresh_token_invalid' | 'session_revoked' | 'session_expired' | 'account_unavailable'): never {
    this.metrics.refreshes.inc({ outcome: 'invalid' });
    throw new AppError(reason);
  }

  /** Active sessions of a user, newest first. */
  async list(userId: string, currentSessionId?: string): Promise<SessionView[]> {
    const sessions = await this.prisma.session.findMany({
      where: { userId, revokedAt: null, expiresAt: { gt: new Date(this.clock.now()) } },
      orderBy: { createdAt: 'desc' },
    });
    return sessions.map((session) => ({
      id: session.id,
      createdAt: session.createdAt.toISOString(),
      lastUsedAt: session.lastUsedAt.toISOString(),
      expiresAt: session.expiresAt.toISOString(),
      userAgent: session.userAgent,
      ip: session.ip,
      current: session.id === currentSessionId,
    }));
  }

  /**
   * Ends the matching active sessions: their refresh tokens stop working and their access tokens are voided on
   * every instance. The shared store is written first, so a failure never leaves a live token behind.
   * Returns how many sessions were ended.
   */
  async revoke(where: { id?: string; userId?: string; excludeId?: string }, reason: string): Promise<number> {
    const sessions = await this.prisma.session.findMany({
      where: {
        revokedAt: null,
        ...(where.id !== undefined && { id: where.id }),
        ...(where.userId !== undefined && { userId: where.userId }),
        ...(where.excludeId !== undefined && { NOT: { id: where.excludeId } }),
      },
      select: { id: true },
    });
    const ids = sessions.map((session) => session.id);
    if (ids.length === 0) return 0;
    await this.revocations.revokeSessions(ids, this.revocationTtlMs);
    await this.prisma.session.updateMany({
      where: { id: { in: ids }, revokedAt: null },
      data: { revokedAt: new Date(this.clock.now()), revokedReason: reason },
    });
    for (const listener of this.endedListeners) listener(ids);
    return ids.length;
  }

  /** Tells `listener` of every session ended here (what stands on a session ends with it: the OpenID provider's). */
  onEnded(listener: (sessionIds: string[]) => void): void {
    this.endedListeners.push(listener);
  }

  /**
   * A fresh access token for the same session after a step-up. Its `amr` is what the session proved before plus what
   * the step-up proved (`proved`): two different proofs within one session are two factors (`mfa`). It speaks for the
   * same organization as the token it replaces, with the member's role as it is now.
   */
  async reauthenticated(
    auth: { userId: string; username: string; sessionId: string; roles: string[]; amr: string[]; dpopJkt?: string; org?: OrgClaims },
    proved: string[],
  ): Promise<Omit<TokenPair, 'refresh_token'>> {
    const nowMs = this.clock.now();
    const amr = combineProofs(auth.amr, proved);
    const org = auth.org && (await this.orgClaims(auth.org.id, auth.userId));
    const { token } = this.tokens.sign({ ...auth, amr, authTimeMs: nowMs, org }, nowMs);
    return { access_token: token, token_type: tokenType(auth.dpopJkt), expires_in: this.settings.accessTokenTtlS };
  }

  /**
   * Makes `orgId` the organization the caller's session speaks for (null: none) and returns an access token that
   * says so, for the same session: `org_id`, and the member's `org_role` and `org_permissions` as they are now.
   * 404 `org_not_found` unless the caller is a member.
   */
  async switchOrg(auth: AuthContext, requested: string | null): Promise<Omit<TokenPair, 'refresh_token'>> {
    const orgId = requested?.toLowerCase() ?? null;
    const nowMs = this.clock.now();
    const org = orgId === null ? undefined : await this.orgClaims(orgId, auth.userId);
    if (orgId !== null && org === undefined) throw orgNotFound();
    const moved = await this.prisma.session.updateMany({
      where: { id: auth.sessionId, userId: auth.userId, revokedAt: null, expiresAt: { gt: new Date(nowMs) } },
      data: { orgId },
    });
    if (moved.count === 0) throw new AppError('session_revoked');
    const { token } = this.tokens.sign(
      {
        userId: auth.userId,
        username: auth.username,
        sessionId: auth.sessionId,
        roles: auth.roles,
        amr: auth.amr,
        authTimeMs: auth.authTimeMs,
        dpopJkt: auth.dpopJkt,
        org,
      },
      nowMs,
    );
    return { access_token: token, token_type: tokenType(auth.dpopJkt), expires_in: this.settings.accessTokenTtlS };
  }

  /**
   * Voids, on every instance, the tokens these users hold for the organization (their role changed, they left, it
   * was deleted); their sessions live on, and a refresh issues a token with what holds now. The cutoff is taken
   * after the change is committed, and tokens are stamped with the time before the role was read (see sign), so a
   * token can never carry a role read before a change and be stamped after its cutoff.
   */
  async revokeOrgAccess(orgId: string, userIds: string[]): Promise<void> {
    await this.revocations.revokeOrgTokensBefore(orgId, userIds, this.clock.now() + 1, this.revocationTtlMs);
  }

  /** The member's organization claims as they are now, or undefined when they are no member. */
  private async orgClaims(orgId: string, userId: string): Promise<OrgClaims | undefined> {
    const standing = await this.orgs.standing(orgId, userId);
    return standing && { id: orgId, role: standing.role, permissions: standing.permissions };
  }

  /** Logout: ends the caller's session and voids the access token they used, on every instance. */
  async logout(auth: AuthContext, client: ClientContext): Promise<void> {
    await this.revocations.revokeToken(auth.jti, Math.max(0, auth.expiresAtMs - this.clock.now()) + this.revocationTtlMs);
    await this.revoke({ id: auth.sessionId }, 'logout');
    this.events.record({ type: 'session.signed_out', actorId: auth.userId, targetId: auth.userId }, client);
  }

  /** Logout everywhere: every session of the caller ends, and every access token issued so far stops working. */
  async logoutEverywhere(auth: AuthContext, client: ClientContext): Promise<void> {
    await this.revokeEverything(auth.userId, 'logout_all');
    this.events.record({ type: 'session.signed_out_everywhere', actorId: auth.userId, targetId: auth.userId }, client);
  }

  /** Ends every session of the user and voids every access token issued until now, on every instance; answers how many sessions ended. */
  async revokeEverything(userId: string, reason: string): Promise<number> {
    await this.revocations.revokeUserTokensBefore(userId, this.clock.now(), this.revocationTtlMs);
    return this.revoke({ userId }, reason);
  }

  /** The refresh token that follows `token`: unguessable without both it and the key. */
  private successorOf(token: string): string {
    return `${REFRESH_TOKEN_PREFIX}${createHmac('sha256', this.successorKey).update(token, 'utf8').digest('base64url')}`;
  }

  private pair(subject: AccessTokenSubject, refreshToken: string, nowMs?: number): TokenPair {
    const { token } = this.tokens.sign(subject, nowMs);
    return { access_token: token, token_type: tokenType(subject.dpopJkt), expires_in: this.settings.accessTokenTtlS, refresh_token: refreshToken };
  }
}
