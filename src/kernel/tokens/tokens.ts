// Access tokens (JWTs signed by the key ring, ES256 by default, each key's algorithm the only one accepted for it)
// and opaque refresh tokens stored only as hashes.
import { createHash, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { z } from 'zod';
import type { Clock } from '../../core/clock.js';
import { withoutStackTraces } from '../../core/errors.js';
import type { SigningKeys } from '../keys/key-ring.js';
import type { PurposeKeys } from '../keys/purpose-keys.js';

/** MFA tokens are for this service alone: an HMAC under a key of their own. */
const MFA_ALGORITHM = 'HS256';
export const REFRESH_TOKEN_PREFIX = 'rt_';

const AccessClaims = z.object({
  sub: z.uuid(),
  /** The username when the token was issued (OpenID Connect's claim name), so a request needs no user lookup. */
  preferred_username: z.string(),
  sid: z.uuid(),
  jti: z.uuid(),
  roles: z.array(z.string()),
  amr: z.array(z.string()).default([]),
  typ: z.literal('access'),
  iss: z.string(),
  aud: z.union([z.string(), z.array(z.string())]),
  iat: z.number(),
  exp: z.number(),
  /** When the user last proved who they are (OpenID Connect's claim, in seconds): a login or a re-authentication. */
  auth_time: z.number(),
  /** A DPoP-bound token names its key's thumbprint (RFC 9449 §6.1): it is honoured only with a proof by that key. */
  cnf: z.object({ jkt: z.string() }).optional(),
  /** The organization the token speaks for (POST /orgs/{id}/switch), with the member's role and permissions in it. */
  org_id: z.uuid().optional(),
  org_role: z.string().optional(),
  org_permissions: z.array(z.string()).optional(),
});

export type AccessClaims = z.output<typeof AccessClaims>;

export interface AccessTokenSubject {
  userId: string;
  username: string;
  sessionId: string;
  roles: string[];
  amr: string[];
  /** When the user last proved who they are, in milliseconds. */
  authTimeMs: number;
  /** The thumbprint of the DPoP key the session is bound to, if it is. */
  dpopJkt?: string;
  /** The organization the token speaks for, if any. */
  org?: OrgClaims;
}

/** An organization as a token carries it: which one, and the member's role and permissions in it. */
export interface OrgClaims {
  id: string;
  role: string;
  permissions: string[];
}

export interface TokenSettings {
  keys: SigningKeys;
  issuer: string;
  audience: string;
  accessTtlS: number;
  clockToleranceS: number;
}

/** Why a token was refused; surfaced as `error_description`, never with token contents. */
export class InvalidTokenError extends Error {
  override name = 'InvalidTokenError';

  /** `expired`: a genuine token past its life (a client's routine), as opposed to a forged or malformed one. */
  constructor(
    message: string,
    readonly reason: 'expired' | 'invalid' = 'invalid',
  ) {
    super(message);
  }
}

/** How many verified tokens `AccessTokens` remembers (about 1 kB each). */
const VERIFIED_TOKENS_KEPT = 10_000;

/** A UUIDv7 (RFC 9562): the first 48 bits are `ms`, the rest random, so the id also says when it was made. */
export function uuidV7(ms: number): string {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(ms, 0, 6);
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x70;
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * When an access token was issued, to the millisecond: from its UUIDv7 jti, or from `iat` for a token whose jti is
 * not one (issued before jti carried the time; its iat may carry a fraction instead).
 */
export function issuedAtMs(claims: Pick<AccessClaims, 'jti' | 'iat'>): number {
  if (claims.jti[14] === '7') {
    const ms = Number.parseInt(claims.jti.replaceAll('-', '').slice(0, 12), 16);
    // Never later than iat's second allows: the jti cannot claim a time the signed iat contradicts.
    if (Math.floor(ms / 1000) === claims.iat) return ms;
  }
  return Math.round(claims.iat * 1000);
}

/** Header members that ask a verifier to fetch or trust a key named by the token itself: never honoured here. */
const KEY_FETCHING_HEADERS = ['jku', 'jwk', 'x5u', 'x5c'];

/** The `kid` of a compact JWS header, read without a JWT library (which would parse the payload as well). */
function headerKid(token: string): string {
  const dot = token.indexOf('.');
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(token.slice(0, dot), 'base64url').toString('utf8'));
  } catch {
    throw new InvalidTokenError('The access token is not valid.');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new InvalidTokenError('The access token is not valid.');
  if (KEY_FETCHING_HEADERS.some((name) => name in header)) throw new InvalidTokenError('The access token is not valid.');
  const kid = (header as { kid?: unknown }).kid;
  if (typeof kid !== 'string') throw new InvalidTokenError('The access token is not valid.');
  return kid;
}

export class AccessTokens {
  /**
   * Tokens whose signature and claims already checked out, by their exact text. A client sends the same token for
   * its whole life, so most requests skip the signature check and claim parsing; expiry is still checked each time.
   * Only verified tokens enter, so a forger cannot fill it.
   */
  private readonly verified = new Map<string, AccessClaims>();

  constructor(
    private readonly settings: TokenSettings,
    private readonly clock: Clock,
  ) {}

  /**
   * `nowMs` is when the token says it was issued: a caller that read what the token asserts (an organization role)
   * passes the time from before that read, so a change made after the read voids it (see Sessions.orgClaims).
   */
  sign(subject: AccessTokenSubject, nowMs = this.clock.now()): { token: string; claims: AccessClaims } {
    // iat is whole seconds: clients such as PyJWT refuse a fractional iat as "not yet valid" during its first second.
    // The millisecond, which a "void before T" cutoff needs, travels in the jti (a UUIDv7, see issuedAtMs).
    const claims: AccessClaims = {
      sub: subject.userId,
      preferred_username: subject.username,
      sid: subject.sessionId,
      jti: uuidV7(nowMs),
      roles: subject.roles,
      amr: subject.amr,
      typ: 'access',
      iss: this.settings.issuer,
      aud: this.settings.audience,
      iat: Math.floor(nowMs / 1000),
      exp: Math.floor(nowMs / 1000) + this.settings.accessTtlS,
      auth_time: Math.floor(subject.authTimeMs / 1000),
      ...(subject.dpopJkt !== undefined && { cnf: { jkt: subject.dpopJkt } }),
      ...(subject.org !== undefined && { org_id: subject.org.id, org_role: subject.org.role, org_permissions: subject.org.permissions }),
    };
    const { kid, alg, key } = this.settings.keys.signing();
    const token = jwt.sign(claims, key, { algorithm: alg, keyid: kid });
    return { token, claims };
  }

  /** Verifies signature, algorithm, issuer, audience, expiry and type; throws InvalidTokenError otherwise. */
  verify(token: string): AccessClaims {
    const known = this.verified.get(token);
    if (known && Math.floor(this.clock.now() / 1000) < known.exp + this.settings.clockToleranceS) return known;
    if (known) this.verified.delete(token);
    // Refusing a forged or expired token is routine: no stack traces for the errors on the way.
    const claims = withoutStackTraces(() => this.verifyClaims(token));
    if (this.verified.size >= VERIFIED_TOKENS_KEPT) this.verified.delete(this.verified.keys().next().value as string);
    this.verified.set(token, claims);
    return claims;
  }

  private verifyClaims(token: string): AccessClaims {
    // The key is chosen by `kid` among our own, and its algorithm is the only one accepted: a token cannot pick a
    // weaker algorithm, nor have a public key used as an HMAC secret.
    const key = this.settings.keys.verifying(headerKid(token));
    if (!key) throw new InvalidTokenError('The access token is not valid.');
    let payload: unknown;
    try {
      payload = jwt.verify(token, key.key, {
        algorithms: [key.alg],
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        clockTimestamp: Math.floor(this.clock.now() / 1000),
        clockTolerance: this.settings.clockToleranceS,
      });
    } catch (err) {
      if (err instanceof jwt.TokenExpiredError) throw new InvalidTokenError('The access token has expired.', 'expired');
      throw new InvalidTokenError('The access token is not valid.');
    }
    const claims = AccessClaims.safeParse(payload);
    if (!claims.success) throw new InvalidTokenError('The token is not an access token.');
    return claims.data;
  }
}

/** A fresh opaque refresh token (256 random bits) and the hash that is all the database keeps. */
export function newRefreshToken(): { token: string; hash: string } {
  const token = `${REFRESH_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  return { token, hash: hashToken(token) };
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

const MfaClaims = z.object({
  sub: z.uuid(),
  jti: z.uuid(),
  typ: z.literal('mfa'),
  iat: z.number(),
  exp: z.number(),
  /** What the first step proved (RFC 8176); tokens from before it was recorded followed a password. */
  amr: z.array(z.string()).default(['pwd']),
  /** The outside identity provider that proved the first step, when one did (for the sign-in's audit event). */
  idp: z.string().optional(),
});
export type MfaClaims = z.output<typeof MfaClaims>;

/**
 * The short-lived token that links a correct password to the second-factor step of a login. It is signed with a
 * key of its own (the `mfa-tokens` purpose key its kid names) and carries `typ: "mfa"`, so it can never pass as an
 * access token, nor an access token as it.
 */
export class MfaTokens {
  /** KeyObjects by generation, made once each. */
  private readonly imported = new Map<number, KeyObject>();

  constructor(
    private readonly keys: PurposeKeys,
    private readonly issuer: string,
    private readonly clock: Clock,
    private readonly ttlS = 300,
  ) {}

  sign(userId: string, amr: string[], idp?: string): { token: string; claims: MfaClaims } {
    const nowMs = this.clock.now();
    const now = Math.floor(nowMs / 1000);
    // A UUIDv7 jti carries the millisecond, so a "logged out everywhere" earlier in the same second voids it and a
    // sign-in just after does not (see issuedAtMs).
    const claims: MfaClaims = { sub: userId, jti: uuidV7(nowMs), typ: 'mfa', iat: now, exp: now + this.ttlS, amr, ...(idp !== undefined && { idp }) };
    const { generation } = this.keys.current('mfa-tokens');
    const token = jwt.sign({ ...claims, iss: this.issuer, aud: `${this.issuer}:mfa` }, this.key(generation) as KeyObject, {
      algorithm: MFA_ALGORITHM,
      keyid: String(generation),
    });
    return { token, claims };
  }

  verify(token: string): MfaClaims {
    // The kid names the key's generation; tokens from before keys were stored carry none and are generation 1.
    let kid: string | undefined;
    try {
      kid = headerKid(token);
    } catch {
      kid = undefined;
    }
    const key = this.key(kid === undefined ? 1 : Number(kid));
    if (!key) throw new InvalidTokenError('The mfa_token is not valid.');
    let payload: unknown;
    try {
      payload = jwt.verify(token, key, {
        algorithms: [MFA_ALGORITHM],
        issuer: this.issuer,
        audience: `${this.issuer}:mfa`,
        clockTimestamp: Math.floor(this.clock.now() / 1000),
      });
    } catch (err) {
      throw err instanceof jwt.TokenExpiredError
        ? new InvalidTokenError('The mfa_token has expired; log in again.', 'expired')
        : new InvalidTokenError('The mfa_token is not valid.');
    }
    const claims = MfaClaims.safeParse(payload);
    if (!claims.success) throw new InvalidTokenError('The mfa_token is not valid.');
    return claims.data;
  }

  private key(generation: number): KeyObject | undefined {
    let key = this.imported.get(generation);
    if (key) return key;
    const secret = Number.isInteger(generation) ? this.keys.byGeneration('mfa-tokens', generation) : undefined;
    if (!secret) return undefined;
    key = createSecretKey(secret);
    this.imported.set(generation, key);
    return key;
  }
}
