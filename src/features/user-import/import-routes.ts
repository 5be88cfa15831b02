// POST /admin/users/import: an administrator sends users as NDJSON (one native record a line) and is answered what
// was created, updated and refused, line by line.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { Request } from 'express';
import { z } from 'zod';
import { AppError } from '../../core/errors.js';
import { ApiRouter } from '../../core/http/api-router.js';
import { errorResponses } from '../../core/http/openapi.js';
import { currentAuth } from '../../kernel/authenticate/authenticate.js';
import { adminOnly, type AdminGuardDeps } from '../../kernel/authenticate/guards.js';
import { clientContext } from '../../kernel/identity/client-context.js';
import type { SecurityEvents } from '../../kernel/events/security-events.js';
import { ndjsonLines } from './source-readers.js';
import { REJECTIONS_KEPT, type UserImport } from './user-import.js';

const NDJSON_TYPES = ['application/x-ndjson', 'application/jsonl', 'application/ndjson'];

const ImportQuery = z
  .object({
    dryRun: z
      .enum(['true', 'false'])
      .transform((value) => value === 'true')
      .optional()
      .meta({ description: 'Check every record (against the database too) and write nothing' }),
  })
  .strict();

const Rejection = z
  .object({
    line: z.number().int().meta({ description: 'The line of the body the record was on' }),
    email: z.string().optional(),
    code: z.string().meta({
      description:
        'invalid_json, validation_failed, password_hash_unrecognised, password_hash_malformed, password_hash_too_costly, password_hash_legacy_disabled, ' +
        'totp_secret_invalid, unknown_role, duplicate_email, username_taken, account_not_imported, account_created_meanwhile',
    }),
    message: z.string(),
  })
  .meta({ id: 'ImportRejection' });

export const ImportSummaryView = z
  .object({
    dryRun: z.boolean(),
    records: z.number().int().meta({ description: 'Records read (blank lines aside)' }),
    created: z.number().int(),
    updated: z.number().int().meta({ description: 'Accounts an earlier import created, brought up to date' }),
    rejected: z.array(Rejection).meta({ description: `Every record refused, in order (the first ${REJECTIONS_KEPT})` }),
    rejectedCount: z.number().int(),
    passwordsKept: z.number().int().meta({ description: 'Updated accounts whose password was set here since the last import: kept' }),
    hashFormats: z.record(z.string(), z.number().int()).meta({ description: 'How many password hashes of each format were written' }),
  })
  .meta({ id: 'ImportSummary' });

/**
 * The body, whole but bounded: nothing is written until it has all arrived, so a body cut off or too large leaves the
 * database as it was. A Content-Length over the limit is refused before a byte is read.
 */
function readBoundedBody(req: Request, maxBytes: number): Promise<string> {
  if (Number(req.headers['content-length'] ?? 0) > maxBytes) return Promise.reject(new AppError('import_too_large'));
  if ((req.headers['content-encoding'] ?? 'identity') !== 'identity') return Promise.reject(new AppError('body_encoding_unsupported'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      outcome();
    };
    req.on('data', (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > maxBytes) settle(() => reject(new AppError('import_too_large')));
      else chunks.push(chunk);
    });
    req.on('end', () => settle(() => resolve(Buffer.concat(chunks).toString('utf8'))));
    req.on('aborted', () => settle(() => reject(new AppError('body_incomplete'))));
    req.on('error', (err) => settle(() => reject(new AppError('body_incomplete', { cause: err }))));
  });
}

export function importRoutes(
  registry: OpenAPIRegistry,
  deps: AdminGuardDeps & { userImport: UserImport; events: SecurityEvents; maxBytes: number },
): ApiRouter {
  const api = new ApiRouter(registry, { tags: ['admin'] });
  api.route({
    method: 'post',
    path: '/admin/users/import',
    summary: 'Import users with the password hashes they have elsewhere (NDJSON, one record a line)',
    description:
      'Each line is `{"email", "username"?, "emailVerified"?, "roles"?, "passwordHash"?, "totpSecret"?, "createdAt"?}`. The email is the key: ' +
      'running the same import again updates the accounts it created and never duplicates one; an account registered here is never changed. ' +
      'Password hashes may be bcrypt, Argon2 (PHC), scrypt (PHC), Firebase scrypt ($fbscrypt$), PBKDF2 (PHC or Django) and, with ' +
      'PASSWORD_LEGACY_HASHES, salted SHA and MD5; each is replaced by our bcrypt at its owner’s first sign-in. Roles are granted, never taken ' +
      'away. A bad record is reported with its line and reason and the rest are imported; the body is read whole (at most USER_IMPORT_MAX_MB) ' +
      'before anything is written.',
    security: ['bearer'],
    query: ImportQuery,
    rawBody: { contentType: 'application/x-ndjson', description: 'One import record (a JSON object) a line' },
    middleware: adminOnly(deps),
    responses: {
      200: { description: 'What was created and updated, and every record refused with its line and reason', schema: ImportSummaryView },
      ...errorResponses({ 403: 'Not an administrator' }),
    },
    handler: async ({ query }, req, res) => {
      if (!req.is(NDJSON_TYPES)) throw new AppError('ndjson_body_required');
      const body = await readBoundedBody(req, deps.maxBytes);
      const summary = await deps.userImport.run(ndjsonLines(body), { dryRun: query.dryRun });
      if (!summary.dryRun) {
        const { created, updated, rejected } = summary;
        deps.events.record({ type: 'users.imported', actorId: currentAuth(req).userId, details: { created, updated, rejected } }, clientContext(req));
      }
      res.json({
        dryRun: summary.dryRun,
        records: summary.records,
        created: summary.created,
        updated: summary.updated,
        rejected: summary.rejections,
        rejectedCount: summary.rejected,
        passwordsKept: summary.passwordsKept,
        hashFormats: summary.hashFormats,
      });
    },
  });
  return api;
}
