// Administration › identity providers: the outside providers people may sign in with (those from the environment
// read-only), adding one, changing one (its secret write-only), turning one off and on, and removing one.
import { describe, send } from '../api.js';
import { state } from '../state.js';
import { $, $form, field, formValue, itemButton, resultOf, show, submitButton, withButton } from '../ui.js';
import { badge, confirmed, controls, facts, focusAfterRemoval, headline, wordsOf } from './admin-parts.js';

/**
 * @typedef {{ id: string, type: string, name: string, clientId: string, issuer: string | null, scopes: string[],
 *   trustEmail: boolean, enabled: boolean, source: 'environment' | 'api', hasSecret: boolean }} Provider
 */

/** @type {Provider[]} */
let providers = [];
/** The provider the form changes; null: the form adds one. */
/** @type {Provider | null} */
let editing = null;
let reads = 0;

function row(/** @type {Provider} */ provider) {
  const item = document.createElement('li');
  item.dataset.id = provider.id;
  const fromEnvironment = provider.source === 'environment';
  item.append(
    headline(provider.name, [provider.enabled ? badge('Offered') : badge('Off', 'pending'), fromEnvironment && badge('From the environment', 'pending')]),
    facts([`id ${provider.id}`, provider.type, `client id ${provider.clientId}`, provider.issuer, provider.hasSecret ? 'secret kept' : 'no secret']),
    facts([
      provider.scopes.length > 0 ? `scopes: ${provider.scopes.join(' ')}` : 'its usual scopes',
      provider.trustEmail ? 'its addresses may create accounts' : 'its identities can only be linked',
    ]),
  );
  if (fromEnvironment) {
    item.append(facts(['Set in the server’s environment (AUTH_PROVIDER_*): change it there.']));
  } else {
    const name = provider.name;
    item.append(
      controls([
        itemButton('Edit', 'secondary small', `Edit ${name}`, () => startEditing(provider)),
        provider.enabled
          ? itemButton('Turn off', 'secondary small', `Turn off ${name}`, (button) => void setEnabled(provider, false, button))
          : itemButton('Turn on', 'small', `Turn on ${name}`, (button) => void setEnabled(provider, true, button)),
        itemButton('Delete', 'danger small', `Delete ${name}`, (button) => void remove(provider, button)),
      ]),
    );
  }
  return item;
}

function render() {
  $('#admin-providers-list').replaceChildren(...providers.map(row));
  $('#admin-providers-empty').hidden = providers.length > 0;
}

/** The identity providers area is shown: the list is read. */
export async function loadProviders() {
  const run = ++reads;
  const epoch = state.epoch;
  try {
    /** @type {{ providers: Provider[] }} */
    const answer = await send('/admin/identity-providers');
    if (run !== reads || epoch !== state.epoch) return;
    providers = answer.providers;
    render();
  } catch (error) {
    show(resultOf($('#admin-providers-list')), `The identity providers could not be read. ${describe(error)}`, 'error', false);
  }
}

function form() {
  return $form('#admin-provider-form');
}

/** Back to adding a provider: an empty form. */
function stopEditing() {
  editing = null;
  const add = form();
  add.reset();
  field(add, 'id').disabled = false;
  /** @type {HTMLSelectElement} */ (add.elements.namedItem('type')).disabled = false;
  $('#admin-provider-form-title').textContent = 'Add an identity provider';
  submitButton(add).textContent = 'Add provider';
  $('#admin-provider-cancel').hidden = true;
}

/** Fills the form with a provider to change it (its id and kind stay; its secret is never shown). */
function startEditing(/** @type {Provider} */ provider) {
  stopEditing();
  editing = provider;
  const edit = form();
  field(edit, 'id').value = provider.id;
  field(edit, 'id').disabled = true;
  const type = /** @type {HTMLSelectElement} */ (edit.elements.namedItem('type'));
  type.value = provider.type;
  type.disabled = true;
  field(edit, 'name').value = provider.name;
  field(edit, 'clientId').value = provider.clientId;
  field(edit, 'issuer').value = provider.issuer ?? '';
  field(edit, 'scopes').value = provider.scopes.join(' ');
  field(edit, 'trustEmail').checked = provider.trustEmail;
  field(edit, 'enabled').checked = provider.enabled;
  $('#admin-provider-form-title').textContent = `Change ${provider.name}`;
  submitButton(edit).textContent = 'Save changes';
  $('#admin-provider-cancel').hidden = false;
  show(resultOf(edit), '');
  field(edit, 'name').focus();
}

/** Focus on the Edit button of provider `id` (after its change was saved or given up). */
function focusRow(/** @type {string} */ id) {
  /** @type {HTMLElement | null} */ ($('#admin-providers-list').querySelector(`li[data-id="${id}"] button`))?.focus();
}

async function onSubmit(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const edit = form();
  const data = new FormData(edit);
  const changing = editing;
  const name = formValue(data, 'name').trim();
  const secret = formValue(data, 'clientSecret');
  const issuer = formValue(data, 'issuer').trim();
  const fields = {
    ...(name && { name }),
    clientId: formValue(data, 'clientId').trim(),
    ...(secret && { clientSecret: secret }),
    ...(issuer && { issuer }),
    scopes: wordsOf(formValue(data, 'scopes')),
    trustEmail: field(edit, 'trustEmail').checked,
    enabled: field(edit, 'enabled').checked,
  };
  await withButton(submitButton(edit), async () => {
    if (changing) {
      /** @type {Provider} */
      const changed = await send(`/admin/identity-providers/${encodeURIComponent(changing.id)}`, { method: 'PATCH', body: fields });
      providers = providers.map((other) => (other.id === changed.id ? changed : other));
      render();
      stopEditing();
      show(resultOf(edit), `Saved ${changed.name}. Every instance uses the change within a minute.`);
      focusRow(changed.id);
    } else {
      /** @type {Provider} */
      const added = await send('/admin/identity-providers', {
        method: 'POST',
        body: { id: formValue(data, 'id').trim(), type: formValue(data, 'type'), ...fields },
      });
      providers = [...providers, added];
      render();
      stopEditing();
      show(
        resultOf(edit),
        `Added ${added.name} (${added.id}). ${added.enabled ? 'The sign-in page offers it within a minute.' : 'It is off until you turn it on.'}`,
      );
    }
  });
}

async function setEnabled(/** @type {Provider} */ provider, /** @type {boolean} */ enabled, /** @type {HTMLButtonElement} */ button) {
  const area = resultOf($('#admin-providers-list'));
  await withButton(button, async () => {
    /** @type {Provider} */
    const changed = await send(`/admin/identity-providers/${encodeURIComponent(provider.id)}`, { method: 'PATCH', body: { enabled } });
    providers = providers.map((other) => (other.id === changed.id ? changed : other));
    render();
    show(area, enabled ? `${changed.name} is offered again.` : `${changed.name} is off: it signs nobody in until it is turned on.`);
    /** @type {HTMLElement | null} */ ($('#admin-providers-list').querySelector(`li[data-id="${changed.id}"] .actions button:nth-child(2)`))?.focus();
  });
}

async function remove(/** @type {Provider} */ provider, /** @type {HTMLButtonElement} */ button) {
  if (!confirmed(`Delete ${provider.name}? Nobody can sign in with it any more; identities linked through it stay, unusable until it is added again.`)) return;
  const area = resultOf($('#admin-providers-list'));
  const index = providers.findIndex((other) => other.id === provider.id);
  await withButton(button, async () => {
    await send(`/admin/identity-providers/${encodeURIComponent(provider.id)}`, { method: 'DELETE' });
    providers = providers.filter((other) => other.id !== provider.id);
    render();
    if (editing?.id === provider.id) stopEditing();
    show(area, `Deleted ${provider.name}.`);
    focusAfterRemoval($('#admin-providers-list'), index, $('#admin-providers-title'));
  });
}

export function clearProviders() {
  reads += 1;
  providers = [];
  render();
  stopEditing();
}

export function wireAdminProviders() {
  form().addEventListener('submit', (event) => void onSubmit(event));
  $('#admin-provider-cancel').addEventListener('click', () => {
    const id = editing?.id;
    stopEditing();
    if (id) focusRow(id);
  });
}
