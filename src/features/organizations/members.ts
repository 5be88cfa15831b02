// Members of an organization and the roles it defines: change a role, remove someone, leave, hand over ownership;
// every change holds the organization's lock and voids the affected members' tokens for it on every instance.
import type { Clock } from '../../core/clock.js';
import { isUniqueViolation, type Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import type { OrgStanding } from '../../kernel/authenticate/org-access.js';
import type { ClientContext } from '../../kernel/identity/client-context.js';
import { BUILT_IN_ORG_ROLES, covers, ORG_PERMISSIONS, OWNER, OWNER_ONLY_PERMISSIONS } from '../../kernel/identity/org-roles.js';
import type { SecurityEvents } from '../../kernel/events/security-events.js';
import type { Sessions } from '../../kernel/sessions/sessions.js';
import { actorUnderLock, checkRoleChange, keepAnOwner, withOrgLocked } from './org-store.js';

export interface MemberView {
  userId: string;
  username: string;
  email: string;
  role: string;
  joinedAt: string;
}

export interface OrgRoleView {
  name: string;
  description: string;
  permissions: string[];
  builtIn: boolean;
}

const BUILT_IN_DESCRIPTIONS: Record<keyof typeof BUILT_IN_ORG_ROLES, string> = {
  owner: 'Everything, including deleting the organization and handing over ownership',
  admin: 'Everything but deleting the organization and ownership',
  member: 'Sees the members; reads and adds images',
};

const memberNotFound = () => new AppError('org_member_not_found');

export class Members {
  constructor(private readonly deps: { prisma: Prisma; clock: Clock; sessions: Pick<Sessions, 'revokeOrgAccess'>; events: SecurityEvents }) {}

  /** The organization's members, oldest first (or the one `userId` names). */
  async list(orgId: string, userId?: string): Promise<MemberView[]> {
    const members = await this.deps.prisma.orgMember.findMany({
      where: { orgId, ...(userId !== undefined && { userId }) },
      include: { user: { select: { username: true, email: true } } },
      orderBy: { createdAt: 'asc' },
    });
    return members.map((member) => ({
      userId: member.userId,
      username: member.user.username,
      email: member.user.email,
      role: member.role,
      joinedAt: member.createdAt.toISOString(),
    }));
  }

  /** Gives a member another role; the member's tokens for the organization stop working until they refresh. */
  async changeRole(actor: OrgStanding & { userId: string }, targetId: string, role: string, client: ClientContext): Promise<MemberView> {
    const before = await withOrgLocked(this.deps.prisma, actor.orgId, async (tx) => {
      const target = await tx.orgMember.findUnique({ where: { orgId_userId: { orgId: actor.orgId, userId: targetId } } });
      if (!target) throw memberNotFound();
      await checkRoleChange(tx, await actorUnderLock(tx, actor, 'members:update'), { from: target.role, to: role });
      if (role !== OWNER) await keepAnOwner(tx, actor.orgId, target);
      await tx.orgMember.update({ where: { orgId_userId: { orgId: actor.orgId, userId: targetId } }, data: { role } });
      return target.role;
    });
    await this.deps.sessions.revokeOrgAccess(actor.orgId, [targetId]);
    this.deps.events.record(
      { type: 'org.member_role_changed', actorId: actor.userId, targetId, details: { orgId: actor.orgId, from: before, to: role } },
      client,
    );
    const [member] = await this.list(actor.orgId, targetId);
    if (!member) throw memberNotFound();
    return member;
  }

  /**
   * Removes a member (or, when the target is the actor, leaves): they lose the organization's access at once. The
   * last owner can do neither.
   */
  async remove(actor: OrgStanding & { userId: string }, targetId: string, client: ClientContext): Promise<void> {
    const leaving = targetId === actor.userId;
    await withOrgLocked(this.deps.prisma, actor.orgId, async (tx) => {
      const target = await tx.orgMember.findUnique({ where: { orgId_userId: { orgId: actor.orgId, userId: targetId } } });
      if (!target) throw memberNotFound();
      if (!leaving) await checkRoleChange(tx, await actorUnderLock(tx, actor, 'members:remove'), { from: target.role, to: null });
      await keepAnOwner(tx, actor.orgId, target);
      await tx.orgMember.delete({ where: { orgId_userId: { orgId: actor.orgId, userId: targetId } } });
      await tx.session.updateMany({ where: { userId: targetId, orgId: actor.orgId }, data: { orgId: null } });
    });
    await this.deps.sessions.revokeOrgAccess(actor.orgId, [targetId]);
    this.deps.events.record({ type: 'org.member_removed', actorId: actor.userId, targetId, details: { orgId: actor.orgId, left: leaving } }, client);
  }

  /** An owner hands ownership to another member and becomes an admin, in one step. */
  async transferOwnership(actor: OrgStanding & { userId: string }, targetId: string, client: ClientContext): Promise<void> {
    if (targetId === actor.userId) throw new AppError('validation_failed', { details: [{ path: 'userId', message: 'you own it already' }] });
    await withOrgLocked(this.deps.prisma, actor.orgId, async (tx) => {
      // Read under the lock: the actor may have been demoted since the guard looked.
      const own = await tx.orgMember.findUnique({ where: { orgId_userId: { orgId: actor.orgId, userId: actor.userId } } });
      if (own?.role !== OWNER) throw new AppError('org_owner_required');
      const target = await tx.orgMember.findUnique({ where: { orgId_userId: { orgId: actor.orgId, userId: targetId } } });
      if (!target) throw memberNotFound();
      await tx.orgMember.update({ where: { orgId_userId: { orgId: actor.orgId, userId: targetId } }, data: { role: OWNER } });
      await tx.orgMember.update({ where: { orgId_userId: { orgId: actor.orgId, userId: actor.userId } }, data: { role: 'admin' } });
    });
    await this.deps.sessions.revokeOrgAccess(actor.orgId, [targetId, actor.userId]);
    this.deps.events.record(
      { type: 'org.member_role_changed', actorId: actor.userId, targetId, details: { orgId: actor.orgId, from: 'member', to: OWNER, transfer: true } },
      client,
    );
  }

  /** The built-in roles and the ones the organization defined. */
  async roles(orgId: string): Promise<OrgRoleView[]> {
    const custom = await this.deps.prisma.orgRole.findMany({ where: { orgId }, orderBy: { name: 'asc' } });
    return [
      ...Object.entries(BUILT_IN_ORG_ROLES).map(([name, permissions]) => ({
        name,
        description: BUILT_IN_DESCRIPTIONS[name as keyof typeof BUILT_IN_ORG_ROLES],
        permissions: [...permissions],
        builtIn: true,
      })),
      ...custom.map((role) => ({ name: role.name, description: role.description, permissions: role.permissions, builtIn: false })),
    ];
  }

  /** Defines a role, or redefines one (its members' tokens for the organization stop working until they refresh). */
  async defineRole(
    actor: OrgStanding & { userId: string },
    input: { name: string; permissions: string[]; description?: string },
    mode: 'create' | 'replace',
    client: ClientContext,
  ): Promise<OrgRoleView> {
    const { prisma, clock } = this.deps;
    const permissions = ORG_PERMISSIONS.filter((permission) => input.permissions.includes(permission));
    const holders = await withOrgLocked(prisma, actor.orgId, async (tx) => {
      checkGrantable(await actorUnderLock(tx, actor, 'roles:manage'), input.permissions);
      const key = { orgId_name: { orgId: actor.orgId, name: input.name } };
      if (mode === 'create') {
        try {
          await tx.orgRole.create({
            data: { orgId: actor.orgId, name: input.name, permissions, description: input.description ?? '', createdAt: new Date(clock.now()) },
          });
        } catch (err) {
          if (isUniqueViolation(err)) throw new AppError('org_role_taken');
          throw err;
        }
        return [];
      }
      const current = await tx.orgRole.findUnique({ where: key });
      if (!current) throw new AppError('org_role_not_found');
      // Taking a permission away from a role is taking it from its holders: the actor must hold it too.
      checkGrantable(await actorUnderLock(tx, actor, 'roles:manage'), current.permissions);
      await tx.orgRole.update({ where: key, data: { permissions, ...(input.description !== undefined && { description: input.description }) } });
      return (await tx.orgMember.findMany({ where: { orgId: actor.orgId, role: input.name }, select: { userId: true } })).map((member) => member.userId);
    });
    await this.deps.sessions.revokeOrgAccess(actor.orgId, holders);
    this.deps.events.record(
      { type: 'org.role_defined', actorId: actor.userId, details: { orgId: actor.orgId, role: input.name, permissions: permissions.join(' ') } },
      client,
    );
    return { name: input.name, description: input.description ?? '', permissions, builtIn: false };
  }

  async deleteRole(actor: OrgStanding & { userId: string }, name: string, client: ClientContext): Promise<void> {
    await withOrgLocked(this.deps.prisma, actor.orgId, async (tx) => {
      const current = await tx.orgRole.findUnique({ where: { orgId_name: { orgId: actor.orgId, name } } });
      if (!current) throw new AppError('org_role_not_found');
      checkGrantable(await actorUnderLock(tx, actor, 'roles:manage'), current.permissions);
      if ((await tx.orgMember.count({ where: { orgId: actor.orgId, role: name } })) > 0) throw new AppError('org_role_in_use');
      await tx.orgInvitation.updateMany({
        where: { orgId: actor.orgId, role: name, acceptedAt: null, revokedAt: null },
        data: { revokedAt: new Date(this.deps.clock.now()) },
      });
      await tx.orgRole.delete({ where: { orgId_name: { orgId: actor.orgId, name } } });
    });
    this.deps.events.record({ type: 'org.role_deleted', actorId: actor.userId, details: { orgId: actor.orgId, role: name } }, client);
  }
}

/** A role an organization defines grants only what the actor holds, and never an owner's own powers. */
function checkGrantable(actor: OrgStanding, permissions: string[]): void {
  if (permissions.some((permission) => OWNER_ONLY_PERMISSIONS.includes(permission as never)))
    throw new AppError('validation_failed', { details: [{ path: 'permissions', message: `${OWNER_ONLY_PERMISSIONS.join(', ')} belong to owners alone` }] });
  if (!covers(actor.permissions, permissions)) throw new AppError('org_grant_exceeded');
}
