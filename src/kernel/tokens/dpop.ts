// DPoP (RFC 9449) for this service's own tokens: a sign-in that sends a proof gets tokens bound to the proof's key,
// and a bound token is honoured only with a fresh proof, signed by that key, for the very request it comes with.
import { createHash } from 'node:crypto';
import type { Request } from 'express';
import { calculateJwkThumbprint, EmbeddedJWK, type JWK, jwtVerify } from 'jose';
import type { Clock } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';

/**
 * What clients may sign proofs with: asymmetric algorithms only (RFC 9449 §4.2), explicitly, and no RSA: a proof
 * brings its own key, and an RSA key with a huge exponent costs milliseconds to check before anything is known.
 */
export const DPOP_ALGORITHMS = ['ES256', 'ES384', 'EdDSA'] as const;
/** How old a proof may be, and how far ahead of our clock: a proof is made for one request, just before it. */
const MAX_AGE_S = 60;
const MAX_AHEAD_S = 5;
const MAX_PROOF_LENGTH = 8_192;

declare module 'express-serve-static-core' {
  interface Request {
    /** The thumbprint of the key that proved this request (a DPoP proof without an access token: sign-in, refresh). */
    dpopJkt?: string;
  }
}

/** The `ath` of an access token: its SHA-256, base64url. */
export const accessTokenHash = (token: string) => createHash('sha256').update(token, 'ascii').digest('base64url');

/** A refusal of a proof, with the challenge RFC 9449 §7.1 describes. */
export function dpopRefusal(description: string): AppError {
  return new AppError('dpop_proof_invalid', {
    headers: { 'WWW-Authenticate': `DPoP algs="${DPOP_ALGORITHMS.join(' ')}", error="invalid_dpop_proof", error_description="${description}"` },
  });
}

export interface DpopProofsDeps {
  clock: Clock;
  /** Spends a proof's id once on every instance (the revocation store's single-use ids). */
  spendOnce(id: string, ttlMs: number): Promise<boolean>;
  /** PUBLIC_URL: the origin proofs name; else the request's own. */
  publicUrl?: string;
}

export class DpopProofs {
  constructor(private readonly deps: DpopProofsDeps) {}

  /** The request's DPoP header, or undefined without one; two of them are refused. */
  static header(req: Request): string | undefined {
    // The common case (no proof) reads one property; headersDistinct builds a copy of every header.
    if (req.headers.dpop === undefined) return undefined;
    const raw = req.headersDistinct.dpop;
    if (raw === undefined) return undefined;
    if (raw.length !== 1) throw dpopRefusal('one DPoP header, please');
    return raw[0];
  }

  /**
   * Checks `proof` for this request (method, URL, time, single use; with `accessToken`, its hash) and returns the
   * thumbprint of the key that signed it. Throws 401 dpop_proof_invalid otherwise.
   */
  async verify(req: Request, proof: string, accessToken?: string): Promise<string> {
    if (proof.length > MAX_PROOF_LENGTH) throw dpopRefusal('the proof is too long');
    let payload;
    let jwk: JWK;
    try {
      const verified = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: [...DPOP_ALGORITHMS] });
      payload = verified.payload;
      jwk = verified.protectedHeader.jwk as JWK;
    } catch {
      // Whatever fails in there (jose's checks, or WebCrypto refusing a malformed key) is the proof's fault.
      throw dpopRefusal('the proof is not a valid DPoP JWT');
    }
    if ('d' in jwk || 'k' in jwk) throw dpopRefusal('the proof must carry a public key');
    if (payload.htm !== req.method) throw dpopRefusal('htm does not match the request');
    if (payload.htu !== this.requestUrl(req)) throw dpopRefusal('htu does not match the request');
    const nowS = this.deps.clock.now() / 1000;
    if (typeof payload.iat !== 'number' || payload.iat < nowS - MAX_AGE_S || payload.iat > nowS + MAX_AHEAD_S) throw dpopRefusal('iat is not recent');
    if (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > 256) throw dpopRefusal('jti is missing');
    if (accessToken !== undefined && payload.ath !== accessTokenHash(accessToken)) throw dpopRefusal('ath does not match the access token');
    const jkt = await calculateJwkThumbprint(jwk, 'sha256');
    if (!(await this.deps.spendOnce(`dpop:${jkt}:${payload.jti}`, (MAX_AGE_S + MAX_AHEAD_S) * 1000))) throw dpopRefusal('the proof was used before');
    return jkt;
  }

  /** The URL a proof must name (htu): the scheme, host and path, without query or fragment (RFC 9449 §4.3). */
  private requestUrl(req: Request): string {
    const origin = this.deps.publicUrl ?? `${req.protocol}://${req.get('host') ?? ''}`;
    return `${origin}${req.originalUrl.split('?')[0] ?? ''}`;
  }
}
