// The one error type a client ever sees, and the stable codes it carries.

/** Every code a client can receive, with the HTTP status it travels with. */
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

export interface AppErrorOptions {
  details?: unknown;
  headers?: Record<string, string>;
  cause?: unknown;
}

export class AppError extends Error {
  readonly status: number;
  readonly details?: unknown;
  readonly headers: Record<string, string>;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: AppErrorOptions = {},
  ) {
    // A client error is an answer, not a fault: nobody reads its stack, and capturing one is a measurable share of
    // a refusal's cost (a flood of 401s or 429s is exactly when that matters). Server errors keep theirs.
    const stackTraceLimit = Error.stackTraceLimit;
    if (ERROR_STATUS[code] < 500) Error.stackTraceLimit = 0;
    super(message, { cause: options.cause });
    Error.stackTraceLimit = stackTraceLimit;
    this.name = 'AppError';
    this.status = ERROR_STATUS[code];
    this.details = options.details;
    this.headers = options.headers ?? {};
  }
}

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
  error: { code: ErrorCode; message: string; details?: unknown; requestId: string };
}

/** The body an error is answered with. */
export function errorBody(error: AppError, requestId: string): ErrorBody {
  const body: ErrorBody = { error: { code: error.code, message: error.message, requestId } };
  if (error.details !== undefined) body.error.details = error.details;
  return body;
}
