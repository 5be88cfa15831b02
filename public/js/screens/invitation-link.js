// The link of an emailed invitation (#invitation=<token>): accepted as soon as someone is signed in, with the account
// whose address it was sent to. Signed out, the token waits in this tab (kept in sessionStorage, so a second step,
// a registration or a provider's round trip may come first) and is accepted right after.
import { ApiError, send } from '../api.js';
import { onSignedIn, onSignedOut, setUser, state } from '../state.js';
import { $, resultOf, say, show, withButton } from '../ui.js';
import { explainOrgError, reloadOrganizations } from './organizations.js';
import { logOut } from './shell.js';

/** @typedef {import('../types.js').MyOrganization} MyOrganization */
/** @typedef {import('../types.js').User} User */

const PENDING_KEY = 'authkit.invitation';
const LINK = /^#invitation=([A-Za-z0-9_-]{1,200})$/;
/** Refusals no later attempt changes: the invitation is forgotten once said. */
const FINAL = new Set(['invitation_invalid', 'invitation_used', 'invitation_expired', 'invitation_revoked']);
/** The acceptance under way: a link pasted while one is being accepted waits for it instead of racing it. */
/** @type {Promise<void> | null} */
let accepting = null;

/** Reads #invitation= from the address (and takes it out, so a reload never repeats it), or the one this tab still holds. */
export function takeInvitation() {
  const match = LINK.exec(window.location.hash);
  if (match) {
    sessionStorage.setItem(PENDING_KEY, match[1]);
    window.history.replaceState(null, '', window.location.pathname + window.location.search);
  }
  return sessionStorage.getItem(PENDING_KEY);
}

function hideBanner() {
  $('#invitation-banner').hidden = true;
  $('#invitation-message').textContent = '';
}

/** Says, above the signed-in page, why the invitation is still waiting, and offers what would help. */
function showBanner(/** @type {string} */ message, /** @type {'other-address' | 'retry'} */ offer) {
  $('#invitation-message').textContent = message;
  $('#invitation-logout').hidden = offer !== 'other-address';
  $('#invitation-retry').hidden = offer !== 'retry';
  show(resultOf($('#invitation-message')), '');
  $('#invitation-banner').hidden = false;
}

/** Accepts the invitation this tab holds, for the account signed in, and says what came of it. */
function accept() {
  accepting ??= acceptPending().finally(() => {
    accepting = null;
  });
  return accepting;
}

async function acceptPending() {
  const token = sessionStorage.getItem(PENDING_KEY);
  const user = state.user;
  if (!token || !user) return;
  const epoch = state.epoch;
  $('#invitation-waiting').hidden = true;
  try {
    /** @type {MyOrganization} */
    const org = await send('/invitations/accept', { method: 'POST', body: { token } });
    if (sessionStorage.getItem(PENDING_KEY) === token) sessionStorage.removeItem(PENDING_KEY);
    if (epoch !== state.epoch) return;
    hideBanner();
    say(`You joined ${org.name} as ${org.role}.`);
    // Accepting proved the address the invitation went to: the page stops asking to confirm it.
    if (user.emailVerified === false) {
      try {
        /** @type {User} */
        const fresh = await send('/me');
        if (epoch === state.epoch) setUser(fresh);
      } catch {
        // Only the banner stays until the next sign-in: nothing worse than before.
      }
    }
    await reloadOrganizations();
  } catch (error) {
    if (epoch !== state.epoch) return;
    const reason = error instanceof ApiError ? error.reason : undefined;
    if (reason === 'invitation_other_address') {
      showBanner(
        `This invitation was sent to another email address than yours (${user.email}). To accept it, log out, then log in or create an account with the address it was sent to: this tab keeps the invitation until then.`,
        'other-address',
      );
      return;
    }
    if (reason !== undefined && FINAL.has(reason)) {
      sessionStorage.removeItem(PENDING_KEY);
      hideBanner();
      say(explainOrgError(error), 'error');
      return;
    }
    // Busy, unreachable, or a limit that may lift: it stays, to try again.
    showBanner(`The invitation could not be accepted just now. ${explainOrgError(error)}`, 'retry');
  }
}

/** A link pasted into this open tab: accepted now when someone is signed in, else after they sign in. */
function onHashChange() {
  if (!LINK.test(window.location.hash)) return;
  takeInvitation();
  if (state.user) void accept();
  else $('#invitation-waiting').hidden = false;
}

export function wireInvitations() {
  $('#invitation-waiting').hidden = sessionStorage.getItem(PENDING_KEY) === null;
  window.addEventListener('hashchange', onHashChange);
  const logout = /** @type {HTMLButtonElement} */ ($('#invitation-logout'));
  logout.addEventListener('click', () => void withButton(logout, logOut));
  const retry = /** @type {HTMLButtonElement} */ ($('#invitation-retry'));
  retry.addEventListener('click', () => void withButton(retry, accept));
  $('#invitation-forget').addEventListener('click', () => {
    sessionStorage.removeItem(PENDING_KEY);
    hideBanner();
    say('This page forgot the invitation. The link in the email still works until it expires.');
  });
  onSignedIn(async () => {
    $('#invitation-waiting').hidden = true;
    await accept();
  });
  onSignedOut(() => {
    hideBanner();
    $('#invitation-waiting').hidden = sessionStorage.getItem(PENDING_KEY) === null;
  });
}
