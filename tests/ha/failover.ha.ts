// Built instances behind nginx, on Redis under Sentinel, on a Redis Cluster, and on PostgreSQL behind PgBouncer in
// transaction mode, each started here (tests/support/topologies.ts). The primary is killed with SIGKILL under steady
// load: how long requests fail is printed, and every logout confirmed before is still refused afterwards, on every
// instance. A revocation the new primary never received (Redis replicates asynchronously) is given back from the
// database's record of revocations.
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { Cluster, Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster as Instances, startCluster } from '../../scripts/cluster-lib.js';
import { databaseUrlFor } from '../support/database-url.js';
import { callService } from '../support/http-call.js';
import { png } from '../support/images.js';
import {
  type PgBouncer,
  type PrivatePostgres,
  type RedisClusterTopology,
  type SentinelTopology,
  startPgBouncer,
  startPrivatePostgres,
  startRedisCluster,
  startSentinelTopology,
} from '../support/topologies.js';

const BASE_DATABASE_URL = process.env.DATABASE_URL;
const REDIS_URL = process.env.REDIS_URL;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const call = callService;

interface Account {
  token: string;
  refresh: string;
  sessionId: string;
}

async function account(base: string): Promise<Account> {
  const username = `ha_${randomBytes(5).toString('hex')}`;
  const password = 'failover test passphrase';
  const registered = await call(base, 'POST', '/register', { body: { username, email: `${username}@example.com`, password } });
  expect(registered.status).toBe(201);
  const login = await call(base, 'POST', '/login', { body: { username, password } });
  expect(login.status).toBe(200);
  const token = login.body.access_token as string;
  const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { sid: string };
  return { token, refresh: login.body.refresh_token as string, sessionId: claims.sid };
}

interface Sample {
  atMs: number;
  status: number;
  tookMs: number;
  retryAfter: string | null;
}

/** Four clients asking `route` in turn with the given tokens until stopped; every answer is kept with its time. */
function steadyLoad(base: string, route: string, tokens: string[]) {
  const samples: Sample[] = [];
  let running = true;
  const clients = [0, 1, 2, 3].map(async (client) => {
    for (let i = client; running; i++) {
      const started = performance.now();
      const answer = await call(base, 'GET', route, { token: tokens[i % tokens.length] }).catch(() => ({ status: 0, body: {}, retryAfter: null }));
      samples.push({ atMs: started, status: answer.status, tookMs: performance.now() - started, retryAfter: answer.retryAfter });
      await sleep(10);
    }
  });
  return {
    samples,
    /** Resolves once `count` answers in a row were 200 (the service is back). */
    async until200s(count: number, timeoutMs = 60_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const tail = samples.slice(-count);
        if (tail.length === count && tail.every((sample) => sample.status === 200)) return;
        if (Date.now() > deadline) throw new Error(`the service did not recover within ${timeoutMs} ms`);
        await sleep(50);
      }
    },
    async stop(): Promise<void> {
      running = false;
      await Promise.all(clients);
    },
  };
}

/** What a failover cost the clients: how many requests failed, over how long, how, and the slowest answer. */
function failoverReport(label: string, samples: Sample[], killedAtMs: number) {
  const after = samples.filter((sample) => sample.atMs >= killedAtMs);
  const failed = after.filter((sample) => sample.status !== 200);
  const windowMs = failed.length === 0 ? 0 : Math.max(...failed.map((sample) => sample.atMs + sample.tookMs)) - killedAtMs;
  const slowestMs = Math.max(0, ...after.map((sample) => sample.tookMs));
  const statuses = [...new Set(failed.map((sample) => sample.status))].sort();
  console.log(
    `[failover] ${label}: ${failed.length} of ${after.length} requests failed (statuses ${statuses.join(', ') || 'none'}) within ${Math.round(windowMs)} ms of the kill; slowest answer ${Math.round(slowestMs)} ms`,
  );
  return { failed, windowMs, slowestMs };
}

/** Every instance, asked directly (not through nginx): the status each gives the token. */
async function everyInstance(instances: Instances, token: string): Promise<number[]> {
  return Promise.all(instances.instances.map(async (instance) => (await call(`http://127.0.0.1:${instance.port}`, 'GET', '/mfa', { token })).status));
}

async function createDatabase(url: string, name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
}

async function dropDatabase(url: string, name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
}

/** HA_LOG_DIR=DIR keeps the instances' and nginx's logs under DIR/<database> (they go with the run otherwise). */
function logsKept(database: string): { dir?: string } {
  return process.env.HA_LOG_DIR ? { dir: path.join(process.env.HA_LOG_DIR, database) } : {};
}

/** Settings every instance of these suites shares: roomy budgets (the load must not meet them), quiet logs. */
const QUIET = { RATE_LIMIT_MAX: '100000', RATE_LIMIT_ACCOUNT_MAX: '100000', BCRYPT_COST: '10', LOG_LEVEL: 'warn' };

interface RedisTopology {
  label: string;
  start(): Promise<{ env: Record<string, string>; kill(sessionKey: string): Promise<void>; primaries(): Promise<Redis[]>; stop(): Promise<void> }>;
}

const sentinel: RedisTopology = {
  label: 'Redis Sentinel (a primary, a replica, three sentinels)',
  async start() {
    const topology: SentinelTopology = await startSentinelTopology();
    const clients: Redis[] = [];
    return {
      env: { REDIS_SENTINELS: topology.sentinelsSetting, REDIS_SENTINEL_NAME: topology.name },
      async kill() {
        const old = await topology.killPrimary();
        await topology.waitForNewPrimary(old);
      },
      async primaries() {
        const client = new Redis({ port: await topology.primaryPort(), host: '127.0.0.1', lazyConnect: true });
        clients.push(client);
        return [client];
      },
      async stop() {
        for (const client of clients) client.disconnect();
        await topology.stop();
      },
    };
  },
};

const cluster: RedisTopology = {
  label: 'Redis Cluster (three primaries, three replicas)',
  async start() {
    const topology: RedisClusterTopology = await startRedisCluster();
    let client: Cluster | undefined;
    return {
      env: { REDIS_CLUSTER_NODES: topology.nodesSetting },
      async kill(sessionKey) {
        // The primary that holds a logged-out session's entry: the failover must keep what it held.
        const port = await topology.primaryForKey(sessionKey);
        topology.killNode(port);
        await topology.waitForFailover(port);
      },
      async primaries() {
        client ??= new Cluster(topology.nodes);
        client.on('error', () => {});
        await client.ping().catch(() => undefined);
        return client.nodes('master');
      },
      async stop() {
        client?.disconnect();
        await topology.stop();
      },
    };
  },
};

describe.runIf(BASE_DATABASE_URL && REDIS_URL).each([sentinel, cluster])('instances on $label', (topology) => {
  let redis: Awaited<ReturnType<RedisTopology['start']>>;
  let instances: Instances;
  const database = `authkit_ha_${randomBytes(4).toString('hex')}`;
  const prefix = `${database}:`;

  beforeAll(async () => {
    if (!BASE_DATABASE_URL) return;
    redis = await topology.start();
    await createDatabase(BASE_DATABASE_URL, database);
    instances = await startCluster({
      instances: 2,
      port: 0,
      databaseUrl: databaseUrlFor(BASE_DATABASE_URL, database),
      env: { ...QUIET, REDIS_URL: '', ...redis.env, REDIS_KEY_PREFIX: prefix },
      ...logsKept(database),
    });
  });

  afterAll(async () => {
    await instances?.stop();
    await redis?.stop();
    if (BASE_DATABASE_URL) await dropDatabase(BASE_DATABASE_URL, database);
  });

  it('when the primary is killed under load, then requests fail only with 503 for a moment, recover by themselves, and every confirmed logout holds', async () => {
    const accounts = await Promise.all(Array.from({ length: 8 }, () => account(instances.url)));
    const [loggedOut, live] = [accounts.slice(0, 4), accounts.slice(4)];
    for (const { token } of loggedOut) expect((await call(instances.url, 'POST', '/logout', { token })).status).toBe(204);
    const load = steadyLoad(
      instances.url,
      '/mfa',
      live.map(({ token }) => token),
    );
    await sleep(500);

    const killedAtMs = performance.now();
    await redis.kill(`${prefix}revoked:session:${loggedOut[0]?.sessionId}`);
    await load.until200s(20);
    await sleep(500);
    await load.stop();

    const { failed } = failoverReport(topology.label, load.samples, killedAtMs);
    // A failure is a 503 the client may retry (with Retry-After), never a 500 or a wrongly refused token.
    expect(failed.every((sample) => sample.status === 503 && sample.retryAfter !== null)).toBe(true);
    expect(load.samples.every((sample) => sample.status !== 0)).toBe(true);
    const kept = await Promise.all(loggedOut.map(({ token }) => everyInstance(instances, token)));
    console.log(
      `[failover] ${topology.label}: ${kept.filter((statuses) => statuses.every((status) => status === 401)).length} of ${loggedOut.length} logouts confirmed before the kill still refused on all ${instances.instances.length} instances`,
    );
    expect(kept.flat().every((status) => status === 401)).toBe(true);
    for (const { token } of live) expect(await everyInstance(instances, token)).toEqual(instances.instances.map(() => 200));
  });

  it('when the new primary never received a logout (replication lags), then the instances restore it from the database before answering', async () => {
    const [victim, bystander] = await Promise.all([account(instances.url), account(instances.url)]);
    expect((await call(instances.url, 'POST', '/logout', { token: victim.token })).status).toBe(204);
    expect(await everyInstance(instances, victim.token)).toEqual([401, 401]);

    // What a promoted replica that missed the last writes holds: everything but the revocation entries.
    const primaries = await redis.primaries();
    for (const primary of primaries) {
      const names = await primary.keys(`${prefix}revoked:*`);
      if (names.length > 0) await Promise.all(names.map((name) => primary.del(name)));
    }
    // The entries are truly gone: an instance that did not notice a lost server would now accept the token.
    expect(await everyInstance(instances, victim.token)).toEqual([200, 200]);
    // The instances lose their connections, as in a failover, and come back to a server without the entries.
    for (const primary of primaries) await primary.call('CLIENT', 'KILL', 'TYPE', 'normal');

    await expect.poll(() => everyInstance(instances, victim.token), { timeout: 15_000 }).toEqual([401, 401]);
    expect(await everyInstance(instances, bystander.token)).toEqual([200, 200]);
  });
});

describe.runIf(REDIS_URL)('instances on PostgreSQL behind PgBouncer in transaction mode, images on a shared local directory', () => {
  let postgres: PrivatePostgres;
  let bouncer: PgBouncer;
  let instances: Instances;
  const database = `authkit_ha_${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    postgres = await startPrivatePostgres();
    await createDatabase(postgres.url, database);
    bouncer = await startPgBouncer({ host: '127.0.0.1', port: postgres.port }, { serverLoginRetrySeconds: 1 });
    instances = await startCluster({
      instances: 2,
      port: 0,
      databaseUrl: bouncer.url(database),
      redisUrl: REDIS_URL,
      env: { ...QUIET, REDIS_KEY_PREFIX: `${database}:`, STORAGE: 'local' },
      ...logsKept(database),
    });
  });

  afterAll(async () => {
    await instances?.stop();
    await bouncer?.stop();
    await postgres?.stop();
  });

  it('when people register, log in, refresh, upload and log out through the pooler, then every instance serves them', async () => {
    const person = await account(instances.url);
    const refreshed = await call(instances.url, 'POST', '/refresh', { body: { refresh_token: person.refresh } });
    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(png(5, 4))], { type: 'image/png' }), 'a.png');
    const upload = await call(instances.url, 'POST', '/images', { token: person.token, form });
    const downloads = await Promise.all(
      instances.instances.map(async (instance) => {
        const res = await fetch(`http://127.0.0.1:${instance.port}${String(upload.body.url)}`);
        return {
          status: res.status,
          sha256: createHash('sha256')
            .update(Buffer.from(await res.arrayBuffer()))
            .digest('hex'),
        };
      }),
    );
    const logout = await call(instances.url, 'POST', '/logout', { token: refreshed.body.access_token as string });

    expect(refreshed.status).toBe(200);
    expect(upload.status).toBe(201);
    expect(downloads).toEqual(instances.instances.map(() => ({ status: 200, sha256: upload.body.sha256 })));
    expect(logout.status).toBe(204);
    expect(await everyInstance(instances, refreshed.body.access_token as string)).toEqual([401, 401]);
  });

  it('when PostgreSQL restarts under load, then requests fail only with 503 meanwhile, and the service recovers without a restart', async () => {
    const people = await Promise.all([1, 2, 3].map(() => account(instances.url)));
    // A route that reads the database on every request.
    const load = steadyLoad(
      instances.url,
      '/sessions',
      people.map(({ token }) => token),
    );
    await sleep(500);

    const killedAtMs = performance.now();
    await postgres.restart({ downMs: 1_000 });
    await load.until200s(20);
    await load.stop();

    const { failed } = failoverReport('PostgreSQL restart behind PgBouncer', load.samples, killedAtMs);
    expect(failed.every((sample) => sample.status === 503)).toBe(true);
    expect(load.samples.every((sample) => sample.status !== 0)).toBe(true);
    expect(instances.instances.every((instance) => instance.process.exitCode === null)).toBe(true);
  });
});
