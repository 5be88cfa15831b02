// HTTP routes of the OpenID provider that are ours rather than oidc-provider's: the hand-over to the page for login
// and consent, the page's answer, and the administrators' client registry.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { RequestHandler } from 'express';
import { z } from 'zod';
import { ApiRouter } from '../../core/http/api-router.js';
import { ErrorResponse, errorResponses } from '../../core/http/openapi.js';
import { type Authenticators, currentAuth, UNMETERED, UNMETERED_NOTE } from '../../kernel/authenticate/authenticate.js';
import { type AdminGuardDeps, adminOnly } from '../../kernel/authenticate/guards.js';
import type { Budget } from '../../kernel/throttle/rate-limiter.js';
import { ANSWER_COOKIE, INTERACTION_TTL_MS, type OAuthInteractions } from './interactions.js';
import type { OAuthConsents } from './consents.js';
import { ClientChangeBody, NewClientBody, type OAuthClients, OAuthClientView } from './oauth-clients.js';

const Uid = z.string().regex(/^[A-Za-z0-9_-]{10,64}$/, 'an interaction id');
const ClientId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a client id');

const Interaction = z
  .object({
    uid: z.string(),
    prompt: z.enum(['login', 'consent']),
    reasons: z.array(z.string()).meta({ description: 'Why: no_session, login_prompt (prompt=login), max_age, session_ended, op_scopes_missing, …' }),
    client: z.object({ clientId: z.string(), name: z.string() }),
    scopes: z.array(z.string()),
    resources: z.array(z.string()),
    consentRequired: z.boolean(),
    loginHint: z.string().nullable(),
  })
  .meta({ id: 'OAuthInteraction' });

export function oauthRoutes(
  registry: OpenAPIRegistry,
  deps: {
    interactions: OAuthInteractions;
    clients: OAuthClients;
    consents: OAuthConsents;
    readLimit: Budget;
    /** PUBLIC_URL is https: the answer cookie is Secure. */
    secureSite: boolean;
    authn: Authenticators;
    publicLimit: RequestHandler;
    userLimit: Budget;
    admin: AdminGuardDeps;
  },
): ApiRouter {
  const api = new ApiRouter(registry, { tags: ['OpenID provider'] });
  const errors = errorResponses();
  const notFound = { 404: { description: 'Expired, finished, or not started in this browser (oauth_interaction_not_found)', schema: ErrorResponse } };
  api.route({
    method: 'get',
    path: '/oauth2/interaction/:uid',
    summary: 'Where the provider sends a browser to sign in or consent: a redirect to the page, which finishes it',
    params: z.object({ uid: Uid }),
    responses: { 303: { description: 'To /#oauth-interaction=<uid>' }, ...errors },
    middleware: [deps.publicLimit],
    handler: async ({ params }, _req, res) => {
      await deps.interactions.arrived(params.uid);
      res.redirect(303, `/#oauth-interaction=${params.uid}`);
    },
  });
  api.route({
    method: 'get',
    path: '/oauth2/interaction/:uid/details',
    summary: 'What the app asks for: who it is, which scopes, whether a (fresh) sign-in or consent is needed',
    description: "Bound to the browser that started the request by the provider's interaction cookie.",
    params: z.object({ uid: Uid }),
    middleware: [deps.publicLimit],
    responses: { 200: { description: 'The request', schema: Interaction }, ...notFound, ...errors },
    handler: async ({ params }, req, res) => {
      res.json(await deps.interactions.describe(req, res, params.uid));
    },
  });
  api.route({
    method: 'post',
    path: '/oauth2/interaction/:uid',
    summary: "The signed-in person's answer: allow (sign in to the app as this session, and consent) or deny",
    description:
      'Needs the Bearer token of the session the app is signed in to. prompt=login or max_age may answer 401 reauthentication_required ' +
      '(POST /reauthenticate, then again). The answer names where the browser goes next, and sets a cookie without which the ' +
      'provider resumes the flow in no other browser.',
    security: ['bearer'],
    params: z.object({ uid: Uid }),
    body: z
      .object({
        decision: z.enum(['allow', 'deny', 'continue']).meta({
          description: 'continue: go on only if nothing needs asking (a first-party app, or everything allowed before); else 409 oauth_consent_required',
        }),
      })
      .strict(),
    middleware: [deps.authn.user(deps.userLimit)],
    responses: {
      200: { description: 'Where to send the browser', schema: z.object({ redirectTo: z.string() }) },
      409: { description: 'continue, but the person must be asked first (oauth_consent_required)', schema: ErrorResponse },
      ...notFound,
      ...errors,
    },
    handler: async ({ params, body }, req, res) => {
      const redirectTo = await deps.interactions.decide(req, res, params.uid, currentAuth(req), body.decision);
      res.cookie(ANSWER_COOKIE, deps.interactions.answerBinding(params.uid), {
        httpOnly: true,
        sameSite: 'strict',
        secure: deps.secureSite,
        path: `/oauth2/authorize/${params.uid}`,
        maxAge: INTERACTION_TTL_MS,
      });
      res.json({ redirectTo });
    },
  });

  const ConnectedApp = z
    .object({ clientId: z.string(), name: z.string(), scopes: z.array(z.string()), grantedAt: z.iso.datetime(), updatedAt: z.iso.datetime() })
    .meta({ id: 'ConnectedApp' });
  api.route({
    method: 'get',
    path: '/me/apps',
    summary: 'The apps you allowed to sign you in, and what each may do',
    security: ['bearer'],
    middleware: [deps.authn.user(deps.readLimit)],
    responses: { 200: { description: 'Newest first', schema: z.object({ apps: z.array(ConnectedApp) }) }, ...errors },
    handler: async (_input, req, res) => {
      res.json({ apps: await deps.consents.list(currentAuth(req).userId) });
    },
  });
  api.route({
    method: 'delete',
    path: '/me/apps/:clientId',
    summary: 'Take back what you allowed an app: its tokens stop working, and it must ask again',
    security: ['bearer'],
    params: z.object({ clientId: ClientId }),
    middleware: [deps.authn.user(UNMETERED)],
    description: UNMETERED_NOTE,
    responses: { 204: { description: 'Taken back' }, 404: { description: 'oauth_consent_not_found', schema: ErrorResponse }, ...errors },
    handler: async ({ params }, req, res) => {
      await deps.consents.revoke(currentAuth(req).userId, params.clientId);
      res.status(204).end();
    },
  });

  const admin = adminOnly(deps.admin);
  const adminErrors = errorResponses({ 403: 'Not an administrator' });
  const clientNotFound = { 404: { description: 'oauth_client_not_found', schema: ErrorResponse } };
  api.route({
    method: 'get',
    path: '/admin/oauth-clients',
    summary: 'Every app registered to sign in with us or get tokens (never a secret)',
    security: ['bearer'],
    middleware: admin,
    responses: { 200: { description: 'The clients', schema: z.object({ clients: z.array(OAuthClientView) }) }, ...adminErrors },
    handler: async (_input, _req, res) => {
      res.json({ clients: await deps.clients.list() });
    },
  });
  api.route({
    method: 'post',
    path: '/admin/oauth-clients',
    summary: 'Register an app; a confidential one gets its clientSecret in this answer only',
    security: ['bearer'],
    body: NewClientBody,
    middleware: admin,
    responses: { 201: { description: 'Registered', schema: OAuthClientView }, ...adminErrors },
    handler: async ({ body }, _req, res) => {
      res.status(201).json(await deps.clients.create(body));
    },
  });
  api.route({
    method: 'get',
    path: '/admin/oauth-clients/:clientId',
    summary: 'One registered app',
    security: ['bearer'],
    params: z.object({ clientId: ClientId }),
    middleware: admin,
    responses: { 200: { description: 'The client', schema: OAuthClientView }, ...clientNotFound, ...adminErrors },
    handler: async ({ params }, _req, res) => {
      res.json(await deps.clients.get(params.clientId));
    },
  });
  api.route({
    method: 'patch',
    path: '/admin/oauth-clients/:clientId',
    summary: 'Change a registered app; rotateSecret issues a new secret (shown once) and the old one stops working',
    security: ['bearer'],
    params: z.object({ clientId: ClientId }),
    body: ClientChangeBody,
    middleware: admin,
    responses: { 200: { description: 'Changed', schema: OAuthClientView }, ...clientNotFound, ...adminErrors },
    handler: async ({ params, body }, _req, res) => {
      res.json(await deps.clients.change(params.clientId, body));
    },
  });
  api.route({
    method: 'delete',
    path: '/admin/oauth-clients/:clientId',
    summary: 'Remove a registered app: its secret, codes and refresh tokens stop working',
    security: ['bearer'],
    params: z.object({ clientId: ClientId }),
    middleware: admin,
    responses: { 204: { description: 'Removed' }, ...clientNotFound, ...adminErrors },
    handler: async ({ params }, _req, res) => {
      await deps.clients.remove(params.clientId);
      res.status(204).end();
    },
  });
  return api;
}
