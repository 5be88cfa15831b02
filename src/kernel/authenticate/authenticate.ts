// Who is calling: verifies the Bearer access token, checks revocation, and gates routes by role.
import type { Request, RequestHandler, Response } from 'express';
import { AppError } from '../../core/errors.js';
import type { RevocationStore } from '../revocation/revocation-store.js';
import { type AccessTokens, InvalidTokenError, issuedAtMs, type OrgClaims } from '../tokens/tokens.js';
import type { Budget } from '../throttle/rate-limiter.js';
import { DpopProofs, dpopRefusal } from '../tokens/dpop.js';
import type { ApiKeyService } from '../verifiers/api-key-service.js';

export interface AuthContext {
  userId: string;
  /** As it was when the token was issued. */
  username: string;
  sessionId: string;
  roles: string[];
  /** How the user proved who they are (RFC 8176 values: `pwd`, `otp`). */
  amr: string[];
  jti: string;
  issuedAtMs: number;
  expiresAtMs: number;
  /** When the user last proved who they are (a login or POST /reauthenticate); 0 for API keys. */
  authTimeMs: number;
  /** Set when the caller authenticated with an API key rather than a Bearer token. */
  apiKeyId?: string;
  /** What an API key may do; absent for Bearer tokens, which may do everything their roles allow. */
  scopes?: string[];
  /** The thumbprint of the DPoP key the token is bound to; the request proved it holds that key. */
  dpopJkt?: string;
  /**
   * The organization the caller acts for: the token's active organization (role and permissions as issued), or an
   * organization's API key (its scopes as permissions).
   */
  org?: OrgClaims;
}

declare module 'express-serve-static-core' {
  interface Request {
    auth?: AuthContext;
  }
}

const REALM = 'authkit';
const BEARER = /^(Bearer|DPoP) +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** A 401 with its Bearer challenge (RFC 6750); `message` replaces the reason's default. */
function challenge(
  reason: 'unauthorized' | 'bearer_header_malformed' | 'access_token_invalid' | 'access_token_expired' | 'access_token_revoked',
  message?: string,
): AppError {
  const error = new AppError(reason, message);
  const header =
    reason === 'unauthorized'
      ? `Bearer realm="${REALM}"`
      : `Bearer realm="${REALM}", error="invalid_token", error_description="${error.message.replace(/"/g, "'")}"`;
  error.headers['WWW-Authenticate'] = header;
  return error;
}

export interface AuthenticateDeps {
  tokens: AccessTokens;
  revocations: RevocationStore;
  apiKeys: Pick<ApiKeyService, 'authenticate' | 'cached' | 'forget'>;
  /** Checks the DPoP proof a bound token must come with. */
  dpop: DpopProofs;
  /** Counts forged or unknown credentials against the caller's address, so guessing tokens or keys costs budget. */
  failedCredentials?: Budget;
}

/** Each takes the budget the route counts against, so no authenticated route can go unlimited. */
export interface Authenticators {
  /** A Bearer access token only: for managing the account, sessions, keys, two-factor and other users. */
  user(limit: Budget): RequestHandler;
  /** A Bearer access token, or an `X-API-Key` that holds `scope`. */
  userOrKey(scope: string, limit: Budget): RequestHandler;
}

type Verified = { auth: AuthContext; token: string; dpopScheme: boolean } | { refusal: AppError; guess: boolean };

/**
 * Checks the Bearer token's signature and claims (no I/O). A refusal says whether it looks like a guess (forged or
 * malformed) rather than a genuine token that has expired.
 */
function verifyBearer(deps: AuthenticateDeps, header: string): Verified {
  const match = BEARER.exec(header);
  const token = match?.[2];
  if (!token) return { refusal: challenge('bearer_header_malformed'), guess: true };
  let claims;
  try {
    claims = deps.tokens.verify(token);
  } catch (err) {
    if (err instanceof InvalidTokenError) {
      return err.reason === 'expired'
        ? { refusal: challenge('access_token_expired'), guess: false }
        : { refusal: challenge('access_token_invalid', err.message), guess: true };
    }
    throw err;
  }
  const auth: AuthContext = {
    userId: claims.sub,
    username: claims.preferred_username,
    sessionId: claims.sid,
    roles: claims.roles,
    amr: claims.amr,
    jti: claims.jti,
    issuedAtMs: issuedAtMs(claims),
    expiresAtMs: claims.exp * 1000,
    authTimeMs: claims.auth_time * 1000,
    ...(claims.cnf && { dpopJkt: claims.cnf.jkt }),
    ...(claims.org_id !== undefined && { org: { id: claims.org_id, role: claims.org_role ?? '', permissions: claims.org_permissions ?? [] } }),
  };
  return { auth, token, dpopScheme: match[1]?.toLowerCase() === 'dpop' };
}

/** Runs a rate-limit middleware and resolves with the error it passed on, if any. */
function countAgainstBudget(limit: Budget, req: Request, res: Response): Promise<Error | undefined> {
  return new Promise((resolve) => {
    void limit(req, res, (err?: unknown) =>
      resolve(err === undefined || err instanceof Error ? err : new Error('the rate limiter passed on a non-error', { cause: err })),
    );
  });
}

/**
 * Builds the middleware that puts the caller's identity on `req.auth` and counts the request against its budget,
 * or answers 401/403/429. For a Bearer token the revocation check and the budget's increment are sent to the store
 * together, so an authenticated request costs one round trip.
 */
export function authenticators(deps: AuthenticateDeps): Authenticators {
  /** Refuses a guessed credential with 401, or with 429 once the address has guessed too often. */
  const refuseGuess = async (req: Request, res: Response, refusal: AppError): Promise<never> => {
    if (deps.failedCredentials) {
      const limited = deps.failedCredentials.rememberedRefusal(req, res) ?? (await countAgainstBudget(deps.failedCredentials, req, res));
      if (limited !== undefined) throw limited;
    }
    throw refusal;
  };
  const proveHolder = async (req: Request, res: Response, auth: AuthContext, verified: { token: string; dpopScheme: boolean }): Promise<void> => {
    if (auth.dpopJkt === undefined) await refuseGuess(req, res, dpopRefusal('this access token is not DPoP-bound: send it as Bearer'));
    if (!verified.dpopScheme) await refuseGuess(req, res, dpopRefusal('this access token is DPoP-bound: send it as "Authorization: DPoP" with a proof'));
    const proof = DpopProofs.header(req);
    if (proof === undefined) await refuseGuess(req, res, dpopRefusal('a DPoP proof is required with this access token'));
    let jkt: string | undefined;
    try {
      jkt = await deps.dpop.verify(req, proof as string, verified.token);
    } catch (err) {
      if (err instanceof AppError) await refuseGuess(req, res, err);
      throw err;
    }
    if (jkt !== auth.dpopJkt) await refuseGuess(req, res, dpopRefusal('the proof is signed by another key than the token is bound to'));
  };
  const admit = async (req: Request, res: Response, limit: Budget, scope: string | undefined): Promise<void> => {
    const authorization = req.headers.authorization;
    if (authorization !== undefined && authorization !== '') {
      const verified = verifyBearer(deps, authorization);
      if ('refusal' in verified) {
        if (verified.guess) await refuseGuess(req, res, verified.refusal);
        throw verified.refusal;
      }
      const { auth } = verified;
      // A bound token is worth nothing without a fresh proof by its key, and an unbound one is never sent as DPoP.
      if (auth.dpopJkt !== undefined || verified.dpopScheme) await proveHolder(req, res, auth, verified);
      req.auth = auth;
      // The budget comes first: a caller over it gets 429 whatever the token's state, from memory when this instance
      // has just refused it. Otherwise the revocation check is issued in the same turn as the budget's increment, so
      // both travel in one write.
      const remembered = limit.rememberedRefusal(req, res);
      if (remembered) throw remembered;
      const revocation = deps.revocations.isRevoked({
        jti: auth.jti,
        sid: auth.sessionId,
        userId: auth.userId,
        issuedAtMs: auth.issuedAtMs,
        ...(auth.org && { orgId: auth.org.id }),
      });
      // Awaited below; until then a refusal must not count as unhandled (it may come before the budget answers).
      revocation.catch(() => {});
      const limited = await countAgainstBudget(limit, req, res);
      if (limited !== undefined) throw limited;
      if (await revocation) throw challenge('access_token_revoked');
      return;
    }
    const apiKey = req.get('x-api-key');
    if (apiKey === undefined || apiKey === '') throw challenge('unauthorized');
    if (scope === undefined) throw new AppError('api_key_not_allowed');
    const lacksScope = (auth: AuthContext) => auth.scopes !== undefined && !auth.scopes.includes(scope);
    // A key verified here before costs what a Bearer token does: the revocation check and the budget in one round trip.
    const cached = deps.apiKeys.cached(apiKey);
    if (cached) {
      if (lacksScope(cached.auth)) throw new AppError('api_key_scope_missing', `This API key lacks the ${scope} scope.`);
      req.auth = cached.auth;
      const remembered = limit.rememberedRefusal(req, res);
      if (remembered) throw remembered;
      const revocation = deps.revocations.isRevoked(cached.ref);
      revocation.catch(() => {});
      const limited = await countAgainstBudget(limit, req, res);
      if (limited !== undefined) throw limited;
      if (!(await revocation)) return;
      // Revoked, or its owner's account changed since: the database decides (the budget is already counted).
      deps.apiKeys.forget(apiKey);
    }
    let auth;
    try {
      auth = await deps.apiKeys.authenticate(apiKey);
    } catch (err) {
      if (err instanceof AppError && err.status === 401) await refuseGuess(req, res, err);
      throw err;
    }
    if (lacksScope(auth)) throw new AppError('api_key_scope_missing', `This API key lacks the ${scope} scope.`);
    req.auth = auth;
    if (cached) return;
    const limited = await countAgainstBudget(limit, req, res);
    if (limited !== undefined) throw limited;
  };
  return {
    user: (limit) => async (req, res, next) => {
      await admit(req, res, limit, undefined);
      next();
    },
    userOrKey: (scope, limit) => async (req, res, next) => {
      await admit(req, res, limit, scope);
      next();
    },
  };
}

/**
 * The "budget" of the routes that end access: logging out (here or everywhere), ending a session, revoking a key.
 * A person must always be able to lock an attacker out, so these are never refused by a rate limit; each succeeds
 * once per credential (the token or key it ends stops working), so they bound themselves. Forged credentials still
 * spend the address's budget of guesses.
 */
export const UNMETERED: Budget = Object.assign<RequestHandler, Pick<Budget, 'rememberedRefusal'>>((_req, _res, next) => next(), {
  rememberedRefusal: () => undefined,
});
export const UNMETERED_NOTE = 'Never refused by a rate limit: a person must always be able to end access.';

/** The caller's identity; only valid behind `authenticate`. */
export function currentAuth(req: Request): AuthContext {
  if (!req.auth) throw new AppError('unauthorized');
  return req.auth;
}

/**
 * Lets the request through when the caller proved who they are within `maxAgeS` (a login or POST /reauthenticate),
 * so a stolen access token alone cannot enrol an authenticator or mint an API key. Otherwise 401
 * `reauthentication_required`, with RFC 9470's step-up challenge.
 */
export function requireRecentAuthentication(maxAgeS: number, clock: { now(): number }): RequestHandler {
  return (req, _res, next) => {
    const auth = currentAuth(req);
    if (clock.now() - auth.authTimeMs > maxAgeS * 1000) {
      throw new AppError(
        'reauthentication_required',
        `Confirm your password (POST /reauthenticate) first: this needs a sign-in within the last ${maxAgeS} seconds.`,
        {
          headers: { 'WWW-Authenticate': `Bearer realm="${REALM}", error="insufficient_user_authentication", max_age=${maxAgeS}` },
          details: { maxAgeSeconds: maxAgeS },
        },
      );
    }
    next();
  };
}

/** Lets the request through when the caller holds at least one of the roles; 403 otherwise. */
export function requireRole(...roles: string[]): RequestHandler {
  return (req, _res, next) => {
    const auth = currentAuth(req);
    if (!roles.some((role) => auth.roles.includes(role))) {
      throw new AppError('role_required', `This needs the ${roles.join(' or ')} role.`);
    }
    next();
  };
}
