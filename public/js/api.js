// Talking to the API: one request pipeline (token refresh, re-authentication, second proof, polite retry) for JSON
// calls and uploads alike, and the session's tokens.
import { ApiError, describe } from './errors.js';
import { announceSignedOut, setAccessToken, setUser, state } from './state.js';
import { say } from './ui.js';
import { passkeyApi, passkeysSupported } from './webauthn.js';

export { ApiError, describe };

/** @typedef {import('./types.js').Tokens} Tokens */
/** @typedef {{ file: File, field: string, onProgress: (percent: number) => void }} Upload */
/**
 * @typedef {object} SendOptions
 * @property {string} [method]
 * @property {unknown} [body] sent as JSON
 * @property {Upload} [upload] sent as multipart/form-data, with progress
 * @property {boolean} [auth] whether to send the access token (and refresh it on a 401); true unless false
 */

const REFRESH_KEY = 'authkit.refresh';
/** @type {number | undefined} */
let refreshTimer;

/** The body of an answer; an error answer throws an ApiError. */
async function parse(/** @type {Response} */ response) {
  if (response.status === 204) return null;
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body, response.headers.get('Retry-After'));
  return body;
}

/** One request, as is: fetch for JSON, XMLHttpRequest for an upload. */
function exchange(/** @type {string} */ path, /** @type {SendOptions} */ { method = 'GET', body, upload, auth = true } = {}) {
  /** @type {Record<string, string>} */
  const headers = {};
  if (auth && state.accessToken) headers.Authorization = `Bearer ${state.accessToken}`;
  if (upload) return uploadWithProgress(path, headers, upload);
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  return fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
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
 * Calls the API and resolves with the parsed JSON answer (callers name its type); a refusal throws an ApiError.
 * An expired access token is refreshed once, transparently; a change that needs a recent sign-in asks for the
 * password (and a code when two-factor is on) and is tried again.
 * @param {string} path
 * @param {SendOptions} [options]
 * @returns {Promise<any>}
 */
export async function send(path, options = {}) {
  let response = await exchange(path, options);
  if (response.status === 401 && options.auth !== false) {
    // Only a refused token is worth a refresh: a wrong code or password sent again would only be refused again.
    const code = (await errorBody(response))?.code;
    const retry = code === 'reauthentication_required' ? await reauthenticate() : code === 'invalid_token' || code === 'unauthorized' ? await refresh() : false;
    if (retry) response = await exchange(path, options);
  }
  // Adding the first second factor needs two proofs in one session: the password and an emailed code.
  if (response.status === 403) {
    const error = await errorBody(response);
    if (error?.code === 'second_proof_required' && (await proveAgain(error.details?.accepted ?? []))) response = await exchange(path, options);
  }
  // A read that met a spent budget waits as long as the server says, once, and tries again by itself. A change the
  // person asked for is not repeated behind their back: they are told when to try again.
  if (response.status === 429 && (options.method ?? 'GET') === 'GET') {
    const seconds = Math.min(Number(response.headers.get('Retry-After')) || 5, 60);
    say(`Busy: trying again in ${seconds} seconds…`, 'error', false);
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    response = await exchange(path, options);
    if (response.ok) say('');
  }
  return parse(response);
}

/** Keeps a new token pair: the access token in memory, the refresh token for this tab, and a timer to renew them. */
export function useTokens(/** @type {Tokens} */ tokens) {
  setAccessToken(tokens.access_token);
  setUser(tokens.user);
  sessionStorage.setItem(REFRESH_KEY, tokens.refresh_token);
  renewBefore(tokens.expires_in);
}

/** Refreshes a little before expiry so requests rarely meet an expired token. */
function renewBefore(/** @type {number} */ expiresIn) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => void refresh(), Math.max(5, expiresIn - 30) * 1000);
}

/**
 * Keeps a new access token for the same session (switching organization answers one): it replaces the one in memory;
 * the refresh token stays, and its refreshes keep speaking for the same organization.
 */
export function useAccessToken(/** @type {{ access_token: string, expires_in: number }} */ answer) {
  setAccessToken(answer.access_token);
  renewBefore(answer.expires_in);
}

/** Forgets the session here and tells the screens (the server's side is logout's business). */
export function endSession() {
  state.accessToken = null;
  state.user = null;
  clearTimeout(refreshTimer);
  sessionStorage.removeItem(REFRESH_KEY);
  announceSignedOut();
}

/** @type {Promise<boolean> | null} */
let refreshing = null;
/** Exchanges the refresh token for a new pair; resolves false (and signs out) if that is no longer possible. */
export function refresh() {
  const refreshToken = sessionStorage.getItem(REFRESH_KEY);
  if (!refreshToken) return Promise.resolve(false);
  refreshing ??= (async () => {
    try {
      useTokens(await parse(await exchange('/refresh', { method: 'POST', body: { refresh_token: refreshToken }, auth: false })));
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        endSession();
        say('Your session has ended. Please log in again.', 'error');
      }
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** Keeps the access token an answer carries. */
async function takeAccessToken(/** @type {Response} */ response) {
  /** @type {{ access_token: string }} */
  const answer = await parse(response);
  setAccessToken(answer.access_token);
  return true;
}

/** Asks the person to confirm who they are; true once the server has issued an access token that says so. */
export async function reauthenticate() {
  // With a passkey on this account, the browser's own prompt is the quickest proof; the password remains the fallback.
  if (state.passkeys.length > 0 && passkeysSupported()) {
    try {
      const { startAuthentication } = await passkeyApi();
      const options = await parse(await exchange('/reauthenticate/passkey/options', { method: 'POST' }));
      const response = await startAuthentication({ optionsJSON: options });
      return await takeAccessToken(await exchange('/reauthenticate/passkey', { method: 'POST', body: { response } }));
    } catch {
      // Cancelled, or this device holds none of them: ask for the password instead.
    }
  }
  const password = window.prompt('For your security, please enter your password again.');
  if (!password) return false;
  let response = await exchange('/reauthenticate', { method: 'POST', body: { password } });
  if (response.status === 401 && (await errorBody(response))?.code === 'invalid_mfa_code') {
    const code = window.prompt('Two-factor is on: enter a code from your authenticator app, or a recovery code.');
    if (!code) return false;
    response = await exchange('/reauthenticate', { method: 'POST', body: { password, code } });
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
    await parse(await exchange('/reauthenticate/email-code/send', { method: 'POST' }));
    const code = window.prompt('To add a second factor we need a second proof: enter the six-digit code we just emailed you.');
    if (!code) return false;
    return takeAccessToken(await exchange('/reauthenticate/email-code', { method: 'POST', body: { code: code.trim() } }));
  }
  if (accepted.includes('password')) {
    const password = window.prompt('To add a second factor we need a second proof: enter your password.');
    if (!password) return false;
    return takeAccessToken(await exchange('/reauthenticate', { method: 'POST', body: { password } }));
  }
  return false;
}
