import request from 'supertest';
import type { Express } from 'express';
import { describe, expect, it } from 'vitest';
import { register, uniqueName } from './support/accounts.js';
import { buildApp, testConfig, useBackends, usingRedis } from './support/test-app.js';

const MAX_FAILURES = 3;

/** A client that keeps the cookies it is given, as a browser does. */
function browser(app: Express) {
  let cookie: string | undefined;
  return {
    get cookie() {
      return cookie;
    },
    async login(username: string, password: string) {
      const req = request(app).post('/login');
      if (cookie) req.set('Cookie', cookie);
      const res = await req.send({ username, password });
      const set = ([] as string[]).concat(res.headers['set-cookie'] ?? []);
      if (set.length > 0) cookie = set[0]!.split(';')[0];
      return res;
    },
  };
}

function loginFrom(app: Express, username: string, password: string, cookie?: string) {
  const req = request(app).post('/login');
  if (cookie) req.set('Cookie', cookie);
  return req.send({ username, password });
}

describe('failed logins per account (every address, every instance)', () => {
  const backends = useBackends();

  /** Two instances sharing Redis and one secret, with a small per-account limit (embedded: one instance, twice). */
  function twoInstances() {
    const config = testConfig({ loginLockout: { maxFailures: MAX_FAILURES, lockMs: 60_000 } });
    const first = buildApp(backends, { config }).app;
    return [first, usingRedis ? buildApp(backends, { config }).app : first] as const;
  }

  it('when a successful login sets the device cookie, then it is httpOnly, same-site strict and lasts months', async () => {
    const [app] = twoInstances();
    const account = await register(app);
    const res = await loginFrom(app, account.username, account.password);
    expect(res.status).toBe(200);
    const cookie = String(res.headers['set-cookie']);
    expect(cookie).toMatch(/^authkit_device=[\w-]{22}\.[\w-]{43}; /);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).toMatch(/Path=\//);
    expect(cookie).toMatch(/Max-Age=15552000/);
  });

  it('when guesses spread over instances reach the limit, then the account answers 429 to new browsers but not to one that signed in before', async () => {
    const [first, second] = twoInstances();
    const account = await register(first);
    const owner = browser(first);
    expect((await owner.login(account.username, account.password)).status).toBe(200);

    for (let i = 0; i < MAX_FAILURES; i++) {
      const guess = await loginFrom(i % 2 ? first : second, account.username, `wrong guess ${i}`);
      expect(guess.status).toBe(401);
    }
    const stranger = await loginFrom(second, account.username, account.password);
    expect(stranger.status).toBe(429);
    expect(stranger.body.error.code).toBe('login_throttled');
    expect(Number(stranger.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(stranger.headers['retry-after'])).toBeLessThanOrEqual(60);

    const ownerAgain = await loginFrom(second, account.username, account.password, owner.cookie);
    expect(ownerAgain.status).toBe(200);
  });

  it('when the names are unknown, then they are throttled in exactly the same way, so the answer says nothing about which exist', async () => {
    const [app] = twoInstances();
    const account = await register(app);
    const nobody = uniqueName('nobody');
    const answers = async (username: string) => {
      const statuses = [];
      for (let i = 0; i <= MAX_FAILURES; i++) statuses.push((await loginFrom(app, username, `wrong guess ${i}`)).status);
      const last = await loginFrom(app, username, 'wrong again');
      return { statuses, code: last.body.error.code, message: last.body.error.message };
    };
    const known = await answers(account.username);
    const unknown = await answers(nobody);
    expect(known.statuses).toEqual([401, 401, 401, 429]);
    expect(unknown).toEqual(known);
  });

  it('when the account is throttled, then an email login counts against the same account as the username', async () => {
    const [app] = twoInstances();
    const account = await register(app);
    for (let i = 0; i < MAX_FAILURES; i++)
      await request(app)
        .post('/login')
        .send({ email: account.email, password: `wrong ${i}` });
    expect((await loginFrom(app, account.username.toUpperCase(), account.password)).status).toBe(429);
  });

  it('when a trusted browser itself keeps guessing, then it gets its own small budget and is throttled too', async () => {
    const [app] = twoInstances();
    const account = await register(app);
    const owner = browser(app);
    await owner.login(account.username, account.password);
    for (let i = 0; i < MAX_FAILURES; i++) await loginFrom(app, account.username, `wrong ${i}`);

    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await loginFrom(app, account.username, `typo ${i}`, owner.cookie)).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    expect((await loginFrom(app, account.username, account.password, owner.cookie)).status).toBe(429);
  });

  it.each([
    ['a forged signature', (cookie: string) => `${cookie.slice(0, -4)}AAAA`],
    ['garbage', () => 'authkit_device=not-a-device-cookie'],
    ['two dots', (cookie: string) => `${cookie}.extra`],
  ])('when the device cookie is %s, then it earns no trust', async (_name, mangle) => {
    const [app] = twoInstances();
    const account = await register(app);
    const owner = browser(app);
    await owner.login(account.username, account.password);
    for (let i = 0; i < MAX_FAILURES; i++) await loginFrom(app, account.username, `wrong ${i}`);
    const res = await loginFrom(app, account.username, account.password, mangle(owner.cookie!));
    expect(res.status).toBe(429);
  });

  it("when a browser trusted by one account tries another, then that account's throttle applies", async () => {
    const [app] = twoInstances();
    const mine = await register(app);
    const victim = await register(app);
    const attacker = browser(app);
    await attacker.login(mine.username, mine.password);
    for (let i = 0; i < MAX_FAILURES; i++) await loginFrom(app, victim.username, `wrong ${i}`);
    expect((await loginFrom(app, victim.username, victim.password, attacker.cookie)).status).toBe(429);
  });
});
