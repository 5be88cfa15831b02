// Small DOM helpers shared by every screen: element lookup, result areas beside each action, and busy buttons.
import { describe } from './errors.js';

/**
 * The element `selector` names; the page's markup always has it, so a miss is a bug worth an exception.
 * @param {string} selector
 * @returns {HTMLElement}
 */
export function $(selector) {
  const element = document.querySelector(selector);
  if (!element) throw new Error(`The page has no ${selector}`);
  return /** @type {HTMLElement} */ (element);
}

/** @param {string} selector @returns {HTMLFormElement} */
export function $form(selector) {
  return /** @type {HTMLFormElement} */ ($(selector));
}

/** @param {string} selector @returns {HTMLInputElement} */
export function $input(selector) {
  return /** @type {HTMLInputElement} */ ($(selector));
}

/**
 * A form's input by name.
 * @param {HTMLFormElement} form
 * @param {string} name
 * @returns {HTMLInputElement}
 */
export function field(form, name) {
  return /** @type {HTMLInputElement} */ (form.elements.namedItem(name));
}

/** A form field's value as a string (empty when absent). */
export function formValue(/** @type {FormData} */ data, /** @type {string} */ name) {
  return String(data.get(name) ?? '');
}

/**
 * Where the outcome of acting on `element` is shown: the `.result` of the nearest enclosing form, section or panel
 * that has one, so it appears beside what the person did (the page's status line only when nothing closer has one).
 * @param {Element} element
 * @returns {HTMLElement}
 */
export function resultOf(element) {
  for (let scope = /** @type {Element | null} */ (element); scope; scope = scope.parentElement) {
    const area = scope.querySelector(':scope > .result');
    if (area) return /** @type {HTMLElement} */ (area);
  }
  return $('#status');
}

/**
 * Shows `message` in a result area (announced to screen readers by its aria-live), as `ok` or `error`; an empty
 * message clears it.
 * @param {HTMLElement} area
 * @param {string} message
 * @param {'ok' | 'error'} [kind]
 * @param {boolean} [reveal] whether to scroll it into view (not for what happens behind the person's back)
 */
export function show(area, message, kind = 'ok', reveal = true) {
  area.textContent = message;
  area.classList.toggle('error', message !== '' && kind === 'error');
  area.classList.toggle('ok', message !== '' && kind === 'ok');
  // Below the button pressed, a result can fall under the fold of a phone's screen: it scrolls up just enough.
  if (message && reveal) area.scrollIntoView({ block: 'nearest' });
}

/**
 * Shows a message about the page as a whole (a sign-out, a followed email link) on the status line, and brings the
 * line into view: such a message answers nothing on screen, so it must not land where nobody is looking.
 */
export function say(/** @type {string} */ message, /** @type {'ok' | 'error'} */ kind = 'ok', reveal = true) {
  show($('#status'), message, kind, reveal);
}

/**
 * Runs `work` with `button` disabled and its result area cleared; anything it throws is said in words there.
 * @param {HTMLButtonElement} button
 * @param {() => Promise<void>} work
 * @param {(error: unknown) => string} [explain] the sentence for a failure (`describe` unless given)
 */
export async function withButton(button, work, explain = describe) {
  const area = resultOf(button);
  // A focused button that is disabled loses the focus (to the page itself): a keyboard user would start over from
  // the top. It comes back once the work is done, unless the work put it somewhere on purpose.
  const hadFocus = document.activeElement === button;
  button.disabled = true;
  show(area, '');
  // A page-wide message ("You are logged out.") is about what came before this action: it goes too.
  show($('#status'), '');
  try {
    await work();
  } catch (error) {
    // The button may have left the page meanwhile (a list redrawn): its area is still the right place to say it.
    show(area, explain(error), 'error');
  } finally {
    button.disabled = false;
    if (hadFocus) keepFocusNear(button, area);
  }
}

/**
 * Puts the focus back on `button` when it was lost meanwhile; on `area` (what was said about it) when the button
 * itself is gone or hidden (a list redrawn, a form closed).
 */
function keepFocusNear(/** @type {HTMLButtonElement} */ button, /** @type {HTMLElement} */ area) {
  if (document.activeElement !== null && document.activeElement !== document.body) return;
  if (button.isConnected && button.checkVisibility()) {
    button.focus({ preventScroll: true });
  } else if (area.isConnected && area.checkVisibility()) {
    area.tabIndex = -1;
    area.focus({ preventScroll: true });
  }
}

/** `withButton` on a form's submit button. */
export function withBusy(/** @type {HTMLFormElement} */ form, /** @type {() => Promise<void>} */ work) {
  return withButton(submitButton(form), work);
}

/** The submit button of `form`. */
export function submitButton(/** @type {HTMLFormElement} */ form) {
  return /** @type {HTMLButtonElement} */ (form.querySelector('button[type=submit]'));
}

/**
 * A small button for a list item.
 * @param {string} text
 * @param {string} className
 * @param {string} label the accessible name
 * @param {(button: HTMLButtonElement) => void} onClick
 */
export function itemButton(text, className, label, onClick) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = className;
  button.textContent = text;
  button.setAttribute('aria-label', label);
  button.addEventListener('click', () => onClick(button));
  return button;
}

/** The event's target as the element its listener was added to. */
export function currentTarget(/** @type {Event} */ event) {
  return /** @type {HTMLElement} */ (event.currentTarget);
}

/**
 * `text` cut to at most `max` characters at a word boundary, with an ellipsis when anything was cut; a word longer
 * than the whole is cut where it must be.
 */
export function shorten(/** @type {string} */ text, max = 60) {
  const clean = text.trim().replace(/\s+/g, ' ');
  if (clean.length <= max) return clean;
  const cut = clean.slice(0, max);
  const space = cut.lastIndexOf(' ');
  return `${(space > max / 3 ? cut.slice(0, space) : cut).replace(/[\s,;(]+$/, '')}…`;
}

/**
 * Once typing starts again, a result shown for the last attempt is stale (a "too common" beside a password being
 * replaced): every form's result area is cleared on input.
 */
export function clearResultsOnInput() {
  for (const form of document.forms) {
    form.addEventListener('input', () => {
      const area = form.querySelector(':scope > .result');
      if (area) show(/** @type {HTMLElement} */ (area), '');
    });
  }
}

/** Empties every form, result area and secret the page shows, so the next person to sign in sees none of it. */
export function resetPage() {
  for (const form of document.forms) form.reset();
  for (const area of document.querySelectorAll('.result')) show(/** @type {HTMLElement} */ (area), '');
  for (const box of document.querySelectorAll('.strength')) /** @type {HTMLElement} */ (box).hidden = true;
}
