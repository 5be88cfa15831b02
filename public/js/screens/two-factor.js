// Settings › two-factor: whether it is on, setting up an authenticator app (QR code, recovery codes), turning it off.
import { send } from '../api.js';
import { onSignedOut } from '../state.js';
import { $, $form, formValue, resultOf, show, withBusy, withButton } from '../ui.js';
import { refreshActivity } from './security-events.js';
import { noteSignInMethods } from './sign-in-methods.js';

/** Shows whether two-factor is on, and the button or form that changes it. */
export function showTwoFactor(/** @type {boolean} */ enabled) {
  $('#mfa-state').textContent = enabled ? 'Two-factor authentication is on.' : 'Two-factor authentication is off.';
  $('#mfa-start').hidden = enabled;
  $('#mfa-disable').hidden = !enabled;
  if (enabled) hideSetup();
  noteSignInMethods({ twoFactor: enabled });
}

/** Shows `message` where the state would be, and no control that might be wrong. */
export function showTwoFactorUnknown(/** @type {string} */ message) {
  $('#mfa-state').textContent = message;
  $('#mfa-start').hidden = true;
  $('#mfa-disable').hidden = true;
  noteSignInMethods({ twoFactor: null });
}

/** Takes the secret and its QR code off the screen. */
function hideSetup() {
  $('#mfa-setup').hidden = true;
  $('#mfa-qr').removeAttribute('src');
  $('#mfa-secret').textContent = '';
  $form('#mfa-enable').reset();
}

async function onStart(/** @type {HTMLButtonElement} */ button) {
  await withButton(button, async () => {
    /** @type {{ qrCode: string, secret: string }} */
    const setup = await send('/mfa/totp/setup', { method: 'POST' });
    /** @type {HTMLImageElement} */ ($('#mfa-qr')).src = setup.qrCode;
    $('#mfa-secret').textContent = setup.secret;
    $('#mfa-recovery').hidden = true;
    $('#mfa-setup').hidden = false;
    // One secret per setup: the button is gone until this one is finished or abandoned.
    button.hidden = true;
  });
}

function onCancel() {
  hideSetup();
  $('#mfa-start').hidden = false;
  show(resultOf($('#mfa-start')), 'Set-up cancelled: two-factor authentication stays off.');
}

async function onEnable(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  await withBusy(form, async () => {
    /** @type {{ recoveryCodes: string[] }} */
    const result = await send('/mfa/totp/enable', { method: 'POST', body: { code: formValue(new FormData(form), 'code').trim() } });
    $('#mfa-codes').textContent = result.recoveryCodes.join('\n');
    $('#mfa-recovery').hidden = false;
    showTwoFactor(true);
    show(resultOf($('#mfa-start')), 'Turned on. Keep the recovery codes below somewhere safe: each works once.');
  });
  void refreshActivity();
}

async function onDisable(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const data = new FormData(form);
  await withBusy(form, async () => {
    await send('/mfa/totp/disable', { method: 'POST', body: { password: data.get('password'), code: formValue(data, 'code').trim() } });
    form.reset();
    $('#mfa-recovery').hidden = true;
    $('#mfa-codes').textContent = '';
    showTwoFactor(false);
    show(resultOf($('#mfa-start')), 'Turned off: the authenticator app is no longer asked for.');
  });
  void refreshActivity();
}

export function wireTwoFactor() {
  const start = /** @type {HTMLButtonElement} */ ($('#mfa-start'));
  start.addEventListener('click', () => void onStart(start));
  $('#mfa-cancel').addEventListener('click', onCancel);
  $form('#mfa-enable').addEventListener('submit', onEnable);
  $form('#mfa-disable').addEventListener('submit', onDisable);
  onSignedOut(() => {
    hideSetup();
    $('#mfa-recovery').hidden = true;
    $('#mfa-codes').textContent = '';
    showTwoFactorUnknown('');
  });
}
