// The forms that work by email: a reset link, a sign-in code, the confirmation link again, and the new password.
import { send, signIn } from '../api.js';
import { wireStrengthMeter } from '../password-meter.js';
import { onSignedIn, onSignedOut, onUserChanged, state } from '../state.js';
import { $, $form, currentTarget, field, formValue, resultOf, show, withBusy, withButton } from '../ui.js';
import { afterFirstStep, showView } from './sign-in.js';

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

/** Closes the email panels (after a send, or on Cancel), emptied: nothing typed stays behind a hidden form. */
function closePanels() {
  for (const selector of ['#email-form', '#code-form']) {
    const form = $form(selector);
    form.reset();
    form.hidden = true;
  }
}

/** Opens the one email form in `mode`, with `email` filled in when given. */
export function showEmailForm(/** @type {EmailFormMode} */ mode, email = '') {
  closePanels();
  show($('#links-result'), '');
  emailFormMode = mode;
  $('#email-form-title').textContent = EMAIL_FORMS[mode].title;
  const form = $form('#email-form');
  if (email) field(form, 'email').value = email;
  form.hidden = false;
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
    closePanels();
    show($('#links-result'), result.message);
    if (emailFormMode === 'code') {
      codeEmail = email;
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
    const result = await signIn.emailCode(codeEmail ?? '', code);
    closePanels();
    show($('#links-result'), '');
    // Two-factor still applies: the second step finishes it.
    await afterFirstStep(result);
  });
}

/** Shows the new-password form for the token of a reset link. */
export function showResetForm(/** @type {string} */ token) {
  const form = $form('#reset-form');
  form.reset();
  form.dataset.token = token;
  showView('reset');
  field(form, 'password').focus();
}

function leaveResetForm() {
  const form = $form('#reset-form');
  form.reset();
  delete form.dataset.token;
  showView('login');
}

async function onResetForm(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  await withBusy(form, async () => {
    const fields = new FormData(form);
    const body = { token: form.dataset.token, password: formValue(fields, 'password'), removeCredentials: fields.get('removeCredentials') === 'on' };
    await send('/password/reset', { method: 'POST', body, auth: false });
    leaveResetForm();
    show(resultOf($form('#login-form')), 'Your password is changed, and every session was signed out. Log in with the new password.');
  });
}

function showVerificationBanner() {
  const unconfirmed = state.user !== null && state.user.emailVerified === false;
  $('#verify-banner').hidden = !unconfirmed;
  if (unconfirmed && state.user) $('#verify-address').textContent = state.user.email;
}

async function onResendVerification(/** @type {Event} */ event) {
  const button = /** @type {HTMLButtonElement} */ (currentTarget(event));
  await withButton(button, async () => {
    /** @type {{ message: string }} */
    const result = await send('/email/verify/resend', { method: 'POST', body: { email: state.user?.email }, auth: false });
    show(resultOf(button), result.message);
  });
}

export function wireEmailForms() {
  $form('#email-form').addEventListener('submit', onEmailForm);
  $form('#code-form').addEventListener('submit', onCodeForm);
  const reset = $form('#reset-form');
  reset.addEventListener('submit', onResetForm);
  wireStrengthMeter(field(reset, 'password'));
  for (const selector of ['#email-form', '#code-form']) $(`${selector} .cancel`).addEventListener('click', closePanels);
  $('#reset-form .cancel').addEventListener('click', leaveResetForm);
  $('#resend-verification').addEventListener('click', (event) => void onResendVerification(event));
  onSignedIn(() => {
    closePanels();
    showVerificationBanner();
  });
  onSignedOut(closePanels);
  onUserChanged(showVerificationBanner);
}
