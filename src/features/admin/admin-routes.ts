// HTTP routes for administrators: user search, roles, disabling and enabling accounts.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { RequestHandler } from 'express';
import { z } from 'zod';
import { ApiRouter } from '../../core/http/api-router.js';
import { pageEnvelope, pageQueryFields } from '../../core/pagination.js';
import { ErrorResponse, errorResponses } from '../../core/http/openapi.js';
import { type Authenticators, currentAuth, requireRole } from '../auth/authenticate.js';
import { PublicUser } from '../users/user-schemas.js';
import type { RateLimiters } from '../rate-limit/rate-limiter.js';
import { ADMIN_ROLE, type AdminService } from './admin-service.js';
import type { Budget } from '../rate-limit/rate-limiter.js';
import type { SecurityEvents } from '../audit/audit-log.js';
import { clientContext } from '../auth/auth-routes.js';

const AdminUser = PublicUser.extend({ disabled: z.boolean() }).meta({ id: 'AdminUser' });
const UserPage = pageEnvelope('users', AdminUser, 'UserPage');

const ListQuery = z
  .object({
    ...pageQueryFields,
    q: z.string().trim().min(1).max(254).optional().meta({ description: 'Part of a username or email' }),
  })
  .strict();
const UserParams = z.object({ id: z.uuid() });
const RateLimitKeyParams = z.object({
  key: z
    .string()
    .regex(/^(ip|user|apikeys):[A-Za-z0-9:./_-]{1,100}$/, 'ip:<address or /56 prefix>, user:<id> or apikeys:<user id>')
    .meta({ example: 'ip:203.0.113.7' }),
});
const RolesBody = z
  .object({ roles: z.array(z.string().min(1).max(64)).min(1).max(20) })
  .strict()
  .meta({ id: 'SetRolesRequest' });

const errors = errorResponses({ 403: 'Not an administrator' });
const notFound = { 404: { description: 'No such user', schema: ErrorResponse } };

export interface AdminGuardDeps {
  authn: Authenticators;
  userLimit: Budget;
  /** Extra checks for every admin route (a second factor, with ADMIN_REQUIRE_MFA). */
  adminGuards?: RequestHandler[];
}

/** What every admin route runs first: a signed-in user, within budget, with the admin role (and the extra guards). */
export function adminOnly(deps: AdminGuardDeps): RequestHandler[] {
  return [deps.authn.user(deps.userLimit), requireRole(ADMIN_ROLE), ...(deps.adminGuards ?? [])];
}

export function adminRoutes(
  registry: OpenAPIRegistry,
  deps: AdminGuardDeps & { admin: AdminService; rateLimiters: RateLimiters; events: SecurityEvents },
): ApiRouter {
  const api = new ApiRouter(registry, { tags: ['admin'] });
  const middleware = adminOnly(deps);
  api.route({
    method: 'get',
    path: '/admin/users',
    summary: 'List users, oldest first, optionally filtered by part of a username or email',
    security: ['bearer'],
    query: ListQuery,
    middleware,
    responses: { 200: { description: 'A page of users', schema: UserPage }, ...errors },
    handler: async ({ query }, _req, res) => {
      res.json(await deps.admin.listUsers(query));
    },
  });
  api.route({
    method: 'patch',
    path: '/admin/users/:id/roles',
    summary: "Replace a user's roles (their access tokens are voided; the next refresh carries the new roles)",
    security: ['bearer'],
    params: UserParams,
    body: RolesBody,
    middleware,
    responses: {
      200: { description: 'The user', schema: AdminUser },
      409: { description: 'Would leave no administrator', schema: ErrorResponse },
      ...notFound,
      ...errors,
    },
    handler: async ({ params, body }, req, res) => {
      const { user, previous } = await deps.admin.setRoles(params.id, body.roles);
      const actorId = currentAuth(req).userId;
      for (const role of user.roles.filter((role) => !previous.includes(role)))
        deps.events.record({ type: 'role.granted', actorId, targetId: user.id, details: { role } }, clientContext(req));
      for (const role of previous.filter((role) => !user.roles.includes(role)))
        deps.events.record({ type: 'role.revoked', actorId, targetId: user.id, details: { role } }, clientContext(req));
      res.json(user);
    },
  });
  api.route({
    method: 'post',
    path: '/admin/users/:id/disable',
    summary: 'Disable an account: no login, no refresh, and every token it holds stops working now',
    security: ['bearer'],
    params: UserParams,
    middleware,
    responses: {
      200: { description: 'The user', schema: AdminUser },
      409: { description: 'Administrators cannot disable themselves', schema: ErrorResponse },
      ...notFound,
      ...errors,
    },
    handler: async ({ params }, req, res) => {
      const user = await deps.admin.disable(currentAuth(req), params.id);
      deps.events.record({ type: 'account.disabled', actorId: currentAuth(req).userId, targetId: user.id }, clientContext(req));
      res.json(user);
    },
  });
  api.route({
    method: 'post',
    path: '/admin/users/:id/enable',
    summary: 'Enable a disabled account',
    security: ['bearer'],
    params: UserParams,
    middleware,
    responses: { 200: { description: 'The user', schema: AdminUser }, ...notFound, ...errors },
    handler: async ({ params }, req, res) => {
      const user = await deps.admin.enable(params.id);
      deps.events.record({ type: 'account.enabled', actorId: currentAuth(req).userId, targetId: user.id }, clientContext(req));
      res.json(user);
    },
  });
  api.route({
    method: 'delete',
    path: '/admin/rate-limits/:key',
    summary: "Reset a client's budgets in every group, on every instance",
    description:
      'The key is `ip:<address>` (IPv6 as its /56, e.g. `ip:2001:db8:1:100::/56`), `user:<id>` or `apikeys:<user id>` (every API key of one user), URL-encoded.',
    security: ['bearer'],
    params: RateLimitKeyParams,
    middleware,
    responses: { 204: { description: 'Reset' }, ...errors },
    handler: async ({ params }, req, res) => {
      await deps.rateLimiters.reset(params.key);
      deps.events.record({ type: 'rate_limit.reset', actorId: currentAuth(req).userId, details: { key: params.key } }, clientContext(req));
      res.status(204).end();
    },
  });
  return api;
}
