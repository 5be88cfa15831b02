// Organizations: the switcher at the top ("Acting for" yourself or one of your organizations), the card's heading
// that says which, and creating one. The active organization is the one the access token speaks for (its org_id
// claim); choosing another asks the server for a token that says so, and every screen that depends on it follows.
import { ApiError, describe, send, useAccessToken } from '../api.js';
import { onAccessToken, onSignedIn, onSignedOut, state, tokenOrg } from '../state.js';
import { $, $form, field, formValue, resultOf, say, show, submitButton, withButton } from '../ui.js';

/** @typedef {import('../types.js').MyOrganization} MyOrganization */
/** @typedef {import('../types.js').SwitchedToken} SwitchedToken */
/** @typedef {{ id: string, name: string, role: string }} ActiveOrg the organization acted for, as the page knows it */

/** The organizations you belong to, as last read. */
/** @type {MyOrganization[]} */
let organizations = [];
let signedIn = false;
/** The token's organization and role the screens were last loaded for ('' for none): a token that says otherwise reloads them. */
/** @type {string | null} */
let followed = null;
/** @type {Promise<void>} */
let following = Promise.resolve();
/** Counts reads of the list: an answer overtaken by a newer read is dropped. */
let reads = 0;
/** @type {Array<(active: ActiveOrg | null) => unknown>} */
const activeHandlers = [];
/** Whether the slug was typed by the person (then the name no longer suggests one). */
let slugTyped = false;

/** What each refusal about organizations means, in words, by its reason. */
const REASONS = /** @type {Record<string, string>} */ ({
  org_not_found: 'This organization no longer exists, or you are no longer a member of it.',
  org_grant_exceeded: 'You cannot give a role that grants more than yours, nor change or remove someone whose role does.',
  org_owner_required: 'Only an owner can make someone an owner, or change or remove an owner.',
  org_last_owner: 'The organization must keep an owner: make another member owner first.',
  org_slug_taken: 'Another organization has that slug already: choose another.',
  org_limit_reached: 'You belong to as many organizations as this service allows.',
  org_member_limit_reached: 'The organization has as many members and pending invitations as this service allows.',
  org_creation_not_allowed: 'Only administrators may create organizations here.',
  org_member_not_found: 'That person is no longer a member of the organization.',
  org_role_unknown: 'The organization has no such role (any more).',
  invitation_not_found: 'That invitation is no longer pending: it was accepted or withdrawn meanwhile.',
  invitation_invalid: 'This invitation link is not valid. Check that you opened the whole link from the email.',
  invitation_expired: 'This invitation has expired. Ask whoever invited you to send it again.',
  invitation_used: 'This invitation was accepted already: an invitation link works once.',
  invitation_revoked: 'This invitation was withdrawn by the organization.',
});

/** A sentence for a refusal about organizations: by its reason where the page knows it, else the server's message. */
export function explainOrgError(/** @type {unknown} */ error) {
  if (error instanceof ApiError && error.reason) {
    if (error.reason === 'org_permission_missing') {
      const permission = typeof error.details?.permission === 'string' ? ` (it needs ${error.details.permission})` : '';
      return `Your role in the organization does not allow this${permission}.`;
    }
    const words = REASONS[error.reason];
    if (words) return words;
  }
  return describe(error);
}

/** Runs `handler` each time the organization acted for is known anew (null: yourself), once the list is read. */
export function onActiveOrg(/** @type {(active: ActiveOrg | null) => unknown} */ handler) {
  activeHandlers.push(handler);
}

/** The organization the token speaks for, named as the list names it (with your role as the server last said). */
function activeOrg() {
  const claims = tokenOrg();
  if (!claims) return null;
  const listed = organizations.find((org) => org.id === claims.id);
  return { id: claims.id, name: listed?.name ?? 'an organization you may have left', role: listed?.role ?? claims.role };
}

function switcher() {
  return /** @type {HTMLSelectElement} */ ($('#org-switcher'));
}

function option(/** @type {string} */ text, /** @type {string} */ value) {
  const element = document.createElement('option');
  element.textContent = text;
  element.value = value;
  return element;
}

/** "Personal" and each organization with your role in it; the active one chosen. None to choose from: no switcher. */
function renderSwitcher() {
  const active = activeOrg();
  const options = [option('Personal', ''), ...organizations.map((org) => option(`${org.name} (${org.role})`, org.id))];
  if (active && !organizations.some((org) => org.id === active.id)) options.push(option(active.name, active.id));
  switcher().replaceChildren(...options);
  switcher().value = active?.id ?? '';
  $('#org-switch').hidden = !signedIn || (organizations.length === 0 && active === null);
}

/** The card's heading and the sentence under it say who the page acts for. */
function renderHeading(/** @type {ActiveOrg | null} */ active) {
  $('#org-title').textContent = active ? active.name : 'Organizations';
  $('#org-summary').textContent = active
    ? `You are acting for ${active.name} as ${active.role}: the images on this page are the organization's.`
    : organizations.length > 0
      ? 'You are acting for yourself: the images on this page are your own. To act for an organization, choose it in “Acting for” at the top.'
      : 'You belong to no organization yet. Create one below, or open the link of an invitation someone emailed you.';
}

/** Reads your organizations, then tells every screen which one is acted for. */
async function load() {
  const read = ++reads;
  const epoch = state.epoch;
  const area = resultOf($('#org-summary'));
  try {
    /** @type {{ organizations: MyOrganization[] }} */
    const answer = await send('/orgs');
    if (read !== reads || epoch !== state.epoch) return;
    organizations = answer.organizations;
    show(area, '');
    const active = activeOrg();
    renderSwitcher();
    renderHeading(active);
    await Promise.all(activeHandlers.map((handler) => handler(active)));
  } catch (error) {
    if (read !== reads || epoch !== state.epoch) return;
    followed = null;
    show(area, `Your organizations could not be read. ${explainOrgError(error)}`, 'error', false);
  }
}

/** Loads the screens again when the token speaks for another organization (or role) than they show; `force`: anyway. */
function follow(force = false) {
  if (!signedIn || state.accessToken === null) return following;
  const claims = tokenOrg();
  const key = claims ? `${claims.id} ${claims.role}` : '';
  if (!force && key === followed) return following;
  followed = key;
  following = load();
  return following;
}

/** Reads the list again and has every screen follow (after joining or leaving an organization). */
export function reloadOrganizations() {
  return follow(true);
}

/** Acts for the organization chosen ('' is yourself): the server answers a token that says so, used from then on. */
async function onSwitch() {
  const select = switcher();
  const chosen = select.value;
  const current = tokenOrg()?.id ?? '';
  if (chosen === current) return;
  const org = organizations.find((candidate) => candidate.id === chosen);
  const epoch = state.epoch;
  select.disabled = true;
  say('', 'ok', false);
  try {
    /** @type {SwitchedToken} */
    const answer = chosen ? await send(`/orgs/${encodeURIComponent(chosen)}/switch`, { method: 'POST' }) : await send('/me/active-org', { method: 'DELETE' });
    if (epoch !== state.epoch) return;
    await useAccessToken(answer);
    await follow();
    const now = activeOrg();
    say(now ? `You are now acting for ${now.name} as ${now.role}.` : 'You are now acting for yourself.', 'ok', false);
  } catch (error) {
    if (epoch !== state.epoch) return;
    select.value = tokenOrg()?.id ?? '';
    say(`You could not switch to ${org?.name ?? 'Personal'}: ${explainOrgError(error)}`, 'error');
    if (error instanceof ApiError && error.reason === 'org_not_found') void reloadOrganizations();
  } finally {
    select.disabled = false;
  }
}

/** A slug from a name: lower-case letters and digits, hyphens between words, at most 50 characters. */
function suggestSlug(/** @type {string} */ name) {
  return name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, 50)
    .replace(/-+$/, '');
}

async function onCreate(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const data = new FormData(form);
  await withButton(
    submitButton(form),
    async () => {
      /** @type {MyOrganization} */
      const org = await send('/orgs', { method: 'POST', body: { name: formValue(data, 'name').trim(), slug: formValue(data, 'slug').trim() } });
      form.reset();
      slugTyped = false;
      organizations = [...organizations.filter((other) => other.id !== org.id), org];
      renderSwitcher();
      renderHeading(activeOrg());
      show(resultOf(form), `Created ${org.name} (${org.slug}), with you as its owner. Choose it in “Acting for” at the top to act for it.`);
    },
    explainOrgError,
  );
}

export function wireOrganizations() {
  switcher().addEventListener('change', () => void onSwitch());
  const form = $form('#org-create-form');
  form.addEventListener('submit', (event) => void onCreate(event));
  const name = field(form, 'name');
  const slug = field(form, 'slug');
  name.addEventListener('input', () => {
    if (!slugTyped) slug.value = suggestSlug(name.value);
  });
  slug.addEventListener('input', () => {
    slugTyped = slug.value !== '';
  });
  form.addEventListener('reset', () => {
    slugTyped = false;
  });
  // A refresh may speak for another organization or role than before (a role changed, the organization left or gone).
  onAccessToken(() => void follow());
  onSignedIn(() => {
    signedIn = true;
    followed = null;
    $('#org-title').textContent = 'Organizations';
    $('#org-summary').textContent = 'Reading your organizations…';
    // Not awaited: the gallery need not wait for the list.
    void follow();
  });
  onSignedOut(() => {
    signedIn = false;
    followed = null;
    reads += 1;
    organizations = [];
    slugTyped = false;
    renderSwitcher();
    renderHeading(null);
  });
}
