// Settings › passkeys: the list, adding one with this device's authenticator, renaming and deleting.
import { send } from '../api.js';
import { onSignedOut, state } from '../state.js';
import { $, $form, itemButton, resultOf, show, submitButton, withButton } from '../ui.js';
import { describePasskeyError, passkeyApi } from '../webauthn.js';
import { refreshActivity } from './security-events.js';
import { noteSignInMethods } from './sign-in-methods.js';

/** @typedef {import('../types.js').Passkey} Passkey */

/** Shows `passkeys` as the account's passkeys (re-authentication offers one while there is any). */
export function showPasskeys(/** @type {Passkey[]} */ passkeys) {
  state.passkeys = passkeys;
  const items = passkeys.map((passkey) => {
    const item = document.createElement('li');
    const kind = passkey.deviceType === 'multiDevice' ? 'synced' : 'on one device';
    const used = passkey.lastUsedAt ? `last used ${new Date(passkey.lastUsedAt).toLocaleString()}` : 'not used yet';
    item.textContent = `${passkey.name} (${kind}, added ${new Date(passkey.createdAt).toLocaleDateString()}, ${used}) `;
    const rename = itemButton('Rename', 'secondary small', `Rename ${passkey.name}`, (button) => void renamePasskey(passkey, button));
    const remove = itemButton('Delete', 'danger small', `Delete ${passkey.name}`, (button) => void deletePasskey(passkey, button));
    item.append(rename, ' ', remove);
    return item;
  });
  $('#passkeys').replaceChildren(...items);
  noteSignInMethods({ passkeys });
}

async function onAdd(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const name = String(new FormData(form).get('name') ?? '').trim();
  await withButton(
    submitButton(form),
    async () => {
      const { startRegistration } = await passkeyApi();
      const options = await send('/passkeys/register/options', { method: 'POST' });
      const response = await startRegistration({ optionsJSON: options });
      /** @type {Passkey} */
      const passkey = await send('/passkeys/register', { method: 'POST', body: { response, ...(name && { name }) } });
      form.reset();
      showPasskeys([...state.passkeys, passkey]);
      show(resultOf(form), `Passkey "${passkey.name}" added. You can now sign in with it.`);
    },
    describePasskeyError,
  );
  void refreshActivity();
}

async function renamePasskey(/** @type {Passkey} */ passkey, /** @type {HTMLButtonElement} */ button) {
  const name = window.prompt('New name for this passkey:', passkey.name)?.trim();
  if (!name || name === passkey.name) return;
  const area = resultOf(button);
  await withButton(button, async () => {
    /** @type {Passkey} */
    const renamed = await send(`/passkeys/${passkey.id}`, { method: 'PATCH', body: { name } });
    showPasskeys(state.passkeys.map((other) => (other.id === renamed.id ? renamed : other)));
    show(area, `Renamed to ${renamed.name}.`);
  });
  void refreshActivity();
}

async function deletePasskey(/** @type {Passkey} */ passkey, /** @type {HTMLButtonElement} */ button) {
  if (!window.confirm(`Delete the passkey "${passkey.name}"? It will no longer sign you in.`)) return;
  const area = resultOf(button);
  await withButton(button, async () => {
    await send(`/passkeys/${passkey.id}`, { method: 'DELETE' });
    showPasskeys(state.passkeys.filter((other) => other.id !== passkey.id));
    show(area, `Deleted the passkey ${passkey.name}. Remove it from your device too, so it stops offering it.`);
  });
  void refreshActivity();
}

export function wirePasskeys() {
  $form('#passkey-form').addEventListener('submit', onAdd);
  onSignedOut(() => showPasskeys([]));
}
