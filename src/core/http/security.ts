// HTTP hygiene shared by every response: security headers, the CORS allowlist and no caching of API answers.
import cors from 'cors';
import type { Request, RequestHandler, Response } from 'express';
import helmet from 'helmet';
import { BlockList, isIP } from 'node:net';
import { AppError } from '../errors.js';

/** Helmet's headers, worked out once: with these options they never depend on the request. */
export function securityHeaders(options: { production: boolean; inlineScriptHashes?: string[] }): RequestHandler {
  const headers = headersSetBy(
    helmet({
      contentSecurityPolicy: {
        directives: {
          // Thumbnails come from signed URLs on this origin, and previews of picked files are blob: URLs.
          'img-src': ["'self'", 'data:', 'blob:'],
          // The page's import map is the one inline script allowed, by its hash.
          'script-src': ["'self'", ...(options.inlineScriptHashes ?? [])],
          // Outside production the page is often reached over plain HTTP on a LAN address, where upgrading breaks it.
          'upgrade-insecure-requests': options.production ? [] : null,
        },
      },
    }),
  );
  return (_req, res, next) => {
    res.setHeaders(headers);
    next();
  };
}

/** Runs a header-setting middleware once against a recording response and returns what it set. */
function headersSetBy(middleware: RequestHandler): Map<string, string> {
  const headers = new Map<string, string>();
  const recorder = {
    setHeader: (name: string, value: string) => headers.set(name, value),
    removeHeader: (name: string) => headers.delete(name),
  };
  let called = false;
  void middleware({} as Request, recorder as unknown as Response, () => (called = true));
  if (!called) throw new Error('the security-header middleware did not finish synchronously');
  return headers;
}

/** Allows cross-origin calls only from the listed origins; same-origin and non-browser clients are unaffected. */
export function corsAllowlist(origins: string[]): RequestHandler {
  const allowed = new Set(origins);
  return cors({
    origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
    exposedHeaders: ['RateLimit', 'RateLimit-Policy', 'Retry-After', 'X-Request-Id', 'X-Cache'],
    maxAge: 600,
  });
}

export function noStore(): RequestHandler {
  return (_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  };
}

/**
 * With TRUST_PROXY, the client's address comes from X-Forwarded-For; a value there that is not an IP address is
 * refused (400) rather than becoming the key of rate limits, sessions, audit rows and emails.
 */
export function forwardedForCheck(): RequestHandler {
  return (req, _res, next) => {
    if (req.headers['x-forwarded-for'] !== undefined && isIP(req.ip ?? '') === 0) {
      throw new AppError('invalid_forwarded_for');
    }
    next();
  };
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/**
 * Only for requests made on this machine (the socket's peer is loopback and no proxy forwarded it): anything else
 * answers 404, as if the route did not exist. For the development outbox, which holds every reset link.
 */
export function thisMachineOnly(): RequestHandler {
  return (req, _res, next) => {
    const peer = req.socket.remoteAddress ?? '';
    const family = isIP(peer) === 6 ? 'ipv6' : 'ipv4';
    const forwarded = req.headers['x-forwarded-for'] !== undefined || req.headers.forwarded !== undefined || req.headers['x-real-ip'] !== undefined;
    if (isIP(peer) === 0 || !LOOPBACK.check(peer, family) || forwarded) throw new AppError('not_found', 'Not found.');
    next();
  };
}
