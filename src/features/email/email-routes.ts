// HTTP routes for what arrives by email: confirming an address, resetting a password, signing in with a code, and
// (in development) the outbox of a server without SMTP.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { RequestHandler } from 'express';
import { z } from 'zod';
import { AppError } from '../../core/errors.js';
import { ApiRouter } from '../../core/http/api-router.js';
import { ErrorResponse, errorResponses } from '../../core/http/openapi.js';
import { clientContext } from '../../kernel/identity/client-context.js';
import { answerSignIn } from '../../kernel/authenticate/sign-in-answer.js';
import { AccessTokenResponse, MfaChallenge, SixDigitCode, TokenResponse } from '../../kernel/authenticate/sign-in-schemas.js';
import { type Authenticators, currentAuth } from '../../kernel/authenticate/authenticate.js';
import type { Budget } from '../../kernel/throttle/rate-limiter.js';
import type { SignInFlow } from '../../kernel/authenticate/sign-in.js';
import { Email, Password, PublicUser } from '../../kernel/identity/user-schemas.js';
import type { EmailService } from './email-service.js';
import { readOutbox } from './transport.js';

const LinkToken = z.string().min(1).max(128).meta({ description: 'The token from the link (after #verify-email= or #reset-password=)' });
const Accepted = z.object({ message: z.string() }).meta({ id: 'Accepted' });
const ACCEPTED_NOTE = 'The answer is 202 whether or not the address has an account, and comes before any work on it, so neither its words nor its timing say.';

export interface EmailRouteDeps {
  email: EmailService;
  signIn: SignInFlow;
  /** Per address: the sign-in budget (signing in with an emailed code). */
  publicLimit: RequestHandler;
  /** Per address: the budget of the routes that send mail to an address someone typed. */
  emailLimit: RequestHandler;
  /**
   * Per address: completing an emailed link. A link carries a 256-bit single-use token, so this budget bounds
   * submissions, not guessing; apart from the sign-in budget, so failed sign-ins never block a reset.
   */
  linkLimit: RequestHandler;
  authn: Authenticators;
  /** The signed-in user's budget (as POST /reauthenticate). */
  userLimit: Budget;
}

const errors = errorResponses({ 401: 'The link is not valid (invalid_token), or the email or code is not correct (invalid_credentials)' });

export function emailRoutes(registry: OpenAPIRegistry, deps: EmailRouteDeps): ApiRouter {
  const api = new ApiRouter(registry, { tags: ['email'] });
  /** A route that mails an address someone typed: the per-IP email budget, and 202 before any work on the address. */
  const mailsAnAddress = (path: string, summary: string, sent: string, send: (email: string) => string) =>
    api.route({
      method: 'post',
      path,
      summary,
      description: ACCEPTED_NOTE,
      body: z.object({ email: Email }).strict(),
      middleware: [deps.emailLimit],
      responses: { 202: { description: sent, schema: Accepted }, ...errors },
      handler: ({ body }, _req, res) => {
        res.status(202).json({ message: send(body.email) });
      },
    });

  api.route({
    method: 'post',
    path: '/email/verify',
    summary: 'Confirm an address with the token from the emailed link (24 hours, single use)',
    description: "For an email change, the new address becomes the account's address now, and the old one is told.",
    body: z.object({ token: LinkToken }).strict(),
    middleware: [deps.linkLimit],
    responses: {
      200: { description: 'The user, with emailVerified true', schema: PublicUser },
      409: { description: 'The new address was registered by another account meanwhile', schema: ErrorResponse },
      ...errors,
    },
    handler: async ({ body }, req, res) => {
      res.json(await deps.email.verifyEmail(body.token, clientContext(req)));
    },
  });
  mailsAnAddress(
    '/email/verify/resend',
    'Send the confirmation link again to an address not yet confirmed',
    'Sent if the address has an unconfirmed account',
    (email) => {
      deps.email.resendVerification(email);
      return `If that address belongs to an account not yet confirmed, a new link will arrive within a minute (${deps.email.capInWords}).`;
    },
  );
  mailsAnAddress('/password/forgot', 'Email a password-reset link (30 minutes, single use)', 'Sent if the address has an account', (email) => {
    deps.email.forgotPassword(email);
    return `If that address belongs to an account, a link to reset its password will arrive within a minute (${deps.email.capInWords}).`;
  });
  api.route({
    method: 'post',
    path: '/password/reset',
    summary: 'Set a new password with the token from the reset link; every session ends',
    description:
      'The new password is checked (400 weak_password) before the link is spent, so a refused one does not waste it. ' +
      'removeCredentials: true also deletes every passkey and API key of the account. When the link is the first proof of the address, ' +
      'everything added before it (passkeys, API keys, two-factor) goes regardless: until then anyone may have registered the address.',
    body: z.object({ token: LinkToken, password: Password, removeCredentials: z.boolean().optional() }).strict(),
    middleware: [deps.linkLimit],
    responses: { 204: { description: 'Changed; sign in with the new password' }, ...errors },
    handler: async ({ body }, req, res) => {
      await deps.email.resetPassword(body.token, body.password, clientContext(req), { removeCredentials: body.removeCredentials });
      res.status(204).end();
    },
  });
  mailsAnAddress(
    '/login/email-code',
    'Email a six-digit sign-in code (10 minutes, single use, five guesses)',
    'Sent if the address has an account',
    (email) => {
      deps.email.sendSignInCode(email);
      return `If a code can be sent, it will arrive within a minute (${deps.email.capInWords}).`;
    },
  );
  api.route({
    method: 'post',
    path: '/login/email-code/verify',
    summary: 'Sign in with the emailed code: the same answer as POST /login (two-factor still applies)',
    description: 'amr is ["otp"]; with two-factor on, the answer is mfa_required and POST /login/mfa (or /login/mfa/passkey) follows.',
    body: z
      .object({
        email: Email,
        code: SixDigitCode,
      })
      .strict(),
    middleware: [deps.publicLimit],
    responses: { 200: { description: 'A token pair and the user, or the second step', schema: z.union([TokenResponse, MfaChallenge]) }, ...errors },
    handler: async ({ body }, req, res) => {
      answerSignIn(req, res, await deps.signIn.loginWithEmailCode(body.email, body.code, clientContext(req)));
    },
  });
  const signedInOnly = [deps.authn.user(deps.userLimit)];
  api.route({
    method: 'post',
    path: '/reauthenticate/email-code/send',
    summary: "Email a six-digit code to the account's proven address, to prove the mailbox again in this session",
    description:
      'The second proof that adding a first second factor needs after a password sign-in (403 second_proof_required says so). ' +
      "403 email_not_verified while the address is not proven. Counts against the address's mail cap.",
    security: ['bearer'],
    middleware: signedInOnly,
    responses: { 202: { description: 'Sent (unless the address has had its share of messages for now)', schema: Accepted }, ...errors, 403: NOT_PROVEN },
    handler: async (_input, req, res) => {
      await deps.email.sendStepUpCode(currentAuth(req).userId);
      res.status(202).json({ message: `A code will arrive within a minute, unless your address has had its share (${deps.email.capInWords}).` });
    },
  });
  api.route({
    method: 'post',
    path: '/reauthenticate/email-code',
    summary: 'Prove the mailbox with the emailed code: a fresh access token for the same session, whose amr adds otp',
    description: 'After a password sign-in the token holds two proofs (amr pwd, otp, mfa). Five wrong codes end the code.',
    security: ['bearer'],
    body: z
      .object({
        code: SixDigitCode,
      })
      .strict(),
    middleware: signedInOnly,
    responses: {
      200: { description: 'A fresh access token', schema: AccessTokenResponse },
      ...errors,
      401: { description: 'Not authenticated, or a wrong or expired code (invalid_mfa_code)', schema: ErrorResponse },
    },
    handler: async ({ body }, req, res) => {
      res.json(await deps.email.stepUpWithCode(currentAuth(req), body.code));
    },
  });
  return api;
}

const NOT_PROVEN = { description: "The account's address is not proven yet (email_not_verified)", schema: ErrorResponse };

const OutboxMessage = z.object({ id: z.string(), to: z.string(), subject: z.string(), text: z.string(), createdAt: z.string() }).meta({ id: 'OutboxMessage' });

/** Development only (never mounted in production): the messages a server without SMTP_URL wrote to its outbox. */
export function devOutboxRoutes(registry: OpenAPIRegistry, outboxDir: string): ApiRouter {
  const api = new ApiRouter(registry, { tags: ['development'] });
  api.route({
    method: 'get',
    path: '/dev/outbox',
    summary: 'Development only: the newest 50 messages written to the outbox (no SMTP_URL)',
    responses: { 200: { description: 'Newest first', schema: z.object({ messages: z.array(OutboxMessage) }) }, ...errorResponses() },
    handler: async (_input, _req, res) => {
      const messages = await readOutbox(outboxDir);
      res.json({ messages: messages.map(({ id, to, subject, text, createdAt }) => ({ id, to, subject, text, createdAt })) });
    },
  });
  api.route({
    method: 'get',
    path: '/dev/outbox/:id',
    summary: 'Development only: one outbox message as its HTML, links clickable',
    params: z.object({ id: z.uuid() }),
    responses: { 200: { description: 'The message', schema: z.string(), contentType: 'text/html' }, ...errorResponses() },
    handler: async ({ params }, _req, res) => {
      const message = (await readOutbox(outboxDir, 500)).find((entry) => entry.id === params.id);
      if (!message) throw new AppError('outbox_message_not_found');
      // The message's own inline styles, nothing else: no script, no remote content.
      res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; img-src data:");
      res.type('html').send(message.html);
    },
  });
  return api;
}
