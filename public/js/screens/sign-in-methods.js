// Settings › Ways you sign in: one list of everything that lets the person into the account (password, a code by
// email, passkeys, two-factor, linked providers), kept current as each of them changes elsewhere in Settings.
import { onSignedOut, onUserChanged } from '../state.js';
import { $ } from '../ui.js';
import { passkeysSupported } from '../webauthn.js';

/** @typedef {import('../types.js').Passkey} Passkey */

/**
 * What the list shows; null until read (a row that is not known yet is left out rather than guessed).
 * @typedef {object} SignInMethods
 * @property {boolean | null} hasPassword
 * @property {string | null} email
 * @property {Passkey[] | null} passkeys
 * @property {boolean | null} twoFactor
 * @property {HTMLLIElement[]} providers the linked providers' rows, each with its own Unlink button (providers.js)
 */

/** @returns {SignInMethods} */
function unknown() {
  return { hasPassword: null, email: null, passkeys: null, twoFactor: null, providers: [] };
}

let methods = unknown();

/** One row: what the method is, in bold, and what it is for this account. */
function row(/** @type {string} */ kind, /** @type {string} */ name, /** @type {string} */ detail) {
  const item = document.createElement('li');
  item.dataset.method = kind;
  const title = document.createElement('strong');
  title.textContent = name;
  const about = document.createElement('span');
  about.className = 'muted';
  about.textContent = detail;
  item.append(title, about);
  return item;
}

function render() {
  /** @type {HTMLLIElement[]} */
  const items = [];
  if (methods.hasPassword !== null) {
    items.push(
      row(
        'password',
        'Password',
        methods.hasPassword
          ? 'Set. Change it under Password above.'
          : 'None yet: you came in through another provider. To set one, log out and choose "Forgot your password?".',
      ),
    );
  }
  if (methods.email !== null) items.push(row('email-code', 'A code by email', `A six-digit code sent to ${methods.email} signs you in.`));
  if (methods.passkeys !== null && passkeysSupported()) {
    const names = methods.passkeys.map((passkey) => passkey.name).join(', ');
    items.push(row('passkeys', 'Passkeys', methods.passkeys.length === 0 ? 'None yet.' : `${methods.passkeys.length}: ${names}.`));
  }
  if (methods.twoFactor !== null) {
    items.push(
      row(
        'two-factor',
        'Two-factor authentication',
        methods.twoFactor ? 'On: after the first step, a code from your authenticator app or a recovery code.' : 'Off: the first step alone signs you in.',
      ),
    );
  }
  $('#sign-in-methods').replaceChildren(...items, ...methods.providers);
}

/** Takes what changed (read with the rest of Settings, or changed by the person) and shows the whole list again. */
export function noteSignInMethods(/** @type {Partial<SignInMethods>} */ changed) {
  methods = { ...methods, ...changed };
  render();
}

export function wireSignInMethods() {
  // GET /me says whether there is a password; what a sign-in or a change answers leaves it as it was.
  onUserChanged((user) => noteSignInMethods({ email: user.email, ...(user.hasPassword !== undefined && { hasPassword: user.hasPassword }) }));
  onSignedOut(() => {
    methods = unknown();
    render();
  });
}
