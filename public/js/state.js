// What the page knows about the signed-in person, and who is told when someone signs in or out.

/** @typedef {import('./types.js').User} User */
/** @typedef {import('./types.js').Passkey} Passkey */

export const state = {
  /** The session's access token, as the client library (see api.js) last answered it; the session is kept there. */
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
/** @type {Array<() => void>} */
const tokenHandlers = [];

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

/** Runs `handler` each time the access token is replaced (a sign-in, a refresh, a step-up, a switch of organization). */
export function onAccessToken(/** @type {() => void} */ handler) {
  tokenHandlers.push(handler);
}

/** Keeps the new access token the client answered (in memory), and tells the screens that follow what it says. */
export function setAccessToken(/** @type {string} */ token) {
  state.accessToken = token;
  for (const handler of tokenHandlers) handler();
}

/**
 * The organization the access token speaks for, as its `org_id` and `org_role` claims say (null: the person alone).
 * Read from the token's payload (base64url JSON); the server checks the signature, the page only reads what it says.
 * @returns {{ id: string, role: string } | null}
 */
export function tokenOrg() {
  const payload = state.accessToken?.split('.')[1];
  if (!payload) return null;
  try {
    const binary = window.atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    /** @type {{ org_id?: unknown, org_role?: unknown }} */
    const claims = JSON.parse(new window.TextDecoder().decode(Uint8Array.from(binary, (char) => char.charCodeAt(0))));
    return typeof claims.org_id === 'string' ? { id: claims.org_id, role: typeof claims.org_role === 'string' ? claims.org_role : '' } : null;
  } catch {
    return null;
  }
}

export async function announceSignedIn() {
  for (const handler of signedInHandlers) await handler();
}

export function announceSignedOut() {
  state.epoch += 1;
  for (const handler of signedOutHandlers) handler();
}
