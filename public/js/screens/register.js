// The create-account form, with a meter that shows how guessable the password being typed is.
import { send } from '../api.js';
import { wireStrengthMeter } from '../password-meter.js';
import { $form, field, formValue, withBusy } from '../ui.js';
import { enter } from './sign-in.js';

async function onRegister(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const data = new FormData(form);
  await withBusy(form, async () => {
    await send('/register', { method: 'POST', body: Object.fromEntries(data), auth: false });
    const tokens = await send('/login', {
      method: 'POST',
      body: { username: formValue(data, 'username'), password: formValue(data, 'password') },
      auth: false,
    });
    form.reset();
    await enter(tokens, `Account created. Welcome, ${tokens.user.username}.`);
  });
}

export function wireRegister() {
  const form = $form('#register-form');
  form.addEventListener('submit', onRegister);
  wireStrengthMeter(field(form, 'password'), () => [field(form, 'username').value, field(form, 'email').value]);
}
