import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/core/db.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { type Backends, buildApp, freshStore, openBackends, redisThroughProxy, usingRedis } from './support/test-app.js';

describe('readiness', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  async function backends(): Promise<Backends> {
    const opened = await openBackends();
    cleanups.push(() => opened.close());
    return opened;
  }

  it('when the database and the store answer, then /ready is 200 and names both', async () => {
    const { app } = buildApp(await backends());
    const res = await request(app).get('/ready');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ready', checks: { database: 'up', redis: usingRedis ? 'up' : 'in-process' } });
  });

  it('when the database stops answering, then /ready is 503 naming the database', async () => {
    const opened = await backends();
    let db = opened.db;
    if (process.env.DATABASE_URL) {
      // Route a second connection through a proxy we can cut, as if the server went away.
      const proxy = TcpProxy.forUrl(process.env.DATABASE_URL, 5432);
      await proxy.start();
      db = await openDatabase({ url: proxy.rewrite(process.env.DATABASE_URL), migrate: false });
      cleanups.push(() => db.close());
      await db.ping();
      await proxy.stop();
    } else {
      await db.close();
    }
    const { app } = buildApp({ ...opened, db });
    const started = Date.now();
    const res = await request(app).get('/ready');
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('service_unavailable');
    expect(res.body.error.details.checks.database).toBe('down');
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it.runIf(process.env.DATABASE_URL)('when requests hold every connection of the pool, then /ready still answers 200 at once', async () => {
    const opened = await backends();
    const { app } = buildApp(opened);
    // pg's default pool has 10 connections: hold them all for longer than a readiness check may wait.
    // (A Prisma query starts only when awaited: `then` starts each one now.)
    const busy = Array.from({ length: 12 }, () => opened.db.prisma.$executeRaw`SELECT pg_sleep(2.5)`.then(() => undefined));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const res = await request(app).get('/ready');
    await Promise.all(busy);
    expect(res.status).toBe(200);
    expect(res.body.checks.database).toBe('up');
  });

  it.runIf(usingRedis)('when Redis stops answering, then /ready is 503 naming redis, and recovers when it returns', async () => {
    const opened = await backends();
    const { proxy, redis, close } = await redisThroughProxy();
    cleanups.push(close);
    const { app } = buildApp(opened, { store: freshStore(opened, redis) });

    await proxy.stop();
    const down = await request(app).get('/ready');
    await proxy.start();
    await expect.poll(async () => (await request(app).get('/ready')).status, { timeout: 5_000 }).toBe(200);

    expect(down.status).toBe(503);
    expect(down.body.error.details.checks).toEqual({ database: 'up', redis: 'down' });
  });

  describe('when the database fails under a request', () => {
    async function appOverCutDatabase(cut: (proxy: TcpProxy) => Promise<void> | void) {
      const opened = await backends();
      const url = process.env.DATABASE_URL;
      if (!url) {
        await opened.db.close();
        return buildApp(opened).app;
      }
      const proxy = TcpProxy.forUrl(url, 5432);
      await proxy.start();
      const db = await openDatabase({ url: proxy.rewrite(url), migrate: false, connectTimeoutMs: 500, queryTimeoutMs: 500 });
      cleanups.push(async () => {
        await proxy.stop();
        await db.close();
      });
      await cut(proxy);
      return buildApp({ ...opened, db }).app;
    }

    it('when it is down, then a request that needs it gets 503 with Retry-After, not 500', async () => {
      const app = await appOverCutDatabase((proxy) => proxy.stop());

      const res = await request(app).post('/login').send({ username: 'someone', password: 'a password' });

      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('service_unavailable');
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    });

    it.runIf(process.env.DATABASE_URL !== undefined)('when it stalls without answering, then the request still ends with 503', async () => {
      const app = await appOverCutDatabase((proxy) => proxy.blackhole());

      const res = await request(app).post('/login').send({ username: 'someone', password: 'a password' });

      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('service_unavailable');
    });
  });
});
