// Gives every request an id (honouring a sane incoming X-Request-Id) and writes one log line when it ends.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import type { Logger } from '../logger.js';

declare module 'express-serve-static-core' {
  interface Request {
    /** This request's id, echoed in `X-Request-Id`, every error body and its log line. */
    id: string;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestId(req: IncomingMessage, res: ServerResponse): string {
  const incoming = req.headers['x-request-id'];
  const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
  res.setHeader('X-Request-Id', id);
  return id;
}

/**
 * One line per request, written when the response has gone out (or the client went away). Only fields named here
 * are logged: the path without its query string (which can carry signatures), never a header that holds a credential.
 */
export function requestLogger(logger: Logger): RequestHandler {
  // The line holds only the fields below, none of which can carry a credential, so it skips the redaction pass
  // that every other log line gets (a measurable share of a request's cost).
  const access = logger.child({}, { redact: [] });
  return (req, res, next) => {
    const startedAt = performance.now();
    req.id = requestId(req, res);
    res.once('close', () => {
      const status = res.statusCode;
      const completed = res.writableFinished;
      const level = !completed || status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
      if (!access.isLevelEnabled(level)) return;
      access[level](
        {
          req: {
            id: req.id,
            method: req.method,
            path: req.originalUrl.split('?', 1)[0],
            ip: req.ip,
            userAgent: req.headers['user-agent'],
            userId: req.auth?.userId,
          },
          res: { statusCode: status },
          responseTime: Math.round(performance.now() - startedAt),
        },
        completed ? 'request completed' : 'request aborted',
      );
    });
    next();
  };
}
