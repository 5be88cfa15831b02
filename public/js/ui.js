// Small DOM helpers shared by every screen: element lookup, the status line, and busy buttons.
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

/** Shows a message on the status line (announced to screen readers). */
export function say(/** @type {string} */ message, kind = 'ok') {
  const status = $('#status');
  status.textContent = message;
  status.className = `status ${kind}`;
}

/**
 * Runs `work` with `button` disabled and the status line cleared; anything it throws is said in words.
 * @param {HTMLButtonElement} button
 * @param {() => Promise<void>} work
 * @param {(error: unknown) => string} [explain] the sentence for a failure (`describe` unless given)
 */
export async function withButton(button, work, explain = describe) {
  button.disabled = true;
  say('');
  try {
    await work();
  } catch (error) {
    say(explain(error), 'error');
  } finally {
    button.disabled = false;
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
 * @param {() => void} onClick
 */
export function itemButton(text, className, label, onClick) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = className;
  button.textContent = text;
  button.setAttribute('aria-label', label);
  button.addEventListener('click', onClick);
  return button;
}

/** The event's target as the element its listener was added to. */
export function currentTarget(/** @type {Event} */ event) {
  return /** @type {HTMLElement} */ (event.currentTarget);
}
