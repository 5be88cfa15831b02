// The organization acted for: its members (a role picker and a remove button where your role allows them), inviting
// by email, the invitations still pending (resend, withdraw, the expired ones marked), and leaving it. What your role
// does not allow is not offered; the server decides all the same, and a refusal is said in words beside the control.
import { ApiError, refresh, send } from '../api.js';
import { onSignedOut, state, tokenOrg } from '../state.js';
import { $, $form, field, formValue, itemButton, resultOf, say, show, submitButton, withButton } from '../ui.js';
import { explainOrgError, onActiveOrg, reloadOrganizations } from './organizations.js';

/** @typedef {import('../types.js').OrganizationStanding} OrganizationStanding */
/** @typedef {import('../types.js').Member} Member */
/** @typedef {import('../types.js').OrgRole} OrgRole */
/** @typedef {import('../types.js').Invitation} Invitation */
/** @typedef {import('./organizations.js').ActiveOrg} ActiveOrg */

/** The organization shown, with your role and what it grants, as the server last said; null: none is. */
/** @type {OrganizationStanding | null} */
let org = null;
/** Null when your role does not let you see them. */
/** @type {Member[] | null} */
let members = null;
/** @type {OrgRole[]} */
let roles = [];
/** @type {Invitation[]} */
let invitations = [];
/** Counts reads: an answer for an organization no longer shown is dropped. */
let reads = 0;

function can(/** @type {string} */ permission) {
  return org?.permissions.includes(permission) ?? false;
}

/** Whether your role covers `role`'s: nobody gives, changes or takes away more than they hold, and owners only by owners. */
function within(/** @type {string} */ role) {
  if (!org) return false;
  if (role === 'owner') return org.role === 'owner';
  const known = roles.find((candidate) => candidate.name === role);
  return known === undefined || known.permissions.every((permission) => org?.permissions.includes(permission));
}

/** The roles you may give. */
function grantable() {
  return roles.filter((role) => within(role.name));
}

function roleSelect(/** @type {string} */ current, /** @type {string} */ label) {
  const select = document.createElement('select');
  select.setAttribute('aria-label', label);
  const names = grantable().map((role) => role.name);
  if (!names.includes(current)) names.unshift(current);
  for (const name of names) {
    const choice = document.createElement('option');
    choice.value = name;
    choice.textContent = name;
    select.append(choice);
  }
  select.value = current;
  return select;
}

function when(/** @type {string} */ iso) {
  return new Date(iso).toLocaleString();
}

function renderMembers() {
  const list = $('#members');
  const note = $('#members-note');
  if (members === null) {
    note.textContent = 'Your role in the organization does not include seeing its members.';
    note.hidden = false;
    list.replaceChildren();
    return;
  }
  note.hidden = true;
  const items = members.map((member) => {
    const item = document.createElement('li');
    const self = member.userId === state.user?.id;
    const line = document.createElement('div');
    const name = document.createElement('strong');
    name.textContent = member.username;
    line.append(name);
    if (self) {
      const badge = document.createElement('span');
      badge.className = 'badge';
      badge.textContent = 'You';
      line.append(' ', badge);
    }
    const picker = !self && can('members:update') && within(member.role);
    if (!picker) line.append(` · ${member.role}`);
    const about = document.createElement('span');
    about.className = 'muted';
    about.textContent = `${member.email} · joined ${when(member.joinedAt)}`;
    item.append(line, about);
    const controls = document.createElement('div');
    controls.className = 'actions';
    if (picker) {
      const select = roleSelect(member.role, `Role of ${member.username}`);
      select.addEventListener('change', () => void changeRole(member, select));
      const label = document.createElement('label');
      label.className = 'inline-label';
      label.append('Role ', select);
      controls.append(label);
    }
    if (!self && can('members:remove') && within(member.role)) {
      controls.append(itemButton('Remove', 'danger small', `Remove ${member.username}`, (button) => void removeMember(member, button)));
    }
    if (controls.childElementCount > 0) item.append(controls);
    return item;
  });
  list.replaceChildren(...items);
}

/** The invite form's role picker (member chosen unless it is not yours to give) and the pending invitations. */
function renderInvitations() {
  $('#invite-section').hidden = !can('members:invite');
  const form = $form('#invite-form');
  const picker = /** @type {HTMLSelectElement} */ (form.elements.namedItem('role'));
  const chosen = picker.value;
  const names = grantable().map((role) => role.name);
  picker.replaceChildren(
    ...names.map((name) => {
      const choice = document.createElement('option');
      choice.value = name;
      choice.textContent = name;
      // The default a reset of the form goes back to.
      choice.defaultSelected = name === 'member';
      return choice;
    }),
  );
  picker.value = names.includes(chosen) ? chosen : names.includes('member') ? 'member' : (names[0] ?? '');
  const now = Date.now();
  const items = invitations.map((invitation) => {
    const item = document.createElement('li');
    const expired = new Date(invitation.expiresAt).getTime() <= now;
    const line = document.createElement('div');
    const address = document.createElement('strong');
    address.textContent = invitation.email;
    line.append(address, ` · ${invitation.role}`);
    if (expired) {
      const badge = document.createElement('span');
      badge.className = 'badge expired';
      badge.textContent = 'Expired';
      line.append(' ', badge);
    }
    const about = document.createElement('span');
    about.className = 'muted';
    about.textContent = `sent ${when(invitation.createdAt)} · ${expired ? 'its link stopped working' : 'its link works until'} ${when(invitation.expiresAt)}`;
    const controls = document.createElement('div');
    controls.className = 'actions';
    controls.append(
      itemButton(
        expired ? 'Send a new link' : 'Resend',
        'secondary small',
        // The visible words begin the name (WCAG 2.5.3): a person who says "Resend" reaches this button.
        expired ? `Send a new link to ${invitation.email}` : `Resend the invitation to ${invitation.email}`,
        (button) => void resend(invitation, button),
      ),
      itemButton('Withdraw', 'danger small', `Withdraw the invitation to ${invitation.email}`, (button) => void withdraw(invitation, button)),
    );
    item.append(line, about, controls);
    return item;
  });
  $('#invitations').replaceChildren(...items);
  $('#invitations-empty').hidden = invitations.length > 0;
}

function clear() {
  org = null;
  members = null;
  roles = [];
  invitations = [];
  $('#org-detail').hidden = true;
  $('#members').replaceChildren();
  $('#invitations').replaceChildren();
  for (const area of $('#org-detail').querySelectorAll('.result')) show(/** @type {HTMLElement} */ (area), '');
  $form('#invite-form').reset();
}

/** Reads the organization acted for, with your standing in it, and what your role lets you see of it. */
async function showOrg(/** @type {ActiveOrg | null} */ active) {
  const read = ++reads;
  const epoch = state.epoch;
  if (active === null) {
    clear();
    return;
  }
  // Nothing of another organization stays on screen while this one is read.
  if (org?.id !== active.id) clear();
  const base = `/orgs/${encodeURIComponent(active.id)}`;
  try {
    /** @type {OrganizationStanding} */
    const standing = await send(base);
    const holds = (/** @type {string} */ permission) => standing.permissions.includes(permission);
    /** @type {[{ members: Member[] } | null, { roles: OrgRole[] }, { invitations: Invitation[] }]} */
    const [memberList, roleList, pending] = await Promise.all([
      holds('members:read') ? send(`${base}/members`) : null,
      holds('members:update') || holds('members:invite') ? send(`${base}/roles`) : { roles: [] },
      holds('members:invite') ? send(`${base}/invitations`) : { invitations: [] },
    ]);
    if (read !== reads || epoch !== state.epoch) return;
    org = standing;
    members = memberList?.members ?? null;
    roles = roleList.roles;
    invitations = pending.invitations;
    renderMembers();
    renderInvitations();
    $('#org-detail').hidden = false;
  } catch (error) {
    if (read !== reads || epoch !== state.epoch) return;
    clear();
    show(resultOf($('#org-summary')), `${active.name} could not be read. ${explainOrgError(error)}`, 'error', false);
  }
}

/** Whether the organization shown is still `shown` when an answer comes (another may have been chosen meanwhile). */
function stillShowing(/** @type {OrganizationStanding} */ shown) {
  return org?.id === shown.id;
}

async function changeRole(/** @type {Member} */ member, /** @type {HTMLSelectElement} */ select) {
  const shown = org;
  const role = select.value;
  if (!shown || role === member.role) return;
  const area = resultOf($('#members'));
  select.disabled = true;
  show(area, '');
  try {
    /** @type {Member} */
    const changed = await send(`/orgs/${encodeURIComponent(shown.id)}/members/${encodeURIComponent(member.userId)}`, { method: 'PATCH', body: { role } });
    if (!stillShowing(shown)) return;
    members = (members ?? []).map((other) => (other.userId === changed.userId ? changed : other));
    renderMembers();
    show(area, `${changed.username} is now ${changed.role}.`);
  } catch (error) {
    select.value = member.role;
    if (stillShowing(shown)) show(area, `${member.username} is still ${member.role}: ${explainOrgError(error)}`, 'error');
  } finally {
    select.disabled = false;
  }
}

async function removeMember(/** @type {Member} */ member, /** @type {HTMLButtonElement} */ button) {
  const shown = org;
  if (!shown || !window.confirm(`Remove ${member.username} from ${shown.name}? They lose access to it at once.`)) return;
  const area = resultOf(button);
  await withButton(
    button,
    async () => {
      await send(`/orgs/${encodeURIComponent(shown.id)}/members/${encodeURIComponent(member.userId)}`, { method: 'DELETE' });
      if (!stillShowing(shown)) return;
      members = (members ?? []).filter((other) => other.userId !== member.userId);
      renderMembers();
      show(area, `Removed ${member.username} from ${shown.name}.`);
    },
    explainOrgError,
  );
}

async function onInvite(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const shown = org;
  if (!shown) return;
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const data = new FormData(form);
  await withButton(
    submitButton(form),
    async () => {
      /** @type {Invitation} */
      const invitation = await send(`/orgs/${encodeURIComponent(shown.id)}/invitations`, {
        method: 'POST',
        body: { email: formValue(data, 'email').trim(), role: formValue(data, 'role') },
      });
      if (!stillShowing(shown)) return;
      // An earlier pending invitation of the same address was replaced by this one.
      invitations = [invitation, ...invitations.filter((other) => other.email !== invitation.email)];
      renderInvitations();
      field(form, 'email').value = '';
      show(
        resultOf(form),
        `Invited ${invitation.email} as ${invitation.role}. The link will arrive within a minute, unless that address has had too many messages lately; it works until ${when(invitation.expiresAt)}.`,
      );
    },
    explainOrgError,
  );
}

async function resend(/** @type {Invitation} */ invitation, /** @type {HTMLButtonElement} */ button) {
  const shown = org;
  if (!shown) return;
  const area = resultOf(button);
  await withButton(
    button,
    async () => {
      /** @type {Invitation} */
      const renewed = await send(`/orgs/${encodeURIComponent(shown.id)}/invitations/${encodeURIComponent(invitation.id)}/resend`, { method: 'POST' });
      if (!stillShowing(shown)) return;
      invitations = invitations.map((other) => (other.id === renewed.id ? renewed : other));
      renderInvitations();
      show(area, `Sent the invitation to ${renewed.email} again: the earlier link no longer works, the new one works until ${when(renewed.expiresAt)}.`);
    },
    (error) => {
      if (error instanceof ApiError && error.reason === 'invitation_not_found') void showOrg(shown);
      return explainOrgError(error);
    },
  );
}

async function withdraw(/** @type {Invitation} */ invitation, /** @type {HTMLButtonElement} */ button) {
  const shown = org;
  if (!shown) return;
  const area = resultOf(button);
  await withButton(
    button,
    async () => {
      await send(`/orgs/${encodeURIComponent(shown.id)}/invitations/${encodeURIComponent(invitation.id)}`, { method: 'DELETE' });
      if (!stillShowing(shown)) return;
      invitations = invitations.filter((other) => other.id !== invitation.id);
      renderInvitations();
      show(area, `Withdrew the invitation to ${invitation.email}: its link no longer works.`);
    },
    (error) => {
      if (error instanceof ApiError && error.reason === 'invitation_not_found') void showOrg(shown);
      return explainOrgError(error);
    },
  );
}

/** Leaves the organization shown (after asking); the page then acts for the person alone. */
async function leave(/** @type {HTMLButtonElement} */ button) {
  const shown = org;
  const me = state.user;
  if (!shown || !me) return;
  if (!window.confirm(`Leave ${shown.name}? You lose its members and images at once; only a new invitation brings you back.`)) return;
  await withButton(
    button,
    async () => {
      await send(`/orgs/${encodeURIComponent(shown.id)}/members/${encodeURIComponent(me.id)}`, { method: 'DELETE' });
      // The server voided this session's tokens for it and stopped the session speaking for it: a refresh brings a
      // token that says so (no request is made with the void one).
      if (tokenOrg()?.id === shown.id) await refresh();
      await reloadOrganizations();
      say(`You left ${shown.name}.`);
    },
    (error) =>
      error instanceof ApiError && error.reason === 'org_last_owner'
        ? `You are the only owner of ${shown.name}: make another member owner before you leave.`
        : explainOrgError(error),
  );
}

export function wireOrgScreen() {
  $form('#invite-form').addEventListener('submit', (event) => void onInvite(event));
  const leaveButton = /** @type {HTMLButtonElement} */ ($('#leave-org'));
  leaveButton.addEventListener('click', () => void leave(leaveButton));
  onActiveOrg(showOrg);
  onSignedOut(() => {
    reads += 1;
    clear();
  });
}
