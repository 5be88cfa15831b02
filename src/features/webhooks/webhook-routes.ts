// HTTP routes for administrators to register webhook endpoints and see how their deliveries went.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { ApiRouter } from '../../core/http/api-router.js';
import { errorResponses } from '../../core/http/openapi.js';
import { adminOnly, type AdminGuardDeps } from '../../kernel/authenticate/guards.js';
import { currentAuth } from '../../kernel/authenticate/authenticate.js';
import { SECURITY_EVENT_TYPES } from '../../kernel/events/security-events.js';
import type { Webhooks } from './webhooks.js';

const Endpoint = z.object({ id: z.uuid(), url: z.string(), eventTypes: z.array(z.string()), createdAt: z.iso.datetime() }).meta({ id: 'WebhookEndpoint' });
const CreatedEndpoint = Endpoint.extend({
  secret: z.string().meta({ description: 'The signing secret (whsec_…, Standard Webhooks). Shown only in this response.' }),
}).meta({ id: 'CreatedWebhookEndpoint' });
const Delivery = z
  .object({
    id: z.uuid().meta({ description: 'The webhook-id header of every attempt' }),
    eventType: z.string(),
    attempts: z.number().int(),
    lastStatus: z.number().int().nullable(),
    lastError: z.string().nullable(),
    nextAttemptAt: z.iso.datetime().nullable(),
    deliveredAt: z.iso.datetime().nullable(),
    failedAt: z.iso.datetime().nullable().meta({ description: 'Set when it was given up on after the last retry' }),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'WebhookDelivery' });
const CreateBody = z
  .object({
    url: z.url({ protocol: /^https?$/ }).max(2_048),
    eventTypes: z.array(z.enum(SECURITY_EVENT_TYPES)).min(1).max(SECURITY_EVENT_TYPES.length),
  })
  .strict()
  .meta({ id: 'CreateWebhookRequest' });
const EndpointParams = z.object({ id: z.uuid() });

export function webhookRoutes(registry: OpenAPIRegistry, deps: AdminGuardDeps & { webhooks: Webhooks }): ApiRouter {
  const api = new ApiRouter(registry, { tags: ['webhooks'] });
  const middleware = adminOnly(deps);
  const errors = errorResponses();
  api.route({
    method: 'post',
    path: '/admin/webhooks',
    summary: 'Register an endpoint for some event types; the answer holds its signing secret, once',
    description:
      'Each event is POSTed as {"type","timestamp","data"} with the Standard Webhooks headers webhook-id, webhook-timestamp and ' +
      'webhook-signature (v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>" keyed with the secret after whsec_). A non-2xx answer or no ' +
      'answer within 10 s is retried with backoff (30 s doubling to an hour, twelve tries). Production accepts https:// only. ' +
      'A URL whose host is, or resolves to, a loopback, private, link-local, unique-local, IPv4-mapped, unspecified, multicast or other ' +
      'special-purpose address is refused (422) unless WEBHOOK_INTERNAL_ALLOWLIST permits it, and is checked again before every delivery.',
    security: ['bearer'],
    body: CreateBody,
    middleware,
    responses: {
      201: { description: 'The endpoint and its secret', schema: CreatedEndpoint },
      ...errors,
      ...errorResponses({ 422: 'webhook_destination_forbidden: the URL points at an address webhooks may not reach' }),
    },
    handler: async ({ body }, req, res) => {
      res.status(201).json(await deps.webhooks.create(currentAuth(req).userId, body));
    },
  });
  api.route({
    method: 'get',
    path: '/admin/webhooks',
    summary: 'The registered endpoints (never their secrets)',
    security: ['bearer'],
    middleware,
    responses: { 200: { description: 'Endpoints', schema: z.object({ endpoints: z.array(Endpoint) }) }, ...errors },
    handler: async (_input, _req, res) => {
      res.json({ endpoints: await deps.webhooks.list() });
    },
  });
  api.route({
    method: 'delete',
    path: '/admin/webhooks/:id',
    summary: 'Delete an endpoint and its pending deliveries',
    security: ['bearer'],
    params: EndpointParams,
    middleware,
    responses: { 204: { description: 'Deleted' }, ...errors },
    handler: async ({ params }, _req, res) => {
      await deps.webhooks.remove(params.id);
      res.status(204).end();
    },
  });
  api.route({
    method: 'get',
    path: '/admin/webhooks/:id/deliveries',
    summary: "An endpoint's newest 50 deliveries: attempts, last status or error, next attempt",
    security: ['bearer'],
    params: EndpointParams,
    middleware,
    responses: { 200: { description: 'Deliveries, newest first', schema: z.object({ deliveries: z.array(Delivery) }) }, ...errors },
    handler: async ({ params }, _req, res) => {
      res.json({ deliveries: await deps.webhooks.deliveries(params.id) });
    },
  });
  return api;
}
