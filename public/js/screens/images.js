// Your images (or, acting for an organization, its images): the gallery (each opens in the viewer), deleting one,
// and uploading with a progress bar.
import { describe, send } from '../api.js';
import { onSignedIn, onSignedOut, state, tokenOrg } from '../state.js';
import { $, $form, $input, resultOf, show, withBusy, withButton } from '../ui.js';
import { closeViewer, openViewer, wireImageViewer } from './image-viewer.js';
import { onActiveOrg } from './organizations.js';

/** @typedef {import('../types.js').Image} Image */

/** What the gallery shows, kept so a change updates it without asking for everything again. */
/** @type {Image[]} */
let images = [];
/** Whose images were last read: the organization the token spoke for ('' for yourself); undefined before any read. */
/** @type {string | undefined} */
let readFor;
/** Counts reads: an answer overtaken by a newer read (another organization chosen meanwhile) is dropped. */
let reads = 0;

function formatSize(/** @type {number} */ bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function describeImage(/** @type {Image} */ image) {
  return `${image.width}×${image.height} · ${formatSize(image.size)}`;
}

function render() {
  const template = /** @type {HTMLTemplateElement} */ ($('#image-item'));
  const items = images.map((image) => {
    const item = /** @type {HTMLElement} */ (template.content.firstElementChild?.cloneNode(true));
    const img = /** @type {HTMLImageElement} */ (item.querySelector('img'));
    img.src = image.url;
    img.alt = '';
    const open = /** @type {HTMLButtonElement} */ (item.querySelector('.thumb-open'));
    open.setAttribute('aria-label', `Open ${image.name}`);
    open.addEventListener('click', () => openViewer(image, describeImage(image)));
    /** @type {HTMLElement} */ (item.querySelector('.name')).textContent = image.name;
    /** @type {HTMLElement} */ (item.querySelector('.size')).textContent = describeImage(image);
    const remove = /** @type {HTMLButtonElement} */ (item.querySelector('.delete'));
    remove.setAttribute('aria-label', `Delete ${image.name}`);
    remove.addEventListener('click', () => void deleteImage(image, remove));
    return item;
  });
  $('#gallery').replaceChildren(...items);
  $('#empty').hidden = images.length > 0;
}

async function loadImages() {
  const area = resultOf($('#gallery'));
  const epoch = state.epoch;
  const read = ++reads;
  // The server lists the images of the organization the token speaks for, or the person's own.
  readFor = tokenOrg()?.id ?? '';
  try {
    /** @type {import('../types.js').ImagePage} */
    const page = await send('/images?pageSize=100');
    if (epoch !== state.epoch || read !== reads) return;
    images = page.images;
    $('#upload-limit').textContent = `, at most ${formatSize(page.maxUploadBytes)}`;
    render();
  } catch (error) {
    if (epoch === state.epoch && read === reads) show(area, `The images could not be loaded. ${describe(error)}`, 'error');
  }
}

async function deleteImage(/** @type {Image} */ image, /** @type {HTMLButtonElement} */ button) {
  const area = resultOf(button);
  await withButton(button, async () => {
    await send(`/images/${image.id}`, { method: 'DELETE' });
    images = images.filter((other) => other.id !== image.id);
    render();
    show(area, `Deleted ${image.name}.`);
  });
}

async function onUpload(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const file = $input('#file').files?.[0];
  if (!file) return;
  const wrap = $('#progress-wrap');
  const setProgress = (/** @type {number} */ percent) => {
    /** @type {HTMLProgressElement} */ ($('#progress')).value = percent;
    $('#progress-text').textContent = `${percent}%`;
  };
  setProgress(0);
  wrap.hidden = false;
  await withBusy(form, async () => {
    /** @type {Image} */
    const image = await send('/images', { method: 'POST', upload: { file, field: 'image', onProgress: setProgress } });
    setProgress(100);
    form.reset();
    show(resultOf(form), `Uploaded ${file.name}.`);
    // The answer describes the new image, signed URL included: shown without asking for the whole list again.
    images = [image, ...images];
    render();
  });
  wrap.hidden = true;
}

/** Names whose images these are, and reads them again when the token now speaks for someone else than they were read for. */
function showImagesOf(/** @type {{ id: string, name: string } | null} */ org) {
  $('#gallery-title').textContent = org ? `Images of ${org.name}` : 'Your images';
  $('#upload-title').textContent = org ? `Upload an image to ${org.name}` : 'Upload an image';
  if (readFor !== undefined && readFor !== (tokenOrg()?.id ?? '')) {
    closeViewer();
    images = [];
    render();
    void loadImages();
  }
}

export function wireImages() {
  $form('#upload-form').addEventListener('submit', onUpload);
  wireImageViewer();
  onSignedIn(loadImages);
  onActiveOrg(showImagesOf);
  onSignedOut(() => {
    closeViewer();
    images = [];
    readFor = undefined;
    reads += 1;
    showImagesOf(null);
    render();
  });
}
