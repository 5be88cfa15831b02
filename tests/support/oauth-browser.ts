// Plays a browser and the page against authkit's OpenID provider: follows redirects with cookies, lands on the page's
// hand-over (#oauth-interaction=), and answers it the way public/js does (details, then allow or deny with a Bearer token).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { CookieJar } from './provider-driver.js';

/** Where a walk through redirects stopped. */
export type Landing =
  { kind: 'interaction'; uid: string } | { kind: 'app'; url: URL } | { kind: 'page'; status: number; body: string; url: URL; headers: Headers };

export class OAuthBrowser {
  readonly jar = new CookieJar();

  constructor(private readonly appOrigin: string) {}

  async request(url: URL, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Response> {
    const method = init.method ?? 'GET';
    const headers: Record<string, string> = { 'user-agent': 'Mozilla/5.0 (authkit tests)', ...init.headers };
    const cookie = this.jar.header(url, method, false);
    if (cookie) headers.cookie = cookie;
    const response = await fetch(url, { method, headers, body: init.body, redirect: 'manual' });
    this.jar.store(url, response.headers.getSetCookie());
    return response;
  }

  /** Follows redirects from `start` until the app's address, the page's hand-over, or a page that is not a redirect. */
  async walk(start: URL | string): Promise<Landing> {
    let url = new URL(start);
    for (let hop = 0; hop < 15; hop += 1) {
      if (url.origin === this.appOrigin) return { kind: 'app', url };
      const handOver = /^#oauth-interaction=([\w-]+)$/.exec(url.hash);
      if (handOver && url.pathname === '/') return { kind: 'interaction', uid: handOver[1]! };
      const response = await this.request(url);
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        url = new URL(location, url);
        continue;
      }
      return { kind: 'page', status: response.status, body: await response.text(), url, headers: response.headers };
    }
    throw new Error('too many redirects');
  }

  async details(base: string, uid: string): Promise<Response> {
    return this.request(new URL(`/oauth2/interaction/${uid}/details`, base));
  }

  /** The page's answer; returns the response (its redirectTo is where the browser goes next). */
  async decide(base: string, uid: string, accessToken: string, decision: 'allow' | 'deny' | 'continue' = 'allow'): Promise<Response> {
    return this.request(new URL(`/oauth2/interaction/${uid}`, base), {
      method: 'POST',
      headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ decision }),
    });
  }

  /** Walks from `start`, answers the hand-over with `accessToken`, and follows on until the app's address. */
  async signInToApp(base: string, start: URL | string, accessToken: string, decision: 'allow' | 'deny' = 'allow'): Promise<URL> {
    let landing = await this.walk(start);
    for (let round = 0; round < 3 && landing.kind === 'interaction'; round += 1) {
      const answer = await this.decide(base, landing.uid, accessToken, decision);
      if (answer.status !== 200) throw new Error(`the interaction answered ${answer.status}: ${await answer.text()}`);
      landing = await this.walk(new URL(((await answer.json()) as { redirectTo: string }).redirectTo, base));
    }
    if (landing.kind !== 'app') throw new Error(`expected to reach the app, stopped at ${JSON.stringify(landing).slice(0, 1200)}`);
    return landing.url;
  }
}

/** A server listening before the app exists, so the app can be built knowing its own address (its issuer). */
export async function listenFirst(): Promise<{ url: string; serve(app: Express): void; close(): Promise<void> }> {
  let handler: http.RequestListener = (_req, res) => res.writeHead(503).end();
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    serve(app) {
      handler = app;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A relying party's own endpoint: records what arrives (back-channel logout tokens). */
export async function recordingEndpoint(): Promise<{ url: string; received: URLSearchParams[]; close(): Promise<void> }> {
  const received: URLSearchParams[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push(new URLSearchParams(body));
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/backchannel`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
