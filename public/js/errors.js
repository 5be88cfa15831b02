// The one error type for a refused request, and the sentence a person reads for any failure.
import { AuthError } from '@authkit/client';

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {any} body the error body, `{ error: { code, reason, message, details? } }`, or null when it was not JSON
   * @param {string | null} retryAfter
   */
  constructor(status, body, retryAfter) {
    super(body?.error?.message ?? `Request failed (${status})`);
    this.status = status;
    /** @type {string | undefined} */
    this.code = body?.error?.code;
    /** The fine reason (`org_last_owner`, `invitation_expired`…): what a screen acts on, or words it picks. */
    /** @type {string | undefined} */
    this.reason = body?.error?.reason;
    /** @type {any} */
    this.details = body?.error?.details;
    this.retryAfter = retryAfter;
  }
}

/**
 * The page's ApiError for a refusal the client library (`@authkit/client`) reports as an AuthError: the same status,
 * code, reason, details and Retry-After, so the screens check one type. Anything else, an AuthError with no answer
 * behind it (status 0: the server could not be reached, or no one is signed in) included, is returned as it is.
 * @param {unknown} error
 * @returns {unknown}
 */
export function fromAuthError(error) {
  if (!(error instanceof AuthError) || error.status === 0) return error;
  const body = { error: { code: error.code, reason: error.reason, message: error.message, details: error.details } };
  return new ApiError(error.status, body, error.retryAfter === undefined ? null : String(error.retryAfter));
}

/** A sentence a person can act on, from whatever went wrong. */
export function describe(/** @type {unknown} */ failure) {
  const error = fromAuthError(failure);
  if (error instanceof AuthError && error.code !== 'network_error') return error.message;
  if (!(error instanceof ApiError)) return 'The server could not be reached. Check your connection and try again.';
  if (error.status === 429) return `Too many requests. Try again in ${error.retryAfter ?? error.details?.retryAfterSeconds ?? 60} seconds.`;
  if (error.status === 413) return 'That file is too large.';
  if (error.status === 415) return 'Only PNG, JPEG, GIF and WebP images are accepted.';
  if (Array.isArray(error.details) && error.details.length > 0) {
    const details = /** @type {Array<{ path?: string, message: string }>} */ (error.details);
    return `${error.message} ${details.map((detail) => `${detail.path || 'request'}: ${detail.message}`).join('; ')}`;
  }
  return error.message;
}
