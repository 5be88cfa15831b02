// The steps every way of signing in shares: which view of the signed-out card shows, the second-factor step, the welcome.
import { announceSignedIn, onSignedIn, onSignedOut, state } from '../state.js';
import { $, $form, field, say } from '../ui.js';
import { passkeysSupported } from '../webauthn.js';

/** @typedef {import('@authkit/client').Session} Session */
/** @typedef {import('@authkit/client').SignInResult} SignInResult */
/** @typedef {Extract<SignInResult, { status: 'mfa_required' }>} SecondFactorNeeded */
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
  state.mfaToken = result.mfaToken;
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

/** After any way of signing in (the client keeps the session): clear the form, and show the signed-in page. */
export async function welcome(/** @type {Session} */ session) {
  $form('#login-form').reset();
  await enter(`Welcome, ${session.user.username}.`);
}

/**
 * Greets, and shows the signed-in page (the session is the client's, kept as it signed in). The focus goes to the
 * greeting: the form it was in is gone, and the next Tab leads on into the signed-in page.
 */
export async function enter(/** @type {string} */ greeting) {
  say(greeting);
  await announceSignedIn();
  $('#status').focus({ preventScroll: true });
}

/** Finishes a first step: asks for the second factor when the account has one, or lets the person in. */
export async function afterFirstStep(/** @type {SignInResult} */ result) {
  if (result.status === 'mfa_required') askSecondFactor(result);
  else await welcome(result.session);
}

/** Wires the tabs and the way back from the second step; whoever signs in or out next starts from the login tab. */
export function wireSignIn() {
  $('#tab-login').addEventListener('click', () => showView('login'));
  $('#tab-register').addEventListener('click', () => showView('register'));
  // As in any tab list, the arrow keys (and Home, End) move to the other tab and open it; Tab reaches each as well.
  $('#auth-tabs').addEventListener('keydown', (event) => {
    /** @type {SignedOutView[]} */
    const tabs = ['login', 'register'];
    const at = tabs.findIndex((view) => $(`#tab-${view}`) === document.activeElement);
    const moves = /** @type {Record<string, number>} */ ({ ArrowLeft: at - 1, ArrowRight: at + 1, Home: 0, End: tabs.length - 1 });
    if (at === -1 || !(event.key in moves)) return;
    event.preventDefault();
    const next = tabs[(moves[event.key] + tabs.length) % tabs.length] ?? 'login';
    showView(next);
    $(`#tab-${next}`).focus();
  });
  $('#second-step-back').addEventListener('click', backToSignIn);
  const fresh = () => {
    state.mfaToken = null;
    showView('login');
  };
  onSignedIn(fresh);
  onSignedOut(fresh);
}
