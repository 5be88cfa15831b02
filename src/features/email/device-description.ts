// Describes where a sign-in came from in our own words. A User-Agent (and, behind a proxy, the client address) is
// text the client chose: quoted in a security notice, whoever holds a stolen password would write part of the warning.
import { isIP } from 'node:net';

/** Checked in order: Edge, Opera and Samsung Internet also say Chrome, and Chrome also says Safari. */
const BROWSERS: ReadonlyArray<readonly [name: string, pattern: RegExp]> = [
  ['Edge', /\bEdg(?:e|A|iOS)?\/(\d{1,4})/],
  ['Opera', /\b(?:OPR|OPT|Opera)\/(\d{1,4})/],
  ['Samsung Internet', /\bSamsungBrowser\/(\d{1,4})/],
  ['Firefox', /\b(?:Firefox|FxiOS)\/(\d{1,4})/],
  ['Chrome', /\b(?:Chrome|CriOS)\/(\d{1,4})/],
  ['Safari', /\bVersion\/(\d{1,4})[\d.]* (?:Mobile\/\w+ )?Safari\//],
];

/** Checked in order: Android says Linux, and iPhones and iPads say "like Mac OS X". */
const SYSTEMS: ReadonlyArray<readonly [name: string, pattern: RegExp]> = [
  ['Windows', /\bWindows\b/],
  ['iOS', /\b(?:iPhone|iPod)\b/],
  ['iPadOS', /\biPad\b/],
  ['Android', /\bAndroid\b/],
  ['ChromeOS', /\bCrOS\b/],
  ['macOS', /\bMacintosh\b|\bMac OS X\b/],
  ['Linux', /\bLinux\b/],
];

/** Only so much of a header is looked at (every pattern is linear, but there is no reason to read a megabyte). */
const MAX_INSPECTED = 512;

/**
 * "Firefox 128 on Linux", "Safari 17 on iOS", "an unrecognised browser": a name from the lists above, a major
 * version (digits), and a system from the lists above. Nothing of the header is copied, so it is short and holds no
 * text the client wrote.
 */
export function describeDevice(userAgent: string | undefined): string {
  const header = (userAgent ?? '').slice(0, MAX_INSPECTED);
  const browser = BROWSERS.map(([name, pattern]) => ({ name, version: pattern.exec(header)?.[1] })).find((found) => found.version !== undefined);
  const system = SYSTEMS.find(([, pattern]) => pattern.test(header))?.[0];
  const what = browser ? `${browser.name} ${Number(browser.version)}` : 'an unrecognised browser';
  return system ? `${what} on ${system}` : what;
}

/** The client's address when it is one (IPv4 or IPv6), else "unknown". */
export function describeIp(ip: string | undefined): string {
  return ip !== undefined && isIP(ip) !== 0 ? ip : 'unknown';
}
