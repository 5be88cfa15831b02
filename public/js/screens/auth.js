// The signed-out screen's forms: password login, its second step (a code or a passkey), and passkey login.
import { ApiError, signIn } from '../api.js';
import { state } from '../state.js';
import { $, $form, currentTarget, field, formValue, withBusy, withButton } from '../ui.js';
import { describePasskeyError } from '../webauthn.js';
import { showEmailForm } from './email-forms.js';
import { afterFirstStep, welcome } from './sign-in.js';

async function onLogin(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const data = new FormData(form);
  await withBusy(form, async () => {
    try {
      await afterFirstStep(await signIn.password(formValue(data, 'username'), formValue(data, 'password')));
    } catch (error) {
      // The address is not confirmed yet: offer to send the link again, to the address typed if it is one.
      if (error instanceof ApiError && error.code === 'email_not_verified') {
        const typed = formValue(data, 'username');
        showEmailForm('resend', typed.includes('@') ? typed : '');
      }
      throw error;
    }
  });
}

async function onSecondStep(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const code = formValue(new FormData(form), 'code').trim();
  await withBusy(form, async () => {
    await welcome(await signIn.secondFactor(state.mfaToken ?? '', code));
  });
}

/** Runs a passkey ceremony behind a button: disabled meanwhile, and any refusal said in words beside it. */
function withPasskeyButton(/** @type {Event} */ event, /** @type {() => Promise<void>} */ work) {
  return withButton(/** @type {HTMLButtonElement} */ (currentTarget(event)), work, describePasskeyError);
}

async function onPasskeyLogin(/** @type {Event} */ event) {
  await withPasskeyButton(event, async () => {
    // The client asks for the options, has the browser answer them, and signs in with the answer.
    await afterFirstStep(await signIn.passkey());
  });
}

async function onMfaPasskey(/** @type {Event} */ event) {
  await withPasskeyButton(event, async () => {
    await welcome(await signIn.secondFactorPasskey(state.mfaToken ?? ''));
  });
}

export function wireLogin() {
  const login = $form('#login-form');
  login.addEventListener('submit', onLogin);
  $form('#second-step-form').addEventListener('submit', onSecondStep);
  $('#passkey-login').addEventListener('click', (event) => void onPasskeyLogin(event));
  $('#mfa-passkey').addEventListener('click', (event) => void onMfaPasskey(event));
  $('#show-forgot').addEventListener('click', () => {
    const typed = field(login, 'username').value;
    showEmailForm('forgot', typed.includes('@') ? typed : '');
  });
  $('#show-code').addEventListener('click', () => showEmailForm('code'));
}
