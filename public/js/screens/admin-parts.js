// What the administrators' screens share: dates, badges and the parts of a row, lists typed in a box, a pager over a
// paged list, asking before a change that cannot be undone, and where focus goes when a row leaves the list.

/** A time as the person's browser writes it; a dash for none. */
export function when(/** @type {string | null | undefined} */ iso) {
  return iso ? new Date(iso).toLocaleString() : '—';
}

/** A small label beside a name ("Disabled", "You"); `kind` adds a class (`expired` shows it in the danger colour). */
export function badge(/** @type {string} */ text, kind = '') {
  const element = document.createElement('span');
  element.className = kind ? `badge ${kind}` : 'badge';
  element.textContent = text;
  return element;
}

/** The first line of a row: the name in bold, then any badges. */
export function headline(/** @type {string} */ name, /** @type {Array<HTMLElement | null | false>} */ badges = []) {
  const line = document.createElement('div');
  const strong = document.createElement('strong');
  strong.textContent = name;
  line.append(strong);
  for (const item of badges) if (item) line.append(' ', item);
  return line;
}

/** A muted line of facts, joined with middle dots (empty parts left out). */
export function facts(/** @type {Array<string | null | undefined | false>} */ parts) {
  const line = document.createElement('span');
  line.className = 'muted';
  line.textContent = parts.filter(Boolean).join(' · ');
  return line;
}

/** A row's buttons, in a row of their own. */
export function controls(/** @type {HTMLElement[]} */ buttons) {
  const box = document.createElement('div');
  box.className = 'actions';
  box.append(...buttons);
  return box;
}

/** A result area of a row's own, so what a row's button did is said beside it (see resultOf in ui.js). */
export function rowResult() {
  const area = document.createElement('p');
  area.className = 'result';
  area.setAttribute('role', 'status');
  area.setAttribute('aria-live', 'polite');
  return area;
}

/** The non-empty lines of a text box, trimmed. */
export function linesOf(/** @type {string} */ text) {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
}

/** The words of a text box (scopes), separated by any white space. */
export function wordsOf(/** @type {string} */ text) {
  return text.split(/\s+/).filter(Boolean);
}

/**
 * Asks before a change that cannot be undone, as the rest of the page does (the browser's own dialog: modal, read
 * out, answered from the keyboard).
 */
export function confirmed(/** @type {string} */ question) {
  return window.confirm(question);
}

/**
 * After `removed` left a list, focus goes where the person can carry on: the same place in the list (the row that
 * took its place, or the one before), else `fallback` (a heading made focusable for it).
 * @param {HTMLElement} list
 * @param {number} index where the removed row was
 * @param {HTMLElement} fallback
 */
export function focusAfterRemoval(list, index, fallback) {
  const rows = list.children;
  const next = /** @type {HTMLElement | undefined} */ (rows[Math.min(index, rows.length - 1)]);
  const button = next?.querySelector('button');
  if (button) {
    button.focus();
    return;
  }
  if (fallback.tabIndex < 0 && !fallback.hasAttribute('tabindex')) fallback.tabIndex = -1;
  fallback.focus();
}

/**
 * The previous and next buttons under a paged list, and the sentence above it ("21–40 of 57 users", "3 users"). `go` reads the
 * page asked for.
 */
export class Pager {
  /**
   * @param {{ prev: HTMLButtonElement, next: HTMLButtonElement, summary: HTMLElement, nouns: [string, string], go: (page: number) => unknown }} parts
   *   `nouns`: what the list holds, one and many ("user", "users")
   */
  constructor({ prev, next, summary, nouns, go }) {
    this.prev = prev;
    this.next = next;
    this.summary = summary;
    this.nouns = nouns;
    this.page = 1;
    this.pages = 1;
    prev.addEventListener('click', () => void go(this.page - 1));
    next.addEventListener('click', () => void go(this.page + 1));
    this.clear();
  }

  /** Shows where the page just read sits in the whole. */
  show(/** @type {{ page: number, pageSize: number, total: number }} */ { page, pageSize, total }, /** @type {number} */ shown) {
    this.page = page;
    this.pages = Math.max(1, Math.ceil(total / pageSize));
    const first = (page - 1) * pageSize + 1;
    const [one, many] = this.nouns;
    this.summary.textContent =
      total === 0
        ? `No ${one} found.`
        : shown === 0
          ? `Nothing on page ${page}: there ${total === 1 ? `is 1 ${one}` : `are ${total} ${many}`}.`
          : total <= pageSize
            ? `${total} ${total === 1 ? one : many}.`
            : `${first}–${first + shown - 1} of ${total} ${many}.`;
    const focused = document.activeElement;
    this.prev.hidden = page <= 1;
    this.next.hidden = page >= this.pages;
    this.hideEmpty();
    // A button that disappears under the focus would leave it nowhere: it moves to the other one.
    if (focused === this.next && this.next.hidden && !this.prev.hidden) this.prev.focus();
    if (focused === this.prev && this.prev.hidden && !this.next.hidden) this.next.focus();
  }

  clear() {
    this.page = 1;
    this.summary.textContent = '';
    this.prev.hidden = true;
    this.next.hidden = true;
    this.hideEmpty();
  }

  /** With one page there is nowhere to go: the navigation around the buttons goes too (no empty landmark). */
  hideEmpty() {
    const around = this.prev.parentElement;
    if (around) around.hidden = this.prev.hidden && this.next.hidden;
  }
}
