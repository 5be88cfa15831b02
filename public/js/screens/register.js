// The create-account form, with a meter that shows how guessable the password being typed is.
import { send } from '../api.js';
import { $, $form, $input, field, formValue, withBusy } from '../ui.js';
import { enter } from './sign-in.js';

const STRENGTH_LABELS = ['Very weak', 'Weak', 'Fair', 'Strong', 'Very strong'];
/** @type {Promise<import('@zxcvbn-ts/core').ZxcvbnFactory> | undefined} */
let estimator;

/** The same estimator the server uses (zxcvbn), loaded from the installed package the first time it is needed. */
function passwordEstimator() {
  estimator ??= Promise.all([import('@zxcvbn-ts/core'), import('@zxcvbn-ts/language-common'), import('@zxcvbn-ts/language-en')]).then(
    ([{ ZxcvbnFactory }, common, english]) =>
      new ZxcvbnFactory({ translations: english.translations, graphs: common.adjacencyGraphs, dictionary: { ...common.dictionary, ...english.dictionary } }),
  );
  return estimator;
}

/** @type {number | undefined} */
let strengthTimer;
/** Shows how guessable the password being typed is; the server has the last word when the form is sent. */
function onPasswordInput(/** @type {Event} */ event) {
  const input = /** @type {HTMLInputElement} */ (event.currentTarget);
  const form = /** @type {HTMLFormElement} */ (input.form);
  const password = input.value;
  const box = /** @type {HTMLElement} */ (form.querySelector('.strength'));
  clearTimeout(strengthTimer);
  if (password === '') {
    box.hidden = true;
    return;
  }
  strengthTimer = setTimeout(async () => {
    let result;
    try {
      result = (await passwordEstimator()).check(password, [field(form, 'username').value, field(form, 'email').value].filter(Boolean));
    } catch {
      return; // No meter is better than a wrong one; the server still checks.
    }
    if (field(form, 'password').value !== password) return;
    box.hidden = false;
    /** @type {HTMLMeterElement} */ ($('#password-strength')).value = result.score;
    const advice = result.feedback.warning || result.feedback.suggestions[0] || '';
    $('#password-hint').textContent = `${STRENGTH_LABELS[result.score]}.${advice ? ` ${advice}` : ''}`;
  }, 150);
}

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
    /** @type {HTMLElement} */ (form.querySelector('.strength')).hidden = true;
    await enter(tokens, `Account created. Welcome, ${tokens.user.username}.`);
  });
}

export function wireRegister() {
  const form = $form('#register-form');
  form.addEventListener('submit', onRegister);
  $input('#register-form input[name=password]').addEventListener('input', onPasswordInput);
}
