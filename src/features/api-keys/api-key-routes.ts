// HTTP routes to create, list and revoke API keys; only a Bearer-authenticated user may manage them.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { EnrolmentGuards } from '../../kernel/authenticate/enrolment-guards.js';
import type { RequestHandler } from 'express';
import { z } from 'zod';
import { ApiRouter } from '../../core/http/api-router.js';
import { AppError } from '../../core/errors.js';
import { ErrorResponse, errorResponses } from '../../core/http/openapi.js';
import { type Authenticators, currentAuth, UNMETERED, UNMETERED_NOTE } from '../../kernel/authenticate/authenticate.js';
import { API_KEY_SCOPES, type ApiKeyService, DEFAULT_SCOPES } from '../../kernel/verifiers/api-key-service.js';
import type { Budget } from '../../kernel/throttle/rate-limiter.js';
import { clientContext } from '../../kernel/identity/client-context.js';
import { currentOrg, type OrgAccess } from '../../kernel/authenticate/org-access.js';
import { ORG_PERMISSIONS, OWNER_ONLY_PERMISSIONS } from '../../kernel/identity/org-roles.js';

const ApiKey = z
  .object({
    id: z.uuid(),
    name: z.string(),
    prefix: z.string(),
    scopes: z.array(z.enum(API_KEY_SCOPES)),
    createdAt: z.iso.datetime(),
    lastUsedAt: z.iso.datetime().nullable().meta({ description: 'Updated at most once a minute' }),
    expiresAt: z.iso.datetime().nullable(),
  })
  .meta({ id: 'ApiKey' });
const CreatedApiKey = ApiKey.extend({ key: z.string().meta({ description: 'The key itself. Shown only in this response.' }) }).meta({ id: 'CreatedApiKey' });

const CreateBody = z
  .object({
    name: z.string().trim().min(1).max(64),
    expiresAt: z.iso
      .datetime({ offset: true })
      .optional()
      .transform((value) => (value === undefined ? undefined : new Date(value))),
    scopes: z
      .array(z.enum(API_KEY_SCOPES))
      .min(1)
      .optional()
      .meta({ description: `Defaults to ${DEFAULT_SCOPES.join(' and ')}` }),
  })
  .strict()
  .meta({ id: 'CreateApiKeyRequest' });
const KeyParams = z.object({ id: z.uuid() });

const OrgKeyPermission = z
  .enum(ORG_PERMISSIONS)
  .refine((permission) => !OWNER_ONLY_PERMISSIONS.includes(permission), `${OWNER_ONLY_PERMISSIONS.join(' and ')} belong to owners alone`);
const OrgApiKey = ApiKey.extend({
  scopes: z.array(z.string()).meta({ description: 'Organization permissions' }),
  createdBy: z.uuid().meta({ description: 'Who created it; the key does no more than they can in the organization now, and nothing once they leave' }),
}).meta({ id: 'OrganizationApiKey' });
const CreatedOrgApiKey = OrgApiKey.extend({ key: z.string().meta({ description: 'The key itself. Shown only in this response.' }) }).meta({
  id: 'CreatedOrganizationApiKey',
});
const CreateOrgKeyBody = z
  .object({
    name: z.string().trim().min(1).max(64),
    scopes: z.array(OrgKeyPermission).min(1).max(ORG_PERMISSIONS.length).meta({ description: 'Organization permissions, at most your own' }),
    expiresAt: CreateBody.shape.expiresAt,
  })
  .strict()
  .meta({ id: 'CreateOrganizationApiKeyRequest' });
const OrgKeyParams = z.object({ orgId: z.uuid(), id: z.uuid() });

const errors = errorResponses({ 403: 'API keys cannot manage API keys' });

export function apiKeyRoutes(
  registry: OpenAPIRegistry,
  deps: {
    apiKeys: ApiKeyService;
    authn: Authenticators;
    /** Changes to settings (creating a key). */
    limit: Budget;
    /** Reads of one's own settings (listing keys). */
    readLimit: Budget;
    recentSignIn: RequestHandler;
    enrolment: EnrolmentGuards;
    orgAccess: OrgAccess;
  },
): ApiRouter {
  const api = new ApiRouter(registry, { tags: ['api keys'] });
  const middleware = [deps.authn.user(deps.limit)];
  api.route({
    method: 'post',
    path: '/api-keys',
    summary: 'Create an API key; the response is the only time the key is shown; needs a recent sign-in',
    description:
      'Clients send it as `X-API-Key`. Scopes: images:read, images:write, profile:read. A key outlives logout and password changes, ' +
      'so minting one needs a sign-in within REAUTH_MAX_AGE_S (else 401 reauthentication_required: POST /reauthenticate).',
    security: ['bearer'],
    body: CreateBody,
    middleware: [...middleware, deps.recentSignIn, deps.enrolment.verifiedEmail],
    responses: { 201: { description: 'The key', schema: CreatedApiKey }, ...errors },
    handler: async ({ body }, req, res) => {
      res.status(201).json(await deps.apiKeys.create(currentAuth(req).userId, body, clientContext(req)));
    },
  });
  api.route({
    method: 'get',
    path: '/api-keys',
    summary: 'Your active API keys (never the secret)',
    security: ['bearer'],
    middleware: [deps.authn.user(deps.readLimit)],
    responses: { 200: { description: 'Keys, newest first', schema: z.object({ keys: z.array(ApiKey) }) }, ...errors },
    handler: async (_input, req, res) => {
      res.json({ keys: (await deps.apiKeys.list({ userId: currentAuth(req).userId })).map(({ createdBy: _, ...key }) => key) });
    },
  });
  api.route({
    method: 'delete',
    path: '/api-keys/:id',
    summary: 'Revoke an API key',
    description: UNMETERED_NOTE,
    security: ['bearer'],
    params: KeyParams,
    middleware: [deps.authn.user(UNMETERED)],
    responses: { 204: { description: 'Revoked' }, 404: { description: 'No such key of yours', schema: ErrorResponse }, ...errors },
    handler: async ({ params }, req, res) => {
      await deps.apiKeys.revoke(currentAuth(req).userId, params.id, clientContext(req));
      res.status(204).end();
    },
  });

  const manage = deps.orgAccess.require('api-keys:manage');
  const orgErrors = errorResponses({ 403: 'Your role does not grant api-keys:manage, or the scopes exceed your own (org_grant_exceeded)' });
  api.route({
    method: 'post',
    path: '/orgs/:orgId/api-keys',
    summary: "Create an organization's API key with organization permissions as scopes (api-keys:manage; needs a recent sign-in)",
    description:
      'The key acts in the organization only, sent as `X-API-Key`. Each use it can do no more than its creator can in the organization ' +
      'at that moment, and nothing once they have left it.',
    security: ['bearer'],
    params: z.object({ orgId: z.uuid() }),
    body: CreateOrgKeyBody,
    middleware: [deps.authn.user(deps.limit), manage, deps.recentSignIn, deps.enrolment.verifiedEmail],
    responses: { 201: { description: 'The key', schema: CreatedOrgApiKey }, ...orgErrors },
    handler: async ({ body }, req, res) => {
      const org = currentOrg(req);
      if (!body.scopes.every((scope) => org.permissions.includes(scope))) throw new AppError('org_grant_exceeded');
      const created = await deps.apiKeys.create(currentAuth(req).userId, { ...body, orgId: org.orgId }, clientContext(req));
      res.status(201).json({ ...created, createdBy: currentAuth(req).userId });
    },
  });
  api.route({
    method: 'get',
    path: '/orgs/:orgId/api-keys',
    summary: "The organization's active API keys (api-keys:manage; never the secret)",
    security: ['bearer'],
    params: z.object({ orgId: z.uuid() }),
    middleware: [deps.authn.user(deps.readLimit), manage],
    responses: { 200: { description: 'Keys, newest first', schema: z.object({ keys: z.array(OrgApiKey) }) }, ...orgErrors },
    handler: async (_input, req, res) => {
      res.json({ keys: await deps.apiKeys.list({ orgId: currentOrg(req).orgId }) });
    },
  });
  api.route({
    method: 'delete',
    path: '/orgs/:orgId/api-keys/:id',
    summary: "Revoke an organization's API key (api-keys:manage)",
    description: UNMETERED_NOTE,
    security: ['bearer'],
    params: OrgKeyParams,
    middleware: [deps.authn.user(UNMETERED), manage],
    responses: { 204: { description: 'Revoked' }, 404: { description: 'No such key of the organization', schema: ErrorResponse }, ...orgErrors },
    handler: async ({ params }, req, res) => {
      await deps.apiKeys.revoke(currentAuth(req).userId, params.id, clientContext(req), currentOrg(req).orgId);
      res.status(204).end();
    },
  });
  return api;
}
