// Settings › profile, email address and password: the changes PATCH /me makes, each said beside its own form.
import { send } from '../api.js';
import { wireStrengthMeter } from '../password-meter.js';
import { onSignedIn, onUserChanged, setUser, state } from '../state.js';
import { $, $form, field, formValue, resultOf, show, withBusy } from '../ui.js';
import { refreshActivity } from './security-events.js';
import { refreshSessions } from './sessions.js';

/** @typedef {import('../types.js').User} User */

function showAddress(/** @type {User} */ user) {
  const confirmed = user.emailVerified === false ? 'not confirmed yet' : 'confirmed';
  $('#email-current').textContent = `Your address is ${user.email} (${confirmed}).`;
}

/** The username field starts as the current name: on sign-in and after a change, never while someone is typing. */
function fillUsername() {
  field($form('#profile-form'), 'username').value = state.user?.username ?? '';
}

async function onUsername(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const username = formValue(new FormData(form), 'username').trim();
  if (username === state.user?.username) {
    show(resultOf(form), 'That is already your username.');
    return;
  }
  await withBusy(form, async () => {
    /** @type {User} */
    const user = await send('/me', { method: 'PATCH', body: { username } });
    setUser(user);
    fillUsername();
    show(resultOf(form), `Your username is now ${user.username}.`);
  });
  void refreshActivity();
}

async function onEmail(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const data = new FormData(form);
  await withBusy(form, async () => {
    /** @type {User & { pendingEmail?: string }} */
    const answer = await send('/me', {
      method: 'PATCH',
      body: { email: formValue(data, 'email').trim(), currentPassword: formValue(data, 'currentPassword') },
    });
    // The server queues the message, and past the address's cap drops it without saying: the page claims no more.
    const { pendingEmail, ...user } = answer;
    setUser(user);
    form.reset();
    show(
      resultOf(form),
      pendingEmail
        ? `A confirmation link for ${pendingEmail} will arrive within a minute, unless that address has had too many messages lately. Your address stays ${user.email} until the link is opened.`
        : `That is already your address: nothing changed.`,
    );
  });
  void refreshActivity();
}

async function onPassword(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const data = new FormData(form);
  await withBusy(form, async () => {
    await send('/me', { method: 'PATCH', body: { password: formValue(data, 'password'), currentPassword: formValue(data, 'currentPassword') } });
    form.reset();
    show(resultOf(form), 'Your password is changed. Every other session was signed out; this one goes on.');
    await refreshSessions();
  });
  void refreshActivity();
}

export function wireProfile() {
  $form('#profile-form').addEventListener('submit', onUsername);
  $form('#email-change-form').addEventListener('submit', onEmail);
  const password = $form('#password-form');
  password.addEventListener('submit', onPassword);
  wireStrengthMeter(field(password, 'password'), () => [state.user?.username ?? '', state.user?.email ?? '']);
  onSignedIn(fillUsername);
  onUserChanged(showAddress);
}
