// Settings › recent security activity, named with the labels the server gives each event type, and read again after
// each change the person makes in Settings (each one records an event).
import { describe, send } from '../api.js';
import { onSignedOut, state } from '../state.js';
import { $, resultOf, show } from '../ui.js';
import { browserLabel } from '../user-agent.js';

/** @typedef {import('../types.js').SecurityEvent} SecurityEvent */

/** @type {Promise<Map<string, string>> | undefined} */
let labels;
/** Whether the list is on screen (Settings open and read): only then is it worth reading again. */
let shown = false;
/** @type {Promise<void> | null} */
let reading = null;
let again = false;

/**
 * Event type → label, read from the server once (GET /audit/event-types). When it cannot be read the types are
 * shown as they are, and the next look asks again.
 */
export function eventLabels() {
  labels ??= send('/audit/event-types', { auth: false }).then(
    (/** @type {{ types: import('../types.js').EventType[] }} */ answer) => new Map(answer.types.map(({ type, label }) => [type, label])),
    () => {
      labels = undefined;
      return new Map();
    },
  );
  return labels;
}

/** The newest security events of the account: what happened, when, and from where. */
export function showSecurityEvents(/** @type {SecurityEvent[]} */ events, /** @type {Map<string, string>} */ names) {
  shown = true;
  const items = events.map((event) => {
    const item = document.createElement('li');
    const how = event.details?.method ? ` (${String(event.details.method).replaceAll('_', ' ')})` : '';
    const what = document.createElement('strong');
    what.textContent = `${names.get(event.type) ?? event.type}${how}`;
    const when = document.createElement('span');
    when.className = 'muted';
    when.textContent = new Date(event.createdAt).toLocaleString();
    item.append(what, ' · ', when);
    if (event.ip) item.append(` · ${event.ip}`);
    if (event.userAgent) item.append(' · ', browserLabel(event.userAgent));
    return item;
  });
  $('#security-events').replaceChildren(...items);
}

async function read() {
  const epoch = state.epoch;
  const [activity, names] = await Promise.all([send('/me/security-events?pageSize=10'), eventLabels()]);
  if (shown && epoch === state.epoch) showSecurityEvents(activity.events, names);
}

/**
 * Reads the list again, when it is on screen, after each action in Settings whether it succeeded or not (a refused
 * password is recorded too). Actions in quick succession share a read: one more follows the one under way.
 */
export function refreshActivity() {
  if (!shown) return Promise.resolve();
  if (reading) {
    again = true;
    return reading;
  }
  const area = resultOf($('#security-events'));
  reading = (async () => {
    try {
      do {
        again = false;
        await read();
      } while (again && shown);
      show(area, '');
    } catch (error) {
      show(area, `The activity could not be read again. ${describe(error)}`, 'error');
    } finally {
      reading = null;
    }
  })();
  return reading;
}

/** Nothing is read again for a list no longer shown. */
export function hideSecurityEvents() {
  shown = false;
  $('#security-events').replaceChildren();
}

export function wireSecurityEvents() {
  onSignedOut(hideSecurityEvents);
}
