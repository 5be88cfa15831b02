// HTTP routes to read the audit log: a user's own security events, and (for administrators) everyone's, filtered.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { ApiRouter } from '../../core/http/api-router.js';
import { errorResponses } from '../../core/http/openapi.js';
import { pageEnvelope, pageQueryFields } from '../../core/pagination.js';
import { adminOnly, type AdminGuardDeps } from '../../kernel/authenticate/guards.js';
import { currentAuth } from '../../kernel/authenticate/authenticate.js';
import { currentOrg, type OrgAccess } from '../../kernel/authenticate/org-access.js';
import type { AuditLog } from './audit-log.js';
import type { Budget } from '../../kernel/throttle/rate-limiter.js';
import { SECURITY_EVENT_LABELS, SECURITY_EVENT_TYPES } from '../../kernel/events/security-events.js';

const SecurityEventSchema = z
  .object({
    id: z.uuid(),
    type: z.enum(SECURITY_EVENT_TYPES),
    actorId: z.uuid().nullable().meta({ description: 'Who did it; null for an anonymous request' }),
    targetId: z.uuid().nullable().meta({ description: 'Whose account it concerns' }),
    ip: z.string().nullable(),
    userAgent: z.string().nullable(),
    requestId: z.string().nullable(),
    details: z.record(z.string(), z.unknown()),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'SecurityEvent' });
const EventPage = pageEnvelope('events', SecurityEventSchema, 'SecurityEventPage');

const EventTypesSchema = z
  .object({
    types: z.array(
      z.object({
        type: z.enum(SECURITY_EVENT_TYPES),
        label: z.string().meta({ description: 'What the event is called where a person reads it' }),
      }),
    ),
  })
  .meta({ id: 'SecurityEventTypes' });
const EVENT_TYPES = { types: SECURITY_EVENT_TYPES.map((type) => ({ type, label: SECURITY_EVENT_LABELS[type] })) };

const ChainVerdictSchema = z
  .discriminatedUnion('ok', [
    z.object({
      ok: z.literal(true),
      events: z.int().meta({ description: 'Events checked: every event in the log' }),
      firstSeq: z.int().nullable().meta({ description: 'seq of the oldest retained event (1 until the first prune); null for an empty log' }),
      head: z
        .object({ seq: z.int(), hash: z.string(), createdAt: z.iso.datetime() })
        .nullable()
        .meta({ description: 'The newest event; keep its hash elsewhere to detect a rewrite of the whole chain later' }),
    }),
    z.object({
      ok: z.literal(false),
      events: z.int().meta({ description: 'Events found intact before the first broken link' }),
      firstBrokenSeq: z.int(),
      eventId: z.uuid(),
      reason: z.enum(['altered', 'missing', 'relinked', 'out_of_order']).meta({
        description:
          'altered: the event no longer matches its hash; missing: events before it are gone; relinked: its prevHash is not the previous hash; out_of_order: a repeated seq or one below 1',
      }),
      message: z.string(),
    }),
  ])
  .meta({ id: 'AuditChainVerdict' });

const TypeList = z
  .string()
  .transform((value) => value.split(',').map((type) => type.trim()))
  .pipe(z.array(z.enum(SECURITY_EVENT_TYPES)))
  .meta({ description: 'Comma-separated event types' });
const AdminQuery = z
  .object({
    userId: z.uuid().optional().meta({ description: 'Events done by or concerning this user' }),
    type: TypeList.optional(),
    from: z.iso.datetime({ offset: true }).optional().meta({ description: 'At or after (ISO 8601)' }),
    to: z.iso.datetime({ offset: true }).optional().meta({ description: 'Before (ISO 8601)' }),
    ...pageQueryFields,
  })
  .strict();

export function auditRoutes(
  registry: OpenAPIRegistry,
  deps: AdminGuardDeps & { audit: AuditLog; /** Reads of one's own account. */ readLimit: Budget; orgAccess: OrgAccess },
): ApiRouter {
  const api = new ApiRouter(registry, { tags: ['audit'] });
  api.route({
    method: 'get',
    path: '/audit/event-types',
    summary: 'Every security event type with the label a person reads (public, the same for everyone)',
    responses: { 200: { description: 'The event types, in a stable order', schema: EventTypesSchema } },
    handler: (_input, _req, res) => {
      res.json(EVENT_TYPES);
    },
  });
  api.route({
    method: 'get',
    path: '/me/security-events',
    summary: 'Your security events (sign-ins, failed sign-ins, changes to your account), newest first',
    security: ['bearer'],
    query: z.object(pageQueryFields).strict(),
    middleware: [deps.authn.user(deps.readLimit)],
    responses: { 200: { description: 'A page of events', schema: EventPage }, ...errorResponses({ 403: 'API keys cannot read the security log' }) },
    handler: async ({ query }, req, res) => {
      res.json(await deps.audit.list({ ...query, userId: currentAuth(req).userId }));
    },
  });
  api.route({
    method: 'get',
    path: '/orgs/:orgId/audit',
    summary: "The organization's events (its members, roles, invitations, settings), newest first (audit:read)",
    security: ['bearer'],
    params: z.object({ orgId: z.uuid() }),
    query: z.object({ type: TypeList.optional(), ...pageQueryFields }).strict(),
    middleware: [deps.authn.user(deps.readLimit), deps.orgAccess.require('audit:read')],
    responses: { 200: { description: 'A page of events', schema: EventPage }, ...errorResponses({ 403: 'Your role does not grant audit:read' }) },
    handler: async ({ query }, req, res) => {
      res.json(await deps.audit.list({ page: query.page, pageSize: query.pageSize, types: query.type, orgId: currentOrg(req).orgId }));
    },
  });
  api.route({
    method: 'get',
    path: '/admin/audit',
    summary: 'The audit log, newest first, filtered by user, event types and time',
    security: ['bearer'],
    query: AdminQuery,
    middleware: adminOnly(deps),
    responses: { 200: { description: 'A page of events', schema: EventPage }, ...errorResponses() },
    handler: async ({ query }, _req, res) => {
      res.json(
        await deps.audit.list({
          page: query.page,
          pageSize: query.pageSize,
          userId: query.userId,
          types: query.type,
          from: query.from === undefined ? undefined : new Date(query.from),
          to: query.to === undefined ? undefined : new Date(query.to),
        }),
      );
    },
  });
  api.route({
    method: 'get',
    path: '/admin/audit/verify',
    summary: "Check the audit log's hash chain from its oldest event and name the first broken link",
    description:
      'Reads the whole log (in batches). `ok: false` means an event was changed, removed or inserted outside the service (the database refuses that unless its triggers were disabled).',
    security: ['bearer'],
    middleware: adminOnly(deps),
    responses: {
      200: { description: 'The verdict (a broken chain is still a 200: the check itself succeeded)', schema: ChainVerdictSchema },
      ...errorResponses(),
    },
    handler: async (_input, _req, res) => {
      res.json(await deps.audit.verify());
    },
  });
  return api;
}
