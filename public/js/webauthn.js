// Passkeys in this browser: whether it has WebAuthn, SimpleWebAuthn's browser half, and what a refusal means.
import { ApiError, describe, fromAuthError } from './errors.js';

/** @type {Promise<typeof import('@simplewebauthn/browser')> | undefined} */
let webauthn;
/** SimpleWebAuthn's browser half, served from the installed package, loaded the first time a passkey is used. */
export function passkeyApi() {
  webauthn ??= import('@simplewebauthn/browser');
  return webauthn;
}

export function passkeysSupported() {
  return typeof window.PublicKeyCredential === 'function';
}

/** A sentence for what the browser or the server said about a passkey ceremony. */
export function describePasskeyError(/** @type {unknown} */ thrown) {
  const error = fromAuthError(thrown);
  if (error instanceof ApiError) {
    if (error.code === 'invalid_passkey' && error.details?.reason === 'unknown_credential')
      return 'That passkey is not registered here (it may have been deleted). Sign in with your password.';
    return describe(error);
  }
  // SimpleWebAuthn passes the browser's DOMException on as the cause.
  const failure = /** @type {{ name?: string, cause?: { name?: string } } | undefined} */ (error);
  const name = failure?.cause?.name ?? failure?.name;
  if (name === 'NotAllowedError' || name === 'AbortError') return 'The passkey request was cancelled or timed out. Nothing was changed.';
  if (name === 'InvalidStateError') return 'This authenticator already holds a passkey for your account.';
  if (name === 'SecurityError') return 'This browser refused passkeys on this address: they need HTTPS, or localhost.';
  if (name === 'NotSupportedError') return 'This browser or authenticator cannot create a passkey.';
  return 'The passkey request failed. Try again, or use your password.';
}
