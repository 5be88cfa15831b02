// HTTP routes for administrators: user search, roles, disabling and enabling accounts, ending a user's sessions.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { ApiRouter } from '../../core/http/api-router.js';
import { pageEnvelope, pageQueryFields } from '../../core/pagination.js';
import { ErrorResponse, errorResponses } from '../../core/http/openapi.js';
import { currentAuth } from '../../kernel/authenticate/authenticate.js';
import { adminOnly, type AdminGuardDeps } from '../../kernel/authenticate/guards.js';
import { PublicUser } from '../../kernel/identity/user-schemas.js';
import type { AdminService } from './admin-service.js';
import { clientContext } from '../../kernel/identity/client-context.js';

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

const EndedSessions = z
  .object({ ended: z.number().int().meta({ description: 'Sessions this call ended; 0 when none was left to end' }) })
  .meta({ id: 'EndedSessions' });

const errors = errorResponses({ 403: 'Not an administrator' });
const notFound = { 404: { description: 'No such user', schema: ErrorResponse } };

export function adminRoutes(registry: OpenAPIRegistry, deps: AdminGuardDeps & { admin: AdminService }): ApiRouter {
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
      res.json(await deps.admin.setRoles(currentAuth(req), params.id, body.roles, clientContext(req)));
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
      res.json(await deps.admin.disable(currentAuth(req), params.id, clientContext(req)));
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
      res.json(await deps.admin.enable(currentAuth(req), params.id, clientContext(req)));
    },
  });
  api.route({
    method: 'delete',
    path: '/admin/users/:id/sessions',
    summary: 'End every session of a user: their refresh tokens stop working and every access token they hold is voided now',
    description:
      'What "log out everywhere" does, done by an administrator (recorded as session.signed_out_everywhere with the administrator as actor). ' +
      'The account stays enabled: the user can sign in again. Their API keys are not sessions and keep working.',
    security: ['bearer'],
    params: UserParams,
    middleware,
    responses: { 200: { description: 'How many sessions were ended', schema: EndedSessions }, ...notFound, ...errors },
    handler: async ({ params }, req, res) => {
      res.json(await deps.admin.endSessions(currentAuth(req), params.id, clientContext(req)));
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
      await deps.admin.resetRateLimit(currentAuth(req), params.key, clientContext(req));
      res.status(204).end();
    },
  });
  return api;
}
