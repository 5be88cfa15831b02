// Administration › audit log: every security event, newest first, filtered by event, user and time, a page at a
// time; and the check of the log's hash chain with its verdict.
import { describe, send } from '../api.js';
import { state } from '../state.js';
import { $, $form, field, formValue, resultOf, show, withBusy, withButton } from '../ui.js';
import { browserName } from '../user-agent.js';
import { facts, headline, Pager, when } from './admin-parts.js';
import { findUser, nameOf } from './admin-users.js';
import { eventLabels } from './security-events.js';

/**
 * @typedef {{ id: string, type: string, actorId: string | null, targetId: string | null, ip: string | null,
 *   userAgent: string | null, requestId: string | null, details: Record<string, unknown>, createdAt: string }} AuditEvent
 */
/**
 * @typedef {{ ok: true, events: number, firstSeq: number | null, head: { seq: number, hash: string, createdAt: string } | null }
 *   | { ok: false, events: number, firstBrokenSeq: number, eventId: string, reason: string, message: string }} ChainVerdict
 */

const PAGE_SIZE = 25;

/** The filters as last applied (the query of GET /admin/audit, without its page). */
let filters = new URLSearchParams();
/** @type {Map<string, string>} */
let labels = new Map();
let reads = 0;
/** @type {Pager} */
let pager;

/** Someone as the log names them: their username when the console has seen it, with the id (which filters). */
function person(/** @type {string} */ id) {
  const name = nameOf(id);
  return name ? `${name} (${id})` : id;
}

/** Who did it and whom it concerns, when that is someone else. */
function who(/** @type {AuditEvent} */ event) {
  const by = event.actorId === null ? 'by someone not signed in' : `by ${person(event.actorId)}`;
  return event.targetId === null || event.targetId === event.actorId ? by : `${by}, concerning ${person(event.targetId)}`;
}

function row(/** @type {AuditEvent} */ event) {
  const item = document.createElement('li');
  const details = Object.entries(event.details ?? {})
    .map(([key, value]) => `${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(', ');
  item.append(
    headline(labels.get(event.type) ?? event.type),
    facts([when(event.createdAt), event.type, who(event)]),
    facts([event.ip && `from ${event.ip}`, event.userAgent && browserName(event.userAgent), details]),
  );
  return item;
}

async function read(/** @type {number} */ page) {
  const run = ++reads;
  const epoch = state.epoch;
  const query = new URLSearchParams(filters);
  query.set('page', String(page));
  query.set('pageSize', String(PAGE_SIZE));
  const [answer, names] = await Promise.all([send(`/admin/audit?${query}`), eventLabels()]);
  if (run !== reads || epoch !== state.epoch) return;
  labels = names;
  /** @type {AuditEvent[]} */
  const events = answer.events;
  $('#admin-audit-list').replaceChildren(...events.map(row));
  pager.show(answer, events.length);
}

async function load(page = pager.page) {
  try {
    await read(page);
  } catch (error) {
    show(resultOf($form('#admin-audit-filters')), `The audit log could not be read. ${describe(error)}`, 'error', false);
  }
}

/** The choices of the event filter, named as people read them (once). */
async function fillTypes() {
  const select = /** @type {HTMLSelectElement} */ ($form('#admin-audit-filters').elements.namedItem('type'));
  if (select.options.length > 1) return;
  labels = await eventLabels();
  for (const [type, label] of labels) {
    const option = document.createElement('option');
    option.value = type;
    option.textContent = label;
    select.append(option);
  }
}

/** The audit area is shown: the event names, and the page of events under the current filters. */
export async function loadAudit() {
  await fillTypes();
  await load();
}

/** An ISO 8601 instant from a datetime-local field (the browser's time zone); null when empty. */
function instant(/** @type {string} */ local) {
  if (!local) return null;
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

async function onFilter(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const data = new FormData(form);
  await withBusy(form, async () => {
    const next = new URLSearchParams();
    const type = formValue(data, 'type');
    if (type) next.set('type', type);
    const typed = formValue(data, 'user').trim();
    if (typed) {
      const user = await findUser(typed);
      if (!user) {
        show(resultOf(form), `No single user is “${typed}”: give a whole username, email address or user id.`, 'error');
        return;
      }
      next.set('userId', user.id);
    }
    const from = instant(formValue(data, 'from'));
    const to = instant(formValue(data, 'to'));
    if (from) next.set('from', from);
    if (to) next.set('to', to);
    filters = next;
    await read(1);
  });
}

/** Shows the events done by or concerning `user` (from a user's row), newest first. */
export async function showEventsOf(/** @type {{ id: string, username: string }} */ user) {
  const form = $form('#admin-audit-filters');
  form.reset();
  field(form, 'user').value = user.username;
  filters = new URLSearchParams({ userId: user.id });
  await fillTypes();
  await load(1);
}

async function verify(/** @type {HTMLButtonElement} */ button) {
  const area = resultOf(button);
  await withButton(button, async () => {
    /** @type {ChainVerdict} */
    const verdict = await send('/admin/audit/verify');
    if (verdict.ok) {
      const span = verdict.head ? `, from #${verdict.firstSeq ?? 1} to #${verdict.head.seq}; the newest hash is ${verdict.head.hash}` : '';
      show(area, `The chain is intact: ${verdict.events} events checked${span}.`);
    } else {
      show(
        area,
        `The chain is broken at event #${verdict.firstBrokenSeq} (${verdict.eventId}): ${verdict.message} (${verdict.reason.replaceAll('_', ' ')}). ${verdict.events} events before it are intact.`,
        'error',
      );
    }
  });
}

export function clearAudit() {
  reads += 1;
  filters = new URLSearchParams();
  $('#admin-audit-list').replaceChildren();
  pager.clear();
}

export function wireAdminAudit() {
  pager = new Pager({
    prev: /** @type {HTMLButtonElement} */ ($('#admin-audit-prev')),
    next: /** @type {HTMLButtonElement} */ ($('#admin-audit-next')),
    summary: $('#admin-audit-summary'),
    nouns: ['event', 'events'],
    go: (page) => load(page),
  });
  $form('#admin-audit-filters').addEventListener('submit', (event) => void onFilter(event));
  const button = /** @type {HTMLButtonElement} */ ($('#admin-audit-verify'));
  button.addEventListener('click', () => void verify(button));
}
