// Settings › API keys: the list, revoking one, and creating one (its secret shown once).
import { describe, send } from '../api.js';
import { $, $form, itemButton, say, withBusy } from '../ui.js';

/** @typedef {import('../types.js').ApiKey} ApiKey */

/** @type {ApiKey[]} */
let keys = [];

/** Shows `list` as the account's keys. */
export function showKeys(/** @type {ApiKey[]} */ list) {
  keys = list;
  const items = keys.map((key) => {
    const item = document.createElement('li');
    const used = key.lastUsedAt ? `last used ${new Date(key.lastUsedAt).toLocaleString()}` : 'never used';
    item.textContent = `${key.name} (${key.prefix}…, ${key.scopes.join(', ')}, ${used}) `;
    item.append(itemButton('Revoke', 'danger small', `Revoke ${key.name}`, () => void revoke(key)));
    return item;
  });
  $('#keys').replaceChildren(...items);
}

async function revoke(/** @type {ApiKey} */ key) {
  say('');
  try {
    await send(`/api-keys/${key.id}`, { method: 'DELETE' });
    say(`Revoked ${key.name}.`);
    showKeys(keys.filter((other) => other.id !== key.id));
  } catch (error) {
    say(describe(error), 'error');
  }
}

async function onCreateKey(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const data = new FormData(form);
  await withBusy(form, async () => {
    /** @type {ApiKey & { key: string }} */
    const created = await send('/api-keys', { method: 'POST', body: { name: data.get('name'), scopes: data.getAll('scopes') } });
    const shown = $('#new-key');
    shown.textContent = `Your new key (shown only once): ${created.key}`;
    shown.hidden = false;
    form.reset();
    const { key: _secret, ...described } = created;
    showKeys([...keys, described]);
  });
}

export function wireApiKeys() {
  $form('#key-form').addEventListener('submit', onCreateKey);
}
