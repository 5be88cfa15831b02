// Settings › Delete your account: a confirmation that takes the username typed out and the current password (the
// proof DELETE /me asks for), then the session ends in every tab and the page says the account is gone.
import { ApiError, describe, endSession, send } from '../api.js';
import { onSignedIn, onSignedOut, onUserChanged, state } from '../state.js';
import { $, $form, field, formValue, resultOf, say, show, submitButton, withButton } from '../ui.js';

/** What a tab whose account was deleted in another tab says once its session ends there too. */
const DELETED_ELSEWHERE = 'Your account was deleted in another tab, with everything in it. You are signed out here too.';
/** Where a tab tells the page's other tabs (same browser, same origin) which account it deleted. */
const CHANNEL = 'authkit.account-deleted';

/** @type {BroadcastChannel | null} */
let channel = null;
/** The last account signed in in this tab: word of its deletion from another tab is said only for it. */
let lastUserId = '';

function form() {
  return $form('#delete-form');
}

function opener() {
  return /** @type {HTMLButtonElement} */ ($('#delete-open'));
}

/** Shows or hides the confirmation; opening it puts the cursor in its first field, closing it empties it. */
function showConfirmation(/** @type {boolean} */ open) {
  const confirmation = form();
  if (!open) confirmation.reset();
  confirmation.hidden = !open;
  opener().hidden = open;
  opener().setAttribute('aria-expanded', String(open));
  if (open) field(confirmation, 'confirmUsername').focus();
}

/** An account made by an outside provider has no password to confirm with: it is told how to set one instead. */
function showWhatIsNeeded() {
  const noPassword = state.user?.hasPassword === false;
  $('#delete-no-password').hidden = !noPassword;
  opener().disabled = noPassword;
  if (noPassword) showConfirmation(false);
  $('#delete-username-hint').textContent = state.user ? `Type ${state.user.username}.` : '';
}

/** The sentence for a refusal of DELETE /me, in the words this screen needs. */
function explain(/** @type {unknown} */ error) {
  if (error instanceof ApiError && error.reason === 'org_last_owner') {
    return 'You are the only owner of an organization that others belong to. Make one of them an owner, or delete the organization, first.';
  }
  return describe(error);
}

async function onDelete(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const confirmation = /** @type {HTMLFormElement} */ (event.currentTarget);
  const data = new FormData(confirmation);
  const user = state.user;
  if (!user) return;
  // Usernames are told apart without regard to case, here as on the server.
  if (formValue(data, 'confirmUsername').trim().toLowerCase() !== user.username.toLowerCase()) {
    show(resultOf(confirmation), `That is not your username: type ${user.username} to confirm.`, 'error');
    field(confirmation, 'confirmUsername').focus();
    return;
  }
  let deleted = false;
  await withButton(
    submitButton(confirmation),
    async () => {
      await send('/me', { method: 'DELETE', body: { password: formValue(data, 'password') } });
      deleted = true;
    },
    explain,
  );
  if (!deleted) return;
  // The server has ended every session already: the other tabs hear why, then the client forgets the session in all.
  channel?.postMessage({ userId: user.id });
  await endSession();
  say(`Your account ${user.username} is deleted, with everything in it. You are signed out.`);
  $('#status').focus();
}

/** Word from another tab that it deleted `userId`: said here once this tab's session has ended too. */
function onDeletedElsewhere(/** @type {MessageEvent} */ message) {
  const userId = /** @type {{ userId?: unknown }} */ (message.data)?.userId;
  if (typeof userId !== 'string' || userId !== lastUserId) return;
  if (state.accessToken !== null) state.signOutNotice = DELETED_ELSEWHERE;
  else say(DELETED_ELSEWHERE);
}

export function wireDeleteAccount() {
  opener().addEventListener('click', () => showConfirmation(true));
  const confirmation = form();
  confirmation.addEventListener('submit', onDelete);
  confirmation.querySelector('.cancel')?.addEventListener('click', () => {
    showConfirmation(false);
    opener().focus();
  });
  // Escape inside the confirmation is Cancel.
  confirmation.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape') return;
    event.preventDefault();
    showConfirmation(false);
    opener().focus();
  });
  if ('BroadcastChannel' in window) {
    channel = new window.BroadcastChannel(CHANNEL);
    channel.addEventListener('message', onDeletedElsewhere);
  }
  onUserChanged(showWhatIsNeeded);
  onSignedIn(() => {
    lastUserId = state.user?.id ?? '';
    showWhatIsNeeded();
  });
  onSignedOut(() => showConfirmation(false));
}
