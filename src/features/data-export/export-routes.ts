// GET /admin/users/export (every account as NDJSON, in the import's record shape, streamed) and GET /me/export (one's
// own data as JSON, to download).
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import type { Clock } from '../../core/clock.js';
import { ApiRouter } from '../../core/http/api-router.js';
import { errorResponses } from '../../core/http/openapi.js';
import { type Authenticators, currentAuth } from '../../kernel/authenticate/authenticate.js';
import { adminOnly, type AdminGuardDeps } from '../../kernel/authenticate/guards.js';
import { clientContext } from '../../kernel/identity/client-context.js';
import type { SecurityEvents } from '../../kernel/events/security-events.js';
import type { Budget } from '../../kernel/throttle/rate-limiter.js';
import { type DataExport, EXPORTED_EVENTS_MAX } from './data-export.js';

const iso = z.iso.datetime();
const nullableIso = iso.nullable();

const PersonalExportView = z
  .object({
    exportedAt: iso,
    profile: z.object({
      id: z.uuid(),
      username: z.string(),
      email: z.string(),
      emailVerified: z.boolean(),
      emailVerifiedAt: nullableIso,
      roles: z.array(z.string()),
      hasPassword: z.boolean(),
      twoFactorEnabled: z.boolean(),
      createdAt: iso,
      updatedAt: iso,
      passkeys: z.array(z.object({ name: z.string(), createdAt: iso, lastUsedAt: nullableIso })),
      linkedIdentities: z.array(z.object({ provider: z.string(), email: z.string().nullable(), createdAt: iso, lastUsedAt: nullableIso })),
      apiKeys: z.array(
        z.object({
          name: z.string(),
          prefix: z.string(),
          scopes: z.array(z.string()),
          createdAt: iso,
          lastUsedAt: nullableIso,
          expiresAt: nullableIso,
          revokedAt: nullableIso,
        }),
      ),
      organizations: z.array(z.object({ name: z.string(), slug: z.string(), role: z.string(), joinedAt: iso })),
    }),
    sessions: z.array(
      z.object({
        id: z.uuid(),
        createdAt: iso,
        lastUsedAt: iso,
        expiresAt: iso,
        revokedAt: nullableIso,
        userAgent: z.string().nullable(),
        ip: z.string().nullable(),
        amr: z.array(z.string()),
      }),
    ),
    securityEvents: z.array(
      z.object({
        type: z.string(),
        createdAt: iso,
        ip: z.string().nullable(),
        userAgent: z.string().nullable(),
        details: z.unknown(),
        byYou: z.boolean().meta({ description: 'You did it (otherwise an administrator, or someone trying to sign in as you)' }),
      }),
    ),
    images: z.array(
      z.object({
        id: z.uuid(),
        name: z.string(),
        mimeType: z.string(),
        size: z.number().int(),
        width: z.number().int(),
        height: z.number().int(),
        sha256: z.string(),
        organizationId: z.uuid().nullable(),
        createdAt: iso,
      }),
    ),
  })
  .meta({ id: 'PersonalDataExport' });

const NDJSON = 'application/x-ndjson';

export interface ExportRouteDeps extends AdminGuardDeps {
  exports: DataExport;
  events: SecurityEvents;
  clock: Clock;
  authn: Authenticators;
  userLimit: Budget;
}

export function exportRoutes(registry: OpenAPIRegistry, deps: ExportRouteDeps): { admin: ApiRouter; me: ApiRouter } {
  const admin = new ApiRouter(registry, { tags: ['admin'] });
  admin.route({
    method: 'get',
    path: '/admin/users/export',
    summary: 'Every account as NDJSON, in the record shape POST /admin/users/import reads (no secrets)',
    description:
      'One line per account, `{"email","username","emailVerified","roles","createdAt"}`, oldest id first, streamed. Password hashes, ' +
      'two-factor secrets, recovery codes, API keys and passkeys are never exported; disabled accounts are exported like the others.',
    security: ['bearer'],
    middleware: adminOnly(deps),
    responses: {
      200: { description: 'The accounts, one JSON object a line', schema: z.string(), contentType: NDJSON },
      ...errorResponses({ 403: 'Not an administrator' }),
    },
    handler: async (_input, req, res) => {
      const date = new Date(deps.clock.now()).toISOString().slice(0, 10);
      res.status(200).type(NDJSON).set('Content-Disposition', `attachment; filename="users-${date}.ndjson"`);
      let count = 0;
      const exports = deps.exports;
      const lines = Readable.from(
        (async function* () {
          for await (const user of exports.users()) {
            count++;
            yield `${JSON.stringify(user)}\n`;
          }
        })(),
      );
      try {
        await pipeline(lines, res);
      } finally {
        deps.events.record({ type: 'users.exported', actorId: currentAuth(req).userId, details: { users: count } }, clientContext(req));
      }
    },
  });

  const me = new ApiRouter(registry, { tags: ['me'] });
  me.route({
    method: 'get',
    path: '/me/export',
    summary: 'Download everything kept about you: profile, sessions, security events, images (JSON)',
    description: `Your account's data in a portable form (GDPR Art. 20). No secrets: no password hash, no two-factor secret, no key material. At most the ${EXPORTED_EVENTS_MAX.toLocaleString('en')} newest security events.`,
    security: ['bearer'],
    middleware: [deps.authn.user(deps.userLimit)],
    responses: { 200: { description: 'Your data', schema: PersonalExportView }, ...errorResponses() },
    handler: async (_input, req, res) => {
      const { userId } = currentAuth(req);
      const data = await deps.exports.personal(userId);
      deps.events.record({ type: 'account.exported', actorId: userId, targetId: userId }, clientContext(req));
      res.set('Content-Disposition', `attachment; filename="my-data-${data.exportedAt.slice(0, 10)}.json"`).json(data);
    },
  });
  return { admin, me };
}
