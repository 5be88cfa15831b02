// Taking data out: every account in the import's own record shape (for an administrator, no secrets), and one
// person's own data (profile, sessions, security events, images) as the GDPR's right to data portability expects.
import type { Clock } from '../../core/clock.js';
import type { Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';

const PAGE = 1_000;
/** The newest security events a personal export carries: an account under attack may have collected very many. */
export const EXPORTED_EVENTS_MAX = 10_000;

/** One account as the import reads it back: no password hash, no TOTP secret, nothing else secret. */
export interface ExportedUser {
  email: string;
  username: string;
  emailVerified: boolean;
  roles: string[];
  createdAt: string;
}

const iso = (date: Date | null) => date?.toISOString() ?? null;

export class DataExport {
  constructor(
    private readonly prisma: Prisma,
    private readonly clock: Clock,
  ) {}

  /** Every account, oldest id first, a page at a time (keyset paging, so a million never sit in memory at once). */
  async *users(): AsyncGenerator<ExportedUser> {
    let after: string | undefined;
    for (;;) {
      const page = await this.prisma.user.findMany({
        where: after === undefined ? {} : { id: { gt: after } },
        orderBy: { id: 'asc' },
        take: PAGE,
        select: { id: true, email: true, username: true, emailVerifiedAt: true, createdAt: true, roles: { select: { roleName: true } } },
      });
      for (const user of page)
        yield {
          email: user.email,
          username: user.username,
          emailVerified: user.emailVerifiedAt !== null,
          roles: user.roles.map((role) => role.roleName).sort(),
          createdAt: user.createdAt.toISOString(),
        };
      if (page.length < PAGE) return;
      after = page.at(-1)?.id;
    }
  }

  /** Everything kept about one person, read for that person only (every query is bounded by their id). */
  async personal(userId: string) {
    const user = await this.prisma.user.findUnique({
      where: { id: userId },
      include: {
        roles: { select: { roleName: true } },
        mfa: { select: { enabledAt: true } },
        passkeys: { select: { name: true, createdAt: true, lastUsedAt: true }, orderBy: { createdAt: 'asc' } },
        identities: { select: { providerId: true, email: true, createdAt: true, lastUsedAt: true }, orderBy: { createdAt: 'asc' } },
        apiKeys: {
          select: { name: true, prefix: true, scopes: true, createdAt: true, lastUsedAt: true, expiresAt: true, revokedAt: true },
          where: { orgId: null },
        },
        orgMemberships: { select: { role: true, createdAt: true, org: { select: { name: true, slug: true } } } },
      },
    });
    if (!user) throw new AppError('account_unavailable');
    const [sessions, events, images] = await Promise.all([
      this.prisma.session.findMany({ where: { userId }, orderBy: { createdAt: 'asc' } }),
      this.prisma.auditEvent.findMany({ where: { targetId: userId }, orderBy: { seq: 'desc' }, take: EXPORTED_EVENTS_MAX }),
      this.prisma.image.findMany({ where: { ownerId: userId }, orderBy: { createdAt: 'asc' } }),
    ]);
    return {
      exportedAt: new Date(this.clock.now()).toISOString(),
      profile: {
        id: user.id,
        username: user.username,
        email: user.email,
        emailVerified: user.emailVerifiedAt !== null,
        emailVerifiedAt: iso(user.emailVerifiedAt),
        roles: user.roles.map((role) => role.roleName).sort(),
        hasPassword: user.hasPassword,
        twoFactorEnabled: (user.mfa?.enabledAt ?? null) !== null,
        createdAt: user.createdAt.toISOString(),
        updatedAt: user.updatedAt.toISOString(),
        passkeys: user.passkeys.map((key) => ({ name: key.name, createdAt: key.createdAt.toISOString(), lastUsedAt: iso(key.lastUsedAt) })),
        linkedIdentities: user.identities.map((identity) => ({
          provider: identity.providerId,
          email: identity.email,
          createdAt: identity.createdAt.toISOString(),
          lastUsedAt: iso(identity.lastUsedAt),
        })),
        apiKeys: user.apiKeys.map((key) => ({
          name: key.name,
          prefix: key.prefix,
          scopes: key.scopes,
          createdAt: key.createdAt.toISOString(),
          lastUsedAt: iso(key.lastUsedAt),
          expiresAt: iso(key.expiresAt),
          revokedAt: iso(key.revokedAt),
        })),
        organizations: user.orgMemberships.map((membership) => ({
          name: membership.org.name,
          slug: membership.org.slug,
          role: membership.role,
          joinedAt: membership.createdAt.toISOString(),
        })),
      },
      sessions: sessions.map((session) => ({
        id: session.id,
        createdAt: session.createdAt.toISOString(),
        lastUsedAt: session.lastUsedAt.toISOString(),
        expiresAt: session.expiresAt.toISOString(),
        revokedAt: iso(session.revokedAt),
        userAgent: session.userAgent,
        ip: session.ip,
        amr: session.amr,
      })),
      securityEvents: events.map((event) => ({
        type: event.type,
        createdAt: event.createdAt.toISOString(),
        ip: event.ip,
        userAgent: event.userAgent,
        details: event.details,
        byYou: event.actorId === userId,
      })),
      images: images.map((image) => ({
        id: image.id,
        name: image.originalName,
        mimeType: image.mimeType,
        size: image.size,
        width: image.width,
        height: image.height,
        sha256: image.sha256,
        organizationId: image.orgId,
        createdAt: image.createdAt.toISOString(),
      })),
    };
  }
}

export type PersonalExport = Awaited<ReturnType<DataExport['personal']>>;
