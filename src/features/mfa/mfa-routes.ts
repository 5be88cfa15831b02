// HTTP routes to see, set up, turn on and turn off two-factor authentication (Bearer only, never an API key).
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { SixDigitCode } from '../../kernel/authenticate/sign-in-schemas.js';
import type { EnrolmentGuards } from '../../kernel/authenticate/enrolment-guards.js';
import type { RequestHandler } from 'express';
import { z } from 'zod';
import { ApiRouter } from '../../core/http/api-router.js';
import { errorResponses } from '../../core/http/openapi.js';
import { type Authenticators, currentAuth } from '../../kernel/authenticate/authenticate.js';
import { PasswordAttempt } from '../../kernel/identity/user-schemas.js';
import type { MfaService } from '../../kernel/verifiers/mfa-service.js';
import type { Budget } from '../../kernel/throttle/rate-limiter.js';
import { clientContext } from '../../kernel/identity/client-context.js';

export const SecondFactorCode = z.string().trim().min(6).max(32).meta({ description: 'A 6-digit TOTP code, or a recovery code such as abcde-23456' });

const errors = errorResponses({
  401: 'Not authenticated, or a wrong code or password',
  403: 'API keys cannot manage two-factor',
  409: 'Not in a state where this applies',
  423: 'Too many wrong codes: locked for 15 minutes',
});

export function mfaRoutes(
  registry: OpenAPIRegistry,
  deps: {
    mfa: MfaService;
    authn: Authenticators;
    /** Changes to settings (setting up, turning on or off). */
    limit: Budget;
    /** Reads of one's own settings (the status). */
    readLimit: Budget;
    recentSignIn: RequestHandler;
    enrolment: EnrolmentGuards;
  },
): ApiRouter {
  const api = new ApiRouter(registry, { tags: ['two-factor'] });
  const middleware = [deps.authn.user(deps.limit)];
  // Enrolling an authenticator needs a recent sign-in: a stolen access token alone must not add the thief's.
  // The first second factor also needs a proven address and two proofs (see EnrolmentGuards).
  const enrolment = [...middleware, deps.recentSignIn, deps.enrolment.verifiedEmail, deps.enrolment.secondProofForFirstFactor];
  api.route({
    method: 'get',
    path: '/mfa',
    summary: 'Whether two-factor is on, and how many recovery codes are left',
    security: ['bearer'],
    middleware: [deps.authn.user(deps.readLimit)],
    responses: { 200: { description: 'Status', schema: z.object({ enabled: z.boolean(), recoveryCodesLeft: z.number().int() }) }, ...errors },
    handler: async (_input, req, res) => {
      res.json(await deps.mfa.status(currentAuth(req).userId));
    },
  });
  api.route({
    method: 'post',
    path: '/mfa/totp/setup',
    summary: 'Start enrolment: a new secret, its otpauth:// URI and a QR code (PNG data URL); needs a recent sign-in',
    security: ['bearer'],
    middleware: enrolment,
    responses: {
      200: {
        description: 'Scan the QR code, then confirm with POST /mfa/totp/enable',
        schema: z.object({ secret: z.string(), otpauthUri: z.string(), qrCode: z.string() }).meta({ id: 'MfaSetup' }),
      },
      ...errors,
    },
    handler: async (_input, req, res) => {
      res.json(await deps.mfa.setup(currentAuth(req).userId));
    },
  });
  api.route({
    method: 'post',
    path: '/mfa/totp/enable',
    summary: 'Turn two-factor on with a code from the app; returns 10 single-use recovery codes, once',
    security: ['bearer'],
    body: z
      .object({
        code: SixDigitCode,
      })
      .strict(),
    middleware: enrolment,
    responses: { 200: { description: 'On', schema: z.object({ recoveryCodes: z.array(z.string()) }) }, ...errors },
    handler: async ({ body }, req, res) => {
      res.json(await deps.mfa.enable(currentAuth(req).userId, body.code, clientContext(req)));
    },
  });
  api.route({
    method: 'post',
    path: '/mfa/totp/disable',
    summary: 'Turn two-factor off; needs the password and a current code (or a recovery code); the owner is told by email',
    security: ['bearer'],
    body: z.object({ password: PasswordAttempt, code: SecondFactorCode }).strict(),
    middleware,
    responses: { 204: { description: 'Off' }, ...errors },
    handler: async ({ body }, req, res) => {
      await deps.mfa.disable(currentAuth(req).userId, body.password, body.code, clientContext(req));
      res.status(204).end();
    },
  });
  return api;
}
