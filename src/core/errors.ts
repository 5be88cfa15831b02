// The one error type a client ever sees, and the stable codes it carries.

/** Every code a client can receive, with the HTTP status it travels with. */
export const ERROR_STATUS = {
  invalid_json: 400,
  validation_failed: 400,
  unauthorized: 401,
  invalid_credentials: 401,
  invalid_token: 401,
  invalid_mfa_code: 401,
  forbidden: 403,
  mfa_required: 403,
  invalid_signature: 403,
  not_found: 404,
  method_not_allowed: 405,
  already_registered: 409,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  mfa_locked: 423,
  rate_limited: 429,
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
    super(message, { cause: options.cause });
    this.name = 'AppError';
    this.status = ERROR_STATUS[code];
    this.details = options.details;
    this.headers = options.headers ?? {};
  }
}

/** The JSON body of every error response. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown; requestId: string };
}
