// The client library's session logic against a stand-in server: refresh before expiry, once on a refused token, one
// refresh for many calls and for two tabs, sign-out everywhere it should, and waiting out a rate limit.
import { describe, expect, it } from 'vitest';
import { AuthError, type AuthEvent, broadcastChannel, createAuthClient, memoryStorage } from '../../packages/client/src/index.js';
import { fakeServer, processLocks } from './fake-server.js';

const BASE = 'https://auth.test';

function signedInClient(server = fakeServer(), extra: Partial<Parameters<typeof createAuthClient>[0]> = {}) {
  let now = Date.now();
  const auth = createAuthClient({ baseUrl: BASE, fetch: server.fetch, clock: () => now, ...extra });
  const events: AuthEvent[] = [];
  auth.onAuthStateChange((event) => events.push(event));
  return {
    server,
    auth,
    events,
    advance: (ms: number) => (now += ms),
    signIn: () => auth.signIn.password({ username: 'ada', password: 'right' }),
  };
}

describe('the client library: sessions', () => {
  it('when the access token is about to expire, then the next call refreshes first and sends the new token', async () => {
    const { auth, server, signIn, advance, events } = signedInClient();
    await signIn();
    const first = await auth.getSession();

    advance((server.lifetimeS - 10) * 1000);
    const res = await auth.fetch('/me');
    const after = await auth.getSession();

    expect(res.status).toBe(200);
    expect(server.refreshes).toBe(1);
    expect(after?.accessToken).not.toBe(first?.accessToken);
    expect(events).toEqual(['SIGNED_IN', 'TOKEN_REFRESHED']);
    auth.close();
  });

  it('when the server refuses a token that has not expired (revoked), then one refresh and the call again', async () => {
    const { auth, server, signIn } = signedInClient();
    await signIn();
    server.live.clear();

    const res = await auth.fetch('/me');

    expect(res.status).toBe(200);
    expect(server.refreshes).toBe(1);
    auth.close();
  });

  it('when ten calls meet an expired token at once, then exactly one refresh reaches the server and all succeed', async () => {
    const { auth, server, signIn, advance } = signedInClient();
    await signIn();
    advance(server.lifetimeS * 1000);

    const answers = await Promise.all(Array.from({ length: 10 }, () => auth.fetch('/me')));

    expect(answers.map((res) => res.status)).toEqual(Array(10).fill(200));
    expect(server.refreshes).toBe(1);
    auth.close();
  });

  it('when the refresh is refused, then the session ends with SIGNED_OUT and the call answers the 401', async () => {
    const { auth, server, signIn, events } = signedInClient();
    await signIn();
    server.live.clear();
    server.refreshPlan.push('refuse');

    const res = await auth.fetch('/me');

    expect(res.status).toBe(401);
    expect(await auth.getSession()).toBeNull();
    expect(events).toEqual(['SIGNED_IN', 'SIGNED_OUT']);
    auth.close();
  });

  it('when the refresh is rate-limited, then it waits the Retry-After the server gave and tries once more', async () => {
    const { auth, server, signIn, advance } = signedInClient();
    await signIn();
    advance(server.lifetimeS * 1000);
    server.refreshPlan.push({ retryAfter: 1 });

    const res = await auth.fetch('/me');

    expect(res.status).toBe(200);
    expect(server.refreshes).toBe(2);
    expect((server.refreshTimes[1] ?? 0) - (server.refreshTimes[0] ?? 0)).toBeGreaterThanOrEqual(1_000);
    auth.close();
  });

  it('when the rate limit asks for longer than the client waits, then the call fails with the typed error, and the session stays', async () => {
    const { auth, server, signIn, advance } = signedInClient(fakeServer(), { maxRetryWaitS: 5 });
    await signIn();
    advance(server.lifetimeS * 1000);
    server.refreshPlan.push({ retryAfter: 120 });

    const error = await auth.fetch('/me').catch((err: unknown) => err);

    expect(error).toBeInstanceOf(AuthError);
    expect(error).toMatchObject({ code: 'rate_limited', status: 429, retryAfter: 120 });
    expect(await auth.getSession()).not.toBeNull();
    auth.close();
  });

  it('when the password is wrong or the server is unreachable, then the error is an AuthError with the code, never a string', async () => {
    const { auth } = signedInClient();
    const wrong = await auth.signIn.password({ username: 'ada', password: 'wrong' }).catch((err: unknown) => err);
    const unreachable = createAuthClient({ baseUrl: 'http://127.0.0.1:1' });
    const down = await unreachable.signIn.password({ username: 'ada', password: 'right' }).catch((err: unknown) => err);

    expect(wrong).toBeInstanceOf(AuthError);
    expect(wrong).toMatchObject({ code: 'invalid_credentials', reason: 'invalid_credentials', status: 401 });
    expect(down).toMatchObject({ name: 'AuthError', code: 'network_error', status: 0 });
    auth.close();
  });

  it('when two tabs share storage and both find the token expired at once, then one refresh, both signed in; signing out in one signs out the other', async () => {
    const server = fakeServer();
    const storage = memoryStorage();
    const locks = processLocks();
    let now = Date.now();
    const tab = () =>
      createAuthClient({ baseUrl: BASE, fetch: server.fetch, storage, clock: () => now, crossTab: { locks, channel: broadcastChannel('tabs') } });
    const [one, two] = [tab(), tab()];
    const heard: string[] = [];
    two.onAuthStateChange((event) => heard.push(event));
    await one.signIn.password({ username: 'ada', password: 'right' });
    await expect.poll(() => heard).toEqual(['SIGNED_IN']);

    now += server.lifetimeS * 1000;
    const answers = await Promise.all([one.fetch('/me'), two.fetch('/me'), one.fetch('/me'), two.fetch('/me')]);

    expect(answers.map((res) => res.status)).toEqual([200, 200, 200, 200]);
    expect(server.refreshes).toBe(1);
    expect((await one.getSession())?.refreshToken).toBe((await two.getSession())?.refreshToken);

    await one.signOut();
    await expect.poll(() => heard.at(-1)).toBe('SIGNED_OUT');
    expect(await two.getSession()).toBeNull();
    one.close();
    two.close();
  });

  it('when the server cannot be reached at sign-out, then the session still ends here and the error is a typed network_error', async () => {
    const { auth, server, signIn, events } = signedInClient();
    await signIn();
    const offline = createAuthClient({
      baseUrl: BASE,
      fetch: (input, init) =>
        String(init?.method) === 'POST' && new URL(input instanceof Request ? input.url : input).pathname === '/logout'
          ? Promise.reject(new TypeError('fetch failed'))
          : server.fetch(input, init),
    });
    await offline.signIn.password({ username: 'ada', password: 'right' });

    const error = await offline.signOut().catch((err: unknown) => err);

    expect(error).toMatchObject({ name: 'AuthError', code: 'network_error', status: 0 });
    expect(await offline.getSession()).toBeNull();
    expect(events).toEqual(['SIGNED_IN']);
    auth.close();
    offline.close();
  });

  it('when one server process holds clients for two people, then neither ever sees the other’s session', async () => {
    const server = fakeServer();
    const [ada, grace] = [createAuthClient({ baseUrl: BASE, fetch: server.fetch }), createAuthClient({ baseUrl: BASE, fetch: server.fetch })];

    await ada.signIn.password({ username: 'ada', password: 'right' });
    await new Promise((resolve) => setTimeout(resolve, 50));

    expect(await grace.getSession()).toBeNull();
    ada.close();
    grace.close();
  });
});
