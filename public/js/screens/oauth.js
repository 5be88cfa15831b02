// Signing in to another app through this one (we are its OpenID provider): the app's request arrives as
// #oauth-interaction=<uid>; the person signs in here as usual, then allows or declines, and goes back to the app.
import { ApiError, describe, send } from '../api.js';
import { onSignedIn, onSignedOut } from '../state.js';
import { $, say, withButton } from '../ui.js';

/** @typedef {{ uid: string, prompt: 'login' | 'consent', reasons: string[], client: { clientId: string, name: string }, scopes: string[], resources: string[], consentRequired: boolean, loginHint: string | null }} OAuthRequest */

/** Kept for this tab until answered: a sign-in with a second step or a passkey happens in between. */
const PENDING_KEY = 'authkit.oauth-interaction';

/** What each standard scope lets an app do, in words; an API's own scopes are named as they are. */
const SCOPE_WORDS = /** @type {Record<string, string>} */ ({
  openid: 'Know which account you are',
  profile: 'See your username',
  email: 'See your email address and whether it is confirmed',
  offline_access: 'Stay connected to your account while you are away',
});

/** Reads #oauth-interaction from the address (and takes it out), or the request this tab is still answering. */
export function takeOAuthRequest() {
  const uid = new URLSearchParams(window.location.hash.slice(1)).get('oauth-interaction');
  if (uid !== null && /^[\w-]{10,64}$/.test(uid)) {
    sessionStorage.setItem(PENDING_KEY, uid);
    window.history.replaceState(null, '', window.location.pathname + window.location.search);
  }
  return sessionStorage.getItem(PENDING_KEY);
}

/** @returns {Promise<OAuthRequest | null>} */
async function details(/** @type {string} */ uid) {
  try {
    return await send(`/oauth2/interaction/${encodeURIComponent(uid)}/details`, { auth: false });
  } catch {
    sessionStorage.removeItem(PENDING_KEY);
    say('That sign-in request from an app has expired or was finished already. Go back to the app and start again.', 'error');
    return null;
  }
}

async function answer(/** @type {string} */ uid, /** @type {'allow' | 'deny' | 'continue'} */ decision) {
  /** @type {{ redirectTo: string }} */
  const next = await send(`/oauth2/interaction/${encodeURIComponent(uid)}`, { method: 'POST', body: { decision } });
  sessionStorage.removeItem(PENDING_KEY);
  window.location.assign(next.redirectTo);
}

function showRequest(/** @type {OAuthRequest} */ request) {
  $('#oauth-app').textContent = request.client.name;
  const items = request.scopes.map((scope) => {
    const item = document.createElement('li');
    item.textContent = SCOPE_WORDS[scope] ?? `Use "${scope}"${request.resources.length > 0 ? ` at ${request.resources.join(', ')}` : ''}`;
    return item;
  });
  $('#oauth-scopes').replaceChildren(...items);
  $('#oauth-request').hidden = false;
}

/**
 * Wires the request card. Signed out, the sign-in card says which app is waiting; once signed in, a first-party app
 * continues at once and any other asks the person first.
 */
export async function wireOAuth(/** @type {string | null} */ uid) {
  if (uid === null) return;
  const request = await details(uid);
  if (request === null) return;
  $('#oauth-waiting').textContent = `Sign in to continue to ${request.client.name}.`;
  $('#oauth-waiting').hidden = false;
  if (request.loginHint) {
    const username = /** @type {HTMLInputElement | null} */ (document.querySelector('#login-form input[name=username]'));
    if (username && username.value === '') username.value = request.loginHint;
  }
  const allow = /** @type {HTMLButtonElement} */ ($('#oauth-allow'));
  const deny = /** @type {HTMLButtonElement} */ ($('#oauth-deny'));
  const decide = (/** @type {HTMLButtonElement} */ button, /** @type {'allow' | 'deny'} */ decision) =>
    withButton(
      button,
      () => answer(uid, decision),
      (error) => `The app could not be answered: ${describe(error)}`,
    );
  allow.addEventListener('click', () => void decide(allow, 'allow'));
  deny.addEventListener('click', () => void decide(deny, 'deny'));
  onSignedOut(() => {
    $('#oauth-request').hidden = true;
  });
  onSignedIn(async () => {
    $('#oauth-waiting').hidden = true;
    // Straight on when there is nothing to ask (a first-party app, or all of it allowed before); else the card asks.
    try {
      await answer(uid, 'continue');
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) showRequest(request);
      else say(`The app could not be answered: ${describe(error)}`, 'error');
    }
  });
}
