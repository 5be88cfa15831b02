// Turns anything thrown while handling a request into the one error shape.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { type ErrorRequestHandler, type RequestHandler, Router } from 'express';
import multer from 'multer';
import { ZodError } from 'zod';
import { isDatabaseUnavailable } from './db.js';
import type { Metrics } from './metrics.js';
import { AppError, type ErrorReason, errorBody } from './errors.js';
import type { Logger } from './logger.js';

const PRISMA_UNIQUE_VIOLATION = 'P2002';
const PRISMA_RECORD_NOT_FOUND = 'P2025';

/** What the JSON parser's reviver throws for a U+0000 in the body (see app.ts). */
export const NUL_CHARACTER_MESSAGE = 'the body holds a U+0000 character';

const BODY_PARSER_ERRORS: Record<string, (err: { message?: unknown }) => AppError> = {
  'entity.parse.failed': (err) => new AppError(err.message === NUL_CHARACTER_MESSAGE ? 'text_nul_character' : 'invalid_json'),
  'entity.too.large': () => new AppError('payload_too_large'),
  'encoding.unsupported': () => new AppError('body_encoding_unsupported'),
  'charset.unsupported': () => new AppError('body_charset_unsupported'),
  'request.aborted': () => new AppError('body_incomplete'),
  'request.size.invalid': () => new AppError('body_length_mismatch'),
};

const MULTER_ERRORS: Partial<Record<multer.ErrorCode, () => AppError>> = {
  LIMIT_FILE_SIZE: () => new AppError('file_too_large'),
  LIMIT_PART_COUNT: () => new AppError('too_many_form_parts'),
  LIMIT_FIELD_VALUE: () => new AppError('form_field_too_large'),
};

const STATUS_REASONS: Partial<Record<number, ErrorReason>> = {
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

/**
 * Express, its router and body parsers flag what the client got wrong with a 4xx `status` (an undecodable path
 * segment, say). Those stay client errors, with a generic message rather than the library's wording.
 */
function clientErrorFromStatus(err: unknown): AppError | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const status = 'status' in err ? err.status : 'statusCode' in err ? err.statusCode : undefined;
  if (typeof status !== 'number' || status < 400 || status >= 500) return undefined;
  const reason = STATUS_REASONS[status];
  return reason ? new AppError(reason, 'The request cannot be served as sent.') : new AppError('request_malformed');
}

function hasCode(err: unknown): err is { code: unknown } {
  return typeof err === 'object' && err !== null && 'code' in err;
}

/** Maps a thrown value to an AppError; anything unrecognised becomes a 500 that says nothing of its cause. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof ZodError) {
    return new AppError('validation_failed', {
      details: err.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })),
    });
  }
  if (err instanceof multer.MulterError) {
    const mapped = MULTER_ERRORS[err.code];
    return mapped ? mapped() : new AppError('upload_form_invalid', { details: [{ path: err.field ?? '', message: err.message }] });
  }
  if (typeof err === 'object' && err !== null && 'type' in err && typeof err.type === 'string') {
    const mapped = BODY_PARSER_ERRORS[err.type];
    if (mapped) return mapped(err as { message?: unknown });
  }
  const clientError = clientErrorFromStatus(err);
  if (clientError) return clientError;
  if (isDatabaseUnavailable(err)) {
    return new AppError('database_unavailable', { cause: err, headers: { 'Retry-After': '2' } });
  }
  if (hasCode(err) && err.code === PRISMA_UNIQUE_VIOLATION) {
    return new AppError('conflict');
  }
  if (hasCode(err) && err.code === PRISMA_RECORD_NOT_FOUND) {
    return new AppError('not_found');
  }
  return new AppError('internal_error', { cause: err });
}

/**
 * For a path the API knows, called with a method it does not answer: 405 with an `Allow` header listing the methods
 * it does (RFC 9110), rather than the 404 an unknown path gets. Built from the routes documented in `registry`, so it
 * stays true as routes are added; mount it after every route. `tags` limits it to the routes of those tags (for a
 * second mount of some routers under a prefix).
 */
export function methodNotAllowedRouter(registry: OpenAPIRegistry, tags?: string[]): Router {
  const methodsByPath = new Map<string, Set<string>>();
  for (const definition of registry.definitions) {
    if (definition.type !== 'route') continue;
    if (tags && !definition.route.tags?.some((tag) => tags.includes(tag))) continue;
    const path = definition.route.path.replace(/\{(\w+)\}/g, ':$1');
    const methods = methodsByPath.get(path) ?? new Set<string>();
    methods.add(definition.route.method.toUpperCase());
    if (definition.route.method === 'get') methods.add('HEAD');
    methodsByPath.set(path, methods);
  }
  const router = Router();
  for (const [path, methods] of methodsByPath) {
    const allow = [...methods].sort().join(', ');
    router.all(path, (req, _res, next) => {
      next(new AppError('method_not_allowed', `${req.method} is not allowed on ${req.path}; use ${allow}.`, { headers: { Allow: allow } }));
    });
  }
  return router;
}

export function notFoundHandler(): RequestHandler {
  return (req, _res, next) => {
    next(new AppError('route_not_found', `No route for ${req.method} ${req.path}.`));
  };
}

/** What a refusal or an outage says about the service, for the metrics. */
function count(metrics: Metrics, error: AppError): void {
  if (error.code === 'rate_limited') {
    const budget = (error.details as { budget?: string } | undefined)?.budget;
    metrics.rateLimited.inc({ budget: budget ?? 'unknown' });
  } else if (error.code === 'login_throttled') {
    metrics.rateLimited.inc({ budget: 'login-failures' });
  } else if (error.code === 'service_unavailable' && error.cause !== undefined) {
    // The 503s with a cause come from PostgreSQL or the shared store (the hash pool's and the shutdown's have none).
    const cause = error.cause;
    const code = hasCode(cause) ? String(cause.code) : '';
    const text = cause instanceof Error ? `${cause.message} ${code}` : code;
    metrics.storeFailures.inc({
      store: isDatabaseUnavailable(cause) ? 'postgres' : 'redis',
      kind: /time(d)? ?out|timeout|57014/i.test(text) ? 'timeout' : 'error',
    });
  }
}

export function errorHandler(logger: Logger, metrics?: Metrics): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const error = toAppError(err);
    if (metrics) count(metrics, error);
    const requestId = req.id ?? '';
    if (error.status >= 500) logger.error({ err: error.cause ?? err, reqId: requestId }, 'request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // Written directly rather than through res.status().set().json(): refusals (401, 429) are the answers a flood
    // is made of, and Express's helpers re-validate and re-parse what is known to be right here.
    const json = JSON.stringify(errorBody(error, requestId));
    res.statusCode = error.status;
    for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(json));
    res.end(json);
  };
}
