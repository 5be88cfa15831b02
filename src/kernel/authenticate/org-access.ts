// Who may do what in an organization: the caller's membership read from the database on each organization route,
// and the one guard every such route uses, requireOrgPermission.
import type { Request, RequestHandler } from 'express';
import { z } from 'zod';
import type { Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import { API_KEY_STANDING, isBuiltInOrgRole, type OrgPermission, permissionsOfRole } from '../identity/org-roles.js';
import { type AuthContext, currentAuth } from './authenticate.js';

/** The caller's standing in the organization a route names. */
export interface OrgStanding {
  orgId: string;
  /** The member's role; `api-key` for an organization's API key. */
  role: string;
  permissions: string[];
  /** Set for an organization's API key: its scopes, not a membership, are its standing. */
  viaApiKey?: true;
}

declare module 'express-serve-static-core' {
  interface Request {
    org?: OrgStanding;
  }
}

const OrgId = z.uuid();

/** One answer for "no such organization" and "not yours": a non-member learns nothing of an organization. */
export const orgNotFound = () => new AppError('org_not_found');

export class OrgAccess {
  constructor(private readonly prisma: Prisma) {}

  /** The user's role and permissions in the organization, or undefined when they are not a member. One query. */
  async standing(orgId: string, userId: string): Promise<OrgStanding | undefined> {
    const member = await this.prisma.orgMember.findUnique({ where: { orgId_userId: { orgId, userId } }, select: { role: true } });
    if (!member) return undefined;
    // A built-in role's permissions are known; only a role the organization defined costs a second read.
    const custom = isBuiltInOrgRole(member.role) ? null : await this.customRole(orgId, member.role);
    return { orgId, role: member.role, permissions: permissionsOfRole(member.role, custom) };
  }

  private customRole(orgId: string, role: string) {
    return this.prisma.orgRole.findUnique({ where: { orgId_name: { orgId, name: role } }, select: { permissions: true } });
  }

  /**
   * The caller's standing in `orgId`: a person's from their membership now (not from their token, which may be a
   * minute old), an organization API key's from its scopes, and only in its own organization.
   */
  async callerStanding(req: Request, orgId: string): Promise<OrgStanding | undefined> {
    return this.standingOf(currentAuth(req), orgId);
  }

  /** As callerStanding, from an identity already established. */
  async standingOf(auth: AuthContext, orgId: string): Promise<OrgStanding | undefined> {
    if (auth.apiKeyId !== undefined) {
      if (auth.org?.id !== orgId) return undefined;
      return { orgId, role: API_KEY_STANDING, permissions: auth.org.permissions, viaApiKey: true };
    }
    return this.standing(orgId, auth.userId);
  }

  /**
   * The guard of every organization route: behind an authenticator, it reads `:orgId`, answers 404 `org_not_found`
   * unless the caller belongs to that organization, and 403 `org_permission_missing` unless their role grants
   * `permission` (none: membership is enough). `orSelf`: a route about `:userId` needs no permission when that is
   * the caller (leaving). The standing it found is on `req.org` for the use case.
   */
  require(permission?: OrgPermission, { orSelf = false, inQuery = false }: { orSelf?: boolean; inQuery?: boolean } = {}): RequestHandler {
    return async (req, _res, next) => {
      // inQuery: a route that works on the caller's own things unless `?orgId=` (or an organization's key) names one.
      const named = inQuery ? ((req.query.orgId as string | undefined) ?? currentAuth(req).org?.id) : req.params.orgId;
      if (inQuery && currentAuth(req).apiKeyId !== undefined && currentAuth(req).org?.id !== named) throw orgNotFound();
      if (inQuery && named === undefined) return next();
      const orgId = OrgId.safeParse(named);
      if (!orgId.success) throw orgNotFound();
      // Ids compare as strings downstream (revocation entries, the audit log): always in lower case.
      const standing = await this.callerStanding(req, orgId.data.toLowerCase());
      if (!standing) throw orgNotFound();
      const self = orSelf && String(req.params.userId).toLowerCase() === currentAuth(req).userId && currentAuth(req).apiKeyId === undefined;
      if (permission !== undefined && !self && !standing.permissions.includes(permission)) {
        throw new AppError('org_permission_missing', `This needs the ${permission} permission in the organization.`, { details: { permission } });
      }
      req.org = standing;
      next();
    };
  }
}

/** The standing requireOrgPermission found; only valid behind it. */
export function currentOrg(req: Request): OrgStanding {
  if (!req.org) throw orgNotFound();
  return req.org;
}
