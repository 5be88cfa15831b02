// Settings › API keys: the list, revoking one, and creating one (its secret shown once, and gone with the key).
import { send } from '../api.js';
import { onSignedOut } from '../state.js';
import { $, $form, itemButton, resultOf, show, withBusy, withButton } from '../ui.js';
import { refreshActivity } from './security-events.js';

/** @typedef {import('../types.js').ApiKey} ApiKey */

/** @type {ApiKey[]} */
let keys = [];
/** The key whose one-time secret is on screen. */
/** @type {string | null} */
let secretOf = null;

/** Takes the one-time secret off the screen (its key was revoked, Settings closed, or the person signed out). */
export function forgetSecret() {
  secretOf = null;
  const shown = $('#new-key');
  shown.textContent = '';
  shown.hidden = true;
  // "Copy its secret below" would point at nothing.
  show(resultOf($form('#key-form')), '');
}

/** Shows `list` as the account's keys. */
export function showKeys(/** @type {ApiKey[]} */ list) {
  keys = list;
  const items = keys.map((key) => {
    const item = document.createElement('li');
    const used = key.lastUsedAt ? `last used ${new Date(key.lastUsedAt).toLocaleString()}` : 'never used';
    item.textContent = `${key.name} (${key.prefix}…, ${key.scopes.join(', ')}, ${used}) `;
    item.append(itemButton('Revoke', 'danger small', `Revoke ${key.name}`, (button) => void revoke(key, button)));
    return item;
  });
  $('#keys').replaceChildren(...items);
}

async function revoke(/** @type {ApiKey} */ key, /** @type {HTMLButtonElement} */ button) {
  const area = resultOf(button);
  await withButton(button, async () => {
    await send(`/api-keys/${key.id}`, { method: 'DELETE' });
    if (secretOf === key.id) forgetSecret();
    showKeys(keys.filter((other) => other.id !== key.id));
    show(area, `Revoked ${key.name}: it no longer works.`);
  });
  void refreshActivity();
}

async function onCreateKey(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const data = new FormData(form);
  await withBusy(form, async () => {
    /** @type {ApiKey & { key: string }} */
    const created = await send('/api-keys', { method: 'POST', body: { name: data.get('name'), scopes: data.getAll('scopes') } });
    const { key: secret, ...described } = created;
    const shown = $('#new-key');
    shown.textContent = `Your new key (shown only once): ${secret}`;
    shown.hidden = false;
    secretOf = created.id;
    form.reset();
    showKeys([...keys, described]);
    show(resultOf(form), `Created ${created.name}. Copy its secret below now: it is not shown again.`);
  });
  void refreshActivity();
}

export function wireApiKeys() {
  $form('#key-form').addEventListener('submit', onCreateKey);
  onSignedOut(() => {
    forgetSecret();
    showKeys([]);
  });
}
