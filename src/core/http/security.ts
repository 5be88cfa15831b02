// HTTP hygiene shared by every response: security headers, the CORS allowlist and no caching of API answers.
import cors from 'cors';
import type { RequestHandler } from 'express';
import helmet from 'helmet';

export function securityHeaders(options: { production: boolean }): RequestHandler {
  return helmet({
    contentSecurityPolicy: {
      directives: {
        // Thumbnails come from signed URLs on this origin, and previews of picked files are blob: URLs.
        'img-src': ["'self'", 'data:', 'blob:'],
        // Outside production the page is often reached over plain HTTP on a LAN address, where upgrading breaks it.
        'upgrade-insecure-requests': options.production ? [] : null,
      },
    },
  });
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
