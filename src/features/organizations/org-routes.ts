// HTTP routes of organizations: create, list, change and delete them; switch the token's organization; members and
// the roles an organization defines. Every route about one organization runs requireOrgPermission first.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { RequestHandler } from 'express';
import { z } from 'zod';
import { ApiRouter } from '../../core/http/api-router.js';
import { ErrorResponse, errorResponses } from '../../core/http/openapi.js';
import { type Authenticators, currentAuth, UNMETERED, UNMETERED_NOTE } from '../../kernel/authenticate/authenticate.js';
import { currentOrg, type OrgAccess } from '../../kernel/authenticate/org-access.js';
import { clientContext } from '../../kernel/identity/client-context.js';
import type { OrgPermission } from '../../kernel/identity/org-roles.js';
import type { Sessions } from '../../kernel/sessions/sessions.js';
import type { Budget } from '../../kernel/throttle/rate-limiter.js';
import type { Members } from './members.js';
import {
  ChangeRoleBody,
  CreateOrgBody,
  DefineRoleBody,
  Member,
  MemberParams,
  MyOrg,
  OrgIdParams,
  OrgRoleView,
  OrgView,
  OrgWithStanding,
  RedefineRoleBody,
  RoleParams,
  SwitchedToken,
  TransferBody,
  UpdateOrgBody,
} from './org-schemas.js';
import type { Organizations } from './organizations.js';

export interface OrgRouteDeps {
  organizations: Organizations;
  members: Members;
  sessions: Pick<Sessions, 'switchOrg'>;
  orgAccess: OrgAccess;
  authn: Authenticators;
  /** Reads (lists, one organization). */
  readLimit: Budget;
  /** Changes. */
  userLimit: Budget;
  recentSignIn: RequestHandler;
}

const orgNotFound = { 404: { description: 'No such organization, or you are not a member (org_not_found)', schema: ErrorResponse } };

export function orgRoutes(registry: OpenAPIRegistry, deps: OrgRouteDeps): ApiRouter {
  const api = new ApiRouter(registry, { tags: ['organizations'] });
  const errors = errorResponses({ 403: 'Your role does not grant this (org_permission_missing), or an API key may not do it' });
  const requireOrgPermission = (permission?: OrgPermission, options?: { orSelf?: boolean }) => deps.orgAccess.require(permission, options);
  /** A person (Bearer) or, where `permission` names what it needs, an organization's API key holding it. */
  const orgCaller = (permission: OrgPermission, limit: Budget) => [deps.authn.userOrKey(permission, limit), requireOrgPermission(permission)];
  const actor = (req: Parameters<RequestHandler>[0]) => ({ ...currentOrg(req), userId: currentAuth(req).userId });

  api.route({
    method: 'post',
    path: '/orgs',
    summary: 'Create an organization; you are its first owner',
    description: 'ORG_CREATION=admins keeps this to administrators (403 org_creation_not_allowed); ORG_MAX_PER_USER caps memberships (409 org_limit_reached).',
    security: ['bearer'],
    body: CreateOrgBody,
    middleware: [deps.authn.user(deps.userLimit)],
    responses: {
      201: { description: 'Created', schema: MyOrg },
      409: { description: 'org_slug_taken or org_limit_reached', schema: ErrorResponse },
      ...errors,
    },
    handler: async ({ body }, req, res) => {
      res.status(201).json(await deps.organizations.create(currentAuth(req), body, clientContext(req)));
    },
  });
  api.route({
    method: 'get',
    path: '/orgs',
    summary: 'The organizations you belong to, with your role in each',
    security: ['bearer'],
    middleware: [deps.authn.user(deps.readLimit)],
    responses: { 200: { description: 'Oldest membership first', schema: z.object({ organizations: z.array(MyOrg) }) }, ...errors },
    handler: async (_input, req, res) => {
      res.json({ organizations: await deps.organizations.mine(currentAuth(req).userId) });
    },
  });
  api.route({
    method: 'delete',
    path: '/me/active-org',
    summary: 'Stop speaking for an organization: an access token for the same session without org claims',
    security: ['bearer'],
    middleware: [deps.authn.user(deps.userLimit)],
    responses: { 200: { description: 'The new access token', schema: SwitchedToken }, ...errors },
    handler: async (_input, req, res) => {
      res.json(await deps.sessions.switchOrg(currentAuth(req), null));
    },
  });
  api.route({
    method: 'get',
    path: '/orgs/:orgId',
    summary: 'One organization you belong to, with your role and permissions in it',
    security: ['bearer'],
    params: OrgIdParams,
    middleware: [deps.authn.user(deps.readLimit), requireOrgPermission()],
    responses: { 200: { description: 'The organization', schema: OrgWithStanding }, ...orgNotFound, ...errors },
    handler: async (_input, req, res) => {
      res.json(await deps.organizations.get(currentOrg(req)));
    },
  });
  api.route({
    method: 'patch',
    path: '/orgs/:orgId',
    summary: 'Rename an organization, change its slug or its settings (org:update)',
    security: ['bearer'],
    params: OrgIdParams,
    body: UpdateOrgBody,
    middleware: [deps.authn.user(deps.userLimit), requireOrgPermission('org:update')],
    responses: { 200: { description: 'Changed', schema: OrgView }, 409: { description: 'org_slug_taken', schema: ErrorResponse }, ...orgNotFound, ...errors },
    handler: async ({ body }, req, res) => {
      res.json(await deps.organizations.update(currentOrg(req), currentAuth(req).userId, body, clientContext(req)));
    },
  });
  api.route({
    method: 'delete',
    path: '/orgs/:orgId',
    summary: 'Delete an organization (owners; needs a recent sign-in): members, roles, invitations, its API keys and images go',
    description: "Every member's token for it stops working at once, on every instance. The audit trail stays.",
    security: ['bearer'],
    params: OrgIdParams,
    middleware: [deps.authn.user(deps.userLimit), requireOrgPermission('org:delete'), deps.recentSignIn],
    responses: { 204: { description: 'Deleted' }, ...orgNotFound, ...errors },
    handler: async (_input, req, res) => {
      await deps.organizations.remove(currentOrg(req).orgId, currentAuth(req).userId, clientContext(req));
      res.status(204).end();
    },
  });
  api.route({
    method: 'post',
    path: '/orgs/:orgId/switch',
    summary: 'Speak for this organization: an access token for the same session with org_id, org_role and org_permissions',
    description: 'Refreshes keep the organization (with your role as it is then) until you switch again or leave it.',
    security: ['bearer'],
    params: OrgIdParams,
    middleware: [deps.authn.user(deps.userLimit), requireOrgPermission()],
    responses: { 200: { description: 'The new access token', schema: SwitchedToken }, ...orgNotFound, ...errors },
    handler: async (_input, req, res) => {
      res.json(await deps.sessions.switchOrg(currentAuth(req), currentOrg(req).orgId));
    },
  });

  api.route({
    method: 'get',
    path: '/orgs/:orgId/members',
    summary: 'Members and their roles (members:read)',
    security: ['bearer', 'apiKey'],
    params: OrgIdParams,
    middleware: orgCaller('members:read', deps.readLimit),
    responses: { 200: { description: 'Oldest first', schema: z.object({ members: z.array(Member) }) }, ...orgNotFound, ...errors },
    handler: async (_input, req, res) => {
      res.json({ members: await deps.members.list(currentOrg(req).orgId) });
    },
  });
  api.route({
    method: 'patch',
    path: '/orgs/:orgId/members/:userId',
    summary: "Change a member's role (members:update); never to more than your own role holds, and owners only by owners",
    description: "The member's tokens for the organization stop working at once on every instance; their next refresh carries the new role.",
    security: ['bearer'],
    params: MemberParams,
    body: ChangeRoleBody,
    middleware: [deps.authn.user(deps.userLimit), requireOrgPermission('members:update')],
    responses: {
      200: { description: 'The member', schema: Member },
      409: { description: 'org_last_owner', schema: ErrorResponse },
      ...orgNotFound,
      ...errors,
    },
    handler: async ({ params, body }, req, res) => {
      res.json(await deps.members.changeRole(actor(req), params.userId, body.role, clientContext(req)));
    },
  });
  api.route({
    method: 'delete',
    path: '/orgs/:orgId/members/:userId',
    summary: 'Remove a member (members:remove), or leave when it is you; the last owner can do neither',
    description: `Their tokens for the organization stop working at once on every instance. ${UNMETERED_NOTE}`,
    security: ['bearer'],
    params: MemberParams,
    middleware: [deps.authn.user(UNMETERED), requireOrgPermission('members:remove', { orSelf: true })],
    responses: { 204: { description: 'Removed' }, 409: { description: 'org_last_owner', schema: ErrorResponse }, ...orgNotFound, ...errors },
    handler: async ({ params }, req, res) => {
      await deps.members.remove(actor(req), params.userId, clientContext(req));
      res.status(204).end();
    },
  });
  api.route({
    method: 'post',
    path: '/orgs/:orgId/transfer',
    summary: 'Hand ownership to another member (owners; needs a recent sign-in): they become owner, you admin',
    security: ['bearer'],
    params: OrgIdParams,
    body: TransferBody,
    middleware: [deps.authn.user(deps.userLimit), requireOrgPermission('org:transfer'), deps.recentSignIn],
    responses: { 204: { description: 'Handed over' }, ...orgNotFound, ...errors },
    handler: async ({ body }, req, res) => {
      await deps.members.transferOwnership(actor(req), body.userId, clientContext(req));
      res.status(204).end();
    },
  });

  api.route({
    method: 'get',
    path: '/orgs/:orgId/roles',
    summary: 'The roles members can hold: the built-in owner, admin and member, and the ones the organization defined',
    security: ['bearer'],
    params: OrgIdParams,
    middleware: [deps.authn.user(deps.readLimit), requireOrgPermission()],
    responses: { 200: { description: 'Built-in first', schema: z.object({ roles: z.array(OrgRoleView) }) }, ...orgNotFound, ...errors },
    handler: async (_input, req, res) => {
      res.json({ roles: await deps.members.roles(currentOrg(req).orgId) });
    },
  });
  api.route({
    method: 'post',
    path: '/orgs/:orgId/roles',
    summary: 'Define a role: a name and the permissions it grants, never more than yours (roles:manage)',
    security: ['bearer'],
    params: OrgIdParams,
    body: DefineRoleBody,
    middleware: [deps.authn.user(deps.userLimit), requireOrgPermission('roles:manage')],
    responses: {
      201: { description: 'Defined', schema: OrgRoleView },
      409: { description: 'org_role_taken', schema: ErrorResponse },
      ...orgNotFound,
      ...errors,
    },
    handler: async ({ body }, req, res) => {
      res.status(201).json(await deps.members.defineRole(actor(req), body, 'create', clientContext(req)));
    },
  });
  api.route({
    method: 'put',
    path: '/orgs/:orgId/roles/:name',
    summary: "Change a role's permissions (roles:manage); its holders' tokens for the organization stop working until they refresh",
    security: ['bearer'],
    params: RoleParams,
    body: RedefineRoleBody,
    middleware: [deps.authn.user(deps.userLimit), requireOrgPermission('roles:manage')],
    responses: { 200: { description: 'Changed', schema: OrgRoleView }, ...orgNotFound, ...errors },
    handler: async ({ params, body }, req, res) => {
      res.json(await deps.members.defineRole(actor(req), { ...body, name: params.name }, 'replace', clientContext(req)));
    },
  });
  api.route({
    method: 'delete',
    path: '/orgs/:orgId/roles/:name',
    summary: 'Delete a role nobody holds (roles:manage); pending invitations with it are withdrawn',
    security: ['bearer'],
    params: RoleParams,
    middleware: [deps.authn.user(deps.userLimit), requireOrgPermission('roles:manage')],
    responses: { 204: { description: 'Deleted' }, 409: { description: 'org_role_in_use', schema: ErrorResponse }, ...orgNotFound, ...errors },
    handler: async ({ params }, req, res) => {
      await deps.members.deleteRole(actor(req), params.name, clientContext(req));
      res.status(204).end();
    },
  });
  return api;
}
