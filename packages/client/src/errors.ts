// Every refusal as one typed object: the server's code and reason, the HTTP status, Retry-After and details.
import type { Error as ErrorBody } from './generated/types.gen.js';

/** The server's error families, from its OpenAPI document; plus what only a client can meet. */
export type ErrorCode = ErrorBody['error']['code'] | 'network_error' | 'unexpected_response' | 'not_signed_in';
/** The finer reason within a family (equal to `code` when there is nothing finer). */
export type ErrorReason = ErrorBody['error']['reason'] | 'network_error' | 'unexpected_response' | 'not_signed_in';

export class AuthError extends Error {
  override readonly name = 'AuthError';

  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The HTTP status; 0 when no answer came. */
    readonly status: number,
    readonly reason: ErrorReason = code,
    /** Seconds the server asked to wait before trying again (Retry-After), when it said. */
    readonly retryAfter?: number,
    readonly details?: unknown,
    /** The server's id for the request, to quote when asking its operators. */
    readonly requestId?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The error an answer carries (the server's one error shape), or `unexpected_response` for anything else. */
  static async from(response: Response): Promise<AuthError> {
    const retryAfter = retryAfterSeconds(response.headers.get('Retry-After'));
    const body = (await response.json().catch(() => undefined)) as Partial<ErrorBody> | undefined;
    const error = body?.error;
    if (error && typeof error.code === 'string' && typeof error.message === 'string')
      return new AuthError(error.code, error.message, response.status, error.reason ?? error.code, retryAfter, error.details, error.requestId);
    return new AuthError(
      'unexpected_response',
      `The server answered ${response.status} without an error body.`,
      response.status,
      'unexpected_response',
      retryAfter,
    );
  }

  static network(cause: unknown): AuthError {
    return new AuthError('network_error', 'The server could not be reached.', 0, 'network_error', undefined, undefined, undefined, { cause });
  }
}

/** Retry-After as seconds: a number of seconds or an HTTP date. */
export function retryAfterSeconds(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}
