// Settings › where you are signed in: the account's sessions (this one marked), and ending any other.
import { describe, send } from '../api.js';
import { onSignedOut, state } from '../state.js';
import { $, itemButton, resultOf, show, withButton } from '../ui.js';
import { agentLine, browserLabel, browserName } from '../user-agent.js';
import { refreshActivity } from './security-events.js';

/** @typedef {import('../types.js').Session} Session */

/** @type {Session[]} */
let sessions = [];

export function showSessions(/** @type {Session[]} */ list) {
  sessions = list;
  const items = sessions.map((session) => {
    const item = document.createElement('li');
    const where = document.createElement('span');
    where.className = 'muted';
    const from = session.ip ? `from ${session.ip}, ` : '';
    where.textContent = `${from}signed in ${new Date(session.createdAt).toLocaleString()}, last active ${new Date(session.lastUsedAt).toLocaleString()}`;
    const line = document.createElement('div');
    line.append(browserLabel(session.userAgent, 'strong'));
    if (session.current) {
      const badge = document.createElement('span');
      badge.className = 'badge';
      badge.textContent = 'This browser';
      line.append(' ', badge);
    }
    item.append(line);
    const agent = agentLine(session.userAgent);
    if (agent) item.append(agent);
    item.append(where);
    if (!session.current) {
      const label = `End the session of ${browserName(session.userAgent)} from ${session.ip ?? 'an unknown address'}`;
      item.append(itemButton('End', 'danger small', label, (button) => void endOne(session, button)));
    }
    return item;
  });
  $('#sessions').replaceChildren(...items);
}

async function endOne(/** @type {Session} */ session, /** @type {HTMLButtonElement} */ button) {
  const area = resultOf(button);
  await withButton(button, async () => {
    await send(`/sessions/${session.id}`, { method: 'DELETE' });
    showSessions(sessions.filter((other) => other.id !== session.id));
    show(area, `Ended the session of ${browserName(session.userAgent)}: it is signed out.`);
  });
  void refreshActivity();
}

/** Reads the sessions again (after a change that ends some, such as a new password). */
export async function refreshSessions() {
  const epoch = state.epoch;
  try {
    /** @type {{ sessions: Session[] }} */
    const answer = await send('/sessions');
    if (epoch === state.epoch) showSessions(answer.sessions);
  } catch (error) {
    show(resultOf($('#sessions')), `Your sessions could not be read. ${describe(error)}`, 'error');
  }
}

export function wireSessions() {
  onSignedOut(() => showSessions([]));
}
