// The one error type a client ever sees: each fine reason with its family code, status, default message and details.
import { z } from 'zod';

/**
 * Every family code a client can receive (the `code` of an error body, unchanged since the first release), with the
 * HTTP status it travels with.
 */
export const ERROR_STATUS = {
  invalid_json: 400,
  invalid_forwarded_for: 400,
  validation_failed: 400,
  weak_password: 400,
  passkey_rejected: 400,
  unauthorized: 401,
  invalid_credentials: 401,
  invalid_token: 401,
  invalid_mfa_code: 401,
  invalid_passkey: 401,
  reauthentication_required: 401,
  forbidden: 403,
  mfa_required: 403,
  email_not_verified: 403,
  second_proof_required: 403,
  invalid_signature: 403,
  not_found: 404,
  method_not_allowed: 405,
  already_registered: 409,
  conflict: 409,
  payload_too_large: 413,
  storage_quota_exceeded: 413,
  unsupported_media_type: 415,
  image_too_large_dimensions: 422,
  webhook_destination_forbidden: 422,
  headers_too_large: 431,
  mfa_locked: 423,
  rate_limited: 429,
  login_throttled: 429,
  internal_error: 500,
  service_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

const FieldIssues = z.array(z.object({ path: z.string(), message: z.string() }));
const RetryAfter = z.object({ retryAfterSeconds: z.number().int() });
/** Why a passkey response was refused: `challenge`, `origin`, `rp_id`, `malformed`, `signature`, `unknown_credential`, … */
const PasskeyRefusal = z.object({ reason: z.string() });
/** Which rule the password broke (`reason` repeats the fine reason's suffix), plus what the strength check found. */
const PasswordRefusal = z.looseObject({ path: z.literal('password'), reason: z.string() });

interface ReasonSpec {
  /** The family: what `code` says, for clients written before reasons existed. */
  code: ErrorCode;
  /** Said when the throw site gives no message of its own. */
  message: string;
  /** The shape of `details`, where the reason carries any. */
  details?: z.ZodType;
}

/**
 * Every reason a client can receive, grouped by family. Each family code is also a reason (the generic one, for a
 * refusal with nothing finer to say); a finer reason lets a client act without reading the message.
 */
export const ERROR_REASONS = {
  invalid_json: { code: 'invalid_json', message: 'The request body is not valid JSON.' },
  invalid_forwarded_for: { code: 'invalid_forwarded_for', message: 'X-Forwarded-For must list IP addresses.' },

  validation_failed: { code: 'validation_failed', message: 'The request is not valid.', details: FieldIssues },
  request_malformed: { code: 'validation_failed', message: 'The request is malformed.' },
  text_nul_character: { code: 'validation_failed', message: 'Text in the body may not hold the character U+0000.' },
  body_incomplete: { code: 'validation_failed', message: 'The request body was not received in full.' },
  body_length_mismatch: { code: 'validation_failed', message: 'The request body does not match its Content-Length.' },
  upload_form_invalid: { code: 'validation_failed', message: 'The multipart/form-data body is malformed.', details: FieldIssues },
  upload_field_invalid: { code: 'validation_failed', message: 'Send one image in a multipart field named "image".', details: FieldIssues },
  upload_missing: { code: 'validation_failed', message: 'Send the image in a multipart field named "image".' },
  image_damaged: { code: 'validation_failed', message: 'The image is truncated or damaged.' },
  expires_at_in_past: { code: 'validation_failed', message: 'expiresAt must be in the future.', details: FieldIssues },
  unknown_role: { code: 'validation_failed', message: 'Unknown role.', details: FieldIssues },
  webhook_https_required: { code: 'validation_failed', message: 'A webhook endpoint must use https.', details: FieldIssues },

  weak_password: { code: 'weak_password', message: 'The password is too weak.', details: PasswordRefusal },
  password_too_short: { code: 'weak_password', message: 'The password is too short.', details: PasswordRefusal },
  password_personal: { code: 'weak_password', message: 'The password must not be your username or email.', details: PasswordRefusal },
  password_common: { code: 'weak_password', message: 'This password is in lists of common and leaked passwords; choose another.', details: PasswordRefusal },
  password_guessable: {
    code: 'weak_password',
    message: 'This password is too easy to guess. A few unrelated words make a strong one.',
    details: PasswordRefusal,
  },
  password_breached: { code: 'weak_password', message: 'This password has appeared in data breaches; choose another.', details: PasswordRefusal },

  passkey_rejected: { code: 'passkey_rejected', message: 'The new passkey was not accepted.', details: PasskeyRefusal },

  unauthorized: { code: 'unauthorized', message: 'Authentication is required.' },

  invalid_credentials: { code: 'invalid_credentials', message: 'The username, email or password is not correct.' },
  wrong_password: { code: 'invalid_credentials', message: 'The password is not correct.' },
  invalid_email_code: { code: 'invalid_credentials', message: 'The email or code is not correct, or the code has expired.' },

  invalid_token: { code: 'invalid_token', message: 'The token is not valid.' },
  bearer_header_malformed: { code: 'invalid_token', message: 'Send the access token as "Authorization: Bearer <token>".' },
  access_token_invalid: { code: 'invalid_token', message: 'The access token is not valid.' },
  access_token_expired: { code: 'invalid_token', message: 'The access token has expired.' },
  access_token_revoked: { code: 'invalid_token', message: 'The access token has been revoked.' },
  refresh_token_invalid: { code: 'invalid_token', message: 'The refresh token is not valid.' },
  refresh_token_reused: { code: 'invalid_token', message: 'The refresh token was already used; the session has been ended for safety.' },
  session_expired: { code: 'invalid_token', message: 'The session has expired; log in again.' },
  session_revoked: { code: 'invalid_token', message: 'The session has been ended; log in again.' },
  account_unavailable: { code: 'invalid_token', message: 'The account behind this token no longer exists.' },
  mfa_token_invalid: { code: 'invalid_token', message: 'The mfa_token is not valid.' },
  mfa_token_expired: { code: 'invalid_token', message: 'The mfa_token has expired; log in again.' },
  mfa_token_used: { code: 'invalid_token', message: 'This mfa_token was already used; log in again.' },
  link_invalid: { code: 'invalid_token', message: 'This link is not valid: it may have expired, been used already, or been replaced by a newer one.' },
  api_key_invalid: { code: 'invalid_token', message: 'The API key is not valid.' },

  invalid_mfa_code: { code: 'invalid_mfa_code', message: 'The code is not correct.' },
  mfa_code_reused: { code: 'invalid_mfa_code', message: 'That code was already used; wait for the next one.' },
  mfa_code_required: { code: 'invalid_mfa_code', message: 'Two-factor is on: send a current code (or a recovery code) with the password.' },
  step_up_code_invalid: { code: 'invalid_mfa_code', message: 'The code is not correct, or it has expired: ask for a new one.' },

  invalid_passkey: { code: 'invalid_passkey', message: 'The passkey was not accepted.', details: PasskeyRefusal },

  reauthentication_required: {
    code: 'reauthentication_required',
    message: 'Confirm your password (POST /reauthenticate) first: this needs a recent sign-in.',
    details: z.object({ maxAgeSeconds: z.number().int() }),
  },

  forbidden: { code: 'forbidden', message: 'This is not allowed.' },
  api_key_not_allowed: { code: 'forbidden', message: 'API keys cannot do this; use a Bearer access token from /login.' },
  api_key_scope_missing: { code: 'forbidden', message: 'This API key lacks the scope this needs.' },
  role_required: { code: 'forbidden', message: 'This needs a role you do not hold.' },
  admin_only: { code: 'forbidden', message: 'Only administrators can list every image.' },
  not_owner: { code: 'forbidden', message: 'Only the owner can delete an image.' },

  mfa_required: { code: 'mfa_required', message: 'Administration needs two-factor authentication: turn it on and log in with a code or a passkey.' },

  email_not_verified: {
    code: 'email_not_verified',
    message: 'Confirm your email address first with the link we sent (POST /email/verify/resend sends another).',
  },
  email_not_verified_for_enrolment: {
    code: 'email_not_verified',
    message:
      'Confirm your email address first (the link we sent, or POST /email/verify/resend): until it is confirmed, nothing that outlives a session can be added to the account.',
  },
  email_not_verified_for_code: { code: 'email_not_verified', message: 'Confirm your email address first: a code can only go to a proven address.' },

  second_proof_required: {
    code: 'second_proof_required',
    message: "Adding the account's first second factor needs a second proof in this session.",
    details: z.object({ proven: z.array(z.string()), accepted: z.array(z.enum(['password', 'email_code'])) }),
  },

  invalid_signature: { code: 'invalid_signature', message: 'The signature is not valid.' },
  image_link_invalid: { code: 'invalid_signature', message: 'This image link is not valid.' },
  image_link_expired: { code: 'invalid_signature', message: 'This image link has expired.' },

  not_found: { code: 'not_found', message: 'The resource does not exist.' },
  route_not_found: { code: 'not_found', message: 'No route for this method and path.' },
  user_not_found: { code: 'not_found', message: 'No such user.' },
  image_not_found: { code: 'not_found', message: 'No such image.' },
  api_key_not_found: { code: 'not_found', message: 'No such API key.' },
  passkey_not_found: { code: 'not_found', message: 'No such passkey.' },
  session_not_found: { code: 'not_found', message: 'No such active session.' },
  webhook_endpoint_not_found: { code: 'not_found', message: 'No such webhook endpoint.' },
  outbox_message_not_found: { code: 'not_found', message: 'No such message in the outbox.' },

  method_not_allowed: { code: 'method_not_allowed', message: 'This method is not allowed on this path; the Allow header lists those that are.' },

  already_registered: { code: 'already_registered', message: 'That username or email is already registered.' },
  username_taken: { code: 'already_registered', message: 'That username is already taken.', details: FieldIssues },
  email_taken: { code: 'already_registered', message: 'That email address was registered by another account meanwhile.' },

  conflict: { code: 'conflict', message: 'The resource already exists.' },
  cannot_disable_self: { code: 'conflict', message: 'Administrators cannot disable themselves.' },
  last_admin: { code: 'conflict', message: 'That would leave no administrator.', details: z.object({ reason: z.literal('last_admin') }) },
  too_many_passkeys: { code: 'conflict', message: 'An account holds its maximum number of passkeys; delete one first.' },
  passkey_already_registered: { code: 'conflict', message: 'This passkey is already registered.' },
  no_passkey_registered: { code: 'conflict', message: 'This account has no passkey.' },
  mfa_already_enabled: { code: 'conflict', message: 'Two-factor authentication is already on; turn it off first.' },
  mfa_setup_not_started: { code: 'conflict', message: 'Start with POST /mfa/totp/setup.' },
  mfa_not_enabled: { code: 'conflict', message: 'Two-factor authentication is not on.' },
  no_key_ring: {
    code: 'conflict',
    message: 'Access tokens are signed with JWT_SECRET (JWT_ALGORITHM=HS256): there is no key ring to rotate; change JWT_SECRET instead.',
  },

  payload_too_large: { code: 'payload_too_large', message: 'The request body is too large.' },
  file_too_large: { code: 'payload_too_large', message: 'The file is too large.' },
  too_many_form_parts: { code: 'payload_too_large', message: 'The form has too many parts.' },
  form_field_too_large: { code: 'payload_too_large', message: 'A form field is too large.' },

  storage_quota_exceeded: {
    code: 'storage_quota_exceeded',
    message: 'This image does not fit in your storage quota; delete some images first.',
    details: z.object({ usedBytes: z.number().int(), quotaBytes: z.number().int(), imageBytes: z.number().int() }),
  },

  unsupported_media_type: { code: 'unsupported_media_type', message: 'The request cannot be served as sent.' },
  body_encoding_unsupported: { code: 'unsupported_media_type', message: 'The request body encoding is not supported.' },
  body_charset_unsupported: { code: 'unsupported_media_type', message: 'The request body charset is not supported.' },
  json_body_required: { code: 'unsupported_media_type', message: 'Send the request body as application/json.' },
  form_body_required: { code: 'unsupported_media_type', message: 'Send the request body as application/x-www-form-urlencoded.' },
  multipart_required: { code: 'unsupported_media_type', message: 'Send the image as multipart/form-data in a field named "image".' },
  image_type_unsupported: { code: 'unsupported_media_type', message: 'Only PNG, JPEG, GIF and WebP images are accepted.' },

  image_too_large_dimensions: {
    code: 'image_too_large_dimensions',
    message: 'The image declares more pixels than IMAGE_MAX_PIXELS allows.',
    details: z.object({ pixels: z.number().int(), maxPixels: z.number().int() }),
  },
  webhook_destination_forbidden: { code: 'webhook_destination_forbidden', message: 'Webhooks may not reach this URL.' },
  headers_too_large: { code: 'headers_too_large', message: 'The request headers are too large.' },
  mfa_locked: { code: 'mfa_locked', message: 'Too many wrong codes. Two-factor sign-in is locked for a while.', details: RetryAfter },
  rate_limited: {
    code: 'rate_limited',
    message: 'Too many requests. Try again later.',
    details: z.object({ budget: z.string(), limit: z.number().int(), windowSeconds: z.number(), retryAfterSeconds: z.number().int() }),
  },
  login_throttled: { code: 'login_throttled', message: 'Too many failed sign-ins for this account. Try again later.', details: RetryAfter },

  internal_error: { code: 'internal_error', message: 'Something went wrong on our side.' },

  service_unavailable: { code: 'service_unavailable', message: 'The service is unavailable; try again shortly.' },
  database_unavailable: { code: 'service_unavailable', message: 'The database is unavailable; try again shortly.' },
  revocation_unavailable: { code: 'service_unavailable', message: 'Token revocation cannot be checked right now; try again shortly.' },
  lockout_unavailable: { code: 'service_unavailable', message: 'Failed attempts cannot be counted right now; try again shortly.' },
  challenges_unavailable: { code: 'service_unavailable', message: 'Passkey ceremonies cannot be started or finished right now; try again shortly.' },
  breach_check_unavailable: {
    code: 'service_unavailable',
    message: 'Passwords cannot be checked against known breaches right now; try again shortly.',
  },
  image_storage_unavailable: { code: 'service_unavailable', message: 'Image storage is unavailable; try again shortly.' },
  // Outside identity providers (features/providers).
  provider_unavailable: { code: 'service_unavailable', message: 'The identity provider did not answer in time; try again shortly.' },
  provider_not_found: { code: 'not_found', message: 'No such identity provider is enabled.' },
  provider_denied: { code: 'forbidden', message: 'The identity provider did not sign you in (it was declined or refused there).' },
  provider_email_unverified: {
    code: 'forbidden',
    message: 'The identity provider does not vouch for an email address of this account; verify one there, or register here.',
  },
  state_mismatch: { code: 'invalid_token', message: 'This sign-in was not started in this browser, was used already, or has expired; start again.' },
  provider_response_invalid: { code: 'invalid_token', message: "The identity provider's answer could not be verified; start again." },
  provider_code_invalid: { code: 'invalid_token', message: 'The sign-in code is not valid, was used already, has expired, or its verifier does not match.' },
  redirect_not_allowed: {
    code: 'validation_failed',
    message: 'redirect_to is not one of the addresses this service may send you back to (AUTH_REDIRECT_URLS).',
  },
  link_requires_sign_in: {
    code: 'conflict',
    message: 'An account with this email address exists. Sign in to it, then link the provider from your settings.',
  },
  identity_already_linked: { code: 'conflict', message: 'That identity is linked to an account already.' },
  identity_not_found: { code: 'not_found', message: 'No such linked identity.' },
  last_sign_in_method: {
    code: 'conflict',
    message: 'This is the last way into the account: set a password or add a passkey before unlinking it.',
  },
  provider_configured_in_environment: {
    code: 'conflict',
    message: 'This provider comes from the environment (AUTH_PROVIDER_<ID>_*): change it there and restart.',
  },
  provider_id_taken: { code: 'conflict', message: 'An identity provider with that id exists already.' },
  // The OpenID provider (features/oauth-provider).
  oauth_client_not_found: { code: 'not_found', message: 'No such OAuth client.' },
  oauth_consent_required: {
    code: 'conflict',
    message: 'The app asks for something this person has not allowed it yet: show them what it asks, then send allow or deny.',
  },
  oauth_consent_not_found: { code: 'not_found', message: 'You have not allowed that app anything.' },
  oauth_client_invalid: { code: 'validation_failed', message: 'The OAuth client is not valid.', details: FieldIssues },
  oauth_interaction_not_found: {
    code: 'not_found',
    message: 'This sign-in request has expired, was finished already, or was not started in this browser; go back to the app and start again.',
  },
  // Organizations (features/organizations).
  org_not_found: { code: 'not_found', message: 'No such organization, or you are not a member of it.' },
  org_permission_missing: {
    code: 'forbidden',
    message: 'Your role in the organization does not grant this.',
    details: z.object({ permission: z.string() }),
  },
  org_creation_not_allowed: { code: 'forbidden', message: 'Only administrators may create organizations here (ORG_CREATION).' },
  org_slug_taken: { code: 'conflict', message: 'An organization with that slug exists already.' },
  org_limit_reached: { code: 'conflict', message: 'You belong to as many organizations as this service allows (ORG_MAX_PER_USER).' },
  org_member_limit_reached: {
    code: 'conflict',
    message: 'The organization has as many members and pending invitations as this service allows (ORG_MAX_MEMBERS).',
  },
  org_last_owner: { code: 'conflict', message: 'An organization must keep an owner: make someone else owner first.' },
  org_grant_exceeded: { code: 'forbidden', message: 'You cannot grant, change or remove more than your own role holds.' },
  org_owner_required: { code: 'forbidden', message: 'Only an owner can make, change or remove an owner.' },
  org_member_not_found: { code: 'not_found', message: 'No such member of the organization.' },
  org_role_unknown: { code: 'validation_failed', message: 'The organization has no such role.', details: FieldIssues },
  org_role_not_found: { code: 'not_found', message: 'The organization has no such role.' },
  org_role_taken: { code: 'conflict', message: 'The organization has a role with that name already.' },
  org_role_in_use: { code: 'conflict', message: 'Members hold this role: give them another first.' },
  org_settings_too_large: { code: 'validation_failed', message: 'settings must be a JSON object of at most 4 kB.', details: FieldIssues },
  invitation_not_found: { code: 'not_found', message: 'No such pending invitation.' },
  invitation_invalid: { code: 'not_found', message: 'This invitation link is not valid.' },
  invitation_expired: { code: 'conflict', message: 'This invitation has expired; ask for a new one.' },
  invitation_used: { code: 'conflict', message: 'This invitation was accepted already.' },
  invitation_revoked: { code: 'conflict', message: 'This invitation was withdrawn.' },
  invitation_other_address: {
    code: 'forbidden',
    message: 'This invitation is for another email address: sign in with (or register) the address it was sent to.',
  },
  dpop_proof_invalid: { code: 'invalid_token', message: 'The DPoP proof is missing or not valid for this request.' },
  rate_limiter_unavailable: { code: 'service_unavailable', message: 'Rate limiting is unavailable; try again shortly.' },
  not_ready: {
    code: 'service_unavailable',
    message: 'Not ready: a dependency is unreachable.',
    details: z.object({ checks: z.record(z.string(), z.unknown()) }),
  },
  shutting_down: { code: 'service_unavailable', message: 'The server is shutting down.' },
  password_checks_busy: { code: 'service_unavailable', message: 'Too many passwords are being checked right now; try again shortly.' },
  // Importing users (features/user-import).
  ndjson_body_required: { code: 'unsupported_media_type', message: 'Send the users as application/x-ndjson: one JSON object a line.' },
  import_too_large: {
    code: 'payload_too_large',
    message: 'The import is larger than USER_IMPORT_MAX_MB allows: split it, or run npm run users:import on the server.',
  },
} as const satisfies Record<string, ReasonSpec>;

export type ErrorReason = keyof typeof ERROR_REASONS;

type Spec<R extends ErrorReason> = (typeof ERROR_REASONS)[R];

/** What `details` holds for a reason: the map's shape where it declares one. */
export type ErrorDetails<R extends ErrorReason> = Spec<R> extends { details: infer S extends z.ZodType } ? z.input<S> : unknown;

export interface AppErrorOptions<R extends ErrorReason = ErrorReason> {
  details?: ErrorDetails<R>;
  headers?: Record<string, string>;
  cause?: unknown;
}

class ReasonedError extends Error {
  /** The family, as clients written before reasons read it. */
  readonly code: ErrorCode;
  readonly status: number;
  readonly details?: unknown;
  readonly headers: Record<string, string>;

  constructor(
    readonly reason: ErrorReason,
    messageOrOptions?: string | AppErrorOptions,
    maybeOptions?: AppErrorOptions,
  ) {
    const spec: ReasonSpec = ERROR_REASONS[reason];
    const message = typeof messageOrOptions === 'string' ? messageOrOptions : spec.message;
    const options = (typeof messageOrOptions === 'object' ? messageOrOptions : maybeOptions) ?? {};
    // A client error is an answer, not a fault: nobody reads its stack, and capturing one is a measurable share of
    // a refusal's cost (a flood of 401s or 429s is exactly when that matters). Server errors keep theirs.
    const stackTraceLimit = Error.stackTraceLimit;
    if (ERROR_STATUS[spec.code] < 500) Error.stackTraceLimit = 0;
    super(message, { cause: options.cause });
    Error.stackTraceLimit = stackTraceLimit;
    this.name = 'AppError';
    this.code = spec.code;
    this.status = ERROR_STATUS[spec.code];
    this.details = options.details;
    this.headers = options.headers ?? {};
  }
}

/** An error a client is answered with: its reason picks the family, the status and the default message. */
export type AppError = ReasonedError;

/**
 * `new AppError(reason, options?)` or `new AppError(reason, message, options?)`. The construct signatures check
 * `details` against the reason's shape (a class constructor cannot take type parameters). `message` replaces the
 * default only where the answer carries something of this request (a number of seconds, a scope's name); anything a
 * client acts on belongs in the reason or in `details`.
 */
export const AppError: {
  new <R extends ErrorReason>(reason: R, options?: AppErrorOptions<R>): AppError;
  new <R extends ErrorReason>(reason: R, message: string | undefined, options?: AppErrorOptions<R>): AppError;
  readonly prototype: AppError;
} = ReasonedError;

/**
 * Runs `fn` with stack capture off. For code whose failures are expected answers on a hot path (a forged token),
 * where the libraries it calls build Error objects nobody will read.
 */
export function withoutStackTraces<T>(fn: () => T): T {
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return fn();
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}

/** The JSON body of every error response. */
export interface ErrorBody {
  error: { code: ErrorCode; reason: ErrorReason; message: string; details?: unknown; requestId: string };
}

/** The body an error is answered with. */
export function errorBody(error: AppError, requestId: string): ErrorBody {
  const body: ErrorBody = { error: { code: error.code, reason: error.reason, message: error.message, requestId } };
  if (error.details !== undefined) body.error.details = error.details;
  return body;
}
