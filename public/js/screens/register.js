// The create-account form, with a meter that shows how guessable the password being typed is.
import { send, signIn } from '../api.js';
import { wireStrengthMeter } from '../password-meter.js';
import { $form, field, formValue, withBusy } from '../ui.js';
import { afterFirstStep, enter } from './sign-in.js';

async function onRegister(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const data = new FormData(form);
  await withBusy(form, async () => {
    await send('/register', { method: 'POST', body: Object.fromEntries(data), auth: false });
    const result = await signIn.password(formValue(data, 'username'), formValue(data, 'password'));
    form.reset();
    if (result.status === 'signed_in') await enter(`Account created. Welcome, ${result.session.user.username}.`);
    else await afterFirstStep(result);
  });
}

export function wireRegister() {
  const form = $form('#register-form');
  form.addEventListener('submit', onRegister);
  wireStrengthMeter(field(form, 'password'), () => [field(form, 'username').value, field(form, 'email').value]);
}
