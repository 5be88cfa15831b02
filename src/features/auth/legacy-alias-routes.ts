// Paths that clients of the older Flask services expect under /auth, answered by the canonical handlers.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { RequestHandler } from 'express';
import { ApiRouter } from '../../core/http/api-router.js';
import { ErrorResponse } from '../../core/http/openapi.js';
import { PublicUser } from '../users/user-schemas.js';
import type { UserService } from '../users/user-service.js';
import { RegisterBody } from './auth-schemas.js';
import { clientContext, REGISTER_NOTE } from './auth-routes.js';
import type { AuthService } from './auth-service.js';
import { type Authenticators, currentAuth } from './authenticate.js';
import type { Budget } from '../rate-limit/rate-limiter.js';

export function legacyAliasRoutes(
  registry: OpenAPIRegistry,
  deps: { auth: AuthService; users: UserService; authn: Authenticators; publicLimit: RequestHandler; userLimit: Budget },
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
      res.status(201).json(await deps.auth.register(body, clientContext(req)));
    },
  });
  api.route({
    method: 'get',
    path: '/user',
    summary: 'Alias of GET /me',
    deprecated: true,
    security: ['bearer', 'apiKey'],
    middleware: [deps.authn.userOrKey('profile:read', deps.userLimit)],
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
