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
  /**
   * Counts sign-outs: an answer that arrives after the person who asked has signed out (epoch moved on) is dropped,
   * so the next person never sees it.
   */
  epoch: 0,
};

/** @type {Array<() => unknown>} */
const signedInHandlers = [];
/** @type {Array<() => void>} */
const signedOutHandlers = [];
/** @type {Array<(user: User) => void>} */
const userHandlers = [];

/** Runs `handler` each time someone signs in; handlers run in the order they were added, each awaited. */
export function onSignedIn(/** @type {() => unknown} */ handler) {
  signedInHandlers.push(handler);
}

/** Runs `handler` each time the session ends (logout, or a refresh the server refused). */
export function onSignedOut(/** @type {() => void} */ handler) {
  signedOutHandlers.push(handler);
}

/** Runs `handler` each time what the page knows of the signed-in person changes (a new name or address). */
export function onUserChanged(/** @type {(user: User) => void} */ handler) {
  userHandlers.push(handler);
}

/** Keeps the signed-in person's account as the server last described it, and tells the screens that show it. */
export function setUser(/** @type {User} */ user) {
  state.user = user;
  for (const handler of userHandlers) handler(user);
}

export async function announceSignedIn() {
  for (const handler of signedInHandlers) await handler();
}

export function announceSignedOut() {
  state.epoch += 1;
  for (const handler of signedOutHandlers) handler();
}
