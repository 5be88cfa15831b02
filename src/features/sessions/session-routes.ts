// HTTP routes for a session's life after sign-in: refresh-token rotation, and seeing and ending the user's sessions.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { AppError } from '../../core/errors.js';
import { ApiRouter } from '../../core/http/api-router.js';
import { ErrorResponse, errorResponses } from '../../core/http/openapi.js';
import { type Authenticators, currentAuth, UNMETERED, UNMETERED_NOTE } from '../../kernel/authenticate/authenticate.js';
import type { Sessions } from '../../kernel/sessions/sessions.js';
import type { Budget } from '../../kernel/throttle/rate-limiter.js';
import type { RequestHandler } from 'express';
import { TokenResponse } from '../../kernel/authenticate/sign-in-schemas.js';
import { clientContext } from '../../kernel/identity/client-context.js';

const RefreshBody = z
  .object({ refresh_token: z.string().min(1).max(2_048) })
  .strict()
  .meta({ id: 'RefreshRequest' });

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

export interface SessionRouteDeps {
  sessions: Sessions;
  authn: Authenticators;
  /** Reads of one's own account (GET /sessions). */
  readLimit: Budget;
  /** The refresh budget, apart from sign-in's, so failed logins never cost a signed-in user their session. */
  refreshLimit: RequestHandler;
}

export function sessionRoutes(registry: OpenAPIRegistry, deps: SessionRouteDeps): ApiRouter {
  const api = new ApiRouter(registry, { tags: ['sessions'] });
  api.route({
    method: 'post',
    path: '/refresh',
    summary: 'Exchange a refresh token for a new pair (the old one is rotated out)',
    body: RefreshBody,
    middleware: [deps.refreshLimit],
    responses: { 200: { description: 'A new token pair', schema: TokenResponse }, ...errors },
    handler: async ({ body }, req, res) => {
      res.json(await deps.sessions.refresh(body.refresh_token, clientContext(req)));
    },
  });
  api.route({
    method: 'get',
    path: '/sessions',
    summary: "The user's active sessions; `current` marks the one making this call",
    security: ['bearer'],
    middleware: [deps.authn.user(deps.readLimit)],
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
