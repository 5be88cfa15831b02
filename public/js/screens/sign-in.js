// The steps every way of signing in shares: the login/register tabs, the second-factor step, and the welcome.
import { useTokens } from '../api.js';
import { announceSignedIn, onSignedIn, onSignedOut, state } from '../state.js';
import { $, $form, field, say } from '../ui.js';
import { passkeysSupported } from '../webauthn.js';

/** @typedef {import('../types.js').Tokens} Tokens */
/** @typedef {import('../types.js').SecondFactorNeeded} SecondFactorNeeded */

export function showTab(/** @type {'login' | 'register'} */ which) {
  const login = which === 'login';
  $('#tab-login').setAttribute('aria-selected', String(login));
  $('#tab-register').setAttribute('aria-selected', String(!login));
  $('#login-form').hidden = !login;
  $('#register-form').hidden = login;
}

/** In the second step the login form shows the code field only. */
export function setSecondStep(/** @type {boolean} */ on) {
  const form = $form('#login-form');
  for (const name of ['username', 'password']) {
    const input = field(form, name);
    input.required = !on;
    const label = input.closest('label');
    if (label) label.hidden = on;
  }
  $('#mfa-step').hidden = !on;
  if (!on) $('#mfa-passkey').hidden = true;
}

/** The first step passed (password or emailed code) and two-factor is on: the login form asks for the second. */
export function askSecondFactor(/** @type {SecondFactorNeeded} */ result) {
  state.mfaToken = result.mfa_token;
  setSecondStep(true);
  $('#mfa-passkey').hidden = !(result.methods ?? []).includes('passkey') || !passkeysSupported();
  field($form('#login-form'), 'code').focus();
  say('Enter the code from your authenticator app.');
}

/** After any way of signing in: keep the tokens, clear the form, and show the signed-in page. */
export async function welcome(/** @type {Tokens} */ tokens) {
  $form('#login-form').reset();
  await enter(tokens, `Welcome, ${tokens.user.username}.`);
}

/** Keeps the tokens, greets, and shows the signed-in page. */
export async function enter(/** @type {Tokens} */ tokens, /** @type {string} */ greeting) {
  useTokens(tokens);
  say(greeting);
  await announceSignedIn();
}

/** Finishes a first step: asks for the second factor when the account has one, or lets the person in. */
export async function afterFirstStep(/** @type {Tokens | SecondFactorNeeded} */ result) {
  if ('mfa_required' in result && result.mfa_required) askSecondFactor(result);
  else await welcome(/** @type {Tokens} */ (result));
}

/** Wires the tabs, and resets the second step whenever someone signs in or out. */
export function wireSignIn() {
  $('#tab-login').addEventListener('click', () => showTab('login'));
  $('#tab-register').addEventListener('click', () => showTab('register'));
  onSignedIn(() => {
    setSecondStep(false);
    state.mfaToken = null;
  });
  onSignedOut(() => showTab('login'));
}
