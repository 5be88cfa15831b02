// Settings › two-factor: whether it is on, setting up an authenticator app (QR code, recovery codes), turning it off.
import { describe, send } from '../api.js';
import { $, $form, formValue, say, withBusy } from '../ui.js';

/** Shows whether two-factor is on, and the button or form that changes it. */
export function showTwoFactor(/** @type {boolean} */ enabled) {
  $('#mfa-state').textContent = enabled ? 'Two-factor authentication is on.' : 'Two-factor authentication is off.';
  $('#mfa-start').hidden = enabled;
  $('#mfa-disable').hidden = !enabled;
  if (enabled) $('#mfa-setup').hidden = true;
}

/** Shows `message` where the state would be, and no control that might be wrong. */
export function showTwoFactorUnknown(/** @type {string} */ message) {
  $('#mfa-state').textContent = message;
  $('#mfa-start').hidden = true;
  $('#mfa-disable').hidden = true;
}

async function onStart() {
  // One secret per setup: the button is gone until this one is finished or abandoned.
  $('#mfa-start').hidden = true;
  say('');
  try {
    /** @type {{ qrCode: string, secret: string }} */
    const setup = await send('/mfa/totp/setup', { method: 'POST' });
    /** @type {HTMLImageElement} */ ($('#mfa-qr')).src = setup.qrCode;
    $('#mfa-secret').textContent = setup.secret;
    $('#mfa-setup').hidden = false;
    $('#mfa-recovery').hidden = true;
  } catch (error) {
    $('#mfa-start').hidden = false;
    say(describe(error), 'error');
  }
}

async function onEnable(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  await withBusy(form, async () => {
    /** @type {{ recoveryCodes: string[] }} */
    const result = await send('/mfa/totp/enable', { method: 'POST', body: { code: formValue(new FormData(form), 'code').trim() } });
    $('#mfa-codes').textContent = result.recoveryCodes.join('\n');
    $('#mfa-recovery').hidden = false;
    form.reset();
    say('Two-factor authentication is on.');
    showTwoFactor(true);
  });
}

async function onDisable(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const data = new FormData(form);
  await withBusy(form, async () => {
    await send('/mfa/totp/disable', { method: 'POST', body: { password: data.get('password'), code: formValue(data, 'code').trim() } });
    form.reset();
    say('Two-factor authentication is off.');
    showTwoFactor(false);
  });
}

export function wireTwoFactor() {
  $('#mfa-start').addEventListener('click', () => void onStart());
  $form('#mfa-enable').addEventListener('submit', onEnable);
  $form('#mfa-disable').addEventListener('submit', onDisable);
}
