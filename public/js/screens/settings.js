// Settings: read once they are opened (keys, two-factor, passkeys, recent activity), and again after a new sign-in.
import { describe, send } from '../api.js';
import { onSignedIn, state } from '../state.js';
import { $, say } from '../ui.js';
import { passkeysSupported } from '../webauthn.js';
import { showKeys, wireApiKeys } from './api-keys.js';
import { showPasskeys, wirePasskeys } from './passkeys.js';
import { eventLabels, showSecurityEvents } from './security-events.js';
import { showTwoFactor, showTwoFactorUnknown, wireTwoFactor } from './two-factor.js';

let loaded = false;

/** Reads the settings once they are opened, and again only after a change that needs it. */
async function loadSettings() {
  loaded = true;
  $('#mfa-state').textContent = 'Loading…';
  try {
    const [keys, mfa, passkeys, activity, names] = await Promise.all([
      send('/api-keys'),
      send('/mfa'),
      passkeysSupported() ? send('/passkeys') : { passkeys: [] },
      send('/me/security-events?pageSize=10'),
      eventLabels(),
    ]);
    showSecurityEvents(activity.events, names);
    showKeys(keys.keys);
    showPasskeys(passkeys.passkeys);
    showTwoFactor(mfa.enabled);
  } catch (error) {
    loaded = false;
    // Nothing shown is better than a guess: no empty key list, no "off" that may be wrong.
    $('#keys').replaceChildren();
    $('#passkeys').replaceChildren();
    $('#security-events').replaceChildren();
    showTwoFactorUnknown('Your settings could not be loaded. Close and open Settings to try again.');
    say(describe(error), 'error');
  }
}

function isOpen() {
  return /** @type {HTMLDetailsElement} */ ($('#settings')).open;
}

export function wireSettings() {
  $('#settings').addEventListener('toggle', () => {
    if (isOpen() && state.accessToken && !loaded) void loadSettings();
  });
  onSignedIn(() => {
    loaded = false;
    if (isOpen()) void loadSettings();
  });
  wireApiKeys();
  wireTwoFactor();
  wirePasskeys();
}
