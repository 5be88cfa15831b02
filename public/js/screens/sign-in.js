// The steps every way of signing in shares: which view of the signed-out card shows, the second-factor step, the welcome.
import { useTokens } from '../api.js';
import { announceSignedIn, onSignedIn, onSignedOut, state } from '../state.js';
import { $, $form, field, say } from '../ui.js';
import { passkeysSupported } from '../webauthn.js';

/** @typedef {import('../types.js').Tokens} Tokens */
/** @typedef {import('../types.js').SecondFactorNeeded} SecondFactorNeeded */
/** @typedef {'login' | 'register' | 'second-step' | 'reset'} SignedOutView */

/** Shows one view of the signed-out card: the two tabs, or the second step, or the new-password form. */
export function showView(/** @type {SignedOutView} */ view) {
  const tabs = view === 'login' || view === 'register';
  $('#auth-tabs').hidden = !tabs;
  $('#tab-login').setAttribute('aria-selected', String(view === 'login'));
  $('#tab-register').setAttribute('aria-selected', String(view === 'register'));
  $('#login-panel').hidden = view !== 'login';
  $('#register-form').hidden = view !== 'register';
  $('#second-step-form').hidden = view !== 'second-step';
  $('#reset-form').hidden = view !== 'reset';
}

/** The first step passed (password or emailed code) and two-factor is on: ask for the second. */
export function askSecondFactor(/** @type {SecondFactorNeeded} */ result) {
  state.mfaToken = result.mfa_token;
  const form = $form('#second-step-form');
  form.reset();
  $('#mfa-passkey').hidden = !(result.methods ?? []).includes('passkey') || !passkeysSupported();
  showView('second-step');
  field(form, 'code').focus();
}

/** Leaves the second step without finishing it: its token is dropped, and the sign-in form is back. */
function backToSignIn() {
  state.mfaToken = null;
  $form('#second-step-form').reset();
  showView('login');
  field($form('#login-form'), 'username').focus();
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

/** Wires the tabs and the way back from the second step; whoever signs in or out next starts from the login tab. */
export function wireSignIn() {
  $('#tab-login').addEventListener('click', () => showView('login'));
  $('#tab-register').addEventListener('click', () => showView('register'));
  $('#second-step-back').addEventListener('click', backToSignIn);
  const fresh = () => {
    state.mfaToken = null;
    showView('login');
  };
  onSignedIn(fresh);
  onSignedOut(fresh);
}
