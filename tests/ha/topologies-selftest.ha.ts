// Proves the failover harness (tests/support/topologies.ts) on its own: each topology starts, a client reaches it,
// a failover (or restart) happens, and the client reaches it again.
import { Cluster, Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Retries `attempt` until it resolves, for up to `timeoutMs`. */
async function eventually<T>(attempt: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
}

/** Runs `step` and prints how long it took. */
async function timed<T>(label: string, step: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await step();
  console.log(`[topologies] ${label}: ${Math.round(performance.now() - started)} ms`);
  return result;
}

describe('Redis Sentinel topology', () => {
  let topology: SentinelTopology;
  let redis: Redis;

  beforeAll(async () => {
    topology = await timed('sentinel topology start', () => startSentinelTopology());
  });

  afterAll(async () => {
    redis?.disconnect();
    await topology?.stop();
  });

  it('fails over to the replica, and a sentinel-aware client follows', async () => {
    expect(topology.sentinelsSetting).toBe(topology.sentinels.map(({ host, port }) => `${host}:${port}`).join(','));
    redis = new Redis({ sentinels: topology.sentinels, name: topology.name });
    redis.on('error', () => {});
    await redis.set('selftest:before', 'one');
    // The replica has it before the primary dies.
    expect(await redis.wait(1, 2_000)).toBe(1);

    const oldPort = await topology.primaryPort();
    expect(await topology.killPrimary()).toBe(oldPort);
    const newPort = await timed('sentinel failover', () => topology.waitForNewPrimary(oldPort));
    expect(newPort).not.toBe(oldPort);
    expect(await topology.primaryPort()).toBe(newPort);

    await eventually(() => redis.set('selftest:after', 'two'));
    expect(await redis.get('selftest:before')).toBe('one');
    expect(await redis.get('selftest:after')).toBe('two');
  });
});

describe('Redis Cluster topology', () => {
  let topology: RedisClusterTopology;
  let cluster: Cluster;

  beforeAll(async () => {
    topology = await timed('redis cluster start', () => startRedisCluster());
  });

  afterAll(async () => {
    cluster?.disconnect();
    await topology?.stop();
  });

  it("fails over a killed primary's slots to its replica, and a cluster client follows", async () => {
    expect(topology.nodes).toHaveLength(6);
    expect(topology.nodesSetting.split(',')).toHaveLength(6);
    cluster = new Cluster(topology.nodes);
    cluster.on('error', () => {});
    for (let i = 0; i < 20; i++) await cluster.set(`selftest:${i}`, String(i));

    const victim = await topology.primaryForKey('selftest:7');
    topology.killNode(victim);
    await timed('redis cluster failover', () => topology.waitForFailover(victim));
    const promoted = await topology.primaryForKey('selftest:7');
    expect(promoted).not.toBe(victim);

    await eventually(() => cluster.set('selftest:7', 'again'));
    expect(await cluster.get('selftest:7')).toBe('again');
    for (let i = 0; i < 20; i++) await eventually(() => cluster.set(`selftest:${i}:after`, String(i)));
  });
});

describe('private PostgreSQL behind PgBouncer', () => {
  let postgres: PrivatePostgres;
  let bouncer: PgBouncer;

  beforeAll(async () => {
    postgres = await timed('private postgres start', () => startPrivatePostgres());
    bouncer = await timed('pgbouncer start', () => startPgBouncer({ host: '127.0.0.1', port: postgres.port }));
  });

  afterAll(async () => {
    await bouncer?.stop();
    await postgres?.stop();
  });

  const selectOne = async (url: string): Promise<number | undefined> => {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      const { rows } = await client.query<{ one: number }>('select 1 as one');
      return rows[0]?.one;
    } finally {
      await client.end().catch(() => {});
    }
  };

  it('answers through PgBouncer before and after PostgreSQL restarts', async () => {
    expect(postgres.url).toBe(`postgresql://postgres@127.0.0.1:${postgres.port}/postgres`);
    expect(bouncer.url()).toBe(`postgresql://postgres@127.0.0.1:${bouncer.port}/postgres`);
    expect(await selectOne(postgres.url)).toBe(1);
    expect(await selectOne(bouncer.url())).toBe(1);
    // A client connected to PgBouncer across the restart keeps its connection (transaction pooling).
    const held = new pg.Client({ connectionString: bouncer.url() });
    held.on('error', () => {});
    await held.connect();
    try {
      await timed('postgres restart (downMs 500)', () => postgres.restart({ downMs: 500 }));
      expect(await timed('first select 1 through pgbouncer after restart', () => eventually(() => selectOne(bouncer.url())))).toBe(1);
      const { rows } = await eventually(() => held.query<{ one: number }>('select 1 as one'));
      expect(rows[0]?.one).toBe(1);
    } finally {
      await held.end().catch(() => {});
    }
  });
});
