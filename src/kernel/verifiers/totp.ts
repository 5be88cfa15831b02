// TOTP (RFC 6238) with otpauth: 30-second steps, one step of drift either way; secrets are sealed at rest by the 'totp' purpose key.
import { Secret, TOTP } from 'otpauth';

export const STEP_SECONDS = 30;
const DRIFT_STEPS = 1;

export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

function totp(secretBase32: string, issuer = 'authkit', label = 'account'): TOTP {
  return new TOTP({ issuer, label, secret: Secret.fromBase32(secretBase32), algorithm: 'SHA1', digits: 6, period: STEP_SECONDS });
}

/** The `otpauth://totp/…` URI authenticator apps read from the QR code. */
export function otpauthUri(secretBase32: string, issuer: string, label: string): string {
  return totp(secretBase32, issuer, label).toString();
}

/** The step a code belongs to, if it is valid within one step of `nowMs`; undefined otherwise. */
export function matchingStep(secretBase32: string, code: string, nowMs: number): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined;
  const delta = totp(secretBase32).validate({ token: code, timestamp: nowMs, window: DRIFT_STEPS });
  return delta === null ? undefined : Math.floor(nowMs / 1000 / STEP_SECONDS) + delta;
}

/** For tests and scripted clients: the code an authenticator would show at `nowMs`. */
export function codeAt(secretBase32: string, nowMs: number): string {
  return totp(secretBase32).generate({ timestamp: nowMs });
}
