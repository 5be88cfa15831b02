// Your images: the gallery, deleting one, and uploading with a progress bar.
import { describe, send } from '../api.js';
import { onSignedIn, onSignedOut } from '../state.js';
import { $, $form, $input, say, withBusy } from '../ui.js';

/** @typedef {import('../types.js').Image} Image */

/** What the gallery shows, kept so a change updates it without asking for everything again. */
/** @type {Image[]} */
let images = [];

function formatSize(/** @type {number} */ bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function render() {
  const template = /** @type {HTMLTemplateElement} */ ($('#image-item'));
  const items = images.map((image) => {
    const item = /** @type {HTMLElement} */ (template.content.firstElementChild?.cloneNode(true));
    const img = /** @type {HTMLImageElement} */ (item.querySelector('img'));
    img.src = image.url;
    img.alt = image.name;
    /** @type {HTMLElement} */ (item.querySelector('.name')).textContent = image.name;
    /** @type {HTMLElement} */ (item.querySelector('.size')).textContent = `${image.width}×${image.height} · ${formatSize(image.size)}`;
    const button = /** @type {HTMLButtonElement} */ (item.querySelector('button'));
    button.setAttribute('aria-label', `Delete ${image.name}`);
    button.addEventListener('click', () => void deleteImage(image, button));
    return item;
  });
  $('#gallery').replaceChildren(...items);
  $('#empty').hidden = images.length > 0;
}

async function loadImages() {
  try {
    /** @type {import('../types.js').ImagePage} */
    const page = await send('/images?pageSize=100');
    images = page.images;
    $('#upload-limit').textContent = `, at most ${formatSize(page.maxUploadBytes)}`;
    render();
  } catch (error) {
    say(`Your images could not be loaded. ${describe(error)}`, 'error');
  }
}

async function deleteImage(/** @type {Image} */ image, /** @type {HTMLButtonElement} */ button) {
  button.disabled = true;
  say('');
  try {
    await send(`/images/${image.id}`, { method: 'DELETE' });
    say(`Deleted ${image.name}.`);
    images = images.filter((other) => other.id !== image.id);
    render();
  } catch (error) {
    button.disabled = false;
    say(describe(error), 'error');
  }
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
    say(`Uploaded ${file.name}.`);
    // The answer describes the new image, signed URL included: shown without asking for the whole list again.
    images = [image, ...images];
    render();
  });
  wrap.hidden = true;
}

export function wireImages() {
  $form('#upload-form').addEventListener('submit', onUpload);
  onSignedIn(loadImages);
  onSignedOut(() => {
    images = [];
    $('#gallery').replaceChildren();
  });
}
