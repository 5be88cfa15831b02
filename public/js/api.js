// Talking to the API: one request pipeline (re-authentication, second proof, polite retry) for JSON calls and
// uploads alike; the session itself is kept by the client library, one client for the page.
import { createAuthClient, indexedDbStorage } from '@authkit/client';
import { ApiError, describe, fromAuthError } from './errors.js';
import { announceSignedIn, announceSignedOut, onSignedIn, onSignedOut, setAccessToken, setUser, state } from './state.js';
import { say } from './ui.js';
import { passkeyApi, passkeysSupported } from './webauthn.js';

export { ApiError, describe };

/** @typedef {import('@authkit/client').Session} Session */
/** @typedef {import('@authkit/client').SignInResult} SignInResult */
/** @typedef {{ file: File, field: string, onProgress: (percent: number) => void }} Upload */
/**
 * @typedef {object} SendOptions
 * @property {string} [method]
 * @property {unknown} [body] sent as JSON
 * @property {Upload} [upload] sent as multipart/form-data, with progress
 * @property {boolean} [auth] whether to send the access token (and refresh it on a 401); true unless false
 */

/**
 * Set while the page forgets a session the server has already ended (see endSession): the client's own
 * POST /logout is answered here instead of being sent again with a token the server no longer takes.
 */
let forgetting = false;

/** Whether `input` is a request for POST /logout or /logout/all on this origin. */
function isLogout(/** @type {RequestInfo | URL} */ input) {
  const url = new URL(input instanceof window.Request ? input.url : String(input), window.location.origin);
  return url.origin === window.location.origin && /^\/logout(?:\/all)?$/.test(url.pathname);
}

/**
 * The session of this browser: kept where every tab of the page shares it (IndexedDB rather than localStorage: a
 * read after another tab's write sees it); refreshed before it expires, one refresh at a time across the tabs (a Web Lock), the new pair
 * handed to the other tabs, and a sign-out in one tab is a sign-out in all.
 */
export const auth = createAuthClient({
  baseUrl: window.location.origin,
  storage: indexedDbStorage(),
  // SimpleWebAuthn's browser half, loaded the first time a passkey signs in.
  webauthn: { startAuthentication: async (options) => (await passkeyApi()).startAuthentication(options) },
  fetch: (input, init) => (forgetting && isLogout(input) ? Promise.resolve(new window.Response(null, { status: 204 })) : window.fetch(input, init)),
});

/** Sign-ins this tab has under way: a SIGNED_IN heard meanwhile is its own (the screen greets), any other another tab's. */
let ownSignIns = 0;
/** Set while this tab signs out on purpose: it says so itself. */
let signingOut = false;
/** Whether the screens were told someone is signed in (and not told since that they signed out). */
let shownSignedIn = false;
onSignedIn(() => {
  shownSignedIn = true;
});
onSignedOut(() => {
  shownSignedIn = false;
});
/**
 * The person as the client last described them (JSON). A new access token for the same session (a switch of
 * organization, a step-up) carries the description of the sign-in, older than what the page may have read since
 * (a new username): only a description that changed (a refresh answers the server's current one) is taken.
 */
let describedUser = '';

/** The page's state follows the client's session: its access token, and the person it is for. */
function follow(/** @type {Session} */ session) {
  setAccessToken(session.accessToken);
  const user = JSON.stringify(session.user);
  if (user !== describedUser) {
    describedUser = user;
    setUser(session.user);
  }
}

auth.onAuthStateChange((event, session) => {
  if (event === 'SIGNED_OUT' || session === null) {
    describedUser = '';
    state.accessToken = null;
    state.user = null;
    announceSignedOut();
    // Not asked for here: the server refused the refresh (the session was ended elsewhere), or another tab signed out
    // (and may have left word why).
    const notice = state.signOutNotice;
    state.signOutNotice = null;
    if (!signingOut) say(notice ?? 'Your session has ended. Please log in again.', notice ? 'ok' : 'error');
    return;
  }
  follow(session);
  // Signed in in another tab while this one showed the sign-in card: this one is signed in too.
  if (event === 'SIGNED_IN' && ownSignIns === 0 && !shownSignedIn) {
    say(`Signed in as ${session.user.username} in another tab.`);
    void announceSignedIn();
  }
});

/**
 * At page load: the session this browser keeps (refreshed first if it is about to expire), and the person as the
 * server describes them now. True when someone is signed in and the screens are yet to hear of it.
 */
export async function resumeSession() {
  // Where this page kept its refresh token before the client kept the session: nothing is left behind there.
  window.sessionStorage.removeItem('authkit.refresh');
  /** @type {Session | null} */
  let session;
  try {
    session = await auth.getSession();
  } catch {
    // The refresh it needed could not be made now (the server unreachable): the session stays kept for later.
    return false;
  }
  if (session === null || shownSignedIn) return false;
  follow(session);
  try {
    // What the session says of the person dates from its sign-in or last refresh: a rename since is read here.
    setUser(await send('/me'));
  } catch {
    // The description the session holds will do until the next refresh.
  }
  return state.accessToken !== null && !shownSignedIn;
}

/** The body of an answer; an error answer throws an ApiError. */
async function parse(/** @type {Response} */ response) {
  if (response.status === 204) return null;
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body, response.headers.get('Retry-After'));
  return body;
}

/** The access token to send now (refreshed first by the client if it is about to expire); null when signed out. */
async function accessToken() {
  try {
    return (await auth.getSession())?.accessToken ?? null;
  } catch (error) {
    throw fromAuthError(error);
  }
}

/** One request, as is: fetch for JSON, XMLHttpRequest for an upload; with `token` when it is not null. */
function exchange(/** @type {string} */ path, /** @type {SendOptions} */ { method = 'GET', body, upload }, /** @type {string | null} */ token) {
  /** @type {Record<string, string>} */
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (upload) return uploadWithProgress(path, headers, upload);
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  return fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

/** One request with this session's access token (none with `auth: false`). */
async function exchangeAs(/** @type {string} */ path, /** @type {SendOptions} */ options = {}) {
  const token = options.auth === false ? null : await accessToken();
  return { token, response: await exchange(path, options, token) };
}

/**
 * XMLHttpRequest rather than fetch: it reports upload progress. Its answer is made a Response, so the upload takes
 * the same path as every other request.
 * @param {string} path
 * @param {Record<string, string>} headers
 * @param {Upload} upload
 * @returns {Promise<Response>}
 */
function uploadWithProgress(path, headers, { file, field, onProgress }) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('POST', path);
    for (const [name, value] of Object.entries(headers)) request.setRequestHeader(name, value);
    request.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) onProgress(Math.round((event.loaded / event.total) * 100));
    });
    request.addEventListener('load', () => {
      /** @type {Record<string, string>} */
      const answered = {};
      const retryAfter = request.getResponseHeader('Retry-After');
      if (retryAfter !== null) answered['Retry-After'] = retryAfter;
      const text = request.status === 204 ? null : request.responseText;
      resolve(new window.Response(text, { status: request.status, headers: answered }));
    });
    request.addEventListener('error', () => reject(new Error('network')));
    const form = new FormData();
    form.append(field, file);
    request.send(form);
  });
}

async function errorBody(/** @type {Response} */ response) {
  /** @type {any} */
  const body = await response
    .clone()
    .json()
    .catch(() => null);
  return body?.error;
}

/**
 * After the server refused `sent` (revoked, or expired by its clock): true once the client holds another access
 * token to try with, renewed meanwhile (by another request or tab) or refreshed now. A refresh the server refuses
 * signs out (the client says SIGNED_OUT); one that cannot be made now leaves the session as it is.
 */
async function renewAfterRefusal(/** @type {string | null} */ sent) {
  try {
    const current = await auth.getSession();
    if (current !== null && current.accessToken !== sent) return true;
    return (await auth.refresh()) !== null;
  } catch {
    return false;
  }
}

/**
 * Calls the API and resolves with the parsed JSON answer (callers name its type); a refusal throws an ApiError.
 * An expired access token is refreshed once, transparently; a change that needs a recent sign-in asks for the
 * password (and a code when two-factor is on) and is tried again.
 * @param {string} path
 * @param {SendOptions} [options]
 * @returns {Promise<any>}
 */
export async function send(path, options = {}) {
  const { token, response: first } = await exchangeAs(path, options);
  let response = first;
  if (response.status === 401 && options.auth !== false) {
    // Only a refused token is worth a refresh: a wrong code or password sent again would only be refused again.
    const code = (await errorBody(response))?.code;
    const retry =
      code === 'reauthentication_required'
        ? await reauthenticate()
        : code === 'invalid_token' || code === 'unauthorized'
          ? await renewAfterRefusal(token)
          : false;
    if (retry) ({ response } = await exchangeAs(path, options));
  }
  // Adding the first second factor needs two proofs in one session: the password and an emailed code.
  if (response.status === 403) {
    const error = await errorBody(response);
    if (error?.code === 'second_proof_required' && (await proveAgain(error.details?.accepted ?? []))) ({ response } = await exchangeAs(path, options));
  }
  // A read that met a spent budget waits as long as the server says, once, and tries again by itself. A change the
  // person asked for is not repeated behind their back: they are told when to try again.
  if (response.status === 429 && (options.method ?? 'GET') === 'GET') {
    const seconds = Math.min(Number(response.headers.get('Retry-After')) || 5, 60);
    say(`Busy: trying again in ${seconds} seconds…`, 'error', false);
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    ({ response } = await exchangeAs(path, options));
    if (response.ok) say('');
  }
  return parse(response);
}

/**
 * A sign-in through the client: the session it answers is kept there (and the SIGNED_IN it says is this tab's own:
 * the screen greets), and a refusal is an ApiError like any other.
 * @template T
 * @param {() => Promise<T>} work
 * @returns {Promise<T>}
 */
async function signingIn(work) {
  ownSignIns += 1;
  try {
    return await work();
  } catch (error) {
    throw fromAuthError(error);
  } finally {
    ownSignIns -= 1;
  }
}

/** Every way of signing in the page offers, through the client. */
export const signIn = {
  /** @returns {Promise<SignInResult>} */
  password: (/** @type {string} */ username, /** @type {string} */ password) => signingIn(() => auth.signIn.password({ username, password })),
  /** @returns {Promise<SignInResult>} */
  emailCode: (/** @type {string} */ email, /** @type {string} */ code) => signingIn(() => auth.signIn.emailCode({ email, code })),
  /** With a passkey this device holds (no username). @returns {Promise<SignInResult>} */
  passkey: () => signingIn(() => auth.signIn.passkey()),
  /** The second step, with a code from an authenticator app or a recovery code. @returns {Promise<Session>} */
  secondFactor: (/** @type {string} */ mfaToken, /** @type {string} */ code) => signingIn(() => auth.signIn.secondFactor({ mfaToken, code })),
  /** The second step with a passkey. @returns {Promise<Session>} */
  secondFactorPasskey: (/** @type {string} */ mfaToken) => signingIn(() => auth.signIn.secondFactorPasskey({ mfaToken })),
  /**
   * The code an outside provider's way back left in the address (#provider-code=…), exchanged for the session. The
   * page started without PKCE (its binding cookie stands in), so the client sends the code alone.
   * @returns {Promise<SignInResult>}
   */
  providerCode: (/** @type {string} */ code) => {
    const callback = new URL(window.location.pathname, window.location.origin);
    callback.searchParams.set('code', code);
    return signingIn(() => auth.signIn.providerCallback(callback));
  },
};

/**
 * Keeps a new access token for the same session (switching organization answers one; so does a step-up): the
 * client sends it from then on, and the other tabs too; the refresh token stays, and its refreshes keep speaking for
 * the same organization.
 */
export async function useAccessToken(/** @type {{ access_token: string, token_type?: string, expires_in: number }} */ answer) {
  try {
    await auth.useAccessToken({
      access_token: answer.access_token,
      token_type: answer.token_type === 'DPoP' ? 'DPoP' : 'Bearer',
      expires_in: answer.expires_in,
    });
  } catch (error) {
    throw fromAuthError(error);
  }
}

/**
 * Forgets the session here and in every other tab once the server has ended it (logout's business): the screens
 * hear SIGNED_OUT from the client.
 */
export async function endSession() {
  forgetting = true;
  signingOut = true;
  try {
    await auth.signOut();
  } finally {
    forgetting = false;
    signingOut = false;
  }
}

/** Exchanges the refresh token for a new pair now; resolves false when that is not possible (refused: signed out). */
export async function refresh() {
  try {
    return (await auth.refresh()) !== null;
  } catch {
    return false;
  }
}

/** Keeps the access token an answer carries. */
async function takeAccessToken(/** @type {Response} */ response) {
  /** @type {{ access_token: string, token_type?: string, expires_in: number }} */
  const answer = await parse(response);
  await useAccessToken(answer);
  return true;
}

/** One request with the current access token, for the proofs below (no refresh or second try of its own). */
async function exchangeNow(/** @type {string} */ path, /** @type {SendOptions} */ options) {
  return (await exchangeAs(path, options)).response;
}

/** Asks the person to confirm who they are; true once the server has issued an access token that says so. */
export async function reauthenticate() {
  // With a passkey on this account, the browser's own prompt is the quickest proof; the password remains the fallback.
  if (state.passkeys.length > 0 && passkeysSupported()) {
    try {
      const { startAuthentication } = await passkeyApi();
      const options = await parse(await exchangeNow('/reauthenticate/passkey/options', { method: 'POST' }));
      const response = await startAuthentication({ optionsJSON: options });
      return await takeAccessToken(await exchangeNow('/reauthenticate/passkey', { method: 'POST', body: { response } }));
    } catch {
      // Cancelled, or this device holds none of them: ask for the password instead.
    }
  }
  const password = window.prompt('For your security, please enter your password again.');
  if (!password) return false;
  let response = await exchangeNow('/reauthenticate', { method: 'POST', body: { password } });
  if (response.status === 401 && (await errorBody(response))?.code === 'invalid_mfa_code') {
    const code = window.prompt('Two-factor is on: enter a code from your authenticator app, or a recovery code.');
    if (!code) return false;
    response = await exchangeNow('/reauthenticate', { method: 'POST', body: { password, code } });
  }
  return takeAccessToken(response);
}

/**
 * The second proof a first second factor needs: after a password sign-in a code mailed to the proven address, after
 * an emailed-code sign-in the password. True once the server has issued an access token holding both.
 * @param {string[]} accepted
 */
export async function proveAgain(accepted) {
  if (accepted.includes('email_code')) {
    await parse(await exchangeNow('/reauthenticate/email-code/send', { method: 'POST' }));
    const code = window.prompt('To add a second factor we need a second proof: enter the six-digit code we just emailed you.');
    if (!code) return false;
    return takeAccessToken(await exchangeNow('/reauthenticate/email-code', { method: 'POST', body: { code: code.trim() } }));
  }
  if (accepted.includes('password')) {
    const password = window.prompt('To add a second factor we need a second proof: enter your password.');
    if (!password) return false;
    return takeAccessToken(await exchangeNow('/reauthenticate', { method: 'POST', body: { password } }));
  }
  return false;
}
