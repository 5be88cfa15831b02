// HTTP routes to see and end the signed-in user's sessions.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { AppError } from '../../core/errors.js';
import { ApiRouter } from '../../core/http/api-router.js';
import { ErrorResponse, errorResponses } from '../../core/http/openapi.js';
import { type Authenticators, currentAuth, UNMETERED, UNMETERED_NOTE } from '../auth/authenticate.js';
import type { Sessions } from './session-service.js';
import type { Budget } from '../rate-limit/rate-limiter.js';

const SessionList = z
  .object({
    sessions: z.array(
      z.object({
        id: z.uuid(),
        createdAt: z.iso.datetime(),
        lastUsedAt: z.iso.datetime(),
        expiresAt: z.iso.datetime(),
        userAgent: z.string().nullable(),
        ip: z.string().nullable(),
        current: z.boolean(),
      }),
    ),
  })
  .meta({ id: 'SessionList' });

const SessionParams = z.object({ id: z.uuid() });

const errors = errorResponses();

export function sessionRoutes(registry: OpenAPIRegistry, deps: { sessions: Sessions; authn: Authenticators; userLimit: Budget }): ApiRouter {
  const api = new ApiRouter(registry, { tags: ['sessions'] });
  const middleware = [deps.authn.user(deps.userLimit)];
  api.route({
    method: 'get',
    path: '/sessions',
    summary: "The user's active sessions; `current` marks the one making this call",
    security: ['bearer'],
    middleware,
    responses: { 200: { description: 'Active sessions, newest first', schema: SessionList }, ...errors },
    handler: async (_input, req, res) => {
      const auth = currentAuth(req);
      res.json({ sessions: await deps.sessions.list(auth.userId, auth.sessionId) });
    },
  });
  api.route({
    method: 'delete',
    path: '/sessions/:id',
    summary: 'End one session (its refresh and access tokens stop working)',
    description: UNMETERED_NOTE,
    security: ['bearer'],
    params: SessionParams,
    middleware: [deps.authn.user(UNMETERED)],
    responses: { 204: { description: 'Ended' }, 404: { description: 'No such active session of yours', schema: ErrorResponse }, ...errors },
    handler: async ({ params }, req, res) => {
      const ended = await deps.sessions.revoke({ id: params.id, userId: currentAuth(req).userId }, 'revoked_by_user');
      if (ended === 0) throw new AppError('session_not_found');
      res.status(204).end();
    },
  });
  return api;
}
