// Two tabs of one browser share one session (the client library keeps it in the browser's IndexedDB): the second
// tab opens signed in; when the access token is about to expire in both and both call the API at the same moment,
// one refresh serves both (a Web Lock, the new pair handed over); signing out in one tab signs out the other, without
// a reload.
import { expect, it } from 'vitest';
import { type Kit, logOut, register, Visit, WIDTHS } from '../support/page-kit.js';

/** The session as the page's client holds it. */
interface Session {
  accessToken: string;
  refreshToken: string;
  /** When the access token expires, by the page's clock (ms). */
  expiresAt: number;
}

// Strings, evaluated in the page as they are: they load the page's own modules (the instances its screens use).
/**
 * The session the tab's client holds (auth.getSession(): read only while the token is not about to expire, when it
 * refreshes nothing; the count of refreshes below would say otherwise).
 */
const SESSION = "import('/js/api.js').then((api) => api.auth.getSession())";

/** A call to the API through the page's request pipeline (send: the token from the client, refreshed as needed). */
const CALL_ME = "import('/js/api.js').then((api) => api.send('/me')).then((user) => user.username)";
/** The access token the page's screens know of (state.accessToken, as the client last answered it). */
const PAGE_TOKEN = "import('/js/state.js').then((page) => page.state.accessToken)";

function held(tab: Visit): Promise<Session | null> {
  return tab.page.evaluate<Session | null>(SESSION);
}

export function tabScreens(kit: Kit): void {
  it('when a person signed in opens a second tab, then both share the session: one refresh serves both, and signing out in one signs out the other', async () => {
    // The page's clock is Playwright's, so the test can move it on without waiting (the server's keeps real time).
    const a = await Visit.open(kit.browser, kit.server, WIDTHS[0], (context) => context.clock.install());
    const context = a.page.context();
    /** The POST /refresh requests either tab sent, by the tab's address (both are the page's). */
    const refreshes: string[] = [];
    context.on('request', (request) => {
      if (request.method() === 'POST' && new URL(request.url()).pathname === '/refresh') refreshes.push(request.frame().page() === a.page ? 'A' : 'B');
    });
    const account = await register(a);

    // Tab B, in the same browser: signed in as the same person at once, and no refresh spent for it.
    const b = await a.openTab();
    await expect.poll(() => b.text('#whoami')).toBe(`Signed in as ${account.username}`);
    expect(await b.page.locator('#signed-in').isVisible()).toBe(true);
    await b.markDocument();
    const before = await held(a);
    expect(before).not.toBeNull();
    expect(await a.page.evaluate(PAGE_TOKEN)).toBe(before?.accessToken);
    expect(await b.page.evaluate(PAGE_TOKEN)).toBe(before?.accessToken);
    expect(refreshes).toEqual([]);

    // Time stops in both tabs (no timer fires, so neither refreshes on its own), then jumps to 10 s before the access
    // token expires: inside the 30 s in which the client refreshes it before use.
    const now = await a.page.evaluate(() => Date.now());
    await context.clock.pauseAt(now + 1_000);
    await context.clock.setSystemTime((before?.expiresAt ?? 0) - 10_000);
    expect(await b.page.evaluate(() => Date.now())).toBe(await a.page.evaluate(() => Date.now()));

    // Both tabs call the API at the same moment: each finds its token about to expire, and exactly one refresh is
    // made; the other tab takes the pair it brought.
    const answers = await Promise.all([a, b].map((tab) => tab.page.evaluate(CALL_ME)));
    expect(answers).toEqual([account.username, account.username]);
    expect(refreshes).toHaveLength(1);
    const after = await held(a);
    expect(after?.refreshToken).not.toBe(before?.refreshToken);
    expect(after?.expiresAt).toBeGreaterThan(before?.expiresAt ?? 0);
    expect(await held(b)).toEqual(after);
    for (const tab of [a, b]) {
      expect(await tab.page.evaluate(PAGE_TOKEN)).toBe(after?.accessToken);
      expect(await tab.text('#whoami')).toBe(`Signed in as ${account.username}`);
    }
    // Another call in each uses the renewed token as it is.
    expect(await Promise.all([a, b].map((tab) => tab.page.evaluate(CALL_ME)))).toEqual([account.username, account.username]);
    expect(refreshes).toHaveLength(1);

    // Signing out in tab A: tab B shows the sign-in card too, without a reload, and keeps nothing of the session.
    await context.clock.resume();
    await logOut(a);
    await expect.poll(() => b.page.locator('#login-form').isVisible()).toBe(true);
    expect(await b.page.locator('#signed-in').isVisible()).toBe(false);
    expect(await b.page.locator('#whoami').isVisible()).toBe(false);
    expect(await b.sameDocument()).toBe(true);
    expect(await held(b)).toBeNull();
    expect(await b.page.evaluate(PAGE_TOKEN)).toBeNull();
    await b.check('70-signed-out-in-the-other-tab');
    a.expectQuietConsole('tab A');
    expect(refreshes).toHaveLength(1);
    await a.close();
  });
}
