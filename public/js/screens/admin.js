// Administration: the console shown to administrators (the access token's roles say admin; the server decides every
// call all the same), its tabs, and which area is read when. Each area lives in its own admin-*.js.
import { onAccessToken, onSignedOut, tokenRoles } from '../state.js';
import { $, show } from '../ui.js';
import { clearAudit, loadAudit, showEventsOf, wireAdminAudit } from './admin-audit.js';
import { clearClients, forgetClientSecret, loadClients, wireAdminClients } from './admin-clients.js';
import { clearKeys, loadKeys, wireAdminKeys } from './admin-keys.js';
import { clearOrgs, loadOrgs, wireAdminOrgs } from './admin-orgs.js';
import { clearProviders, loadProviders, wireAdminProviders } from './admin-providers.js';
import { clearUsers, loadUsers, wireAdminUsers } from './admin-users.js';
import { clearWebhooks, forgetWebhookSecret, loadWebhooks, wireAdminWebhooks } from './admin-webhooks.js';

/**
 * Each area by the name its tab and panel carry (#admin-tab-NAME, #admin-NAME): what reads it when it is shown,
 * what forgets it, and what leaves it (a one-time secret goes when the area is left).
 * @type {Record<string, { load: () => unknown, clear: () => void, leave?: () => void }>}
 */
const AREAS = {
  users: { load: loadUsers, clear: clearUsers },
  audit: { load: loadAudit, clear: clearAudit },
  webhooks: { load: loadWebhooks, clear: clearWebhooks, leave: forgetWebhookSecret },
  keys: { load: loadKeys, clear: clearKeys },
  providers: { load: loadProviders, clear: clearProviders },
  clients: { load: loadClients, clear: clearClients, leave: forgetClientSecret },
  orgs: { load: loadOrgs, clear: clearOrgs },
};

/** Whether the console is on screen (the token says admin). */
let shown = false;
let active = 'users';

function tabs() {
  return /** @type {HTMLButtonElement[]} */ ([...$('#admin-tabs').querySelectorAll('[role=tab]')]);
}

/** Shows the area `name` (its tab selected, the only one in the Tab order); `load` reads it. */
function select(/** @type {string} */ name, load = true) {
  if (active !== name) AREAS[active].leave?.();
  active = name;
  for (const tab of tabs()) {
    const selected = tab.id === `admin-tab-${name}`;
    tab.setAttribute('aria-selected', String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $(`#${tab.getAttribute('aria-controls')}`).hidden = !selected;
  }
  if (load) void AREAS[name].load();
}

/**
 * The tab list's keys (WAI-ARIA tabs, activated by hand): arrows, Home and End move between the tabs, Enter or Space
 * shows the one focused (each area is read from the server when shown, so merely passing one reads nothing).
 */
function onTabKey(/** @type {KeyboardEvent} */ event) {
  const all = tabs();
  const at = all.indexOf(/** @type {HTMLButtonElement} */ (document.activeElement));
  if (at < 0) return;
  const moves = /** @type {Record<string, number>} */ ({
    ArrowRight: at + 1,
    ArrowDown: at + 1,
    ArrowLeft: at - 1,
    ArrowUp: at - 1,
    Home: 0,
    End: all.length - 1,
  });
  if (!(event.key in moves)) return;
  event.preventDefault();
  all[(moves[event.key] + all.length) % all.length].focus();
}

function forgetAll() {
  for (const area of Object.values(AREAS)) area.clear();
  for (const result of $('#admin-card').querySelectorAll('.result')) show(/** @type {HTMLElement} */ (result), '');
}

/** Follows the access token: the console appears when it says admin, and goes (emptied) when it no longer does. */
function follow() {
  const admin = tokenRoles().includes('admin');
  if (admin === shown) return;
  shown = admin;
  $('#admin-card').hidden = !admin;
  if (admin) select('users');
  else {
    forgetAll();
    select('users', false);
  }
}

export function wireAdmin() {
  wireAdminUsers({
    showActivity: (user) => {
      select('audit', false);
      $('#admin-tab-audit').focus();
      void showEventsOf(user);
    },
  });
  wireAdminAudit();
  wireAdminWebhooks();
  wireAdminKeys();
  wireAdminProviders();
  wireAdminClients();
  wireAdminOrgs();
  for (const tab of tabs()) tab.addEventListener('click', () => select(tab.id.replace('admin-tab-', '')));
  $('#admin-tabs').addEventListener('keydown', onTabKey);
  onAccessToken(follow);
  onSignedOut(() => {
    shown = false;
    $('#admin-card').hidden = true;
    forgetAll();
    select('users', false);
  });
}
