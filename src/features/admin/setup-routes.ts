// The first administrator of an embedded server that is already running: `npm run admin:create` cannot open the
// database the server holds, so it hands the server the one-time setup token the server wrote to its data directory.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { RequestHandler } from 'express';
import { z } from 'zod';
import type { Clock } from '../../core/clock.js';
import type { Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import { ApiRouter } from '../../core/http/api-router.js';
import { ErrorResponse, errorResponses } from '../../core/http/openapi.js';
import { thisMachineOnly } from '../../core/http/security.js';
import { ensureAdmin } from './admin-service.js';
import { ADMIN_ROLE } from '../../kernel/identity/roles.js';
import type { PasswordHasher } from '../../kernel/passwords/passwords.js';
import { Email, Password, PublicUser, Username } from '../../kernel/identity/user-schemas.js';

export interface SetupRouteDeps {
  prisma: Prisma;
  passwords: PasswordHasher;
  clock: Clock;
  /** The token main.ts wrote to DATA_DIR/setup-token; spent by the first administrator made with it. */
  setupToken: { value: string; spend(): Promise<void> };
  publicLimit: RequestHandler;
}

/** Where an embedded server keeps the token, inside its data directory. */
export const SETUP_TOKEN_FILE = 'setup-token';

const digest = (value: string) => createHash('sha256').update(value).digest();

export function setupRoutes(registry: OpenAPIRegistry, deps: SetupRouteDeps): ApiRouter {
  const api = new ApiRouter(registry, { tags: ['setup'] });
  let spent = false;
  api.route({
    method: 'post',
    path: '/setup/admin',
    summary: 'Create the first administrator of an embedded server with its one-time setup token (from this machine only)',
    description:
      'Exists only while an embedded server has no administrator; `npm run admin:create` calls it when the server holds the database. ' +
      'Answers only requests made on the machine itself (404 otherwise, and through a proxy).',
    body: z.object({ token: z.string().min(1).max(128), email: Email, username: Username, password: Password }).strict(),
    middleware: [thisMachineOnly(), deps.publicLimit],
    responses: {
      201: { description: 'The administrator', schema: PublicUser },
      404: { description: 'Asked from another machine, or through a proxy', schema: ErrorResponse },
      409: { description: 'An administrator exists already, or the address belongs to an account (never promoted here)', schema: ErrorResponse },
      ...errorResponses({ 401: 'The setup token is not the one in DATA_DIR/setup-token, or it was spent' }),
    },
    handler: async ({ body }, _req, res) => {
      if (spent || !timingSafeEqual(digest(body.token), digest(deps.setupToken.value)))
        throw new AppError('invalid_token', 'The setup token is not valid, or it was spent.');
      if ((await deps.prisma.userRole.count({ where: { roleName: ADMIN_ROLE } })) > 0) throw new AppError('conflict', 'An administrator exists already.');
      const hash = await deps.passwords.hashNew(body.password, { username: body.username, email: body.email });
      const { created, user } = await ensureAdmin(deps.prisma, () => Promise.resolve(hash), body, deps.clock);
      if (!created) throw new AppError('conflict', 'That address belongs to an account, which is never promoted here: choose another address.');
      spent = true;
      await deps.setupToken.spend();
      const { disabled: _disabled, ...publicUser } = user;
      res.status(201).json(publicUser);
    },
  });
  return api;
}
