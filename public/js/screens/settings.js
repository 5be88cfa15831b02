// Settings: read once they are opened (the account, keys, two-factor, passkeys, sessions, recent activity), again
// after a new sign-in, closed and emptied on sign-out.
import { describe, send } from '../api.js';
import { onSignedIn, onSignedOut, setUser, state } from '../state.js';
import { $, resultOf, show } from '../ui.js';
import { passkeysSupported } from '../webauthn.js';
import { forgetSecret, showKeys, wireApiKeys } from './api-keys.js';
import { wireDeleteAccount } from './delete-account.js';
import { showPasskeys, wirePasskeys } from './passkeys.js';
import { loadIdentities } from './providers.js';
import { wireProfile } from './profile.js';
import { eventLabels, hideSecurityEvents, showSecurityEvents, wireSecurityEvents } from './security-events.js';
import { showSessions, wireSessions } from './sessions.js';
import { wireSignInMethods } from './sign-in-methods.js';
import { showTwoFactor, showTwoFactorUnknown, wireTwoFactor } from './two-factor.js';

let loaded = false;

/** Reads the settings once they are opened, and again only after a change that needs it. */
async function loadSettings() {
  loaded = true;
  const epoch = state.epoch;
  const area = resultOf($('#settings summary'));
  $('#mfa-state').textContent = 'Loading…';
  show(area, '');
  try {
    const [me, keys, mfa, passkeys, sessions, activity, names] = await Promise.all([
      send('/me'),
      send('/api-keys'),
      send('/mfa'),
      passkeysSupported() ? send('/passkeys') : { passkeys: [] },
      send('/sessions'),
      send('/me/security-events?pageSize=10'),
      eventLabels(),
    ]);
    if (epoch !== state.epoch) return;
    // The account as the server has it now: whether it has a password (the ways in, deleting it) is read here only.
    setUser(me);
    showSecurityEvents(activity.events, names);
    showKeys(keys.keys);
    showPasskeys(passkeys.passkeys);
    showSessions(sessions.sessions);
    showTwoFactor(mfa.enabled);
    // Its own read, only where providers are offered: a refusal here leaves the rest of Settings shown.
    void loadIdentities().catch((error) => show(resultOf($('#sign-in-methods')), describe(error), 'error'));
  } catch (error) {
    if (epoch !== state.epoch) return;
    loaded = false;
    // Nothing shown is better than a guess: no empty key list, no "off" that may be wrong.
    showKeys([]);
    showPasskeys([]);
    showSessions([]);
    hideSecurityEvents();
    showTwoFactorUnknown('Your settings could not be loaded. Close and open Settings to try again.');
    show(area, describe(error), 'error');
  }
}

function settings() {
  return /** @type {HTMLDetailsElement} */ ($('#settings'));
}

export function wireSettings() {
  settings().addEventListener('toggle', () => {
    if (settings().open && state.accessToken && !loaded) void loadSettings();
    // Leaving Settings takes one-time secrets off the screen: they were for the moment they were shown.
    if (!settings().open) {
      forgetSecret();
      $('#mfa-recovery').hidden = true;
    }
  });
  onSignedIn(() => {
    loaded = false;
    if (settings().open) void loadSettings();
  });
  onSignedOut(() => {
    loaded = false;
  });
  wireProfile();
  wireApiKeys();
  wireTwoFactor();
  wirePasskeys();
  wireSessions();
  wireSecurityEvents();
  wireSignInMethods();
  wireDeleteAccount();
}
