// Administration › signing keys: the keys that sign access tokens with their lifecycle, rotating in the next one,
// and the keys of every other purpose (each rotated on its own).
import { ApiError, describe, send } from '../api.js';
import { state } from '../state.js';
import { $, itemButton, resultOf, show, withButton } from '../ui.js';
import { badge, confirmed, controls, facts, headline, when } from './admin-parts.js';

/**
 * @typedef {{ kid: string, generation: number, algorithm: string, createdAt: string, activatesAt: string,
 *   retiresAt: string | null, unpublishedAt: string | null, state: 'next' | 'signing' | 'retired' }} SigningKey
 */
/** @typedef {{ purpose: string, generation: number, createdAt: string, activatesAt: string, state: 'next' | 'current' | 'previous' }} PurposeKey */

/** What each purpose's key protects, in words. */
const PURPOSES = /** @type {Record<string, string>} */ ({
  totp: 'Authenticator app secrets',
  'recovery-codes': 'Recovery codes',
  'mfa-tokens': 'Second-step tokens',
  'image-urls': 'Signed image links',
  'email-tokens': 'Emailed links and sign-in codes',
  'outbound-mail': 'Messages waiting to be sent',
  'webhook-signing': 'Webhook signing secrets',
  'identity-providers': 'Identity provider client secrets',
});

const STATES = { next: 'Next', signing: 'Signing', retired: 'Retired', current: 'Current', previous: 'Previous' };

let reads = 0;
/** Whether this server has a key ring (ES256); with HS256 there is none to list or rotate. */
let ring = true;

function signingRow(/** @type {SigningKey} */ key) {
  const item = document.createElement('li');
  const kid = document.createElement('code');
  kid.textContent = key.kid;
  const line = headline(`Generation ${key.generation}`, [badge(STATES[key.state], key.state === 'retired' ? 'pending' : '')]);
  line.append(' ', kid);
  item.append(
    line,
    facts([
      key.algorithm,
      `created ${when(key.createdAt)}`,
      `signs from ${when(key.activatesAt)}`,
      key.retiresAt && `until ${when(key.retiresAt)}`,
      key.unpublishedAt && `leaves the key set ${when(key.unpublishedAt)}`,
    ]),
  );
  return item;
}

/** One row per purpose: its keys, newest first, and the button that rotates it. */
function purposeRow(/** @type {string} */ purpose, /** @type {PurposeKey[]} */ keys) {
  const item = document.createElement('li');
  item.dataset.purpose = purpose;
  const name = PURPOSES[purpose] ?? purpose;
  item.append(headline(name), facts([purpose]));
  for (const key of [...keys].sort((a, b) => b.generation - a.generation)) {
    item.append(
      facts([`generation ${key.generation}: ${STATES[key.state].toLowerCase()}`, `created ${when(key.createdAt)}`, `in use from ${when(key.activatesAt)}`]),
    );
  }
  item.append(
    controls([itemButton('Rotate', 'secondary small', `Rotate the key of ${name.toLowerCase()}`, (button) => void rotatePurpose(purpose, name, button))]),
  );
  return item;
}

async function readSigning() {
  try {
    /** @type {{ keys: SigningKey[] }} */
    const answer = await send('/admin/signing-keys');
    ring = true;
    return answer.keys;
  } catch (error) {
    // HS256: one shared secret signs, and there is nothing here to rotate.
    if (error instanceof ApiError && error.reason === 'no_key_ring') {
      ring = false;
      return [];
    }
    throw error;
  }
}

/** The keys area is shown: both lists are read. */
export async function loadKeys() {
  const run = ++reads;
  const epoch = state.epoch;
  const signingArea = resultOf($('#admin-signing-keys'));
  try {
    const [signing, purposes] = await Promise.all([readSigning(), send('/admin/purpose-keys')]);
    if (run !== reads || epoch !== state.epoch) return;
    $('#admin-signing-keys').replaceChildren(...signing.map(signingRow));
    $('#admin-rotate').hidden = !ring;
    if (!ring) show(signingArea, 'Access tokens are signed with one shared secret (JWT_ALGORITHM=HS256): there is no key to list or rotate here.', 'ok', false);
    /** @type {Map<string, PurposeKey[]>} */
    const byPurpose = new Map();
    for (const key of /** @type {{ keys: PurposeKey[] }} */ (purposes).keys) byPurpose.set(key.purpose, [...(byPurpose.get(key.purpose) ?? []), key]);
    $('#admin-purpose-keys').replaceChildren(...[...byPurpose].map(([purpose, keys]) => purposeRow(purpose, keys)));
  } catch (error) {
    if (run === reads && epoch === state.epoch) show(signingArea, `The keys could not be read. ${describe(error)}`, 'error', false);
  }
}

async function rotate(/** @type {HTMLButtonElement} */ button) {
  if (!confirmed('Add the next signing key? It is published now and signs new tokens after one key-set cache lifetime; tokens signed before keep working.'))
    return;
  const area = resultOf(button);
  await withButton(button, async () => {
    /** @type {SigningKey} */
    const key = await send('/admin/signing-keys/rotate', { method: 'POST' });
    await loadKeys();
    show(area, `Added key ${key.kid} (generation ${key.generation}): published now, it signs from ${when(key.activatesAt)}.`);
  });
}

async function rotatePurpose(/** @type {string} */ purpose, /** @type {string} */ name, /** @type {HTMLButtonElement} */ button) {
  if (!confirmed(`Add the next key for ${name.toLowerCase()}? New data uses it once every instance has it; what the older keys protect stays readable.`))
    return;
  const area = resultOf($('#admin-purpose-keys'));
  await withButton(button, async () => {
    /** @type {PurposeKey} */
    const key = await send(`/admin/purpose-keys/${encodeURIComponent(purpose)}/rotate`, { method: 'POST' });
    await loadKeys();
    show(area, `Added generation ${key.generation} for ${name.toLowerCase()}: in use from ${when(key.activatesAt)}.`);
    // The list was drawn anew: the same purpose's button takes the focus back.
    /** @type {HTMLElement | null} */ ($('#admin-purpose-keys').querySelector(`li[data-purpose="${purpose}"] button`))?.focus();
  });
}

export function clearKeys() {
  reads += 1;
  $('#admin-signing-keys').replaceChildren();
  $('#admin-purpose-keys').replaceChildren();
}

export function wireAdminKeys() {
  const button = /** @type {HTMLButtonElement} */ ($('#admin-rotate'));
  button.addEventListener('click', () => void rotate(button));
}
