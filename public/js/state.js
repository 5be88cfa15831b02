// What the page knows about the signed-in person, and who is told when someone signs in or out.

/** @typedef {import('./types.js').User} User */
/** @typedef {import('./types.js').Passkey} Passkey */

export const state = {
  /** Kept in memory only; the refresh token is in sessionStorage (see api.js). */
  /** @type {string | null} */
  accessToken: null,
  /** @type {User | null} */
  user: null,
  /** Between the first sign-in step and the second factor. */
  /** @type {string | null} */
  mfaToken: null,
  /** The account's passkeys as last read: re-authentication offers one when there is any. */
  /** @type {Passkey[]} */
  passkeys: [],
};

/** @type {Array<() => unknown>} */
const signedInHandlers = [];
/** @type {Array<() => void>} */
const signedOutHandlers = [];

/** Runs `handler` each time someone signs in; handlers run in the order they were added, each awaited. */
export function onSignedIn(/** @type {() => unknown} */ handler) {
  signedInHandlers.push(handler);
}

/** Runs `handler` each time the session ends (logout, or a refresh the server refused). */
export function onSignedOut(/** @type {() => void} */ handler) {
  signedOutHandlers.push(handler);
}

export async function announceSignedIn() {
  for (const handler of signedInHandlers) await handler();
}

export function announceSignedOut() {
  for (const handler of signedOutHandlers) handler();
}
