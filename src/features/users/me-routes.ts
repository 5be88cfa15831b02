// HTTP routes for the signed-in user's own account.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { ApiRouter } from '../../core/http/api-router.js';
import { ErrorResponse, errorResponses } from '../../core/http/openapi.js';
import { type Authenticators, currentAuth } from '../../kernel/authenticate/authenticate.js';
import { Email, Password, PasswordAttempt, PublicUser, Username } from '../../kernel/identity/user-schemas.js';
import type { UserService } from './user-service.js';
import type { Budget } from '../../kernel/throttle/rate-limiter.js';
import { clientContext } from '../../kernel/identity/client-context.js';

const UpdateMeBody = z
  .object({
    username: Username.optional(),
    email: Email.optional(),
    password: Password.optional().meta({ description: 'The new password' }),
    currentPassword: PasswordAttempt.optional().meta({ description: 'Required to change the email or the password' }),
  })
  .strict()
  .refine((body) => body.username !== undefined || body.email !== undefined || body.password !== undefined, {
    message: 'change at least one of username, email or password',
  })
  .refine((body) => (body.email === undefined && body.password === undefined) || body.currentPassword !== undefined, {
    message: 'required to change the email or the password',
    path: ['currentPassword'],
  })
  .meta({ id: 'UpdateMeRequest' });

const DeleteMeBody = z.object({ password: PasswordAttempt }).strict().meta({ id: 'DeleteMeRequest' });

const errors = errorResponses({ 401: 'Missing, invalid or revoked credentials, or a wrong current password' });

const Me = PublicUser.extend({
  hasPassword: z.boolean().meta({
    description: 'Whether the account has a password of its own: one made by an outside provider has none until a password reset sets one',
  }),
}).meta({ id: 'Me' });

const UpdatedUser = PublicUser.extend({
  pendingEmail: z.string().optional().meta({ description: 'The new address, when one was asked for: it replaces email once the link sent to it is opened' }),
}).meta({ id: 'UpdatedUser' });

export function meRoutes(registry: OpenAPIRegistry, deps: { users: UserService; authn: Authenticators; userLimit: Budget; readLimit: Budget }): ApiRouter {
  const api = new ApiRouter(registry, { tags: ['me'] });
  const middleware = [deps.authn.user(deps.userLimit)];
  api.route({
    method: 'get',
    path: '/me',
    summary: 'The signed-in user',
    security: ['bearer', 'apiKey'],
    middleware: [deps.authn.userOrKey('profile:read', deps.readLimit)],
    responses: { 200: { description: 'The user', schema: Me }, ...errors },
    handler: async (_input, req, res) => {
      res.json(await deps.users.describe(currentAuth(req).userId));
    },
  });
  api.route({
    method: 'patch',
    path: '/me',
    summary: 'Change username, email or password (the last two need currentPassword)',
    description:
      'A new password ends every other session of the user, and the owner is told by email. A new email takes effect only once the link sent to it ' +
      'is opened (POST /email/verify); until then the answer names it as pendingEmail, and the old address is told when it changes.',
    security: ['bearer'],
    body: UpdateMeBody,
    middleware,
    responses: {
      200: { description: 'The updated user', schema: UpdatedUser },
      409: { description: 'Username or email already registered', schema: ErrorResponse },
      ...errors,
    },
    handler: async ({ body }, req, res) => {
      const { email, ...changes } = body;
      res.json(await deps.users.update(currentAuth(req), { ...changes, newEmail: email }, clientContext(req)));
    },
  });
  api.route({
    method: 'delete',
    path: '/me',
    summary: 'Delete the account and everything it owns',
    description:
      'Organizations you are alone in go with it; images you uploaded to an organization stay with it. While you are the only owner of an ' +
      'organization others belong to, 409 org_last_owner: make one of them owner (or delete it) first.',
    security: ['bearer'],
    body: DeleteMeBody,
    middleware,
    responses: { 204: { description: 'Deleted' }, 409: { description: 'org_last_owner', schema: ErrorResponse }, ...errors },
    handler: async ({ body }, req, res) => {
      await deps.users.delete(currentAuth(req), body.password, clientContext(req));
      res.status(204).end();
    },
  });
  return api;
}
