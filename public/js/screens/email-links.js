// By email: confirm the address, reset a forgotten password, sign in with an emailed code, and follow our links.
import { describe, send } from '../api.js';
import { onSignedIn, state } from '../state.js';
import { $, $form, currentTarget, field, formValue, say, withBusy, withButton } from '../ui.js';
import { afterFirstStep, showTab } from './sign-in.js';

/** @typedef {'forgot' | 'code' | 'resend'} EmailFormMode */

/** @type {Record<EmailFormMode, { title: string, path: string }>} */
const EMAIL_FORMS = {
  forgot: { title: 'Reset your password', path: '/password/forgot' },
  code: { title: 'Sign in with a code sent to your email', path: '/login/email-code' },
  resend: { title: 'Send the confirmation link again', path: '/email/verify/resend' },
};
/** @type {EmailFormMode} */
let emailFormMode = 'forgot';
/** The address a sign-in code was sent to, for the code form. */
/** @type {string | null} */
let codeEmail = null;

/** Opens the one email form in `mode`, with `email` filled in when given. */
export function showEmailForm(/** @type {EmailFormMode} */ mode, email = '') {
  emailFormMode = mode;
  $('#email-form-title').textContent = EMAIL_FORMS[mode].title;
  const form = $form('#email-form');
  if (email) field(form, 'email').value = email;
  form.hidden = false;
  $('#code-form').hidden = true;
  field(form, 'email').focus();
}

async function onEmailForm(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const email = formValue(new FormData(form), 'email').trim();
  await withBusy(form, async () => {
    // The answer is the same whether or not the address has an account; so is what the page says.
    /** @type {{ message: string }} */
    const result = await send(EMAIL_FORMS[emailFormMode].path, { method: 'POST', body: { email }, auth: false });
    say(result.message);
    if (emailFormMode === 'code') {
      codeEmail = email;
      form.hidden = true;
      const codeForm = $form('#code-form');
      codeForm.hidden = false;
      field(codeForm, 'code').focus();
    }
  });
}

async function onCodeForm(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const code = formValue(new FormData(form), 'code').trim();
  await withBusy(form, async () => {
    const result = await send('/login/email-code/verify', { method: 'POST', body: { email: codeEmail, code }, auth: false });
    form.reset();
    form.hidden = true;
    // Two-factor still applies: the login form's second step finishes it.
    await afterFirstStep(result);
  });
}

async function onResetForm(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  await withBusy(form, async () => {
    const fields = new FormData(form);
    const body = { token: form.dataset.token, password: formValue(fields, 'password'), removeCredentials: fields.get('removeCredentials') === 'on' };
    await send('/password/reset', { method: 'POST', body, auth: false });
    form.reset();
    form.hidden = true;
    showTab('login');
    say('Your password is changed, and every session was signed out. Log in with the new password.');
  });
}

function showVerificationBanner() {
  const unconfirmed = state.user && state.user.emailVerified === false;
  $('#verify-banner').hidden = !unconfirmed;
  if (unconfirmed && state.user) $('#verify-address').textContent = state.user.email;
}

async function onResendVerification(/** @type {Event} */ event) {
  await withButton(/** @type {HTMLButtonElement} */ (currentTarget(event)), async () => {
    /** @type {{ message: string }} */
    const result = await send('/email/verify/resend', { method: 'POST', body: { email: state.user?.email }, auth: false });
    say(result.message);
  });
}

/** Links in our emails carry their token in the fragment (#verify-email=… or #reset-password=…): act on it once. */
export async function followEmailLink() {
  const match = /^#(verify-email|reset-password)=([A-Za-z0-9_-]+)$/.exec(window.location.hash);
  if (!match) return;
  window.history.replaceState(null, '', window.location.pathname + window.location.search);
  const [, action, token] = match;
  if (action === 'reset-password') {
    const form = $form('#reset-form');
    form.dataset.token = token;
    form.hidden = false;
    field(form, 'password').focus();
    say('Choose a new password for your account.');
    return;
  }
  try {
    /** @type {import('../types.js').User} */
    const user = await send('/email/verify', { method: 'POST', body: { token }, auth: false });
    if (state.user?.id === user.id) {
      state.user = user;
      showVerificationBanner();
      $('#whoami').textContent = `Signed in as ${user.username}`;
    }
    say(`Thank you: ${user.email} is confirmed.`);
  } catch (error) {
    say(describe(error), 'error');
  }
}

export function wireEmailLinks() {
  $form('#email-form').addEventListener('submit', onEmailForm);
  $form('#code-form').addEventListener('submit', onCodeForm);
  $form('#reset-form').addEventListener('submit', onResetForm);
  $('#resend-verification').addEventListener('click', (event) => void onResendVerification(event));
  onSignedIn(showVerificationBanner);
}
