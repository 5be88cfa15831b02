// A stand-in for the service's session routes, for the client library's refresh logic: it counts what reaches it and
// can be told to refuse, rate-limit or stall. (The library's behaviour against the real server is in real-server.test.ts.)
import { randomUUID } from 'node:crypto';

export interface FakeServer {
  fetch: typeof fetch;
  /** POST /refresh requests that reached it. */
  refreshes: number;
  /** Access tokens it takes. */
  live: Set<string>;
  /** Refresh tokens it takes (each once). */
  refreshTokens: Set<string>;
  /** The next /refresh answers: 'ok', 'refuse' (401), or a 429 with this Retry-After. */
  refreshPlan: Array<'ok' | 'refuse' | { retryAfter: number }>;
  /** When each /refresh arrived (ms). */
  refreshTimes: number[];
  lifetimeS: number;
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
const refusal = (status: number, code: string, headers: Record<string, string> = {}) =>
  json(status, { error: { code, reason: code, message: code, requestId: randomUUID() } }, headers);

export function fakeServer(): FakeServer {
  const user = { id: randomUUID(), username: 'ada', email: 'ada@example.com', emailVerified: true, roles: [], createdAt: new Date().toISOString() };
  const server: FakeServer = {
    refreshes: 0,
    live: new Set(),
    refreshTokens: new Set(),
    refreshPlan: [],
    refreshTimes: [],
    lifetimeS: 900,
    fetch: async (input, init) => {
      const url = new URL(input instanceof Request ? input.url : input);
      const body = typeof init?.body === 'string' ? (JSON.parse(init.body) as Record<string, string>) : {};
      const bearer = new Headers(init?.headers).get('Authorization')?.replace(/^Bearer /, '');
      // Answers come a little later, as over a network: calls made together are in flight together.
      await new Promise((resolve) => setTimeout(resolve, 5));
      const pair = () => {
        const tokens = { access_token: randomUUID(), refresh_token: randomUUID(), token_type: 'Bearer', expires_in: server.lifetimeS, user };
        server.live.add(tokens.access_token);
        server.refreshTokens.add(tokens.refresh_token);
        return tokens;
      };
      switch (`${init?.method ?? 'GET'} ${url.pathname}`) {
        case 'POST /login':
          return body.password === 'right' ? json(200, pair()) : refusal(401, 'invalid_credentials');
        case 'POST /refresh': {
          server.refreshes++;
          server.refreshTimes.push(Date.now());
          const plan = server.refreshPlan.shift() ?? 'ok';
          if (plan === 'refuse' || !server.refreshTokens.delete(body.refresh_token ?? '')) return refusal(401, 'invalid_token');
          if (typeof plan === 'object') {
            server.refreshTokens.add(body.refresh_token ?? '');
            return refusal(429, 'rate_limited', { 'Retry-After': String(plan.retryAfter) });
          }
          return json(200, pair());
        }
        case 'GET /me':
          return bearer && server.live.has(bearer) ? json(200, user) : refusal(401, 'invalid_token');
        case 'POST /logout':
          if (bearer) server.live.delete(bearer);
          return new Response(null, { status: 204 });
        default:
          return refusal(404, 'not_found');
      }
    },
  };
  return server;
}

/** A lock manager for clients in one process, as Web Locks are for tabs: one holder of a name at a time. */
export function processLocks() {
  const tails = new Map<string, Promise<unknown>>();
  return {
    request<T>(name: string, callback: () => Promise<T>): Promise<T> {
      const previous = tails.get(name) ?? Promise.resolve();
      const result = previous.then(callback, callback);
      tails.set(
        name,
        result.catch(() => undefined),
      );
      return result;
    },
  };
}
