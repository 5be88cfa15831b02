// Links from our emails (#verify-email=… or #reset-password=…): followed when the page opens and when one is pasted
// into a tab already open, each token acted on once.
import { ApiError, describe, send } from '../api.js';
import { setUser, state } from '../state.js';
import { say } from '../ui.js';
import { refreshActivity } from './security-events.js';
import { showResetForm } from './email-forms.js';

/** @typedef {import('../types.js').User} User */

const LINK = /^#(verify-email|reset-password)=([A-Za-z0-9_-]{1,128})$/;
/** What following each token said, so the same link pasted again says it again instead of spending nothing twice. */
/** @type {Map<string, { message: string, kind: 'ok' | 'error' }>} */
const outcomes = new Map();
/** The link being followed: a second event for the same hash waits for it rather than racing it. */
/** @type {Promise<void>} */
let following = Promise.resolve();

/** Acts on the link in the address bar, if any; the fragment is removed first so a reload never repeats it. */
export function followEmailLink() {
  const match = LINK.exec(window.location.hash);
  if (!match) return following;
  window.history.replaceState(null, '', window.location.pathname + window.location.search);
  const [, action, token] = match;
  // One link at a time, in the order they came; a failure of one (already said) does not stop the next.
  following = following.catch(() => undefined).then(() => (action === 'reset-password' ? openResetLink(token) : confirmAddress(token)));
  return following;
}

async function openResetLink(/** @type {string} */ token) {
  if (state.user) {
    // The link stays valid: nothing is spent by not using it here.
    say(
      `This is a link to reset a password. You are signed in as ${state.user.username}: change your password in Settings, or log out and open the link again.`,
    );
    return;
  }
  showResetForm(token);
  say('Choose a new password for your account.');
}

async function confirmAddress(/** @type {string} */ token) {
  const earlier = outcomes.get(token);
  if (earlier) {
    say(earlier.message, earlier.kind);
    return;
  }
  const outcome = await confirmation(token);
  outcomes.set(token, outcome);
  say(outcome.message, outcome.kind);
}

/**
 * Spends the token, and says what is true afterwards. A link already used (in another tab, or before) is refused by
 * the server; when the signed-in account's address is confirmed anyway, that is what the person needs to hear.
 * @param {string} token
 * @returns {Promise<{ message: string, kind: 'ok' | 'error' }>}
 */
async function confirmation(token) {
  try {
    /** @type {User} */
    const user = await send('/email/verify', { method: 'POST', body: { token }, auth: false });
    if (state.user?.id === user.id) {
      setUser(user);
      void refreshActivity();
    }
    return { message: `Thank you: ${user.email} is confirmed.`, kind: 'ok' };
  } catch (error) {
    if (!(error instanceof ApiError && error.code === 'invalid_token')) return { message: describe(error), kind: 'error' };
  }
  if (state.user) {
    try {
      /** @type {User} */
      const user = await send('/me');
      setUser(user);
      if (user.emailVerified) return { message: `Your address ${user.email} is confirmed: this link was used already.`, kind: 'ok' };
    } catch {
      // Whether it is confirmed cannot be read now: say only what is known.
    }
    return { message: 'This confirmation link is no longer valid (it expired, or a newer one replaced it). Use “Send it again” for a new one.', kind: 'error' };
  }
  return {
    message:
      'This confirmation link is no longer valid: it was used already, or it expired. Log in: if your address still needs confirming, the page offers a new link.',
    kind: 'error',
  };
}

export function wireEmailLinks() {
  window.addEventListener('hashchange', () => void followEmailLink());
}
