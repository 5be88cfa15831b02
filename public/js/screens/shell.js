// The frame around every screen: which half of the page shows, who is signed in, and the logout button.
import { ApiError, describe, endSession, send } from '../api.js';
import { onSignedIn, onSignedOut, state } from '../state.js';
import { $, say } from '../ui.js';

function showSignedIn() {
  $('#signed-out').hidden = true;
  $('#signed-in').hidden = false;
  $('#logout').hidden = false;
  $('#whoami').hidden = false;
  $('#whoami').textContent = `Signed in as ${state.user?.username ?? ''}`;
}

function showSignedOut() {
  $('#signed-in').hidden = true;
  $('#signed-out').hidden = false;
  $('#logout').hidden = true;
  $('#whoami').hidden = true;
}

/** Says "logged out" only once the server has ended the session. */
async function onLogout() {
  try {
    await send('/logout', { method: 'POST' });
  } catch (error) {
    // An ended session answers 401: it is over either way. Anything else means the server did not end it.
    if (!(error instanceof ApiError && error.status === 401)) {
      say(`The session could not be ended on the server, so you are still signed in: ${describe(error)}`, 'error');
      return;
    }
  }
  endSession();
  say('You are logged out.');
}

export function wireShell() {
  $('#logout').addEventListener('click', () => void onLogout());
  onSignedIn(showSignedIn);
  onSignedOut(showSignedOut);
}
