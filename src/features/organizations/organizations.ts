// Organizations themselves: create one (its creator its first owner), list yours, rename it, delete it, and the
// administrators' view of every one.
import type { Clock } from '../../core/clock.js';
import type { Prisma as PrismaTypes } from '../../generated/prisma/client.js';
import { isUniqueViolation, type Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import { type PageQuery, pageWindow } from '../../core/pagination.js';
import type { OrgStanding } from '../../kernel/authenticate/org-access.js';
import type { ClientContext } from '../../kernel/identity/client-context.js';
import { ADMIN_ROLE } from '../../kernel/identity/roles.js';
import { OWNER } from '../../kernel/identity/org-roles.js';
import type { SecurityEvents } from '../../kernel/events/security-events.js';
import type { Sessions } from '../../kernel/sessions/sessions.js';
import { lockOrg, lockUserMemberships, toOrgView, type OrgView, withOrgLocked } from './org-store.js';

const asJson = (settings: Record<string, unknown>) => settings as PrismaTypes.InputJsonObject;

export interface OrgSettings {
  /** everyone, or admins: who may create an organization. */
  creation: 'everyone' | 'admins';
  maxPerUser: number;
}

/** settings: a JSON object of at most this many bytes. */
export const ORG_SETTINGS_MAX_BYTES = 4096;

export interface OrganizationsDeps {
  prisma: Prisma;
  clock: Clock;
  sessions: Pick<Sessions, 'revokeOrgAccess'>;
  events: SecurityEvents;
  settings: OrgSettings;
}

function checkSettingsSize(settings: Record<string, unknown> | undefined): void {
  if (settings !== undefined && Buffer.byteLength(JSON.stringify(settings)) > ORG_SETTINGS_MAX_BYTES)
    throw new AppError('org_settings_too_large', { details: [{ path: 'settings', message: `at most ${ORG_SETTINGS_MAX_BYTES} bytes of JSON` }] });
}

const slugTaken = () => new AppError('org_slug_taken');

export class Organizations {
  constructor(private readonly deps: OrganizationsDeps) {}

  /** Creates an organization with the caller as its owner; 403 when ORG_CREATION keeps it to administrators. */
  async create(
    actor: { userId: string; roles: string[] },
    input: { name: string; slug: string; settings?: Record<string, unknown> },
    client: ClientContext,
  ): Promise<OrgView & { role: string }> {
    const { prisma, clock, settings } = this.deps;
    if (settings.creation === 'admins' && !actor.roles.includes(ADMIN_ROLE)) throw new AppError('org_creation_not_allowed');
    checkSettingsSize(input.settings);
    const now = new Date(clock.now());
    let org;
    try {
      org = await prisma.$transaction(async (tx) => {
        await lockUserMemberships(tx, actor.userId);
        if ((await tx.orgMember.count({ where: { userId: actor.userId } })) >= settings.maxPerUser) throw new AppError('org_limit_reached');
        return tx.organization.create({
          data: {
            name: input.name,
            slug: input.slug,
            settings: asJson(input.settings ?? {}),
            createdAt: now,
            members: { create: { userId: actor.userId, role: OWNER, createdAt: now } },
          },
        });
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw slugTaken();
      throw err;
    }
    this.deps.events.record({ type: 'org.created', actorId: actor.userId, targetId: actor.userId, details: { orgId: org.id, slug: org.slug } }, client);
    return { ...toOrgView(org), role: OWNER };
  }

  /** The organizations the user belongs to, with their role in each, oldest membership first. */
  async mine(userId: string): Promise<(OrgView & { role: string })[]> {
    const memberships = await this.deps.prisma.orgMember.findMany({ where: { userId }, include: { org: true }, orderBy: { createdAt: 'asc' } });
    return memberships.map((membership) => ({ ...toOrgView(membership.org), role: membership.role }));
  }

  /** One organization, with the caller's standing in it. */
  async get(standing: OrgStanding): Promise<OrgView & { role: string; permissions: string[] }> {
    const org = await this.deps.prisma.organization.findUnique({ where: { id: standing.orgId } });
    if (!org) throw new AppError('org_not_found');
    return { ...toOrgView(org), role: standing.role, permissions: standing.permissions };
  }

  async update(
    standing: OrgStanding,
    actorId: string,
    change: { name?: string; slug?: string; settings?: Record<string, unknown> },
    client: ClientContext,
  ): Promise<OrgView> {
    checkSettingsSize(change.settings);
    let org;
    try {
      org = await this.deps.prisma.organization.update({
        where: { id: standing.orgId },
        data: {
          ...(change.name !== undefined && { name: change.name }),
          ...(change.slug !== undefined && { slug: change.slug }),
          ...(change.settings !== undefined && { settings: asJson(change.settings) }),
        },
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw slugTaken();
      throw err;
    }
    const fields = Object.keys(change).sort().join(',');
    this.deps.events.record({ type: 'org.updated', actorId, details: { orgId: org.id, fields } }, client);
    return toOrgView(org);
  }

  /**
   * Deletes the organization with its memberships, roles, invitations, API keys and images (their bytes go with the
   * next storage sweep); the audit trail stays. Every member's token for it stops working at once, on every instance.
   */
  async remove(orgId: string, actorId: string, client: ClientContext): Promise<void> {
    const { prisma } = this.deps;
    const memberIds = await withOrgLocked(prisma, orgId, async (tx) => {
      const members = await tx.orgMember.findMany({ where: { orgId }, select: { userId: true } });
      await tx.organization.delete({ where: { id: orgId } });
      return members.map((member) => member.userId);
    });
    await this.deps.sessions.revokeOrgAccess(orgId, memberIds);
    this.deps.events.record({ type: 'org.deleted', actorId, details: { orgId, members: memberIds.length } }, client);
  }

  /**
   * Before the user's account is deleted: refuses (409 org_last_owner) while they are the only owner of an
   * organization others belong to, and deletes the organizations they are alone in.
   */
  async releaseAccount(userId: string, client: ClientContext): Promise<void> {
    const { prisma } = this.deps;
    const owned = (await prisma.orgMember.findMany({ where: { userId, role: OWNER }, select: { orgId: true } })).map((member) => member.orgId);
    for (const orgId of owned) {
      const [owners, members] = await Promise.all([prisma.orgMember.count({ where: { orgId, role: OWNER } }), prisma.orgMember.count({ where: { orgId } })]);
      if (owners === 1 && members > 1)
        throw new AppError('org_last_owner', 'You are the only owner of an organization others belong to: make one of them owner (or delete it) first.');
    }
    for (const orgId of owned) {
      const alone = await prisma.$transaction(async (tx) => {
        // Gone meanwhile, or joined by someone: nothing to delete here (the check above answered for the others).
        if (!(await lockOrg(tx, orgId)) || (await tx.orgMember.count({ where: { orgId } })) !== 1) return false;
        await tx.organization.delete({ where: { id: orgId } });
        return true;
      });
      if (alone) this.deps.events.record({ type: 'org.deleted', actorId: userId, details: { orgId, members: 1, withAccount: true } }, client);
    }
  }

  /** Administrators: every organization, newest first, optionally those whose name or slug contains `search`. */
  async list(query: PageQuery & { search?: string }) {
    const where =
      query.search === undefined
        ? {}
        : { OR: [{ name: { contains: query.search, mode: 'insensitive' as const } }, { slug: { contains: query.search.toLowerCase() } }] };
    const [rows, total] = await Promise.all([
      this.deps.prisma.organization.findMany({
        where,
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        include: { _count: { select: { members: true } } },
        ...pageWindow(query),
      }),
      this.deps.prisma.organization.count({ where }),
    ]);
    return { organizations: rows.map((row) => ({ ...toOrgView(row), members: row._count.members })), page: query.page, pageSize: query.pageSize, total };
  }

  /** Administrators: one organization and its members. */
  async inspect(orgId: string) {
    const org = await this.deps.prisma.organization.findUnique({
      where: { id: orgId },
      include: { members: { include: { user: { select: { username: true, email: true } } }, orderBy: { createdAt: 'asc' } } },
    });
    if (!org) throw new AppError('org_not_found');
    return {
      ...toOrgView(org),
      members: org.members.map((member) => ({
        userId: member.userId,
        username: member.user.username,
        email: member.user.email,
        role: member.role,
        joinedAt: member.createdAt.toISOString(),
      })),
    };
  }
}
