// Plays the browser between authkit and a test identity provider: redirects, per-site cookies, the person's choice.
import type { IncomingHttpHeaders } from 'node:http';
import { type Clock, systemClock } from '../../src/core/clock.js';

/** How the person at the browser tells a test provider what they click, since the peers have no sign-in page. */
export const personChoiceHeader = 'x-test-person-choice';
export type PersonChoice = { signInAs: string } | 'deny';

/** What a peer reads from a request: sign in as someone, decline, or no choice (the peer then shows a page). */
export function readPersonChoice(headers: IncomingHttpHeaders): PersonChoice | undefined {
  const value = headers[personChoiceHeader];
  if (value === 'deny') return 'deny';
  const who = typeof value === 'string' ? /^sign-in (.+)$/.exec(value)?.[1] : undefined;
  return who === undefined ? undefined : { signInAs: decodeURIComponent(who) };
}

function encodeChoice(choice: PersonChoice): string {
  return choice === 'deny' ? 'deny' : `sign-in ${encodeURIComponent(choice.signInAs)}`;
}

interface StoredCookie {
  name: string;
  value: string;
  origin: string;
  path: string;
  sameSite: 'strict' | 'lax' | 'none';
  expiresAt: number;
}

/**
 * Cookies as a browser keeps them, host-only, with Path, Max-Age/Expires, the __Host-/__Secure- prefixes and SameSite.
 * Authkit and the peers all live on 127.0.0.1, which a browser would call one site; the jar treats every origin as its
 * own site instead, as authkit and a provider are in production, so a SameSite=Lax cookie is missing from a form_post
 * callback here just as it would be there.
 */
export class CookieJar {
  private cookies: StoredCookie[] = [];
  constructor(private readonly clock: Clock = systemClock) {}

  /** Keeps what a browser would keep from a response's Set-Cookie headers. */
  store(url: URL, setCookies: string[]): void {
    for (const line of setCookies) {
      const [pair = '', ...attributeParts] = line.split(';').map((part) => part.trim());
      const equals = pair.indexOf('=');
      if (equals <= 0) continue;
      const attributes = new Map(attributeParts.map((part) => [part.split('=')[0]!.toLowerCase(), part.slice(part.indexOf('=') + 1)] as const));
      const name = pair.slice(0, equals);
      const secure = attributes.has('secure');
      const sameSite = (attributes.get('samesite')?.toLowerCase() ?? 'lax') as StoredCookie['sameSite'];
      const path = attributes.get('path')?.startsWith('/') ? attributes.get('path')! : url.pathname.replace(/\/[^/]*$/, '') || '/';
      // Browsers refuse these outright; 127.0.0.1 counts as a secure context, so Secure itself is accepted on http.
      if (sameSite === 'none' && !secure) continue;
      if (name.startsWith('__Secure-') && !secure) continue;
      if (name.startsWith('__Host-') && (!secure || path !== '/' || attributes.has('domain'))) continue;
      const maxAge = attributes.get('max-age');
      const expires = attributes.get('expires');
      const expiresAt = maxAge !== undefined ? this.clock.now() + Number(maxAge) * 1000 : expires ? Date.parse(expires) : Infinity;
      this.cookies = this.cookies.filter((cookie) => !(cookie.origin === url.origin && cookie.name === name && cookie.path === path));
      this.cookies.push({ name, value: pair.slice(equals + 1), origin: url.origin, path, sameSite, expiresAt });
    }
  }

  /** The Cookie header a browser sends; crossSite when the navigation started at, or passed through, another site. */
  header(url: URL, method: string, crossSite: boolean): string {
    const now = this.clock.now();
    this.cookies = this.cookies.filter((cookie) => cookie.expiresAt > now);
    const safeMethod = method === 'GET' || method === 'HEAD';
    return this.cookies
      .filter((cookie) => cookie.origin === url.origin && pathMatches(cookie.path, url.pathname))
      .filter((cookie) => !crossSite || cookie.sameSite === 'none' || (cookie.sameSite === 'lax' && safeMethod))
      .map((cookie) => `${cookie.name}=${cookie.value}`)
      .join('; ');
  }

  /** A cookie's value for an origin (any path), to assert on what authkit set. */
  get(origin: string, name: string): string | undefined {
    return this.cookies.find((cookie) => cookie.origin === new URL(origin).origin && cookie.name === name)?.value;
  }
}

function pathMatches(cookiePath: string, requestPath: string): boolean {
  return requestPath === cookiePath || (requestPath.startsWith(cookiePath) && (cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/'));
}

export interface Hop {
  method: string;
  url: URL;
  status: number;
}

/** The moment the provider hands the person back: the request the browser is about to make to the callback. */
export interface ProviderReturn {
  url: URL;
  method: 'GET' | 'POST';
  /** The callback's parameters: the query of a redirect, or the fields of a form_post. */
  params: URLSearchParams;
  /** The first request that reached the provider: the authorization request as the relying party built it. */
  authorizationUrl?: URL;
  /** The origin that sent the person back (the browser's Origin on a form_post). */
  from: string;
  jar: CookieJar;
  hops: Hop[];
}

interface PendingRequest {
  url: URL;
  method: 'GET' | 'POST';
  form?: URLSearchParams;
  crossSite: boolean;
  initiator?: string;
}

const browserHeaders = { 'user-agent': 'Mozilla/5.0 (authkit tests)', accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };

async function send(request: PendingRequest, jar: CookieJar, extra: Record<string, string>): Promise<Response> {
  const headers: Record<string, string> = { ...browserHeaders, ...extra };
  const cookie = jar.header(request.url, request.method, request.crossSite);
  if (cookie) headers.cookie = cookie;
  if (request.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    if (request.initiator) headers.origin = request.initiator;
  }
  const response = await fetch(request.url, { method: request.method, headers, body: request.form?.toString(), redirect: 'manual' });
  jar.store(request.url, response.headers.getSetCookie());
  return response;
}

/** An auto-submitting form (OpenID's form_post response mode), as a browser with scripts would submit it. */
function autoSubmittedForm(html: string, base: URL): { action: URL; form: URLSearchParams } | undefined {
  const form = /<form[^>]*method="post"[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  if (!form || !/\.submit\(\)/.test(html)) return undefined;
  const unescape = (text: string) =>
    text
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&amp;/g, '&');
  const fields = new URLSearchParams();
  for (const input of form[2]!.matchAll(/<input[^>]*name="([^"]*)"[^>]*value="([^"]*)"/g)) fields.append(unescape(input[1]!), unescape(input[2]!));
  return { action: new URL(unescape(form[1]!), base), form: fields };
}

export interface SignInOptions {
  /** Where the provider hands the person back; the walk stops before the first request there. Default: the start's origin. */
  returnTo?: string;
  /** A browser that already holds cookies (authkit's, from a start made with supertest, or a provider session). */
  jar?: CookieJar;
  maxHops?: number;
}

/**
 * Starts at authkit's "Continue with X" URL (or directly at a provider's authorization URL, with returnTo), follows the
 * redirects, signs in at the provider as the chosen person or declines, and stops before the request that would take
 * the person back to returnTo. Throws, with the page, when the provider stops the browser anywhere else.
 */
export async function signInAtProvider(start: string | URL, choice: PersonChoice, options: SignInOptions = {}): Promise<ProviderReturn> {
  const jar = options.jar ?? new CookieJar();
  const returnTo = new URL(options.returnTo ?? new URL(start).origin);
  const homeOrigin = returnTo.origin;
  const isReturn = (url: URL) => url.origin === homeOrigin && url.pathname.startsWith(returnTo.pathname);
  const hops: Hop[] = [];
  let authorizationUrl: URL | undefined;
  let request: PendingRequest = { url: new URL(start), method: 'GET', crossSite: false };
  let from = homeOrigin;
  for (let hop = 0; hop < (options.maxHops ?? 20); hop += 1) {
    // Back only once the provider has been visited: authkit may redirect within itself before sending the person off.
    if (authorizationUrl && isReturn(request.url)) {
      const params = request.form ?? request.url.searchParams;
      return { url: request.url, method: request.method, params, authorizationUrl, from, jar, hops };
    }
    const atProvider = request.url.origin !== homeOrigin;
    if (atProvider) authorizationUrl ??= request.url;
    const response = await send(request, jar, atProvider ? { [personChoiceHeader]: encodeChoice(choice) } : {});
    hops.push({ method: request.method, url: request.url, status: response.status });
    from = request.url.origin;
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      const next = new URL(location, request.url);
      const keepsMethod = response.status === 307 || response.status === 308;
      request = {
        url: next,
        method: keepsMethod ? request.method : 'GET',
        form: keepsMethod ? request.form : undefined,
        crossSite: request.crossSite || next.origin !== request.url.origin,
        initiator: request.initiator,
      };
      continue;
    }
    const body = await response.text();
    const submitted = response.status === 200 ? autoSubmittedForm(body, request.url) : undefined;
    if (!submitted) throw new Error(`the browser stopped at ${request.method} ${request.url.href}: ${response.status} ${body.slice(0, 400)}`);
    // A new navigation, started by the provider's page.
    request = {
      url: submitted.action,
      method: 'POST',
      form: submitted.form,
      crossSite: submitted.action.origin !== request.url.origin,
      initiator: request.url.origin,
    };
  }
  throw new Error(`more than ${options.maxHops ?? 20} hops without coming back to ${returnTo.href}`);
}

export interface CallbackAnswer {
  status: number;
  /** Where authkit sends the person next (its redirect_to with a code, or a page), when it redirects. */
  location?: URL;
  body: string;
  headers: Headers;
}

/** Makes the callback request a browser would make, with the cookies it would carry there, and returns authkit's answer. */
export async function completeAtCallback(back: ProviderReturn): Promise<CallbackAnswer> {
  const request: PendingRequest = {
    url: back.url,
    method: back.method,
    form: back.method === 'POST' ? back.params : undefined,
    crossSite: back.from !== back.url.origin,
    initiator: back.from,
  };
  const response = await send(request, back.jar, {});
  const location = response.headers.get('location');
  return { status: response.status, location: location ? new URL(location, back.url) : undefined, body: await response.text(), headers: response.headers };
}

/** The whole round trip: start at authkit, sign in at the provider, come back through authkit's callback. */
export async function signInThroughProvider(start: string | URL, choice: PersonChoice, options: SignInOptions = {}): Promise<CallbackAnswer> {
  return completeAtCallback(await signInAtProvider(start, choice, options));
}
