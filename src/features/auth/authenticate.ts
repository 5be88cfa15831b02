// Who is calling: verifies the Bearer access token, checks revocation, and gates routes by role.
import type { Request, RequestHandler } from 'express';
import { AppError } from '../../core/errors.js';
import type { RevocationStore } from './revocation-store.js';
import { type AccessTokens, InvalidTokenError } from './tokens.js';

export interface AuthContext {
  userId: string;
  sessionId: string;
  roles: string[];
  /** How the user proved who they are (RFC 8176 values: `pwd`, `otp`). */
  amr: string[];
  jti: string;
  expiresAtMs: number;
  /** Set when the caller authenticated with an API key rather than a Bearer token. */
  apiKeyId?: string;
  /** What an API key may do; absent for Bearer tokens, which may do everything their roles allow. */
  scopes?: string[];
}

declare module 'express-serve-static-core' {
  interface Request {
    auth?: AuthContext;
  }
}

const REALM = 'authkit';
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

function challenge(code: 'unauthorized' | 'invalid_token', message: string): AppError {
  const header =
    code === 'unauthorized'
      ? `Bearer realm="${REALM}"`
      : `Bearer realm="${REALM}", error="invalid_token", error_description="${message.replace(/"/g, "'")}"`;
  return new AppError(code, message, { headers: { 'WWW-Authenticate': header } });
}

export interface AuthenticateDeps {
  tokens: AccessTokens;
  revocations: RevocationStore;
  apiKeys: { authenticate(presented: string): Promise<AuthContext> };
}

export interface Authenticators {
  /** A Bearer access token only: for managing the account, sessions, keys, two-factor and other users. */
  user: RequestHandler;
  /** A Bearer access token, or an `X-API-Key` that holds `scope`. */
  userOrKey(scope: string): RequestHandler;
}

async function fromBearer(deps: AuthenticateDeps, header: string): Promise<AuthContext> {
  const match = BEARER.exec(header);
  if (!match?.[1]) throw challenge('invalid_token', 'Send the access token as "Authorization: Bearer <token>".');
  let claims;
  try {
    claims = deps.tokens.verify(match[1]);
  } catch (err) {
    if (err instanceof InvalidTokenError) throw challenge('invalid_token', err.message);
    throw err;
  }
  const revoked = await deps.revocations.isRevoked({
    jti: claims.jti,
    sid: claims.sid,
    userId: claims.sub,
    issuedAtMs: Math.round(claims.iat * 1000),
  });
  if (revoked) throw challenge('invalid_token', 'The access token has been revoked.');
  return {
    userId: claims.sub,
    sessionId: claims.sid,
    roles: claims.roles,
    amr: claims.amr,
    jti: claims.jti,
    expiresAtMs: claims.exp * 1000,
  };
}

/** Builds the middleware that puts the caller's identity on `req.auth`, or answers 401/403. */
export function authenticators(deps: AuthenticateDeps): Authenticators {
  const identify = async (req: Request, allowKey: boolean): Promise<AuthContext> => {
    const authorization = req.headers.authorization;
    if (authorization !== undefined && authorization !== '') return fromBearer(deps, authorization);
    const apiKey = req.get('x-api-key');
    if (apiKey !== undefined && apiKey !== '') {
      if (!allowKey) throw new AppError('forbidden', 'API keys cannot do this; use a Bearer access token from /login.');
      return deps.apiKeys.authenticate(apiKey);
    }
    throw challenge('unauthorized', 'Authentication is required.');
  };
  return {
    user: async (req, _res, next) => {
      req.auth = await identify(req, false);
      next();
    },
    userOrKey: (scope) => async (req, _res, next) => {
      const auth = await identify(req, true);
      if (auth.scopes && !auth.scopes.includes(scope)) throw new AppError('forbidden', `This API key lacks the ${scope} scope.`);
      req.auth = auth;
      next();
    },
  };
}

/** The caller's identity; only valid behind `authenticate`. */
export function currentAuth(req: Request): AuthContext {
  if (!req.auth) throw new AppError('unauthorized', 'Authentication is required.');
  return req.auth;
}

/** Lets the request through when the caller holds at least one of the roles; 403 otherwise. */
export function requireRole(...roles: string[]): RequestHandler {
  return (req, _res, next) => {
    const auth = currentAuth(req);
    if (!roles.some((role) => auth.roles.includes(role))) {
      throw new AppError('forbidden', `This needs the ${roles.join(' or ')} role.`);
    }
    next();
  };
}
