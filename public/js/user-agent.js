// Names a browser as a person would ("Firefox 133 on Windows") from its user agent, for the sessions and activity
// lists; the full string stays available in a tooltip.
import { shorten } from './ui.js';

/** First match wins: Edge and Opera also say "Chrome", and Chrome also says "Safari". */
const BROWSERS = /** @type {const} */ ([
  [/Edg(?:e|A|iOS)?\/(\d+)/, 'Edge'],
  [/(?:OPR|Opera)\/(\d+)/, 'Opera'],
  [/(?:Firefox|FxiOS)\/(\d+)/, 'Firefox'],
  [/HeadlessChrome\/(\d+)/, 'Headless Chrome'],
  [/(?:Chrome|CriOS)\/(\d+)/, 'Chrome'],
  [/Version\/(\d+)[^ ]* (?:Mobile\/\S+ )?Safari\//, 'Safari'],
  [/^curl\/(\d+)/, 'curl'],
]);

const SYSTEMS = /** @type {const} */ ([
  [/Windows NT/, 'Windows'],
  [/iPhone|iPad|iPod/, 'iOS'],
  [/Mac OS X|Macintosh/, 'macOS'],
  [/Android/, 'Android'],
  [/CrOS/, 'ChromeOS'],
  [/Linux/, 'Linux'],
]);

/** "Chrome 131 on Linux" when the user agent says so clearly; otherwise the string itself, cut at a word. */
export function browserName(/** @type {string | null} */ userAgent) {
  if (!userAgent) return 'Unknown browser';
  const browser = BROWSERS.map(([pattern, name]) => {
    const match = pattern.exec(userAgent);
    return match ? `${name} ${match[1]}` : null;
  }).find(Boolean);
  if (!browser) return shorten(userAgent, 48);
  const system = SYSTEMS.find(([pattern]) => pattern.test(userAgent))?.[1];
  return system ? `${browser} on ${system}` : browser;
}

/** An element naming the browser, with its whole user agent in a tooltip. */
export function browserLabel(/** @type {string | null} */ userAgent, /** @type {string} */ tag = 'span') {
  const label = document.createElement(tag);
  label.className = 'device';
  label.textContent = browserName(userAgent);
  if (userAgent) label.title = userAgent;
  return label;
}

/**
 * The user agent itself on a line of its own, cut at a word with an ellipsis (its whole text in a tooltip): two
 * sessions of the same browser can still be told apart. Null when there is none.
 */
export function agentLine(/** @type {string | null} */ userAgent) {
  if (!userAgent) return null;
  const line = document.createElement('span');
  line.className = 'agent muted';
  line.textContent = shorten(userAgent, 60);
  line.title = userAgent;
  return line;
}
