// The meter beside a new password: how guessable it is, by the same estimator (zxcvbn) the server judges with.

const STRENGTH_LABELS = ['Very weak', 'Weak', 'Fair', 'Strong', 'Very strong'];
/** @type {Promise<import('@zxcvbn-ts/core').ZxcvbnFactory> | undefined} */
let estimator;

/** Loaded from the installed package the first time a password is typed. */
function passwordEstimator() {
  estimator ??= Promise.all([import('@zxcvbn-ts/core'), import('@zxcvbn-ts/language-common'), import('@zxcvbn-ts/language-en')]).then(
    ([{ ZxcvbnFactory }, common, english]) =>
      new ZxcvbnFactory({ translations: english.translations, graphs: common.adjacencyGraphs, dictionary: { ...common.dictionary, ...english.dictionary } }),
  );
  return estimator;
}

/**
 * Shows, in the `.strength` box of the input's form, how guessable the password being typed is. The server has the
 * last word when the form is sent; `personal` names what the estimator should count as guessable (username, email).
 * @param {HTMLInputElement} input
 * @param {() => string[]} [personal]
 */
export function wireStrengthMeter(input, personal = () => []) {
  const form = /** @type {HTMLFormElement} */ (input.form);
  const box = /** @type {HTMLElement} */ (form.querySelector('.strength'));
  const meter = /** @type {HTMLMeterElement} */ (box.querySelector('meter'));
  const hint = /** @type {HTMLElement} */ (box.querySelector('.hint'));
  /** @type {number | undefined} */
  let timer;
  input.addEventListener('input', () => {
    const password = input.value;
    clearTimeout(timer);
    if (password === '') {
      box.hidden = true;
      return;
    }
    timer = setTimeout(async () => {
      let result;
      try {
        result = (await passwordEstimator()).check(password, personal().filter(Boolean));
      } catch {
        return; // No meter is better than a wrong one; the server still checks.
      }
      // Typing went on meanwhile: this verdict is about a password no longer there.
      if (input.value !== password) return;
      box.hidden = false;
      meter.value = result.score;
      const advice = result.feedback.warning || result.feedback.suggestions[0] || '';
      hint.textContent = `${STRENGTH_LABELS[result.score]}.${advice ? ` ${advice}` : ''}`;
    }, 150);
  });
  // A reset form shows no verdict about a password it no longer holds.
  form.addEventListener('reset', () => {
    clearTimeout(timer);
    box.hidden = true;
  });
}
