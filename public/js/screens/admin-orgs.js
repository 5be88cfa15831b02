// Administration › organizations: every organization (search by name or slug, a page at a time), one of them with
// its members, and deleting one.
import { describe, send } from '../api.js';
import { state } from '../state.js';
import { $, $form, formValue, itemButton, resultOf, show, withBusy, withButton } from '../ui.js';
import { confirmed, controls, facts, focusAfterRemoval, headline, Pager, when } from './admin-parts.js';

/**
 * @typedef {{ id: string, name: string, slug: string, settings: Record<string, unknown>, externalId: string | null,
 *   createdAt: string, updatedAt: string }} Organization
 */
/** @typedef {Organization & { members: number }} OrganizationSummary */
/** @typedef {{ userId: string, username: string, email: string, role: string, joinedAt: string }} Member */

const PAGE_SIZE = 20;

/** @type {OrganizationSummary[]} */
let organizations = [];
let search = '';
let reads = 0;
/** The organization shown in detail. */
/** @type {(Organization & { members: Member[] }) | null} */
let opened = null;
/** @type {Pager} */
let pager;

function row(/** @type {OrganizationSummary} */ org) {
  const item = document.createElement('li');
  item.dataset.id = org.id;
  item.append(
    headline(org.name),
    facts([org.slug, `${org.members} member${org.members === 1 ? '' : 's'}`, `created ${when(org.createdAt)}`]),
    controls([
      itemButton('View', 'secondary small', `View ${org.name}`, (button) => void view(org, button)),
      itemButton('Delete', 'danger small', `Delete ${org.name}`, (button) => void remove(org, button)),
    ]),
  );
  return item;
}

function render() {
  $('#admin-orgs-list').replaceChildren(...organizations.map(row));
}

async function read(/** @type {number} */ page) {
  const run = ++reads;
  const epoch = state.epoch;
  const params = new URLSearchParams({ page: String(page), pageSize: String(PAGE_SIZE) });
  if (search) params.set('search', search);
  /** @type {{ organizations: OrganizationSummary[], page: number, pageSize: number, total: number }} */
  const answer = await send(`/admin/orgs?${params}`);
  if (run !== reads || epoch !== state.epoch) return;
  organizations = answer.organizations;
  render();
  pager.show(answer, organizations.length);
}

async function load(page = pager.page) {
  try {
    await read(page);
  } catch (error) {
    show(resultOf($form('#admin-org-search')), `The organizations could not be read. ${describe(error)}`, 'error', false);
  }
}

/** The organizations area is shown: its page is read again. */
export function loadOrgs() {
  return load();
}

/** A term and its description in the detail's list of facts. */
function fact(/** @type {string} */ term, /** @type {string} */ description) {
  const dt = document.createElement('dt');
  dt.textContent = term;
  const dd = document.createElement('dd');
  dd.textContent = description;
  return [dt, dd];
}

async function view(/** @type {OrganizationSummary} */ org, /** @type {HTMLButtonElement} */ button) {
  await withButton(button, async () => {
    /** @type {Organization & { members: Member[] }} */
    const detail = await send(`/admin/orgs/${org.id}`);
    opened = detail;
    $('#admin-org-title').textContent = detail.name;
    $('#admin-org-facts').replaceChildren(
      ...fact('Slug', detail.slug),
      ...fact('Id', detail.id),
      ...fact('External id', detail.externalId ?? 'none'),
      ...fact('Created', when(detail.createdAt)),
      ...fact('Changed', when(detail.updatedAt)),
      ...fact('Settings', Object.keys(detail.settings).length > 0 ? JSON.stringify(detail.settings) : 'none'),
    );
    $('#admin-org-members').replaceChildren(
      ...detail.members.map((member) => {
        const item = document.createElement('li');
        item.append(headline(member.username), facts([member.email, member.role, `joined ${when(member.joinedAt)}`]));
        return item;
      }),
    );
    show(resultOf($('#admin-org-delete')), '');
    $('#admin-org-detail').hidden = false;
    $('#admin-org-title').focus();
  });
}

function closeDetail() {
  opened = null;
  $('#admin-org-detail').hidden = true;
  $('#admin-org-facts').replaceChildren();
  $('#admin-org-members').replaceChildren();
}

async function remove(/** @type {{ id: string, name: string }} */ org, /** @type {HTMLButtonElement} */ button) {
  if (!confirmed(`Delete ${org.name} and everything it owns? Its members lose access to it at once. This cannot be undone.`)) return;
  const index = organizations.findIndex((other) => other.id === org.id);
  await withButton(button, async () => {
    await send(`/admin/orgs/${org.id}`, { method: 'DELETE' });
    if (opened?.id === org.id) closeDetail();
    organizations = organizations.filter((other) => other.id !== org.id);
    render();
    show(resultOf($form('#admin-org-search')), `Deleted ${org.name}: its members' tokens for it stopped working.`);
    const summary = $('#admin-orgs-summary');
    summary.textContent = organizations.length === 0 ? 'No organization on this page any more.' : summary.textContent;
    focusAfterRemoval($('#admin-orgs-list'), index, summary);
  });
}

async function onSearch(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  await withBusy(form, async () => {
    search = formValue(new FormData(form), 'search').trim();
    await read(1);
  });
}

export function clearOrgs() {
  reads += 1;
  organizations = [];
  search = '';
  render();
  closeDetail();
  pager.clear();
}

export function wireAdminOrgs() {
  pager = new Pager({
    prev: /** @type {HTMLButtonElement} */ ($('#admin-orgs-prev')),
    next: /** @type {HTMLButtonElement} */ ($('#admin-orgs-next')),
    summary: $('#admin-orgs-summary'),
    nouns: ['organization', 'organizations'],
    go: (page) => load(page),
  });
  $form('#admin-org-search').addEventListener('submit', (event) => void onSearch(event));
  const remover = /** @type {HTMLButtonElement} */ ($('#admin-org-delete'));
  remover.addEventListener('click', () => {
    if (opened) void remove(opened, remover);
  });
  $('#admin-org-close').addEventListener('click', () => {
    const id = opened?.id;
    closeDetail();
    if (id) /** @type {HTMLElement | null} */ ($('#admin-orgs-list').querySelector(`li[data-id="${id}"] button`))?.focus();
  });
}
