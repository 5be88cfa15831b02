// Administration › webhooks: the endpoints events are sent to, adding one (its signing secret shown once), deleting
// one, and how the deliveries to one went.
import { describe, send } from '../api.js';
import { state } from '../state.js';
import { $, $form, formValue, itemButton, resultOf, show, withBusy, withButton } from '../ui.js';
import { badge, confirmed, controls, facts, focusAfterRemoval, headline, when } from './admin-parts.js';
import { eventLabels } from './security-events.js';

/** @typedef {{ id: string, url: string, eventTypes: string[], createdAt: string }} Endpoint */
/**
 * @typedef {{ id: string, eventType: string, attempts: number, lastStatus: number | null, lastError: string | null,
 *   nextAttemptAt: string | null, deliveredAt: string | null, failedAt: string | null, createdAt: string }} Delivery
 */

/** @type {Endpoint[]} */
let endpoints = [];
/** @type {Map<string, string>} */
let labels = new Map();
/** The endpoint whose deliveries are shown. */
/** @type {Endpoint | null} */
let watched = null;
let reads = 0;

function events(/** @type {string[]} */ types) {
  return types.length <= 3 ? types.map((type) => labels.get(type) ?? type).join(', ') : `${types.length} kinds of event`;
}

function row(/** @type {Endpoint} */ endpoint) {
  const item = document.createElement('li');
  item.dataset.id = endpoint.id;
  const list = facts([events(endpoint.eventTypes), `added ${when(endpoint.createdAt)}`]);
  list.title = endpoint.eventTypes.join(', ');
  item.append(
    headline(endpoint.url),
    list,
    controls([
      itemButton('Deliveries', 'secondary small', `Deliveries to ${endpoint.url}`, (button) => void showDeliveries(endpoint, button)),
      itemButton('Delete', 'danger small', `Delete the endpoint ${endpoint.url}`, (button) => void remove(endpoint, button)),
    ]),
  );
  return item;
}

function render() {
  $('#admin-webhooks-list').replaceChildren(...endpoints.map(row));
  $('#admin-webhooks-empty').hidden = endpoints.length > 0;
}

/** The event checkboxes of the form, named as people read them (once). */
function fillChoices() {
  const box = $('#admin-webhook-events');
  if (box.querySelector('input')) return;
  for (const [type, label] of labels) {
    const choice = document.createElement('label');
    const input = document.createElement('input');
    input.type = 'checkbox';
    input.name = 'eventTypes';
    input.value = type;
    choice.append(input, ` ${label}`);
    box.append(choice);
  }
}

/** The webhooks area is shown: the endpoints (and the event choices) are read. */
export async function loadWebhooks() {
  const run = ++reads;
  const epoch = state.epoch;
  try {
    const [answer, names] = await Promise.all([send('/admin/webhooks'), eventLabels()]);
    if (run !== reads || epoch !== state.epoch) return;
    labels = names;
    fillChoices();
    endpoints = answer.endpoints;
    render();
  } catch (error) {
    show(resultOf($('#admin-webhooks-list')), `The endpoints could not be read. ${describe(error)}`, 'error', false);
  }
}

/** Takes the one-time secret off the screen (the area was left, its endpoint deleted, or the person signed out). */
export function forgetWebhookSecret() {
  const shown = $('#admin-webhook-secret');
  if (shown.hidden) return;
  shown.textContent = '';
  shown.hidden = true;
  // "Copy its signing secret below" would point at nothing.
  show(resultOf($form('#admin-webhook-form')), '');
}

async function onCreate(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const data = new FormData(form);
  const eventTypes = data.getAll('eventTypes').map(String);
  if (eventTypes.length === 0) {
    show(resultOf(form), 'Choose at least one event to send.', 'error');
    /** @type {HTMLInputElement | null} */ ($('#admin-webhook-events').querySelector('input'))?.focus();
    return;
  }
  await withBusy(form, async () => {
    /** @type {Endpoint & { secret: string }} */
    const created = await send('/admin/webhooks', { method: 'POST', body: { url: formValue(data, 'url').trim(), eventTypes } });
    const { secret, ...endpoint } = created;
    const shown = $('#admin-webhook-secret');
    shown.textContent = `Signing secret of ${endpoint.url} (shown only once): ${secret}`;
    shown.hidden = false;
    form.reset();
    endpoints = [...endpoints, endpoint];
    render();
    show(resultOf(form), `Added ${endpoint.url}. Copy its signing secret below now: it is not shown again.`);
  });
}

async function remove(/** @type {Endpoint} */ endpoint, /** @type {HTMLButtonElement} */ button) {
  if (!confirmed(`Delete the endpoint ${endpoint.url}? Events are no longer sent there, and deliveries still pending are dropped.`)) return;
  const area = resultOf($('#admin-webhooks-list'));
  const index = endpoints.findIndex((other) => other.id === endpoint.id);
  await withButton(button, async () => {
    await send(`/admin/webhooks/${endpoint.id}`, { method: 'DELETE' });
    endpoints = endpoints.filter((other) => other.id !== endpoint.id);
    render();
    if (watched?.id === endpoint.id) hideDeliveries();
    forgetWebhookSecret();
    show(area, `Deleted the endpoint ${endpoint.url}.`);
    focusAfterRemoval($('#admin-webhooks-list'), index, $('#admin-webhooks-title'));
  });
}

function deliveryRow(/** @type {Delivery} */ delivery) {
  const item = document.createElement('li');
  const outcome = delivery.deliveredAt ? badge('Delivered') : delivery.failedAt ? badge('Given up', 'expired') : badge('Pending', 'pending');
  const answer = delivery.lastStatus !== null ? `last answer ${delivery.lastStatus}` : delivery.lastError ? `last error: ${delivery.lastError}` : '';
  const next = delivery.deliveredAt
    ? `delivered ${when(delivery.deliveredAt)}`
    : delivery.failedAt
      ? `given up ${when(delivery.failedAt)}`
      : delivery.nextAttemptAt && `next try ${when(delivery.nextAttemptAt)}`;
  item.append(
    headline(labels.get(delivery.eventType) ?? delivery.eventType, [outcome]),
    facts([`raised ${when(delivery.createdAt)}`, `${delivery.attempts} attempt${delivery.attempts === 1 ? '' : 's'}`, answer, next]),
    facts([`webhook-id ${delivery.id}`]),
  );
  return item;
}

async function readDeliveries(/** @type {Endpoint} */ endpoint) {
  /** @type {{ deliveries: Delivery[] }} */
  const answer = await send(`/admin/webhooks/${endpoint.id}/deliveries`);
  if (watched?.id !== endpoint.id) return;
  $('#admin-deliveries').replaceChildren(...answer.deliveries.map(deliveryRow));
  $('#admin-deliveries-empty').hidden = answer.deliveries.length > 0;
}

async function showDeliveries(/** @type {Endpoint} */ endpoint, /** @type {HTMLButtonElement} */ button) {
  await withButton(button, async () => {
    watched = endpoint;
    $('#admin-deliveries-title').textContent = `Deliveries to ${endpoint.url}`;
    $('#admin-deliveries').replaceChildren();
    show(resultOf($('#admin-deliveries')), '');
    await readDeliveries(endpoint);
    $('#admin-deliveries-section').hidden = false;
    $('#admin-deliveries-title').focus();
  });
}

function hideDeliveries() {
  watched = null;
  $('#admin-deliveries-section').hidden = true;
  $('#admin-deliveries').replaceChildren();
}

export function clearWebhooks() {
  reads += 1;
  endpoints = [];
  render();
  hideDeliveries();
  forgetWebhookSecret();
}

export function wireAdminWebhooks() {
  $form('#admin-webhook-form').addEventListener('submit', (event) => void onCreate(event));
  const all = /** @type {HTMLButtonElement} */ ($('#admin-webhook-all'));
  $form('#admin-webhook-form').addEventListener('reset', () => {
    all.textContent = 'Choose every event';
  });
  all.addEventListener('click', () => {
    const boxes = /** @type {HTMLInputElement[]} */ ([...$('#admin-webhook-events').querySelectorAll('input')]);
    const every = boxes.every((box) => box.checked);
    for (const box of boxes) box.checked = !every;
    all.textContent = every ? 'Choose every event' : 'Choose none';
  });
  const reload = /** @type {HTMLButtonElement} */ ($('#admin-deliveries-reload'));
  reload.addEventListener('click', () => {
    const endpoint = watched;
    if (endpoint) void withButton(reload, () => readDeliveries(endpoint));
  });
}
