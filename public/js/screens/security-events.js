// Settings › recent security activity, named with the labels the server gives each event type.
import { send } from '../api.js';
import { $ } from '../ui.js';

/** @typedef {import('../types.js').SecurityEvent} SecurityEvent */

/** @type {Promise<Map<string, string>> | undefined} */
let labels;

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
  const items = events.map((event) => {
    const item = document.createElement('li');
    const how = event.details?.method ? ` (${String(event.details.method).replaceAll('_', ' ')})` : '';
    const where = [event.ip, event.userAgent?.slice(0, 60)].filter(Boolean).join(', ');
    item.textContent = `${names.get(event.type) ?? event.type}${how} · ${new Date(event.createdAt).toLocaleString()}${where ? ` · ${where}` : ''}`;
    return item;
  });
  $('#security-events').replaceChildren(...items);
}
