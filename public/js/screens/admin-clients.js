// Administration › OAuth clients: the apps that sign people in with this service or get tokens for themselves;
// registering one (a confidential one's secret shown once), changing one, issuing a new secret, and removing one.
import { describe, send } from '../api.js';
import { state } from '../state.js';
import { $, $form, field, formValue, itemButton, resultOf, show, submitButton, withButton } from '../ui.js';
import { badge, confirmed, controls, facts, focusAfterRemoval, headline, linesOf, when, wordsOf } from './admin-parts.js';

/**
 * @typedef {{ clientId: string, clientSecret?: string, name: string, redirectUris: string[], postLogoutRedirectUris: string[],
 *   grantTypes: string[], scopes: string[], resources: string[], tokenEndpointAuthMethod: string, public: boolean,
 *   firstParty: boolean, introspection: boolean, requireDpop: boolean, backchannelLogoutUri: string | null,
 *   jwks: { keys: object[] } | null, jwksUri: string | null, dynamic: boolean, createdAt: string, updatedAt: string }} Client
 */

const METHODS = /** @type {Record<string, string>} */ ({
  client_secret_basic: 'secret (HTTP Basic)',
  client_secret_post: 'secret (in the form)',
  private_key_jwt: 'signed JWT',
  none: 'public, no secret',
});

/** @type {Client[]} */
let clients = [];
/** The client the form changes; null: the form registers one. */
/** @type {Client | null} */
let editing = null;
let reads = 0;

const usesSecret = (/** @type {Client} */ client) =>
  client.tokenEndpointAuthMethod === 'client_secret_basic' || client.tokenEndpointAuthMethod === 'client_secret_post';

function row(/** @type {Client} */ client) {
  const item = document.createElement('li');
  item.dataset.id = client.clientId;
  const code = document.createElement('code');
  code.textContent = client.clientId;
  const line = headline(client.name, [
    badge(client.public ? 'Public' : 'Confidential', 'pending'),
    client.firstParty && badge('First-party'),
    client.dynamic && badge('Registered itself', 'pending'),
  ]);
  const id = document.createElement('span');
  id.className = 'muted';
  id.append('client id ', code);
  item.append(
    line,
    id,
    facts([
      `authenticates with ${METHODS[client.tokenEndpointAuthMethod] ?? client.tokenEndpointAuthMethod}`,
      `grants: ${client.grantTypes.join(', ')}`,
      `scopes: ${client.scopes.join(' ')}`,
    ]),
    facts([client.redirectUris.length > 0 ? `redirects to ${client.redirectUris.join(', ')}` : 'no redirect URL', `registered ${when(client.createdAt)}`]),
  );
  const name = client.name;
  const buttons = [itemButton('Edit', 'secondary small', `Edit ${name}`, (button) => void edit(client, button))];
  if (usesSecret(client)) buttons.push(itemButton('New secret', 'secondary small', `New secret for ${name}`, (button) => void rotateSecret(client, button)));
  buttons.push(itemButton('Delete', 'danger small', `Delete ${name}`, (button) => void remove(client, button)));
  item.append(controls(buttons));
  return item;
}

function render() {
  $('#admin-clients-list').replaceChildren(...clients.map(row));
  $('#admin-clients-empty').hidden = clients.length > 0;
}

/** The OAuth clients area is shown: the list is read. */
export async function loadClients() {
  const run = ++reads;
  const epoch = state.epoch;
  try {
    /** @type {{ clients: Client[] }} */
    const answer = await send('/admin/oauth-clients');
    if (run !== reads || epoch !== state.epoch) return;
    clients = answer.clients;
    render();
  } catch (error) {
    show(resultOf($('#admin-clients-list')), `The OAuth clients could not be read. ${describe(error)}`, 'error', false);
  }
}

/** Shows a secret the server gave now and never again. */
function showSecret(/** @type {Client} */ client) {
  const shown = $('#admin-client-secret');
  shown.textContent = `Client secret of ${client.name}, client id ${client.clientId} (shown only once): ${client.clientSecret ?? ''}`;
  shown.hidden = false;
}

/** Takes the one-time secret off the screen (the area was left, its client removed, or the person signed out). */
export function forgetClientSecret() {
  const shown = $('#admin-client-secret');
  if (shown.hidden) return;
  shown.textContent = '';
  shown.hidden = true;
  // What pointed at it ("Copy its secret above") would point at nothing.
  show(resultOf(form()), '');
  show(resultOf($('#admin-clients-list')), '');
}

function form() {
  return $form('#admin-client-form');
}

function stopEditing() {
  editing = null;
  const add = form();
  add.reset();
  /** @type {HTMLSelectElement} */ (add.elements.namedItem('auth')).disabled = false;
  $('#admin-client-form-title').textContent = 'Register an app';
  submitButton(add).textContent = 'Register app';
  $('#admin-client-cancel').hidden = true;
}

/** Reads the client as it is now (another administrator may have changed it), then opens it in the form. */
async function edit(/** @type {Client} */ listed, /** @type {HTMLButtonElement} */ button) {
  await withButton(button, async () => {
    /** @type {Client} */
    const client = await send(`/admin/oauth-clients/${encodeURIComponent(listed.clientId)}`);
    clients = clients.map((other) => (other.clientId === client.clientId ? client : other));
    render();
    startEditing(client);
  });
}

function startEditing(/** @type {Client} */ client) {
  stopEditing();
  editing = client;
  const edit = form();
  field(edit, 'name').value = client.name;
  const method = /** @type {HTMLSelectElement} */ (edit.elements.namedItem('auth'));
  method.value = client.tokenEndpointAuthMethod;
  // The server keeps how a client authenticates for its whole life.
  method.disabled = true;
  field(edit, 'scopes').value = client.scopes.join(' ');
  field(edit, 'backchannelLogoutUri').value = client.backchannelLogoutUri ?? '';
  field(edit, 'jwksUri').value = client.jwksUri ?? '';
  field(edit, 'redirectUris').value = client.redirectUris.join('\n');
  field(edit, 'postLogoutRedirectUris').value = client.postLogoutRedirectUris.join('\n');
  field(edit, 'resources').value = client.resources.join('\n');
  field(edit, 'jwks').value = client.jwks ? JSON.stringify(client.jwks, null, 2) : '';
  for (const box of /** @type {NodeListOf<HTMLInputElement>} */ (edit.querySelectorAll('input[name=grantTypes]')))
    box.checked = client.grantTypes.includes(box.value);
  field(edit, 'firstParty').checked = client.firstParty;
  field(edit, 'introspection').checked = client.introspection;
  field(edit, 'requireDpop').checked = client.requireDpop;
  $('#admin-client-form-title').textContent = `Change ${client.name}`;
  submitButton(edit).textContent = 'Save changes';
  $('#admin-client-cancel').hidden = false;
  show(resultOf(edit), '');
  field(edit, 'name').focus();
}

function focusRow(/** @type {string} */ clientId) {
  /** @type {HTMLElement | null} */ ($('#admin-clients-list').querySelector(`li[data-id="${clientId}"] button`))?.focus();
}

/** What the form says, as the fields both registering and changing take; a key set that is not JSON throws. */
function fieldsOf(/** @type {HTMLFormElement} */ edit) {
  const data = new FormData(edit);
  const jwksText = formValue(data, 'jwks').trim();
  /** @type {unknown} */
  let jwks = null;
  if (jwksText) {
    try {
      jwks = JSON.parse(jwksText);
    } catch {
      throw new SyntaxError('The public keys are not JSON: paste a key set such as {"keys":[…]}.');
    }
  }
  const optional = (/** @type {string} */ name) => formValue(data, name).trim() || null;
  return {
    name: formValue(data, 'name').trim(),
    redirectUris: linesOf(formValue(data, 'redirectUris')),
    postLogoutRedirectUris: linesOf(formValue(data, 'postLogoutRedirectUris')),
    grantTypes: data.getAll('grantTypes').map(String),
    scopes: wordsOf(formValue(data, 'scopes')),
    resources: linesOf(formValue(data, 'resources')),
    firstParty: field(edit, 'firstParty').checked,
    introspection: field(edit, 'introspection').checked,
    requireDpop: field(edit, 'requireDpop').checked,
    backchannelLogoutUri: optional('backchannelLogoutUri'),
    jwksUri: optional('jwksUri'),
    jwks,
  };
}

async function onSubmit(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const edit = form();
  const changing = editing;
  await withButton(
    submitButton(edit),
    async () => {
      const fields = fieldsOf(edit);
      if (changing) {
        /** @type {Client} */
        const changed = await send(`/admin/oauth-clients/${encodeURIComponent(changing.clientId)}`, { method: 'PATCH', body: fields });
        clients = clients.map((other) => (other.clientId === changed.clientId ? changed : other));
        render();
        stopEditing();
        show(resultOf(edit), `Saved ${changed.name}.`);
        focusRow(changed.clientId);
        return;
      }
      const method = formValue(new FormData(edit), 'auth');
      /** @type {Client} */
      const created = await send('/admin/oauth-clients', { method: 'POST', body: { ...fields, tokenEndpointAuthMethod: method } });
      const { clientSecret: _secret, ...kept } = created;
      clients = [...clients, kept];
      render();
      stopEditing();
      forgetClientSecret();
      if (created.clientSecret) {
        showSecret(created);
        show(resultOf(edit), `Registered ${created.name} (client id ${created.clientId}). Copy its secret above now: it is not shown again.`);
      } else show(resultOf(edit), `Registered ${created.name} (client id ${created.clientId}).`);
      focusRow(created.clientId);
    },
    (error) => (error instanceof SyntaxError ? error.message : describe(error)),
  );
}

async function rotateSecret(/** @type {Client} */ client, /** @type {HTMLButtonElement} */ button) {
  if (!confirmed(`Issue a new secret for ${client.name}? Its current secret stops working at once.`)) return;
  const area = resultOf($('#admin-clients-list'));
  await withButton(button, async () => {
    /** @type {Client} */
    const changed = await send(`/admin/oauth-clients/${encodeURIComponent(client.clientId)}`, { method: 'PATCH', body: { rotateSecret: true } });
    showSecret(changed);
    show(area, `Issued a new secret for ${changed.name}: copy it below now. The old one no longer works.`);
  });
}

async function remove(/** @type {Client} */ client, /** @type {HTMLButtonElement} */ button) {
  if (!confirmed(`Delete ${client.name}? Its secret, codes and refresh tokens stop working, and nobody can sign in to it with this service.`)) return;
  const area = resultOf($('#admin-clients-list'));
  const index = clients.findIndex((other) => other.clientId === client.clientId);
  await withButton(button, async () => {
    await send(`/admin/oauth-clients/${encodeURIComponent(client.clientId)}`, { method: 'DELETE' });
    clients = clients.filter((other) => other.clientId !== client.clientId);
    render();
    if (editing?.clientId === client.clientId) stopEditing();
    forgetClientSecret();
    show(area, `Deleted ${client.name}.`);
    focusAfterRemoval($('#admin-clients-list'), index, $('#admin-clients-title'));
  });
}

export function clearClients() {
  reads += 1;
  clients = [];
  render();
  stopEditing();
  forgetClientSecret();
}

export function wireAdminClients() {
  form().addEventListener('submit', (event) => void onSubmit(event));
  $('#admin-client-cancel').addEventListener('click', () => {
    const id = editing?.clientId;
    stopEditing();
    if (id) focusRow(id);
  });
}
