// The in-page viewer: one image, whole and as large as the window allows, in a dialog closed by Close, Esc or a click
// beside it. The image never opens as a bare tab, where the content route's strict policy leaves it unstyled.
import { send } from '../api.js';
import { onSignedOut } from '../state.js';
import { $, resultOf, show } from '../ui.js';

/** @typedef {import('../types.js').Image} Image */

function dialog() {
  return /** @type {HTMLDialogElement} */ ($('#viewer'));
}

function viewerImage() {
  return /** @type {HTMLImageElement} */ ($('#viewer-image'));
}

/** The image being shown, so a late answer about another one is not painted over it. */
/** @type {string | null} */
let showing = null;

/**
 * Opens `image` in the viewer. Its signed URL lives a few minutes: if it has lapsed since the gallery was drawn, a
 * fresh one is asked for once.
 * @param {Image} image
 * @param {string} details a line under the image (its size)
 */
export function openViewer(image, details) {
  showing = image.id;
  const img = viewerImage();
  show(resultOf(img), '');
  $('#viewer-title').textContent = image.name;
  $('#viewer-meta').textContent = details;
  img.alt = image.name;
  img.dataset.retried = '';
  img.src = image.url;
  if (!dialog().open) dialog().showModal();
}

async function onImageError() {
  const img = viewerImage();
  const id = showing;
  if (!id || !img.getAttribute('src')) return;
  if (img.dataset.retried) {
    show(resultOf(img), 'The image could not be shown. Close the viewer and try again.', 'error');
    return;
  }
  img.dataset.retried = 'yes';
  try {
    /** @type {Image} */
    const fresh = await send(`/images/${id}`);
    if (showing === id) img.src = fresh.url;
  } catch {
    show(resultOf(img), 'The image could not be shown: it may have been deleted.', 'error');
  }
}

export function closeViewer() {
  showing = null;
  if (dialog().open) dialog().close();
  viewerImage().removeAttribute('src');
}

export function wireImageViewer() {
  $('#viewer-close').addEventListener('click', closeViewer);
  // A click on the backdrop lands on the dialog itself (its content is inside it): that closes it too.
  dialog().addEventListener('click', (event) => {
    if (event.target === dialog()) closeViewer();
  });
  dialog().addEventListener('close', () => {
    showing = null;
  });
  viewerImage().addEventListener('error', () => void onImageError());
  onSignedOut(closeViewer);
}
