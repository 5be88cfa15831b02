// HTTP routes for passkeys: sign in with one, answer the second step with one, step up with one, and manage them.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { RequestHandler } from 'express';
import { z } from 'zod';
import { ApiRouter } from '../../core/http/api-router.js';
import { errorResponses } from '../../core/http/openapi.js';
import { clientContext } from '../../kernel/identity/client-context.js';
import { answerSignIn, NOT_VERIFIED } from '../../kernel/authenticate/sign-in-answer.js';
import { AccessTokenResponse, TokenResponse } from '../../kernel/authenticate/sign-in-schemas.js';
import type { SignInFlow } from '../../kernel/authenticate/sign-in.js';
import { type Authenticators, currentAuth, UNMETERED } from '../../kernel/authenticate/authenticate.js';
import type { Budget } from '../../kernel/throttle/rate-limiter.js';
import type { PasskeyService } from '../../kernel/verifiers/passkey-service.js';
import type { EnrolmentGuards } from '../../kernel/authenticate/enrolment-guards.js';

const Base64Url = z.string().regex(/^[A-Za-z0-9_-]+$/, 'base64url without padding');

// The credential objects follow WebAuthn's JSON serialisation (PublicKeyCredential.toJSON()); fields browsers add
// later are let through to the verifier rather than refused here.
const Transports = z.array(z.string().regex(/^[a-z-]{1,32}$/)).max(8);
/** A PublicKeyCredential as JSON, around the response of its ceremony. */
function credentialJson<Shape extends z.ZodRawShape>(response: Shape) {
  return z.looseObject({
    id: Base64Url.max(1_366),
    rawId: Base64Url.max(1_366),
    type: z.literal('public-key'),
    response: z.looseObject(response),
    authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
    clientExtensionResults: z.looseObject({}),
  });
}
const RegistrationCredential = credentialJson({
  clientDataJSON: Base64Url.max(4_096),
  attestationObject: Base64Url.max(32_768),
  transports: Transports.optional(),
}).meta({ id: 'PasskeyRegistrationCredential', description: 'What navigator.credentials.create() returned, as PublicKeyCredential.toJSON() gives it' });
const AuthenticationCredential = credentialJson({
  clientDataJSON: Base64Url.max(4_096),
  authenticatorData: Base64Url.max(4_096),
  signature: Base64Url.max(2_048),
  userHandle: Base64Url.max(128).optional(),
}).meta({ id: 'PasskeyAssertion', description: 'What navigator.credentials.get() returned, as PublicKeyCredential.toJSON() gives it' });

const CreationOptions = z
  .looseObject({
    challenge: z.string(),
    rp: z.looseObject({ id: z.string().optional(), name: z.string() }),
    user: z.looseObject({ id: z.string(), name: z.string() }),
  })
  .meta({
    id: 'PasskeyCreationOptions',
    description: 'PublicKeyCredentialCreationOptionsJSON: pass to navigator.credentials.create() (or @simplewebauthn/browser startRegistration)',
  });
const RequestOptions = z
  .looseObject({ challenge: z.string(), rpId: z.string().optional(), allowCredentials: z.array(z.looseObject({ id: z.string() })).optional() })
  .meta({
    id: 'PasskeyRequestOptions',
    description: 'PublicKeyCredentialRequestOptionsJSON: pass to navigator.credentials.get() (or @simplewebauthn/browser startAuthentication)',
  });

const PasskeyName = z.string().trim().min(1).max(64);
const Passkey = z
  .object({
    id: z.string(),
    name: z.string(),
    deviceType: z.enum(['singleDevice', 'multiDevice']).meta({ description: 'multiDevice: a synced passkey; singleDevice: bound to one authenticator' }),
    backedUp: z.boolean(),
    transports: z.array(z.string()),
    createdAt: z.iso.datetime(),
    lastUsedAt: z.iso.datetime().nullable(),
  })
  .meta({ id: 'Passkey' });
const PasskeyParams = z.object({ id: Base64Url.max(1_366) });
const MfaToken = z.string().min(1).max(2_048);

const CEREMONY_NOTE = 'Challenges are single-use and live 5 minutes in the shared store, so any instance can finish what another started. ';
const FINISH_NOTE =
  'The ceremony spent its budget at the options step: a finish that succeeds spends nothing more. A refused one spends one of the ' +
  "address's credentials budget (as a forged token does), and once that is spent every finish from the address is refused with 429 before any work.";
/** The 429 of a finish: the credentials budget, which only refused finishes (and forged credentials) spend. */
const FINISH_429 = { 429: 'Too many refused passkey answers, forged tokens or keys from this address (the credentials budget); Retry-After says when' };
const publicErrors = errorResponses({ 401: 'The passkey was not accepted (invalid_passkey; details.reason says why)' });
const publicFinishErrors = errorResponses({ 401: 'The passkey was not accepted (invalid_passkey; details.reason says why)', ...FINISH_429 });
const USER_ERRORS = {
  401: 'Not authenticated, a sign-in too old for this (reauthentication_required), or the passkey was not accepted',
  403: 'API keys cannot manage passkeys; adding one needs a confirmed address (email_not_verified) and, for the first second factor, two proofs (second_proof_required)',
  409: 'Too many passkeys, none to use, or this one is already registered',
};
const userErrors = errorResponses(USER_ERRORS);
const userFinishErrors = errorResponses({ ...USER_ERRORS, ...FINISH_429 });

export interface PasskeyRouteDeps {
  passkeys: PasskeyService;
  signIn: SignInFlow;
  authn: Authenticators;
  /** The sign-in budget (per address): the options step of signing in, and of its second step. */
  publicLimit: RequestHandler;
  /** The signed-in user's budget for changes to settings (shared with two-factor and API keys). */
  limit: Budget;
  /** The signed-in user's budget for reading their settings. */
  readLimit: Budget;
  /** The signed-in user's general budget (as POST /reauthenticate): the options step of a step-up. */
  userLimit: Budget;
  /**
   * The finishing step of every ceremony: the credentials budget (per address), spent only by a refused finish. A
   * finish must carry a challenge that a metered options call minted, single-use and taken before any other check
   * (PasskeyService.claimChallenge), so the finishes that reach a lookup or a signature check are at most the options
   * calls; finishes that answer no challenge are refused at that first step and, through this budget, bounded too.
   */
  finishLimit: Budget;
  recentSignIn: RequestHandler;
  enrolment: EnrolmentGuards;
}

export function passkeyRoutes(registry: OpenAPIRegistry, deps: PasskeyRouteDeps): ApiRouter {
  const api = new ApiRouter(registry, { tags: ['passkeys'] });
  const settings = [deps.authn.user(deps.limit)];
  // Adding or removing a way to sign in needs a recent sign-in: a stolen access token alone must not do either.
  const sensitive = [...settings, deps.recentSignIn];
  // Adding one also needs a proven address, and two proofs when it is the account's first second factor.
  const enrolmentGuards = [deps.recentSignIn, deps.enrolment.verifiedEmail, deps.enrolment.secondProofForFirstFactor];
  const enrolment = [...settings, ...enrolmentGuards];
  // A signed-in finish: the token is checked (a forged one spends the credentials budget there), then the finish's
  // own budget, which the options step already paid for.
  const signedInFinish = [deps.authn.user(UNMETERED), deps.finishLimit];

  api.route({
    method: 'post',
    path: '/login/passkey/options',
    summary: 'Start a usernameless passkey sign-in',
    description: `${CEREMONY_NOTE}The options list no credentials: the authenticator offers the passkeys it holds for this site, and must verify the user.`,
    middleware: [deps.publicLimit],
    responses: { 200: { description: 'Options for navigator.credentials.get()', schema: RequestOptions }, ...publicErrors },
    handler: async (_input, _req, res) => {
      res.json(await deps.passkeys.authenticationOptions({ kind: 'sign-in' }));
    },
  });
  api.route({
    method: 'post',
    path: '/login/passkey',
    summary: 'Finish a passkey sign-in: the same answer as POST /login',
    description:
      "The access token's amr says what the passkey proved (RFC 8176): hwk (device-bound) or swk (synced), user, and mfa (user verified). Two-factor accounts need no further step. " +
      FINISH_NOTE,
    body: z.object({ response: AuthenticationCredential }).strict(),
    middleware: [deps.finishLimit],
    responses: { 200: { description: 'A token pair and the user', schema: TokenResponse }, ...publicFinishErrors, 403: NOT_VERIFIED },
    handler: async ({ body }, req, res) => {
      answerSignIn(req, res, await deps.signIn.loginWithPasskey(body.response, clientContext(req)));
    },
  });
  api.route({
    method: 'post',
    path: '/login/mfa/passkey/options',
    summary: 'Second step of a two-factor login with a passkey: options for the account the mfa_token names',
    description: `${CEREMONY_NOTE}Answer with POST /login/mfa/passkey; 409 when the account has no passkey (methods in the mfa_required answer says so beforehand).`,
    body: z.object({ mfa_token: MfaToken }).strict(),
    middleware: [deps.publicLimit],
    responses: { 200: { description: 'Options for navigator.credentials.get()', schema: RequestOptions }, ...publicErrors, 409: userErrors[409]! },
    handler: async ({ body }, _req, res) => {
      const userId = await deps.signIn.mfaTokenSubject(body.mfa_token);
      res.json(await deps.passkeys.authenticationOptions({ kind: 'second-factor', userId }));
    },
  });
  api.route({
    method: 'post',
    path: '/login/mfa/passkey',
    summary: 'Finish a two-factor login with a passkey instead of a code',
    description: FINISH_NOTE,
    body: z.object({ mfa_token: MfaToken, response: AuthenticationCredential }).strict(),
    middleware: [deps.finishLimit],
    responses: { 200: { description: 'A token pair and the user', schema: TokenResponse }, ...publicFinishErrors },
    handler: async ({ body }, req, res) => {
      answerSignIn(req, res, await deps.signIn.completeMfaLogin(body.mfa_token, { passkey: body.response }, clientContext(req)));
    },
  });
  api.route({
    method: 'post',
    path: '/reauthenticate/passkey/options',
    summary: 'Step up with a passkey instead of the password: options listing your passkeys',
    description: CEREMONY_NOTE,
    security: ['bearer'],
    middleware: [deps.authn.user(deps.userLimit)],
    responses: { 200: { description: 'Options for navigator.credentials.get()', schema: RequestOptions }, ...userErrors },
    handler: async (_input, req, res) => {
      const { userId, sessionId } = currentAuth(req);
      res.json(await deps.passkeys.authenticationOptions({ kind: 'reauthenticate', userId, sessionId }));
    },
  });
  api.route({
    method: 'post',
    path: '/reauthenticate/passkey',
    summary: 'Finish a step-up with a passkey: a fresh access token for the same session',
    description: FINISH_NOTE,
    security: ['bearer'],
    body: z.object({ response: AuthenticationCredential }).strict(),
    middleware: signedInFinish,
    responses: { 200: { description: 'A fresh access token', schema: AccessTokenResponse }, ...userFinishErrors },
    handler: async ({ body }, req, res) => {
      res.json(await deps.signIn.reauthenticateWithPasskey(currentAuth(req), body.response));
    },
  });

  api.route({
    method: 'get',
    path: '/passkeys',
    summary: 'Your passkeys, oldest first',
    security: ['bearer'],
    middleware: [deps.authn.user(deps.readLimit)],
    responses: { 200: { description: 'Passkeys', schema: z.object({ passkeys: z.array(Passkey) }) }, ...userErrors },
    handler: async (_input, req, res) => {
      res.json({ passkeys: await deps.passkeys.list(currentAuth(req).userId) });
    },
  });
  api.route({
    method: 'post',
    path: '/passkeys/register/options',
    summary: 'Start adding a passkey; needs a recent sign-in',
    description: `${CEREMONY_NOTE}Your existing passkeys are excluded, so one authenticator is registered once.`,
    security: ['bearer'],
    middleware: enrolment,
    responses: { 200: { description: 'Options for navigator.credentials.create()', schema: CreationOptions }, ...userErrors },
    handler: async (_input, req, res) => {
      const { userId, username } = currentAuth(req);
      res.json(await deps.passkeys.registrationOptions({ id: userId, username }));
    },
  });
  api.route({
    method: 'post',
    path: '/passkeys/register',
    summary: 'Finish adding a passkey; needs a recent sign-in',
    description: `A response that does not verify is refused with 400 passkey_rejected (details.reason says why) and nothing is stored. ${FINISH_NOTE}`,
    security: ['bearer'],
    body: z.object({ response: RegistrationCredential, name: PasskeyName.optional() }).strict(),
    middleware: [...signedInFinish, ...enrolmentGuards],
    responses: { 201: { description: 'The new passkey', schema: Passkey }, ...userFinishErrors },
    handler: async ({ body }, req, res) => {
      res.status(201).json(await deps.passkeys.register(currentAuth(req).userId, body.response, body.name, clientContext(req)));
    },
  });
  api.route({
    method: 'patch',
    path: '/passkeys/:id',
    summary: 'Rename a passkey',
    security: ['bearer'],
    params: PasskeyParams,
    body: z.object({ name: PasskeyName }).strict(),
    middleware: settings,
    responses: { 200: { description: 'The passkey', schema: Passkey }, ...userErrors },
    handler: async ({ params, body }, req, res) => {
      res.json(await deps.passkeys.rename(currentAuth(req).userId, params.id, body.name));
    },
  });
  api.route({
    method: 'delete',
    path: '/passkeys/:id',
    summary: 'Delete a passkey; needs a recent sign-in',
    security: ['bearer'],
    params: PasskeyParams,
    middleware: sensitive,
    responses: { 204: { description: 'Deleted' }, ...userErrors },
    handler: async ({ params }, req, res) => {
      await deps.passkeys.remove(currentAuth(req).userId, params.id, clientContext(req));
      res.status(204).end();
    },
  });
  return api;
}
