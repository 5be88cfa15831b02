// The organization rows as the use cases read them: views, the lock that serialises changes to one organization's
// members, and the checks every change of role shares.
import type { Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import { orgNotFound, type OrgStanding } from '../../kernel/authenticate/org-access.js';
import { covers, isBuiltInOrgRole, type OrgPermission, OWNER, permissionsOfRole } from '../../kernel/identity/org-roles.js';

/** A transaction client: what `prisma.$transaction(async (tx) => …)` hands the callback. */
export type Tx = Parameters<Parameters<Prisma['$transaction']>[0]>[0];

export interface OrgView {
  id: string;
  name: string;
  slug: string;
  settings: Record<string, unknown>;
  externalId: string | null;
  createdAt: string;
  updatedAt: string;
}

export function toOrgView(row: {
  id: string;
  name: string;
  slug: string;
  settings: unknown;
  externalId: string | null;
  createdAt: Date;
  updatedAt: Date;
}): OrgView {
  return {
    id: row.id,
    name: row.name,
    slug: row.slug,
    settings: (row.settings ?? {}) as Record<string, unknown>,
    externalId: row.externalId,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/**
 * Runs `work` holding the organization's row lock: every change to its members (a role, a removal, an acceptance)
 * takes it, so two owners demoting each other at once cannot leave it without one, nor two acceptances overfill it.
 * 404 when the organization is gone.
 */
export async function withOrgLocked<T>(prisma: Prisma, orgId: string, work: (tx: Tx) => Promise<T>): Promise<T> {
  return prisma.$transaction(async (tx) => {
    if (!(await lockOrg(tx, orgId))) throw orgNotFound();
    return work(tx);
  });
}

/** Takes the organization's row lock for the rest of the transaction; false when it is gone. */
export async function lockOrg(tx: Tx, orgId: string): Promise<boolean> {
  const locked = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM organizations WHERE id = ${orgId}::uuid FOR UPDATE`;
  return locked.length > 0;
}

/** Serialises the changes to how many organizations one user belongs to (a creation, an acceptance). */
export async function lockUserMemberships(tx: Tx, userId: string): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`org-memberships:${userId}`}::text, 0))`;
}

/** What a role grants in this organization; 400 `org_role_unknown` when it names no role there. */
export async function grantsOfRole(tx: Tx, orgId: string, role: string, field = 'role'): Promise<string[]> {
  if (isBuiltInOrgRole(role)) return permissionsOfRole(role, null);
  const custom = await tx.orgRole.findUnique({ where: { orgId_name: { orgId, name: role } }, select: { permissions: true } });
  if (!custom) throw new AppError('org_role_unknown', { details: [{ path: field, message: `no role named ${role} in this organization` }] });
  return permissionsOfRole(role, custom);
}

/** Whether the role is a built-in one or one the organization defines now. */
export async function isBuiltInRoleOrDefined(tx: Tx, orgId: string, role: string): Promise<boolean> {
  return isBuiltInOrgRole(role) || (await tx.orgRole.count({ where: { orgId, name: role } })) > 0;
}

/**
 * Whether the actor may move someone from role `from` (null: not a member yet) to role `to` (null: out): owners alone
 * touch ownership, and nobody grants or takes away more than their own role holds.
 */
export async function checkRoleChange(tx: Tx, actor: OrgStanding, change: { from: string | null; to: string | null }): Promise<void> {
  if ((change.from === OWNER || change.to === OWNER) && actor.role !== OWNER) throw new AppError('org_owner_required');
  for (const role of [change.from, change.to]) {
    if (role === null) continue;
    if (!covers(actor.permissions, await grantsOfRole(tx, actor.orgId, role))) throw new AppError('org_grant_exceeded');
  }
}

/**
 * The actor's standing read again under the organization's lock, with the route's `permission` checked again: the
 * guard read it before, and a concurrent change may have demoted or removed them since. An organization API key's
 * standing is its scopes.
 */
export async function actorUnderLock(tx: Tx, actor: OrgStanding & { userId: string }, permission: OrgPermission): Promise<OrgStanding & { userId: string }> {
  let standing: OrgStanding & { userId: string } = actor;
  if (!actor.viaApiKey) {
    const member = await tx.orgMember.findUnique({ where: { orgId_userId: { orgId: actor.orgId, userId: actor.userId } }, select: { role: true } });
    if (!member) throw orgNotFound();
    standing = { ...actor, role: member.role, permissions: await grantsOfRole(tx, actor.orgId, member.role) };
  }
  if (!standing.permissions.includes(permission))
    throw new AppError('org_permission_missing', `This needs the ${permission} permission in the organization.`, { details: { permission } });
  return standing;
}

/** Refuses a change that would leave the organization without an owner (call with the organization locked). */
export async function keepAnOwner(tx: Tx, orgId: string, leaving: { role: string }): Promise<void> {
  if (leaving.role !== OWNER) return;
  const owners = await tx.orgMember.count({ where: { orgId, role: OWNER } });
  if (owners <= 1) throw new AppError('org_last_owner');
}
