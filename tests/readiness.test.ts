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
});
