// The frame around every screen: which half of the page shows, who is signed in, and the logout button.
import { ApiError, describe, endSession, send } from '../api.js';
import { onSignedIn, onSignedOut, onUserChanged, state } from '../state.js';
import { $, resetPage, say, withButton } from '../ui.js';

function showSignedIn() {
  $('#signed-out').hidden = true;
  $('#signed-in').hidden = false;
  $('#logout').hidden = false;
  $('#whoami').hidden = false;
  $('#whoami').textContent = `Signed in as ${state.user?.username ?? ''}`;
}

/**
 * Nothing of the last person stays: every form, result and panel is reset, and Settings is closed. A focus inside
 * what is hidden (or lost already) goes to the status line, which says what happened.
 */
function showSignedOut() {
  const focused = document.activeElement;
  const focusLost = focused === null || focused === document.body || $('#signed-in').contains(focused) || $('.bar').contains(focused);
  resetPage();
  /** @type {HTMLDetailsElement} */ ($('#settings')).open = false;
  $('#signed-in').hidden = true;
  $('#signed-out').hidden = false;
  $('#logout').hidden = true;
  $('#whoami').hidden = true;
  $('#whoami').textContent = '';
  if (focusLost) $('#status').focus({ preventScroll: true });
}

/**
 * Says "logged out" only when the server answered that it ended the session. A 401 whose refresh the server refused
 * too (the page has already forgotten the tokens) means the server holds no session for them any more: said exactly
 * so. Any other failure, a 401 that a failed connection left unresolved included, keeps the person signed in.
 */
export async function logOut() {
  try {
    await send('/logout', { method: 'POST' });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && state.accessToken === null) {
      say('Your session had already ended on the server. You are signed out on this page too.');
      return;
    }
    say(`The session could not be ended on the server, so you are still signed in: ${describe(error)}`, 'error');
    return;
  }
  await endSession();
  say('You are logged out.');
}

function onLogout(/** @type {HTMLButtonElement} */ button) {
  return withButton(button, logOut);
}

export function wireShell() {
  const logout = /** @type {HTMLButtonElement} */ ($('#logout'));
  logout.addEventListener('click', () => void onLogout(logout));
  onSignedIn(showSignedIn);
  onSignedOut(showSignedOut);
  onUserChanged((user) => {
    if (!$('#whoami').hidden) $('#whoami').textContent = `Signed in as ${user.username}`;
  });
}
