// Paths that clients of the older Flask services expect under /auth, answered by the canonical handlers.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { RequestHandler } from 'express';
import { ApiRouter } from '../../core/http/api-router.js';
import { ErrorResponse } from '../../core/http/openapi.js';
import { PublicUser } from '../../kernel/identity/user-schemas.js';
import { RegisterBody } from './sign-in-schemas.js';
import { REGISTER_NOTE } from './sign-in-routes.js';
import type { Registration } from './registration.js';
import { clientContext } from '../../kernel/identity/client-context.js';
import type { PublicUser as User } from '../../kernel/identity/user-schemas.js';
import { type Authenticators, currentAuth } from '../../kernel/authenticate/authenticate.js';
import type { Budget } from '../../kernel/throttle/rate-limiter.js';

export function legacyAliasRoutes(
  registry: OpenAPIRegistry,
  deps: {
    registration: Registration;
    /** GET /me's reader (the users feature's). */
    users: { get(userId: string): Promise<User> };
    authn: Authenticators;
    publicLimit: RequestHandler;
    /** GET /me's budget (reads of one's own account). */
    readLimit: Budget;
  },
): ApiRouter {
  const api = new ApiRouter(registry, { tags: ['legacy aliases'], docPrefix: '/auth' });
  api.route({
    method: 'post',
    path: '/signup',
    summary: 'Alias of POST /register',
    description: REGISTER_NOTE,
    deprecated: true,
    body: RegisterBody,
    middleware: [deps.publicLimit],
    responses: {
      201: { description: 'The new user', schema: PublicUser },
      409: { description: 'The username is taken (already_registered)', schema: ErrorResponse },
      429: { description: 'Rate limited; Retry-After says when to try again', schema: ErrorResponse },
    },
    handler: async ({ body }, req, res) => {
      res.status(201).json(await deps.registration.register(body, clientContext(req)));
    },
  });
  api.route({
    method: 'get',
    path: '/user',
    summary: 'Alias of GET /me',
    deprecated: true,
    security: ['bearer', 'apiKey'],
    middleware: [deps.authn.userOrKey('profile:read', deps.readLimit)],
    responses: {
      200: { description: 'The user', schema: PublicUser },
      401: { description: 'Not authenticated', schema: ErrorResponse },
      429: { description: 'Rate limited; Retry-After says when to try again', schema: ErrorResponse },
    },
    handler: async (_input, req, res) => {
      res.json(await deps.users.get(currentAuth(req).userId));
    },
  });
  api.route({
    method: 'get',
    path: '/ping',
    summary: 'Alias of GET /health',
    deprecated: true,
    responses: { 200: { description: 'Alive' } },
    handler: (_input, _req, res) => {
      res.json({ status: 'ok' });
    },
  });
  return api;
}
