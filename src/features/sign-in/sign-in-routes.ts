// HTTP routes for registration, login, token refresh, logout and the protected example resource.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { RequestHandler } from 'express';
import { z } from 'zod';
import { ApiRouter } from '../../core/http/api-router.js';
import { ErrorResponse, errorResponses } from '../../core/http/openapi.js';
import type { Sessions } from '../../kernel/sessions/sessions.js';
import { PublicUser } from '../../kernel/identity/user-schemas.js';
import { LoginBody, MfaLoginBody, ProtectedResponse, ReauthenticateBody, RegisterBody } from './sign-in-schemas.js';
import { AccessTokenResponse, MfaChallenge, TokenResponse } from '../../kernel/authenticate/sign-in-schemas.js';
import type { SignInFlow } from '../../kernel/authenticate/sign-in.js';
import { answerSignIn, NOT_VERIFIED } from '../../kernel/authenticate/sign-in-answer.js';
import { type Authenticators, currentAuth, UNMETERED, UNMETERED_NOTE } from '../../kernel/authenticate/authenticate.js';
import { clientContext } from '../../kernel/identity/client-context.js';
import type { Budget } from '../../kernel/throttle/rate-limiter.js';
import type { Registration } from './registration.js';
import { MAX_PASSWORD_BYTES } from '../../kernel/passwords/passwords.js';

export interface AuthRouteDeps {
  registration: Registration;
  signIn: SignInFlow;
  sessions: Sessions;
  authn: Authenticators;
  /** Per-group limiter for unauthenticated routes (register, login). */
  publicLimit: RequestHandler;
  /** Per-group limiter for authenticated routes. */
  userLimit: Budget;
  /** What GET /password-policy tells a form before it submits (the policy itself is PasswordPolicy's). */
  passwordRules: { minLength: number; minScore: number };
}

const PasswordRules = z
  .object({
    minLength: z.number().int().meta({ description: 'Shortest new password, in characters (PASSWORD_MIN_LENGTH)' }),
    maxBytes: z.number().int().meta({ description: 'Longest, in UTF-8 bytes: bcrypt reads no further' }),
    minScore: z.number().int().meta({ description: 'The least zxcvbn strength score (0 to 4) accepted (PASSWORD_MIN_SCORE)' }),
  })
  .meta({ id: 'PasswordRules' });

const errors = errorResponses();
export const REGISTER_NOTE =
  'The answer never says whether the address has an account: for a taken address it is the same 201 with the same body shape ' +
  "(an id that names no account), and the address's owner is emailed instead. Usernames are public handles: a taken one answers 409.";

export function authRoutes(registry: OpenAPIRegistry, deps: AuthRouteDeps): ApiRouter {
  const api = new ApiRouter(registry, { tags: ['auth'] });
  const rules = { minLength: deps.passwordRules.minLength, maxBytes: MAX_PASSWORD_BYTES, minScore: deps.passwordRules.minScore };
  api.route({
    method: 'get',
    path: '/password-policy',
    summary: 'What a new password must be: the rule every form and every route that sets a password shares',
    responses: { 200: { description: 'The rules', schema: PasswordRules } },
    handler: (_input, _req, res) => {
      res.json(rules);
    },
  });
  api.route({
    method: 'post',
    path: '/register',
    summary: 'Create an account; a link to confirm the address is emailed',
    description: REGISTER_NOTE,
    body: RegisterBody,
    middleware: [deps.publicLimit],
    responses: {
      201: { description: 'The new user (or, for an address that has an account, the same shape: see the description)', schema: PublicUser },
      409: { description: 'The username is taken (already_registered)', schema: ErrorResponse },
      ...errors,
    },
    handler: async ({ body }, req, res) => {
      res.status(201).json(await deps.registration.register(body, clientContext(req)));
    },
  });
  api.route({
    method: 'post',
    path: '/login',
    summary: 'Log in with a username or email and a password',
    description:
      'Failed logins count per account across every address: past LOGIN_FAILURES_MAX in LOGIN_LOCKOUT_MINUTES the account answers 429 login_throttled, ' +
      'except to a browser that signed in to it before (its httpOnly authkit_device cookie gives it its own budget of 5). ' +
      'A sign-in from a browser without that cookie emails the owner a notice. With REQUIRE_EMAIL_VERIFICATION, 403 email_not_verified until the address is confirmed.',
    body: LoginBody,
    middleware: [deps.publicLimit],
    responses: {
      200: {
        description: 'A token pair and the user; or, with two-factor on, an mfa_token for POST /login/mfa',
        schema: z.union([TokenResponse, MfaChallenge]),
      },
      ...errors,
      403: NOT_VERIFIED,
      429: {
        description: 'The per-address budget is spent (rate_limited), or the account had too many failed logins (login_throttled)',
        schema: ErrorResponse,
      },
    },
    handler: async ({ body }, req, res) => {
      const identifier = body.username ?? body.email ?? '';
      answerSignIn(req, res, await deps.signIn.login({ identifier, password: body.password }, clientContext(req)));
    },
  });
  api.route({
    method: 'post',
    path: '/login/mfa',
    summary: 'Second step of a two-factor login: the mfa_token and a TOTP or recovery code',
    description: 'The mfa_token lives 5 minutes and is spent by the first success. Five wrong codes lock two-factor sign-in for 15 minutes.',
    body: MfaLoginBody,
    middleware: [deps.publicLimit],
    responses: {
      200: { description: 'A token pair and the user', schema: TokenResponse },
      423: { description: 'Locked after too many wrong codes', schema: ErrorResponse },
      ...errors,
    },
    handler: async ({ body }, req, res) => {
      answerSignIn(req, res, await deps.signIn.completeMfaLogin(body.mfa_token, { code: body.code }, clientContext(req)));
    },
  });
  api.route({
    method: 'post',
    path: '/logout',
    summary: 'End this session and revoke the access token used',
    description: UNMETERED_NOTE,
    security: ['bearer'],
    middleware: [deps.authn.user(UNMETERED)],
    responses: { 204: { description: 'Logged out' }, ...errors },
    handler: async (_input, req, res) => {
      await deps.sessions.logout(currentAuth(req), clientContext(req));
      res.status(204).end();
    },
  });
  api.route({
    method: 'post',
    path: '/logout/all',
    summary: 'End every session of this user; every access token issued so far stops working',
    description: UNMETERED_NOTE,
    security: ['bearer'],
    middleware: [deps.authn.user(UNMETERED)],
    responses: { 204: { description: 'Logged out everywhere' }, ...errors },
    handler: async (_input, req, res) => {
      await deps.sessions.logoutEverywhere(currentAuth(req), clientContext(req));
      res.status(204).end();
    },
  });
  api.route({
    method: 'post',
    path: '/reauthenticate',
    summary: 'Confirm who you are again (password, and a code when two-factor is on) for a fresh auth_time',
    description:
      'Enrolling two-factor and creating API keys need a sign-in within REAUTH_MAX_AGE_S; they answer 401 reauthentication_required otherwise. ' +
      'The new access token belongs to the same session; the refresh token is unchanged.',
    security: ['bearer'],
    body: ReauthenticateBody,
    middleware: [deps.authn.user(deps.userLimit)],
    responses: { 200: { description: 'A fresh access token', schema: AccessTokenResponse }, ...errors },
    handler: async ({ body }, req, res) => {
      res.json(await deps.signIn.reauthenticate(currentAuth(req), body, clientContext(req)));
    },
  });
  api.route({
    method: 'get',
    path: '/protected',
    summary: 'An example resource that needs a valid access token',
    security: ['bearer', 'apiKey'],
    middleware: [deps.authn.userOrKey('profile:read', deps.userLimit)],
    responses: { 200: { description: 'Hello, user', schema: ProtectedResponse }, ...errors },
    handler: (_input, req, res) => {
      const { userId, username, roles } = currentAuth(req);
      res.json({ message: `Hello, ${username}.`, user: { id: userId, username, roles } });
    },
  });
  return api;
}
