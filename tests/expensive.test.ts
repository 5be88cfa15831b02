import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { Cache } from '../src/core/cache.js';
import { ManualClock } from '../src/core/clock.js';
import { inProcessStore } from '../src/core/shared-store.js';
import { bearer, registerAndLogin } from './support/accounts.js';
import { buildApp, freshStore, redisThroughProxy, silentLogger, testConfig, useBackends, usingRedis } from './support/test-app.js';

describe('GET /expensive (cached)', () => {
  const backends = useBackends();

  it('when called twice, then the first is a MISS and the second a HIT with the same result', async () => {
    const { app } = buildApp(backends);
    const account = await registerAndLogin(app);
    const first = await request(app)
      .get('/expensive')
      .set(...bearer(account.accessToken));
    const second = await request(app)
      .get('/expensive')
      .set(...bearer(account.accessToken));
    expect(first.status).toBe(200);
    expect(first.headers['x-cache']).toBe('MISS');
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.body).toEqual(first.body);
    expect(first.body).toMatchObject({ userId: account.id, activeSessions: 1 });
  });

  it('when two users call it, then each gets a result of their own', async () => {
    const { app } = buildApp(backends);
    const alice = await registerAndLogin(app);
    const bob = await registerAndLogin(app);
    await request(app)
      .get('/expensive')
      .set(...bearer(alice.accessToken));
    const res = await request(app)
      .get('/expensive')
      .set(...bearer(bob.accessToken));
    expect(res.headers['x-cache']).toBe('MISS');
    expect(res.body.userId).toBe(bob.id);
  });

  it('when many requests miss at once, then the report is computed once', async () => {
    const config = testConfig({ expensiveDelayMs: 300 });
    const store = freshStore(backends);
    // Two instances over one Redis: the miss must be computed once across both. In-process: one instance.
    const instances = usingRedis
      ? [buildApp(backends, { config, store }).app, buildApp(backends, { config, store }).app]
      : [buildApp(backends, { config }).app];
    const account = await registerAndLogin(instances[0] as (typeof instances)[number]);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        request(instances[i % instances.length] as (typeof instances)[number])
          .get('/expensive')
          .set(...bearer(account.accessToken)),
      ),
    );
    expect(results.every((res) => res.status === 200)).toBe(true);
    expect(new Set(results.map((res) => String(res.body.computedAt))).size).toBe(1);
  });

  it('when the access token is missing, then 401', async () => {
    const { app } = buildApp(backends);
    expect((await request(app).get('/expensive')).status).toBe(401);
  });

  it.runIf(usingRedis)('when Redis is down, then the cache computes and serves the value instead of failing', async () => {
    const { proxy, redis, close } = await redisThroughProxy();
    try {
      const cache = new Cache(freshStore(backends, redis) ?? inProcessStore, new ManualClock(), silentLogger);
      await proxy.stop();
      let computed = 0;
      const started = Date.now();
      const first = await cache.getOrCompute('k', 60_000, () => Promise.resolve(++computed));
      const second = await cache.getOrCompute('k', 60_000, () => Promise.resolve(++computed));
      expect(first).toEqual({ value: 1, hit: false });
      expect(second).toEqual({ value: 2, hit: false });
      expect(Date.now() - started).toBeLessThan(1_000);
    } finally {
      await close();
    }
  });

  it('when the entry outlives its TTL, then it is computed again', async () => {
    const clock = new ManualClock();
    const store = freshStore(backends) ?? inProcessStore;
    const cache = new Cache(store, clock, silentLogger);
    let computed = 0;
    await cache.getOrCompute('k', 150, () => Promise.resolve(++computed));
    const hit = await cache.getOrCompute('k', 150, () => Promise.resolve(++computed));
    // Redis expires by its own clock, the in-process cache by the injected one: move both.
    clock.advance(200);
    if (backends.redis) await new Promise((resolve) => setTimeout(resolve, 200));
    const again = await cache.getOrCompute('k', 150, () => Promise.resolve(++computed));
    expect(hit).toEqual({ value: 1, hit: true });
    expect(again).toEqual({ value: 2, hit: false });
  });
});
