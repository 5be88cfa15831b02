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
  /**
   * What to say when the session ends without this tab asking, when another tab left word why (it deleted the
   * account); null: the session simply ended.
   */
  /** @type {string | null} */
  signOutNotice: null,
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
 * What the access token says (its payload, base64url JSON); the server checks the signature, the page only reads
 * what it says. Empty when there is no token or it cannot be read.
 * @returns {Record<string, unknown>}
 */
function tokenClaims() {
  const payload = state.accessToken?.split('.')[1];
  if (!payload) return {};
  try {
    const binary = window.atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const claims = JSON.parse(new window.TextDecoder().decode(Uint8Array.from(binary, (char) => char.charCodeAt(0))));
    return typeof claims === 'object' && claims !== null ? claims : {};
  } catch {
    return {};
  }
}

/**
 * The organization the access token speaks for, as its `org_id` and `org_role` claims say (null: the person alone).
 * @returns {{ id: string, role: string } | null}
 */
export function tokenOrg() {
  const claims = tokenClaims();
  return typeof claims.org_id === 'string' ? { id: claims.org_id, role: typeof claims.org_role === 'string' ? claims.org_role : '' } : null;
}

/** The account's roles as the access token's `roles` claim says (a change reaches it at the next refresh). */
export function tokenRoles() {
  const { roles } = tokenClaims();
  return Array.isArray(roles) ? roles.filter((role) => typeof role === 'string') : [];
}

export async function announceSignedIn() {
  for (const handler of signedInHandlers) await handler();
}

export function announceSignedOut() {
  state.epoch += 1;
  for (const handler of signedOutHandlers) handler();
}
