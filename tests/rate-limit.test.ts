import request from 'supertest';
import { MemoryStore, type Options } from 'express-rate-limit';
import { describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import type { BudgetGroup, RateLimitSettings } from '../src/core/config.js';
import express from 'express';
import type { AppError } from '../src/core/errors.js';
import { inProcessStore } from '../src/core/shared-store.js';
import { createRateLimiters } from '../src/kernel/throttle/rate-limiter.js';
import { SpentBudgets } from '../src/kernel/throttle/spent-budgets.js';
import { bearer, createAdmin, registerAndLogin, uniqueName } from './support/accounts.js';
import { buildApp, freshStore, redisThroughProxy, silentLogger, testConfig, useBackends, usingRedis } from './support/test-app.js';

const WINDOW_MS = 60_000;

function budgets(limits: Partial<Record<BudgetGroup, number>>, failOpen = false): RateLimitSettings {
  const budget = (group: BudgetGroup, keyBy: 'ip' | 'principal') => ({ limit: limits[group] ?? 10_000, windowMs: WINDOW_MS, keyBy });
  return {
    budgets: {
      auth: budget('auth', 'ip'),
      refresh: budget('refresh', 'ip'),
      credentials: budget('credentials', 'ip'),
      account: budget('account', 'principal'),
      images: budget('images', 'principal'),
      'api-keys': budget('api-keys', 'principal'),
      'signed-urls': budget('signed-urls', 'ip'),
      email: budget('email', 'ip'),
      links: budget('links', 'ip'),
      reads: budget('reads', 'principal'),
      oauth: budget('oauth', 'ip'),
    },
    failOpen,
  };
}

const badLogin = { username: 'nobody_here', password: 'wrong password' };

describe('rate limiting', () => {
  const backends = useBackends();

  it('when limit + 1 requests arrive one after another, then exactly the last gets 429 with Retry-After and the error shape', async () => {
    const { app } = buildApp(backends, { store: freshStore(backends), config: testConfig({ rateLimit: budgets({ auth: 5 }) }) });
    const statuses: number[] = [];
    let last: request.Response | undefined;
    for (let i = 0; i < 6; i++) {
      last = await request(app).post('/login').send(badLogin);
      statuses.push(last.status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
    expect(last?.body.error).toEqual({
      code: 'rate_limited',
      reason: 'rate_limited',
      message: expect.stringMatching(/Try again in \d+ seconds/),
      details: { budget: 'auth', limit: 5, windowSeconds: 60, retryAfterSeconds: expect.any(Number) },
      requestId: expect.any(String),
    });
    const retryAfter = Number(last?.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
  });

  it('when a limited route answers, then it carries RateLimit and RateLimit-Policy and no legacy X-RateLimit headers', async () => {
    const { app } = buildApp(backends, { store: freshStore(backends), config: testConfig({ rateLimit: budgets({ auth: 5 }) }) });
    const res = await request(app).post('/login').send(badLogin);
    expect(res.headers['ratelimit-policy']).toMatch(/^"auth"; q=5; w=60/);
    expect(res.headers.ratelimit).toMatch(/^"auth"; r=4; t=\d+/);
    expect(Object.keys(res.headers).filter((name) => name.startsWith('x-ratelimit'))).toEqual([]);
  });

  it('when health, readiness and docs are called many times, then they are never limited', async () => {
    const { app } = buildApp(backends, { store: freshStore(backends), config: testConfig({ rateLimit: budgets({ auth: 1, account: 1 }) }) });
    for (let i = 0; i < 5; i++) {
      expect((await request(app).get('/health')).status).toBe(200);
      expect((await request(app).get('/openapi.json')).status).toBe(200);
    }
  });

  it('when 50 requests arrive at once on one instance, then exactly the limit gets through', async () => {
    const { app } = buildApp(backends, { store: freshStore(backends), config: testConfig({ rateLimit: budgets({ auth: 5 }) }) });
    const results = await Promise.all(Array.from({ length: 50 }, () => request(app).post('/login').send(badLogin)));
    expect(results.filter((res) => res.status !== 429)).toHaveLength(5);
  });

  it.runIf(usingRedis)('when 50 concurrent requests are spread over two instances sharing Redis, then exactly the limit gets through', async () => {
    const config = testConfig({ rateLimit: budgets({ auth: 5 }) });
    const store = freshStore(backends);
    const instances = [buildApp(backends, { config, store }).app, buildApp(backends, { config, store }).app];
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        request(instances[i % 2] as (typeof instances)[number])
          .post('/login')
          .send(badLogin),
      ),
    );
    expect(results.filter((res) => res.status !== 429)).toHaveLength(5);
  });

  it('when one user exhausts their budget, then another user is unaffected, and so is the first one’s refresh', async () => {
    const { app } = buildApp(backends, { store: freshStore(backends), config: testConfig({ rateLimit: budgets({ account: 3, auth: 50 }) }) });
    const alice = await registerAndLogin(app);
    const bob = await registerAndLogin(app);
    const aliceStatuses = [];
    for (let i = 0; i < 4; i++)
      aliceStatuses.push(
        (
          await request(app)
            .get('/protected')
            .set(...bearer(alice.accessToken))
        ).status,
      );
    const bobStatus = (
      await request(app)
        .get('/protected')
        .set(...bearer(bob.accessToken))
    ).status;
    const aliceRefresh = await request(app).post('/refresh').send({ refresh_token: alice.refreshToken });
    expect(aliceStatuses).toEqual([200, 200, 200, 429]);
    expect(bobStatus).toBe(200);
    expect(aliceRefresh.status).toBe(200);
  });

  it('when failed logins have spent an address’s sign-in budget, then users behind it can still refresh', async () => {
    const { app } = buildApp(backends, { store: freshStore(backends), config: testConfig({ rateLimit: budgets({ auth: 3, refresh: 3 }) }) });
    const account = await registerAndLogin(app);
    const statuses = [];
    for (let i = 0; i < 2; i++) statuses.push((await request(app).post('/login').send(badLogin)).status);

    const refresh = await request(app).post('/refresh').send({ refresh_token: account.refreshToken });

    expect(statuses).toEqual([401, 429]);
    expect(refresh.status).toBe(200);
    expect(refresh.headers['ratelimit-policy']).toMatch(/^"refresh"; q=3;/);
  });

  it('when an address guesses Bearer tokens or API keys, then guessing costs budget, and a genuine credential still works', async () => {
    const { app } = buildApp(backends, { store: freshStore(backends), config: testConfig({ rateLimit: budgets({ credentials: 3 }) }) });
    const account = await registerAndLogin(app);
    const forged = `${account.accessToken.slice(0, account.accessToken.lastIndexOf('.'))}.AAAA`;

    const guesses = [
      (
        await request(app)
          .get('/protected')
          .set(...bearer(forged))
      ).status,
      (
        await request(app)
          .get('/protected')
          .set('X-API-Key', `ak_${'a'.repeat(12)}_${'b'.repeat(43)}`)
      ).status,
      (await request(app).get('/protected').set('Authorization', 'Bearer not-a-jwt')).status,
      (
        await request(app)
          .get('/protected')
          .set(...bearer(forged))
      ).status,
    ];
    const genuine = await request(app)
      .get('/protected')
      .set(...bearer(account.accessToken));

    expect(guesses).toEqual([401, 401, 401, 429]);
    expect(genuine.status).toBe(200);
  });

  it('when a client keeps sending its expired access token, then that is no guess and costs no budget', async () => {
    const clock = new ManualClock();
    const config = testConfig({ rateLimit: budgets({ credentials: 2 }) });
    const { app } = buildApp(backends, { store: freshStore(backends), config, clock });
    const account = await registerAndLogin(app);
    clock.advance((config.accessTokenTtlS + config.jwtClockToleranceS + 1) * 1000);

    const statuses = [];
    for (let i = 0; i < 4; i++)
      statuses.push(
        (
          await request(app)
            .get('/protected')
            .set(...bearer(account.accessToken))
        ).status,
      );

    expect(statuses).toEqual([401, 401, 401, 401]);
  });

  it('when a client sends its own X-Forwarded-For without a trusted proxy, then it gains no fresh budget', async () => {
    const { app } = buildApp(backends, { store: freshStore(backends), config: testConfig({ rateLimit: budgets({ auth: 2 }), trustProxy: false }) });
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      statuses.push((await request(app).post('/login').set('X-Forwarded-For', `198.51.100.${i}`).send(badLogin)).status);
    }
    expect(statuses).toEqual([401, 401, 429, 429]);
  });

  it('when behind a trusted proxy, then each client address has its own budget, and IPv6 clients share their /56', async () => {
    const { app } = buildApp(backends, { store: freshStore(backends), config: testConfig({ rateLimit: budgets({ auth: 1 }), trustProxy: ['loopback'] }) });
    const from = (address: string) => request(app).post('/login').set('X-Forwarded-For', address).send(badLogin);
    expect((await from('203.0.113.1')).status).toBe(401);
    expect((await from('203.0.113.1')).status).toBe(429);
    expect((await from('203.0.113.2')).status).toBe(401);
    expect((await from('2001:db8:0:100::1')).status).toBe(401);
    expect((await from('2001:db8:0:1ff::2')).status).toBe(429);
    expect((await from('2001:db8:0:200::1')).status).toBe(401);
  });

  it('when an admin resets a client key, then that client has a fresh budget', async () => {
    const config = testConfig({ rateLimit: budgets({ auth: 2, account: 100 }), trustProxy: ['loopback'] });
    const { app, deps } = buildApp(backends, { config, store: freshStore(backends) });
    const username = uniqueName('admin');
    await createAdmin(deps, { email: `${username}@example.com`, username, password: 'admin password 1' });
    const adminLogin = await request(app).post('/login').set('X-Forwarded-For', '192.0.2.200').send({ username, password: 'admin password 1' });
    const from = () => request(app).post('/login').set('X-Forwarded-For', '192.0.2.9').send(badLogin);
    await from();
    await from();
    expect((await from()).status).toBe(429);

    const reset = await request(app)
      .delete(`/admin/rate-limits/${encodeURIComponent('ip:192.0.2.9')}`)
      .set(...bearer(adminLogin.body.access_token));
    expect(reset.status).toBe(204);
    expect((await from()).status).toBe(401);
    const malformed = await request(app)
      .delete('/admin/rate-limits/everyone')
      .set(...bearer(adminLogin.body.access_token));
    expect(malformed.status).toBe(400);
  });

  describe.runIf(usingRedis)('when Redis fails', () => {
    async function appThroughProxy(failOpen: boolean) {
      const connection = await redisThroughProxy();
      const store = freshStore(backends, connection.redis);
      const { app } = buildApp(backends, { config: testConfig({ rateLimit: budgets({ auth: 100 }, failOpen) }), store });
      return { app, ...connection };
    }

    it('then the limiter answers 503 within a second (fail closed), and recovers by itself when Redis returns', async () => {
      const { app, proxy, close } = await appThroughProxy(false);
      try {
        expect((await request(app).post('/login').send(badLogin)).status).toBe(401);
        await proxy.stop();
        const started = Date.now();
        const down = await request(app).post('/login').send(badLogin);
        const elapsed = Date.now() - started;
        await proxy.start();
        await expect.poll(async () => (await request(app).post('/login').send(badLogin)).status, { timeout: 10_000, interval: 200 }).toBe(401);

        expect(down.status).toBe(503);
        expect(down.body.error.code).toBe('service_unavailable');
        expect(elapsed).toBeLessThan(1_000);
      } finally {
        await close();
      }
    });

    it('then, black-holed, an authenticated request waits out one command timeout, not one per step', async () => {
      const connection = await redisThroughProxy();
      try {
        const { app } = buildApp(backends, { config: testConfig({ rateLimit: budgets({ auth: 100 }) }), store: freshStore(backends, connection.redis) });
        const account = await registerAndLogin(app);
        connection.proxy.blackhole();

        const started = Date.now();
        const res = await request(app)
          .get('/protected')
          .set(...bearer(account.accessToken));
        const elapsed = Date.now() - started;

        expect(res.status).toBe(503);
        // The revocation check and the budget's increment leave together and time out together (1 s each).
        expect(elapsed).toBeLessThan(1_800);
      } finally {
        await connection.close();
      }
    });

    it('then with RATE_LIMIT_FAIL_OPEN the request goes through', async () => {
      const { app, proxy, close } = await appThroughProxy(true);
      try {
        await proxy.stop();
        const res = await request(app).post('/login').send(badLogin);
        expect(res.status).toBe(401);
      } finally {
        await close();
      }
    });

    it('then a limiter created while Redis was down still recovers once it is back', async () => {
      const { proxy, redis, close } = await redisThroughProxy();
      try {
        await proxy.stop();
        const store = freshStore(backends, redis);
        const { app } = buildApp(backends, { config: testConfig({ rateLimit: budgets({ auth: 100 }) }), store });
        expect((await request(app).post('/login').send(badLogin)).status).toBe(503);
        await proxy.start();
        await expect.poll(async () => (await request(app).post('/login').send(badLogin)).status, { timeout: 10_000, interval: 200 }).toBe(401);
      } finally {
        await close();
      }
    });

    it('then after SCRIPT FLUSH the limiter reloads its script and keeps counting', async () => {
      const { app } = buildApp(backends, { store: freshStore(backends), config: testConfig({ rateLimit: budgets({ auth: 3 }) }) });
      expect((await request(app).post('/login').send(badLogin)).status).toBe(401);
      await backends.redis?.script('FLUSH');
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await request(app).post('/login').send(badLogin)).status);
      expect(statuses).toEqual([401, 401, 429]);
    });
  });

  it.runIf(usingRedis)('when the service has written to Redis, then every key it wrote has an expiry', async () => {
    const { app } = buildApp(backends, { store: freshStore(backends), config: testConfig({ rateLimit: budgets({ auth: 100 }) }) });
    const account = await registerAndLogin(app);
    await request(app)
      .get('/expensive')
      .set(...bearer(account.accessToken));
    await request(app)
      .post('/logout')
      .set(...bearer(account.accessToken));
    const other = await registerAndLogin(app);
    await request(app)
      .post('/logout/all')
      .set(...bearer(other.accessToken));

    const redis = backends.redis;
    if (!redis) throw new Error('unreachable: guarded by runIf');
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${backends.redisPrefix}*`, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    const kinds = new Set(keys.map((key) => key.slice(backends.redisPrefix.length).split(':').slice(1, 3).join(':')));
    expect([...kinds]).toEqual(expect.arrayContaining(['rl:auth', 'rl:account', 'revoked:jti', 'revoked:session', 'revoked:user', 'cache:expensive']));
    for (const key of keys) expect(await redis.pttl(key), key).toBeGreaterThan(0);
  });
});

describe('a budget spent only by refusals', () => {
  const backends = useBackends();

  /** A tiny app: /answer/:status answers that status behind `refusals`, /metered spends the same group's `limit`. */
  function limited(limit: number) {
    const store = freshStore(backends) ?? inProcessStore;
    const limiters = createRateLimiters(budgets({ credentials: limit }), store, silentLogger, { validate: true, clock: new ManualClock() });
    const reached: number[] = [];
    const app = express();
    app.post('/answer/:status', limiters.refusals('credentials'), (req, res) => {
      reached.push(Number(req.params.status));
      res.status(Number(req.params.status)).end();
    });
    app.post('/metered', limiters.limit('credentials'), (_req, res) => {
      res.status(204).end();
    });
    app.use((err: AppError, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(err.status).json({ budget: (err.details as { budget?: string } | undefined)?.budget });
    });
    return { app, reached };
  }

  const answer = (app: express.Express, status: number) => request(app).post(`/answer/${status}`);

  it('when requests succeed or fail on our side, then they give their count back; refusals keep theirs until the budget is spent', async () => {
    const { app, reached } = limited(3);
    const statuses = [];
    for (const status of [200, 204, 500, 503, 200, 200, 401, 400, 403, 200]) statuses.push((await answer(app, status)).status);
    const afterwards = await answer(app, 200);

    expect(statuses).toEqual([200, 204, 500, 503, 200, 200, 401, 400, 403, 429]);
    expect(afterwards.status).toBe(429);
    expect(afterwards.body).toEqual({ budget: 'credentials' });
    expect(reached).toEqual([200, 204, 500, 503, 200, 200, 401, 400, 403]);
  });

  it('when the same group is also metered, then both count into one budget', async () => {
    const { app } = limited(3);
    const metered = [(await request(app).post('/metered')).status, (await request(app).post('/metered')).status];
    const refused = (await answer(app, 401)).status;
    const next = await answer(app, 200);

    expect(metered).toEqual([204, 204]);
    expect(refused).toBe(401);
    expect(next.status).toBe(429);
  });

  it('when a burst of refusals arrives at once, then exactly the budget reaches the handler', async () => {
    const { app, reached } = limited(5);
    const results = await Promise.all(Array.from({ length: 30 }, () => answer(app, 401)));

    expect(results.filter((res) => res.status === 429)).toHaveLength(25);
    expect(reached).toHaveLength(5);
  });

  it('when a request is let through, then it carries no RateLimit headers (it has spent nothing); a refusal by the budget does', async () => {
    const { app } = limited(1);
    const through = await answer(app, 401);
    const refused = await answer(app, 200);

    expect(through.headers.ratelimit).toBeUndefined();
    expect(through.headers['ratelimit-policy']).toBeUndefined();
    expect(refused.status).toBe(429);
    expect(refused.headers['ratelimit-policy']).toMatch(/^"credentials"; q=1; w=60/);
    expect(refused.headers['retry-after']).toMatch(/^\d+$/);
  });
});

describe('a spent budget remembered in this process', () => {
  async function overMemoryStore(limit: number, clock: ManualClock) {
    const shared = new MemoryStore();
    const spent = new SpentBudgets(shared, 1_000, clock);
    await spent.init({ limit, windowMs: WINDOW_MS } as Options);
    return { shared, spent };
  }

  it('when the shared count passes the limit, then later increments are answered from memory until the memory lapses', async () => {
    const clock = new ManualClock();
    const { shared, spent } = await overMemoryStore(2, clock);
    const sharedIncrement = vi.spyOn(shared, 'increment');
    for (let i = 0; i < 3; i++) await spent.increment('user:a');
    expect(spent.knownSpent('user:a')).toBe(true);
    expect(spent.knownSpent('user:b')).toBe(false);

    const remembered = await spent.increment('user:a');
    clock.advance(1_001);
    const lapsed = spent.knownSpent('user:a');
    const counted = await spent.increment('user:a');

    expect(sharedIncrement).toHaveBeenCalledTimes(4);
    expect(remembered.totalHits).toBe(3);
    expect(lapsed).toBe(false);
    expect(counted.totalHits).toBe(4);
  });

  it('when a key is reset, then its refusal is forgotten here and in the shared store', async () => {
    const { spent } = await overMemoryStore(1, new ManualClock());
    await spent.increment('ip:192.0.2.1');
    await spent.increment('ip:192.0.2.1');
    expect(spent.knownSpent('ip:192.0.2.1')).toBe(true);

    await spent.resetKey('ip:192.0.2.1');

    expect(spent.knownSpent('ip:192.0.2.1')).toBe(false);
    expect((await spent.increment('ip:192.0.2.1')).totalHits).toBe(1);
  });
});

describe.runIf(usingRedis)('refusals on real Redis', () => {
  const backends = useBackends();

  it('when a user has spent their budget, then refusals need no Redis at all (429, not 503, with Redis cut)', async () => {
    const { proxy, redis, close } = await redisThroughProxy();
    try {
      const settings = { ...budgets({ account: 2 }), rememberRefusalMs: 60_000 };
      const { app } = buildApp(backends, { store: freshStore(backends, redis), config: testConfig({ rateLimit: settings }) });
      const account = await registerAndLogin(app);
      const statuses = [];
      for (let i = 0; i < 3; i++)
        statuses.push(
          (
            await request(app)
              .get('/protected')
              .set(...bearer(account.accessToken))
          ).status,
        );

      await proxy.stop();
      const refused = await request(app)
        .get('/protected')
        .set(...bearer(account.accessToken));
      const other = await registrationStatus(app);

      expect(statuses).toEqual([200, 200, 429]);
      expect(refused.status).toBe(429);
      expect(refused.headers['retry-after']).toMatch(/^\d+$/);
      expect(refused.headers['ratelimit-policy']).toMatch(/^"account"; q=2; w=60/);
      expect(refused.headers.ratelimit).toMatch(/^"account"; r=0; t=\d+/);
      expect(refused.body.error).toMatchObject({ code: 'rate_limited', details: { budget: 'account', limit: 2 } });
      expect(other).toBe(503);
    } finally {
      await close();
    }
  });

  it('when an admin resets a user whose refusal this instance remembers, then the user is served again at once', async () => {
    const settings = { ...budgets({ account: 2, auth: 100 }), rememberRefusalMs: 60_000 };
    const { app, deps } = buildApp(backends, { store: freshStore(backends), config: testConfig({ rateLimit: settings }) });
    const username = uniqueName('admin');
    await createAdmin(deps, { email: `${username}@example.com`, username, password: 'admin password 1' });
    const admin = await request(app).post('/login').send({ username, password: 'admin password 1' });
    const user = await registerAndLogin(app);
    for (let i = 0; i < 3; i++)
      await request(app)
        .get('/protected')
        .set(...bearer(user.accessToken));
    const before = await request(app)
      .get('/protected')
      .set(...bearer(user.accessToken));

    const reset = await request(app)
      .delete(`/admin/rate-limits/${encodeURIComponent(`user:${user.id}`)}`)
      .set(...bearer(admin.body.access_token));
    const after = await request(app)
      .get('/protected')
      .set(...bearer(user.accessToken));

    expect(before.status).toBe(429);
    expect(reset.status).toBe(204);
    expect(after.status).toBe(200);
  });
});

/** With the store cut, a new client cannot even register: its status tells what the limiter does without Redis. */
async function registrationStatus(app: Parameters<typeof request>[0]): Promise<number> {
  const username = uniqueName();
  return (
    await request(app)
      .post('/register')
      .send({ username, email: `${username}@example.com`, password: 'a long password 1' })
  ).status;
}
