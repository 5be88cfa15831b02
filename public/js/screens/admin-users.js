// Administration › users: search and page through the accounts; for each its roles, disabling and enabling it,
// ending every session it has, its events in the audit log and resetting its rate limits; and resetting the budgets
// of any client by key.
import { describe, endSession, send } from '../api.js';
import { state } from '../state.js';
import { $, $form, field, formValue, itemButton, resultOf, say, show, submitButton, withBusy, withButton } from '../ui.js';
import { badge, confirmed, controls, facts, headline, Pager, rowResult, when } from './admin-parts.js';

/**
 * @typedef {{ id: string, username: string, email: string, emailVerified: boolean, roles: string[], createdAt: string,
 *   disabled: boolean }} AdminUser
 */

const PAGE_SIZE = 20;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The page of users on screen. */
/** @type {AdminUser[]} */
let users = [];
/** What the list was searched for ('' for everyone). */
let query = '';
/** Counts reads: an answer overtaken by a newer read (or a sign-out) is dropped. */
let reads = 0;
/** Every username seen, by id: the audit log names people with it. */
/** @type {Map<string, string>} */
const names = new Map();
/** The roles seen on any account (and the two every service has): the roles editor offers them. */
const knownRoles = new Set(['user', 'admin']);
/** @type {Pager} */
let pager;
/** Shows a user's events in the audit log (admin.js switches to it). */
/** @type {(user: { id: string, username: string }) => void} */
let showActivity = () => undefined;

/** The username of the account `id`, when the console has seen it. */
export function nameOf(/** @type {string} */ id) {
  return names.get(id);
}

function remember(/** @type {AdminUser} */ user) {
  names.set(user.id, user.username);
  for (const role of user.roles) knownRoles.add(role);
}

/**
 * The account a person typed (a username, an email address or an id), for the audit log's filter: an exact
 * username or address, else the only account that contains the text. Null when none does, or several and none exactly.
 * @returns {Promise<{ id: string, username: string } | null>}
 */
export async function findUser(/** @type {string} */ text) {
  if (UUID.test(text)) return { id: text.toLowerCase(), username: names.get(text.toLowerCase()) ?? text };
  /** @type {{ users: AdminUser[] }} */
  const answer = await send(`/admin/users?${new URLSearchParams({ q: text, pageSize: '100' })}`);
  answer.users.forEach(remember);
  const wanted = text.toLowerCase();
  const exact = answer.users.find((user) => user.username.toLowerCase() === wanted || user.email.toLowerCase() === wanted);
  return exact ?? (answer.users.length === 1 ? answer.users[0] : null);
}

/** The result area of a user's row. */
function areaOf(/** @type {HTMLElement} */ item) {
  return /** @type {HTMLElement} */ (item.querySelector(':scope > .result'));
}

/** A row's button, marked with what it does so the same button is focused again once the row is drawn anew. */
function action(/** @type {string} */ name, /** @type {HTMLButtonElement} */ button) {
  button.dataset.action = name;
  return button;
}

function row(/** @type {AdminUser} */ user) {
  const item = document.createElement('li');
  item.dataset.id = user.id;
  const self = user.id === state.user?.id;
  item.append(
    headline(user.username, [user.disabled && badge('Disabled', 'expired'), self && badge('You')]),
    facts([`${user.email}${user.emailVerified ? '' : ' (not confirmed)'}`, `roles: ${user.roles.join(', ')}`, `joined ${when(user.createdAt)}`]),
    facts([`id ${user.id}`]),
  );
  const name = user.username;
  const buttons = [
    action(
      'roles',
      itemButton('Edit roles', 'secondary small', `Edit roles of ${name}`, (button) => openRoles(user, item, button)),
    ),
  ];
  // Nobody disables themselves (the server refuses it too): another administrator can.
  if (!self) {
    buttons.push(
      action(
        'toggle',
        user.disabled
          ? itemButton('Enable', 'small', `Enable ${name}`, (button) => void setDisabled(user, false, button))
          : itemButton('Disable', 'danger small', `Disable ${name}`, (button) => void setDisabled(user, true, button)),
      ),
    );
  }
  buttons.push(
    action(
      'sessions',
      itemButton('End sessions', 'danger small', `End sessions of ${name}`, (button) => void endSessions(user, button)),
    ),
    action(
      'activity',
      itemButton('Activity', 'secondary small', `Activity of ${name}`, () => showActivity(user)),
    ),
    action(
      'limits',
      itemButton('Reset rate limits', 'secondary small', `Reset rate limits of ${name}`, (button) => void resetLimits(user, button)),
    ),
  );
  item.append(controls(buttons), rowResult());
  return item;
}

function render() {
  $('#admin-users-list').replaceChildren(...users.map(row));
}

/** Draws one user's row anew after a change, focus on the button named `focus`; returns the new row. */
function replaceRow(/** @type {AdminUser} */ changed, /** @type {string} */ focus) {
  remember(changed);
  users = users.map((user) => (user.id === changed.id ? changed : user));
  const fresh = row(changed);
  const old = $('#admin-users-list').querySelector(`li[data-id="${changed.id}"]`);
  if (old) old.replaceWith(fresh);
  /** @type {HTMLElement | null} */ (fresh.querySelector(`[data-action="${focus}"]`))?.focus();
  return fresh;
}

/** Reads page `page` of the users matching the search; a refusal throws. */
async function read(/** @type {number} */ page) {
  const run = ++reads;
  const epoch = state.epoch;
  const params = new URLSearchParams({ page: String(page), pageSize: String(PAGE_SIZE) });
  if (query) params.set('q', query);
  /** @type {{ users: AdminUser[], page: number, pageSize: number, total: number }} */
  const answer = await send(`/admin/users?${params}`);
  if (run !== reads || epoch !== state.epoch) return;
  users = answer.users;
  users.forEach(remember);
  render();
  pager.show(answer, users.length);
}

/** Reads a page, saying a refusal beside the search form. */
async function load(page = pager.page) {
  const area = resultOf($form('#admin-user-search'));
  try {
    await read(page);
  } catch (error) {
    show(area, `The users could not be read. ${describe(error)}`, 'error', false);
  }
}

/** The users area is shown: its page is read again (someone may have signed up or been changed meanwhile). */
export function loadUsers() {
  return load();
}

function openRoles(/** @type {AdminUser} */ user, /** @type {HTMLElement} */ item, /** @type {HTMLButtonElement} */ opener) {
  const open = item.querySelector('.roles-editor');
  if (open) {
    open.remove();
    opener.setAttribute('aria-expanded', 'false');
    return;
  }
  const form = document.createElement('form');
  form.className = 'roles-editor inline';
  const choices = document.createElement('fieldset');
  const legend = document.createElement('legend');
  legend.textContent = `Roles of ${user.username}`;
  choices.append(legend);
  for (const role of [...new Set([...knownRoles, ...user.roles])].sort()) {
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.name = 'roles';
    box.value = role;
    box.checked = user.roles.includes(role);
    label.append(box, ` ${role}`);
    choices.append(label);
  }
  const other = document.createElement('label');
  const otherInput = document.createElement('input');
  otherInput.name = 'other';
  otherInput.maxLength = 64;
  otherInput.autocomplete = 'off';
  otherInput.spellcheck = false;
  other.append('Another role ', otherInput);
  const save = document.createElement('button');
  save.type = 'submit';
  save.textContent = 'Save roles';
  const cancel = itemButton('Cancel', 'secondary', `Cancel editing the roles of ${user.username}`, () => {
    form.remove();
    opener.setAttribute('aria-expanded', 'false');
    opener.focus();
  });
  form.append(choices, other, controls([save, cancel]));
  form.addEventListener('input', () => show(areaOf(item), ''));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void saveRoles(user, form, item);
  });
  item.querySelector(':scope > .actions')?.after(form);
  opener.setAttribute('aria-expanded', 'true');
  /** @type {HTMLInputElement} */ (choices.querySelector('input')).focus();
}

async function saveRoles(/** @type {AdminUser} */ user, /** @type {HTMLFormElement} */ form, /** @type {HTMLElement} */ item) {
  const data = new FormData(form);
  const roles = [
    ...new Set([
      ...data.getAll('roles').map(String),
      ...formValue(data, 'other')
        .split(/[\s,]+/)
        .filter(Boolean),
    ]),
  ];
  if (roles.length === 0) {
    show(areaOf(item), 'Choose at least one role: every account has one.', 'error');
    return;
  }
  const self = user.id === state.user?.id;
  if (self && user.roles.includes('admin') && !roles.includes('admin')) {
    if (!confirmed('Remove your own administrator role? This console closes at your next refresh, and only another administrator can give it back.')) return;
  }
  await withButton(submitButton(form), async () => {
    /** @type {AdminUser} */
    const changed = await send(`/admin/users/${user.id}/roles`, { method: 'PATCH', body: { roles } });
    const fresh = replaceRow(changed, 'roles');
    show(
      areaOf(fresh),
      `${changed.username} now has the roles ${changed.roles.join(', ')}. Their access tokens were voided: the next refresh carries the new roles.`,
    );
  });
}

async function setDisabled(/** @type {AdminUser} */ user, /** @type {boolean} */ disable, /** @type {HTMLButtonElement} */ button) {
  const question = `Disable ${user.username}? They are signed out everywhere at once and cannot sign in until an administrator enables the account again.`;
  if (disable && !confirmed(question)) return;
  await withButton(button, async () => {
    /** @type {AdminUser} */
    const changed = await send(`/admin/users/${user.id}/${disable ? 'disable' : 'enable'}`, { method: 'POST' });
    const fresh = replaceRow(changed, 'toggle');
    show(
      areaOf(fresh),
      disable
        ? `Disabled ${changed.username}: every session and token of theirs stopped working, and they cannot sign in.`
        : `Enabled ${changed.username}: they can sign in again.`,
    );
  });
}

async function endSessions(/** @type {AdminUser} */ user, /** @type {HTMLButtonElement} */ button) {
  const self = user.id === state.user?.id;
  const question = self
    ? 'End every session of yours, this one included? You are signed out here and everywhere else.'
    : `End every session of ${user.username}? They are signed out on every device and must sign in again; their API keys keep working.`;
  if (!confirmed(question)) return;
  const area = resultOf(button);
  await withButton(button, async () => {
    /** @type {{ ended: number }} */
    const { ended } = await send(`/admin/users/${user.id}/sessions`, { method: 'DELETE' });
    if (self) {
      await endSession();
      say('You ended every session of yours: you are signed out.');
      return;
    }
    show(
      area,
      ended === 0
        ? `${user.username} was signed in nowhere: there was no session to end.`
        : `Ended ${ended} session${ended === 1 ? '' : 's'} of ${user.username}: they are signed out everywhere.`,
    );
  });
}

async function resetLimits(/** @type {AdminUser} */ user, /** @type {HTMLButtonElement} */ button) {
  const area = resultOf(button);
  await withButton(button, async () => {
    await send(`/admin/rate-limits/${encodeURIComponent(`user:${user.id}`)}`, { method: 'DELETE' });
    await send(`/admin/rate-limits/${encodeURIComponent(`apikeys:${user.id}`)}`, { method: 'DELETE' });
    show(area, `Reset the budgets of ${user.username} and of their API keys: their requests are counted afresh.`);
  });
}

async function onSearch(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  await withBusy(form, async () => {
    query = formValue(new FormData(form), 'q').trim();
    await read(1);
  });
}

async function onResetLimit(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const key = formValue(new FormData(form), 'key').trim();
  await withBusy(form, async () => {
    await send(`/admin/rate-limits/${encodeURIComponent(key)}`, { method: 'DELETE' });
    field(form, 'key').value = '';
    show(resultOf(form), `Reset the budgets of ${key} in every group, on every instance.`);
  });
}

/** Forgets everything shown (a sign-out, or the admin role gone). */
export function clearUsers() {
  reads += 1;
  users = [];
  query = '';
  names.clear();
  $('#admin-users-list').replaceChildren();
  pager.clear();
}

/** @param {{ showActivity: (user: { id: string, username: string }) => void }} options */
export function wireAdminUsers(options) {
  showActivity = options.showActivity;
  pager = new Pager({
    prev: /** @type {HTMLButtonElement} */ ($('#admin-users-prev')),
    next: /** @type {HTMLButtonElement} */ ($('#admin-users-next')),
    summary: $('#admin-users-summary'),
    nouns: ['user', 'users'],
    go: (page) => load(page),
  });
  $form('#admin-user-search').addEventListener('submit', (event) => void onSearch(event));
  $form('#admin-limit-form').addEventListener('submit', (event) => void onResetLimit(event));
}
