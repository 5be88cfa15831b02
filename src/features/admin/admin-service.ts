// What administrators can do to other accounts: find them, change their roles, disable and enable them, end their sessions.
import type { Clock } from '../../core/clock.js';
import type { Prisma } from '../../core/db.js';
import { type PageQuery, pageWindow } from '../../core/pagination.js';
import { AppError } from '../../core/errors.js';
import type { AuthContext } from '../../kernel/authenticate/authenticate.js';
import type { RevocationStore } from '../../kernel/revocation/revocation-store.js';
import type { Sessions } from '../../kernel/sessions/sessions.js';
import { type PublicUser, type UserWithRoles, toPublicUser } from '../../kernel/identity/user-schemas.js';
import { ADMIN_ROLE } from '../../kernel/identity/roles.js';
import type { ClientContext } from '../../kernel/identity/client-context.js';
import type { SecurityEvents } from '../../kernel/events/security-events.js';
import type { RateLimiters } from '../../kernel/throttle/rate-limiter.js';

export type AdminUserView = PublicUser & { disabled: boolean };

function toAdminView(user: UserWithRoles & { disabledAt: Date | null }): AdminUserView {
  return { ...toPublicUser(user), disabled: user.disabledAt !== null };
}

export interface AdminDeps {
  prisma: Prisma;
  sessions: Sessions;
  revocations: RevocationStore;
  clock: Clock;
  events: SecurityEvents;
  /** Resets a client's budgets on every instance. */
  rateLimiters: Pick<RateLimiters, 'reset'>;
}

export class AdminService {
  private readonly prisma: Prisma;
  private readonly sessions: Sessions;
  private readonly revocations: RevocationStore;
  private readonly clock: Clock;
  private readonly events: SecurityEvents;
  private readonly rateLimiters: AdminDeps['rateLimiters'];

  constructor(deps: AdminDeps) {
    ({
      prisma: this.prisma,
      sessions: this.sessions,
      revocations: this.revocations,
      clock: this.clock,
      events: this.events,
      rateLimiters: this.rateLimiters,
    } = deps);
  }

  async listUsers(query: PageQuery & { q?: string }) {
    const where = query.q ? { OR: [{ usernameKey: { contains: query.q.toLowerCase() } }, { email: { contains: query.q.toLowerCase() } }] } : {};
    const [total, users] = await this.prisma.$transaction([
      this.prisma.user.count({ where }),
      this.prisma.user.findMany({
        where,
        include: { roles: true },
        orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
        ...pageWindow(query),
      }),
    ]);
    return { users: users.map(toAdminView), page: query.page, pageSize: query.pageSize, total };
  }

  /** Replaces a user's roles and records each one granted or removed. Their live access tokens are voided so the new roles apply at the next refresh. */
  async setRoles(actor: AuthContext, userId: string, roles: string[], client: ClientContext): Promise<AdminUserView> {
    const wanted = [...new Set(roles)];
    const known = await this.prisma.role.findMany({ where: { name: { in: wanted } }, select: { name: true } });
    const unknown = wanted.filter((role) => !known.some((row) => row.name === role));
    if (unknown.length > 0) {
      throw new AppError('unknown_role', { details: unknown.map((role) => ({ path: 'roles', message: `no role named ${role}` })) });
    }
    let previous: string[] = [];
    const user = await this.prisma.$transaction(async (tx) => {
      const existing = await tx.user.findUnique({ where: { id: userId }, include: { roles: true } });
      if (!existing) throw new AppError('user_not_found');
      previous = existing.roles.map((role) => role.roleName);
      const wasAdmin = existing.roles.some((role) => role.roleName === ADMIN_ROLE);
      if (wasAdmin && !wanted.includes(ADMIN_ROLE)) await requireAnotherAdmin(tx, userId);
      await tx.userRole.deleteMany({ where: { userId } });
      await tx.userRole.createMany({ data: wanted.map((roleName) => ({ userId, roleName })) });
      return tx.user.findUniqueOrThrow({ where: { id: userId }, include: { roles: true } });
    });
    // +1: a token signed in this very millisecond may still carry the old roles.
    await this.revocations.revokeUserTokensBefore(userId, this.clock.now() + 1, this.sessions.revocationTtlMs);
    const now = user.roles.map((role) => role.roleName);
    for (const role of now.filter((role) => !previous.includes(role)))
      this.events.record({ type: 'role.granted', actorId: actor.userId, targetId: userId, details: { role } }, client);
    for (const role of previous.filter((role) => !now.includes(role)))
      this.events.record({ type: 'role.revoked', actorId: actor.userId, targetId: userId, details: { role } }, client);
    return toAdminView(user);
  }

  /** Disables an account: it cannot log in or refresh, and every token it holds stops working now. */
  async disable(actor: AuthContext, userId: string, client: ClientContext): Promise<AdminUserView> {
    if (actor.userId === userId) throw new AppError('cannot_disable_self');
    const user = await this.prisma.$transaction(async (tx) => {
      const existing = await tx.user.findUnique({ where: { id: userId }, include: { roles: true } });
      if (!existing) throw new AppError('user_not_found');
      if (existing.disabledAt === null && existing.roles.some((role) => role.roleName === ADMIN_ROLE)) await requireAnotherAdmin(tx, userId);
      return tx.user.update({
        where: { id: userId },
        data: { disabledAt: existing.disabledAt ?? new Date(this.clock.now()), updatedAt: new Date(this.clock.now()) },
        include: { roles: true },
      });
    });
    await this.sessions.revokeEverything(userId, 'account_disabled');
    this.events.record({ type: 'account.disabled', actorId: actor.userId, targetId: userId }, client);
    return toAdminView(user);
  }

  async enable(actor: AuthContext, userId: string, client: ClientContext): Promise<AdminUserView> {
    const user = await this.prisma.user.update({
      where: { id: userId },
      data: { disabledAt: null, updatedAt: new Date(this.clock.now()) },
      include: { roles: true },
    });
    this.events.record({ type: 'account.enabled', actorId: actor.userId, targetId: userId }, client);
    return toAdminView(user);
  }

  /**
   * Ends every session of a user (signed out everywhere, as their own "log out everywhere" would): their refresh
   * tokens stop working and every access token issued so far is voided on every instance. Their API keys are not
   * sessions and keep working. Answers how many sessions it ended.
   */
  async endSessions(actor: AuthContext, userId: string, client: ClientContext): Promise<{ ended: number }> {
    const user = await this.prisma.user.findUnique({ where: { id: userId }, select: { id: true } });
    if (!user) throw new AppError('user_not_found');
    const ended = await this.sessions.revokeEverything(userId, 'ended_by_admin');
    this.events.record({ type: 'session.signed_out_everywhere', actorId: actor.userId, targetId: userId, details: { sessions: ended } }, client);
    return { ended };
  }

  /** Resets a client's budgets in every group, on every instance (`ip:…`, `user:…` or `apikeys:…`). */
  async resetRateLimit(actor: AuthContext, key: string, client: ClientContext): Promise<void> {
    await this.rateLimiters.reset(key);
    this.events.record({ type: 'rate_limit.reset', actorId: actor.userId, details: { key } }, client);
  }
}

/** One lock for every change that can take an administrator away, so two of them racing cannot both pass the count. */
const LAST_ADMIN_LOCK = 7_311_943;

/**
 * Refuses (409) unless an enabled administrator other than `userId` remains. Runs inside the change's transaction,
 * under a transaction-scoped lock: two administrators demoting or disabling each other at once take turns, and the
 * second sees the first's change.
 */
async function requireAnotherAdmin(tx: Parameters<Parameters<Prisma['$transaction']>[0]>[0], userId: string): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(${LAST_ADMIN_LOCK}::bigint)`;
  const others = await tx.userRole.count({ where: { roleName: ADMIN_ROLE, userId: { not: userId }, user: { disabledAt: null } } });
  if (others === 0) throw new AppError('last_admin', { details: { reason: 'last_admin' } });
}

export interface AdminBootstrap {
  email: string;
  username: string;
  password: string;
}

/**
 * Creates an administrator with this email unless an account already has the email. An existing account is never
 * promoted: emails are not verified, so anyone could have registered the address first, and an administrator who was
 * later demoted must stay demoted. Needs only the database and a way to hash, so `npm run admin:create` and
 * ADMIN_EMAIL at startup call it without building the rest of the service.
 */
export async function ensureAdmin(
  prisma: Prisma,
  hashPassword: (password: string) => Promise<string>,
  input: AdminBootstrap,
  clock: Clock,
): Promise<{ created: boolean; user: AdminUserView }> {
  const email = input.email.toLowerCase();
  const existing = await prisma.user.findUnique({ where: { email }, include: { roles: true } });
  if (existing) return { created: false, user: toAdminView(existing) };
  const passwordHash = await hashPassword(input.password);
  const now = new Date(clock.now());
  const user = await prisma.user.create({
    data: {
      username: input.username,
      usernameKey: input.username.toLowerCase(),
      email,
      passwordHash,
      // The operator chose this address in the server's own settings: it needs no link to confirm it.
      emailVerifiedAt: now,
      createdAt: now,
      updatedAt: now,
      roles: { create: [{ roleName: 'user' }, { roleName: ADMIN_ROLE }] },
    },
    include: { roles: true },
  });
  return { created: true, user: toAdminView(user) };
}
