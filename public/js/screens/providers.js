// Outside identity providers: "Continue with …" on the sign-in card, the way back from a provider, and the linked
// providers in Settings › Ways you sign in (link and unlink).
import { describe, send, signIn } from '../api.js';
import { onSignedOut } from '../state.js';
import { $, itemButton, resultOf, say, show, withButton } from '../ui.js';
import { afterFirstStep } from './sign-in.js';
import { noteSignInMethods } from './sign-in-methods.js';

/** @typedef {{ id: string, name: string, type: string }} Provider */
/** @typedef {{ id: string, provider: string, email: string | null, createdAt: string, lastUsedAt: string | null }} Identity */

/** What a refusal at the callback means, in words (the callback can send only the reason). */
const REASONS = /** @type {Record<string, string>} */ ({
  state_mismatch: 'That sign-in was not started in this browser, was used already, or took too long. Please start again.',
  provider_denied: 'The provider did not sign you in: it was declined or refused there.',
  provider_email_unverified: 'The provider does not vouch for an email address of your account there. Verify one there, or create an account here.',
  provider_response_invalid: "The provider's answer could not be verified. Please start again.",
  provider_unavailable: 'The provider did not answer in time. Please try again shortly.',
  provider_not_found: 'That provider is not offered any more.',
  link_requires_sign_in:
    'An account with this email address exists. Sign in to it (with your password, a passkey or an emailed code), then link the provider in Settings.',
  identity_already_linked: 'That account at the provider is linked to another account here already.',
  rate_limited: 'Too many attempts. Please wait a minute and try again.',
});

/** @type {Provider[]} */
let providers = [];
/** Set when this tab sends the person to a provider: a code that arrives in a tab that did not is not used. */
const STARTED_KEY = 'authkit.provider-started';

function nameOf(/** @type {string} */ id) {
  return providers.find((provider) => provider.id === id)?.name ?? id;
}

/** Reads the enabled providers and offers a button for each on the sign-in card (none: no buttons, no heading). */
export async function wireProviders() {
  try {
    /** @type {{ providers: Provider[] }} */
    const answer = await send('/auth/providers', { auth: false });
    providers = answer.providers;
  } catch {
    providers = [];
  }
  const links = providers.map((provider) => {
    const link = document.createElement('a');
    link.className = 'button secondary';
    link.href = `/auth/providers/${encodeURIComponent(provider.id)}/start`;
    link.textContent = `Continue with ${provider.name}`;
    link.addEventListener('click', () => sessionStorage.setItem(STARTED_KEY, '1'));
    return link;
  });
  $('#provider-buttons').replaceChildren(...links);
  $('#provider-sign-in').hidden = providers.length === 0;
  onSignedOut(() => $('#link-buttons').replaceChildren());
}

/** @typedef {{ code: string | null, error: string | null, linked: string | null, startedHere: boolean }} ProviderReturn */

/**
 * Reads what a provider's way back put in the address (#provider-code, #provider-error, #provider-linked) and takes
 * it out at once, before anything else runs: a code is single use and must not stay in the history.
 * @returns {ProviderReturn | null}
 */
export function takeProviderReturn() {
  const answer = new URLSearchParams(window.location.hash.slice(1));
  const taken = { code: answer.get('provider-code'), error: answer.get('provider-error'), linked: answer.get('provider-linked') };
  if (taken.code === null && taken.error === null && taken.linked === null) return null;
  window.history.replaceState(null, '', window.location.pathname + window.location.search);
  const startedHere = sessionStorage.getItem(STARTED_KEY) === '1';
  sessionStorage.removeItem(STARTED_KEY);
  return { ...taken, startedHere };
}

/** A code signs in (only in the tab that went to the provider), an error is said in words, a link is confirmed. */
export async function followProviderReturn(/** @type {ProviderReturn | null} */ back) {
  if (back === null) return;
  if (back.error !== null) {
    say(REASONS[back.error] ?? 'Signing in with the provider did not work. Please start again.', 'error');
  } else if (back.linked !== null) {
    const provider = providers.find((each) => each.id === back.linked);
    if (provider && back.startedHere) say(`${provider.name} is linked: you can sign in with it from now on.`);
  } else if (back.code !== null) {
    // Someone else's code, planted in a link to this page, would sign this browser into their account.
    if (!back.startedHere) {
      say('A sign-in this page did not start was ignored. To sign in with a provider, use its button.', 'error');
      return;
    }
    try {
      await afterFirstStep(await signIn.providerCode(back.code));
    } catch (failure) {
      say(describe(failure), 'error');
    }
  }
}

/** Settings › Ways you sign in: what is linked, a button to unlink each, a button to link each other one. */
export async function loadIdentities() {
  if (providers.length === 0) return;
  /** @type {{ identities: Identity[] }} */
  const answer = await send('/me/identities');
  showIdentities(answer.identities);
}

function showIdentities(/** @type {Identity[]} */ identities) {
  const items = identities.map((identity) => {
    const item = document.createElement('li');
    item.dataset.method = 'provider';
    const name = document.createElement('strong');
    name.textContent = nameOf(identity.provider);
    const about = document.createElement('span');
    about.className = 'muted';
    const used = identity.lastUsedAt ? `last used ${new Date(identity.lastUsedAt).toLocaleString()}` : 'not used yet';
    about.textContent = `${identity.email ? `As ${identity.email}; ` : ''}linked ${new Date(identity.createdAt).toLocaleDateString()}, ${used}.`;
    item.append(name, about);
    item.append(itemButton('Unlink', 'danger small', `Unlink ${nameOf(identity.provider)}`, (button) => void unlink(identity, button, identities)));
    return item;
  });
  const linkable = providers.filter((provider) => !identities.some((identity) => identity.provider === provider.id));
  const buttons = linkable.map((provider) =>
    itemButton(`Link ${provider.name}`, 'secondary small', `Link ${provider.name}`, (button) => void link(provider, button)),
  );
  noteSignInMethods({ providers: items });
  $('#link-buttons').replaceChildren(...buttons);
}

async function unlink(/** @type {Identity} */ identity, /** @type {HTMLButtonElement} */ button, /** @type {Identity[]} */ identities) {
  const area = resultOf(button);
  await withButton(button, async () => {
    await send(`/me/identities/${identity.id}`, { method: 'DELETE' });
    showIdentities(identities.filter((other) => other.id !== identity.id));
    show(area, `${nameOf(identity.provider)} is unlinked: it no longer signs you in.`);
  });
}

async function link(/** @type {Provider} */ provider, /** @type {HTMLButtonElement} */ button) {
  await withButton(button, async () => {
    /** @type {{ url: string }} */
    const started = await send('/me/identities', { method: 'POST', body: { provider: provider.id } });
    sessionStorage.setItem(STARTED_KEY, '1');
    window.location.assign(started.url);
  });
}
