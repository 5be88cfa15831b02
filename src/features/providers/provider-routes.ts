// HTTP routes of outside sign-in: the providers a page may offer, the start and the callback a browser walks
// through, the code an app exchanges, the identities linked to one's account, and the administrators' directory.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { PROVIDER_TYPES } from '../../core/config.js';
import { ApiRouter } from '../../core/http/api-router.js';
import { ErrorResponse, errorResponses } from '../../core/http/openapi.js';
import { type Authenticators, currentAuth, UNMETERED } from '../../kernel/authenticate/authenticate.js';
import type { EnrolmentGuards } from '../../kernel/authenticate/enrolment-guards.js';
import { type AdminGuardDeps, adminOnly } from '../../kernel/authenticate/guards.js';
import { answerSignIn } from '../../kernel/authenticate/sign-in-answer.js';
import { MfaChallenge, TokenResponse } from '../../kernel/authenticate/sign-in-schemas.js';
import { clientContext } from '../../kernel/identity/client-context.js';
import type { Budget } from '../../kernel/throttle/rate-limiter.js';
import { readCookie } from '../../kernel/throttle/login-throttle.js';
import type { Federation, Started } from './federation.js';
import type { ProviderDirectory } from './provider-directory.js';

/**
 * The browser binding of a provider sign-in: only the browser that started it can finish it. Over https it is a
 * `__Host-` cookie, which no sibling subdomain and no plain-http page can set or replace.
 */
export function bindingCookieName(secureSite: boolean): string {
  return secureSite ? '__Host-authkit_provider_flow' : 'authkit_provider_flow';
}
const BINDING_MAX_AGE_MS = 10 * 60_000;

const ProviderId = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'lower-case letters, digits and dashes');
const PkceValue = z.string().regex(/^[A-Za-z0-9._~-]{43,128}$/, 'RFC 7636: 43 to 128 unreserved characters');
const PublicProvider = z.object({ id: z.string(), name: z.string(), type: z.enum(PROVIDER_TYPES) }).meta({ id: 'IdentityProviderOption' });

const StartQuery = z
  .object({
    redirect_to: z.url().max(2048).optional().meta({ description: 'An app address starting with one of AUTH_REDIRECT_URLS; absent: back to the page' }),
    code_challenge: PkceValue.optional().meta({ description: "The app's PKCE challenge (required with redirect_to)" }),
    code_challenge_method: z.literal('S256').optional(),
  })
  .strict()
  .refine((query) => query.redirect_to === undefined || query.code_challenge !== undefined, {
    message: 'an app that sets redirect_to must send code_challenge (PKCE, S256)',
    path: ['code_challenge'],
  });

/**
 * What a provider sends back (RFC 6749 4.1.2, RFC 9207 iss, OpenID form_post); other parameters some add are allowed.
 * A parameter given twice is read as a list, so that the callback can refuse it with a redirect like any other forgery.
 */
const callbackValue = (max: number) => z.union([z.string().max(max), z.array(z.string().max(max)).max(10)]);
const CallbackParams = z
  .object({
    code: callbackValue(4096).optional(),
    state: callbackValue(512).optional(),
    iss: callbackValue(2048).optional(),
    error: callbackValue(256).optional(),
    error_description: callbackValue(2048).optional(),
  })
  .catchall(callbackValue(4096));

const LinkedIdentity = z
  .object({
    id: z.uuid(),
    provider: z.string(),
    email: z.string().nullable(),
    createdAt: z.iso.datetime(),
    lastUsedAt: z.iso.datetime().nullable(),
  })
  .meta({ id: 'LinkedIdentity' });

const AdminProvider = z
  .object({
    id: z.string(),
    type: z.enum(PROVIDER_TYPES),
    name: z.string(),
    clientId: z.string(),
    issuer: z.string().nullable(),
    scopes: z.array(z.string()),
    trustEmail: z.boolean(),
    enabled: z.boolean(),
    source: z.enum(['environment', 'api']),
    hasSecret: z.boolean(),
  })
  .meta({ id: 'IdentityProvider' });
const Scopes = z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/)).max(20);
const NewProviderBody = z
  .object({
    id: ProviderId,
    type: z.enum(PROVIDER_TYPES),
    name: z.string().trim().min(1).max(64).optional(),
    clientId: z.string().min(1).max(512),
    clientSecret: z.string().min(1).max(4096).optional().meta({ description: 'Write-only: sealed at rest, never shown again' }),
    issuer: z.url().max(2048).optional(),
    scopes: Scopes.optional(),
    trustEmail: z
      .boolean()
      .optional()
      .meta({ description: 'false: its addresses never make an account here; its identities can only be linked (default true)' }),
    enabled: z.boolean().optional(),
  })
  .strict()
  .meta({ id: 'NewIdentityProvider' });
const ProviderChangeBody = NewProviderBody.omit({ id: true, type: true }).partial().strict().meta({ id: 'IdentityProviderChange' });

export function providerRoutes(
  registry: OpenAPIRegistry,
  deps: {
    federation: Federation;
    directory: ProviderDirectory;
    authn: Authenticators;
    publicLimit: RequestHandler;
    readLimit: Budget;
    settingsLimit: Budget;
    recentSignIn: RequestHandler;
    enrolment: EnrolmentGuards;
    admin: AdminGuardDeps;
    /** PUBLIC_URL is https: the binding cookie is Secure and `__Host-`. */
    secureSite: boolean;
  },
): ApiRouter {
  const cookieName = bindingCookieName(deps.secureSite);
  const setBinding = (res: Response, started: Started) => {
    res.cookie(cookieName, started.binding, {
      httpOnly: true,
      // Apple returns with a cross-site POST, which a Lax cookie would not reach.
      sameSite: started.crossSitePost ? 'none' : 'lax',
      secure: deps.secureSite || started.crossSitePost,
      path: '/',
      maxAge: BINDING_MAX_AGE_MS,
    });
  };
  const api = new ApiRouter(registry, { tags: ['identity providers'] });
  const errors = errorResponses();
  api.route({
    method: 'get',
    path: '/auth/providers',
    summary: 'The outside identity providers a sign-in page may offer ("Continue with …")',
    responses: { 200: { description: 'The enabled providers', schema: z.object({ providers: z.array(PublicProvider) }) }, ...errors },
    handler: async (_input, _req, res) => {
      const providers = await deps.directory.enabled();
      res.json({ providers: providers.map(({ id, name, type }) => ({ id, name, type })) });
    },
  });
  api.route({
    method: 'get',
    path: '/auth/providers/:id/start',
    summary: 'Start signing in with a provider: a redirect there (authorization code with PKCE, state and nonce)',
    description:
      'A browser navigation. Sets a short-lived cookie that binds the sign-in to this browser. Apps (SPAs, mobile, CLIs) pass ' +
      'redirect_to (allowlisted by AUTH_REDIRECT_URLS) and their own PKCE code_challenge; they get back `?code=` to exchange at ' +
      'POST /auth/providers/token. Without redirect_to the person comes back to the page.',
    params: z.object({ id: ProviderId }),
    query: StartQuery,
    middleware: [deps.publicLimit],
    responses: {
      302: { description: "To the provider's authorization endpoint" },
      404: { description: 'No such provider is enabled (provider_not_found)', schema: ErrorResponse },
      ...errors,
    },
    handler: async ({ params, query }, req, res) => {
      const started = await deps.federation.start(params.id, { redirectTo: query.redirect_to, codeChallenge: query.code_challenge });
      setBinding(res, started);
      res.redirect(302, started.url.href);
    },
  });
  const callbackNote =
    'A redirect for anything a provider sends: to redirect_to with `code` (or `error` with a reason), or to the page with `#provider-code=` ' +
    '(or `#provider-error=`). A callback this browser did not start (state unknown, spent or expired, another browser, ' +
    "another provider's path) goes to the page with state_mismatch.";
  const callback = async (id: string, params: Record<string, string | string[] | undefined>, req: Request, res: Response) => {
    const values = new URLSearchParams();
    let repeated = false;
    for (const [name, value] of Object.entries(params)) {
      if (Array.isArray(value)) repeated = true;
      else if (value !== undefined) values.append(name, value);
    }
    // The cookie stays for the page's exchange of the code (the state it bound is spent already).
    const outcome = repeated
      ? { location: deps.federation.pageWithError('state_mismatch') }
      : await deps.federation.callback(id, values, readCookie(req, cookieName), clientContext(req));
    res.redirect(303, outcome.location);
  };
  api.route({
    method: 'get',
    path: '/auth/providers/:id/callback',
    summary: 'Where a provider sends the person back',
    description: callbackNote,
    params: z.object({ id: ProviderId }),
    query: CallbackParams,
    middleware: [deps.publicLimit],
    responses: { 303: { description: 'To the app or the page' }, ...errors },
    handler: async ({ params, query }, req, res) => callback(params.id, query, req, res),
  });
  api.route({
    method: 'post',
    path: '/auth/providers/:id/callback',
    summary: 'Where a provider that answers with form_post (Apple) sends the person back',
    description: callbackNote,
    params: z.object({ id: ProviderId }),
    body: CallbackParams,
    bodyFormat: 'form',
    middleware: [deps.publicLimit],
    responses: { 303: { description: 'To the app or the page' }, ...errors },
    handler: async ({ params, body }, req, res) => callback(params.id, body, req, res),
  });
  api.route({
    method: 'post',
    path: '/auth/providers/token',
    summary: 'Exchange the code a provider sign-in handed back for the answer of POST /login',
    description:
      'Single use, one minute. An app sends the code_verifier of the code_challenge it started with; the page, which started ' +
      'without one, is recognised by its binding cookie. Two-factor accounts get mfa_required and finish at POST /login/mfa.',
    body: z.object({ code: z.string().min(1).max(256), code_verifier: PkceValue.optional() }).strict(),
    middleware: [deps.publicLimit],
    responses: {
      200: { description: 'A token pair and the user, or the second step', schema: z.union([TokenResponse, MfaChallenge]) },
      401: { description: 'provider_code_invalid', schema: ErrorResponse },
      ...errors,
    },
    handler: async ({ body }, req, res) => {
      const binding = readCookie(req, cookieName);
      const result = await deps.federation.exchange(body.code, body.code_verifier, binding, clientContext(req));
      if (binding !== undefined) res.clearCookie(cookieName, { path: '/', secure: deps.secureSite });
      answerSignIn(req, res, result);
    },
  });

  api.route({
    method: 'get',
    path: '/me/identities',
    summary: 'The outside identities linked to your account',
    security: ['bearer'],
    middleware: [deps.authn.user(deps.readLimit)],
    responses: { 200: { description: 'Oldest first', schema: z.object({ identities: z.array(LinkedIdentity) }) }, ...errors },
    handler: async (_input, req, res) => {
      res.json({ identities: await deps.federation.identities(currentAuth(req).userId) });
    },
  });
  api.route({
    method: 'post',
    path: '/me/identities',
    summary: 'Start linking a provider to your account; needs a recent sign-in',
    description:
      'Answers the URL to send the browser to (and sets the binding cookie); the provider sends it back through the callback, ' +
      'which links the identity and returns to the page with `#provider-linked=<id>`. An identity linked to another account is ' +
      'refused (identity_already_linked).',
    security: ['bearer'],
    body: z.object({ provider: ProviderId }).strict(),
    middleware: [deps.authn.user(deps.settingsLimit), deps.recentSignIn, deps.enrolment.verifiedEmail],
    responses: {
      200: { description: 'Where to send the browser', schema: z.object({ url: z.url() }) },
      403: { description: "The account's address is not proven yet (email_not_verified)", schema: ErrorResponse },
      ...errors,
    },
    handler: async ({ body }, req, res) => {
      const { userId, sessionId } = currentAuth(req);
      const started = await deps.federation.start(body.provider, { link: { userId, sessionId } });
      setBinding(res, started);
      res.json({ url: started.url.href });
    },
  });
  api.route({
    method: 'delete',
    path: '/me/identities/:id',
    summary: 'Unlink an outside identity; the last way into the account cannot be removed',
    security: ['bearer'],
    params: z.object({ id: z.uuid() }),
    middleware: [deps.authn.user(UNMETERED)],
    responses: {
      204: { description: 'Unlinked' },
      404: { description: 'No such identity of yours (identity_not_found)', schema: ErrorResponse },
      409: { description: 'It is the last way in: no password, passkey or other identity (last_sign_in_method)', schema: ErrorResponse },
      ...errors,
    },
    handler: async ({ params }, req, res) => {
      await deps.federation.unlink(currentAuth(req).userId, params.id, clientContext(req));
      res.status(204).end();
    },
  });

  const admin = adminOnly(deps.admin);
  const adminErrors = errorResponses({ 403: 'Not an administrator' });
  api.route({
    method: 'get',
    path: '/admin/identity-providers',
    summary: 'Every identity provider: from the environment (read-only) and added through this API',
    security: ['bearer'],
    middleware: admin,
    responses: { 200: { description: 'The providers (never a secret)', schema: z.object({ providers: z.array(AdminProvider) }) }, ...adminErrors },
    handler: async (_input, _req, res) => {
      res.json({ providers: await deps.directory.list() });
    },
  });
  api.route({
    method: 'post',
    path: '/admin/identity-providers',
    summary: 'Add an identity provider; every instance offers it within a minute',
    security: ['bearer'],
    body: NewProviderBody,
    middleware: admin,
    responses: {
      201: { description: 'Added', schema: AdminProvider },
      409: { description: 'The id is taken (provider_id_taken)', schema: ErrorResponse },
      ...adminErrors,
    },
    handler: async ({ body }, _req, res) => {
      res.status(201).json(await deps.directory.add(body));
    },
  });
  api.route({
    method: 'patch',
    path: '/admin/identity-providers/:id',
    summary: 'Change or disable an identity provider added through the API (a new clientSecret replaces the old)',
    security: ['bearer'],
    params: z.object({ id: ProviderId }),
    body: ProviderChangeBody,
    middleware: admin,
    responses: {
      200: { description: 'Changed', schema: AdminProvider },
      404: { description: 'provider_not_found', schema: ErrorResponse },
      409: { description: 'It comes from the environment (provider_configured_in_environment)', schema: ErrorResponse },
      ...adminErrors,
    },
    handler: async ({ params, body }, _req, res) => {
      res.json(await deps.directory.change(params.id, body));
    },
  });
  api.route({
    method: 'delete',
    path: '/admin/identity-providers/:id',
    summary: 'Remove an identity provider added through the API',
    security: ['bearer'],
    params: z.object({ id: ProviderId }),
    middleware: admin,
    responses: {
      204: { description: 'Removed' },
      404: { description: 'provider_not_found', schema: ErrorResponse },
      409: { description: 'It comes from the environment (provider_configured_in_environment)', schema: ErrorResponse },
      ...adminErrors,
    },
    handler: async ({ params }, _req, res) => {
      await deps.directory.remove(params.id);
      res.status(204).end();
    },
  });
  return api;
}
