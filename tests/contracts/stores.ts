// Runs one store capability's contract against the in-process store and, with REDIS_URL, against Redis.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, inject } from 'vitest';
import type { RedisTarget } from '../../src/core/config.js';
import { connectRedis, isCluster, type RedisClient } from '../../src/core/redis.js';
import { inProcessStore, redisStore, type SharedStore } from '../../src/core/shared-store.js';
import { silentLogger, usingRedis } from '../support/test-app.js';

export interface StoreUnderTest {
  kind: Kind;
  /** A store of its own: a fresh key prefix on Redis, a fresh implementation in-process (the factory builds one). */
  fresh(): SharedStore;
  /** A Redis store whose server cannot be reached; undefined for the in-process store, which is never unreachable. */
  unreachable(): SharedStore | undefined;
}

export type Kind = 'in-process' | 'Redis' | 'Redis Sentinel' | 'Redis Cluster';

/** Where each Redis kind is: REDIS_URL, or the topologies the failover suite started (tests/ha/global-setup.ts). */
function redisTarget(kind: Exclude<Kind, 'in-process'>): RedisTarget {
  const ha = inject('haRedis');
  const hostPorts = (setting: string) => setting.split(',').map((pair) => ({ host: pair.split(':')[0] ?? '', port: Number(pair.split(':')[1]) }));
  if (kind === 'Redis Sentinel' && ha) return { kind: 'sentinel', sentinels: hostPorts(ha.sentinels), name: ha.sentinelName };
  if (kind === 'Redis Cluster' && ha) return { kind: 'cluster', nodes: hostPorts(ha.clusterNodes) };
  return { kind: 'url', url: process.env.REDIS_URL ?? '' };
}

function storeUnderTest(kind: Kind): StoreUnderTest {
  if (kind === 'in-process') return { kind, fresh: () => inProcessStore, unreachable: () => undefined };
  let redis: RedisClient | undefined;
  let down: Redis | undefined;
  const prefix = `authkit-contract:${process.pid}:${randomBytes(4).toString('hex')}:`;
  beforeAll(async () => {
    redis = await connectRedis(redisTarget(kind), {}, silentLogger);
    // Never connected and never queueing: every command fails at once, as while Redis is down.
    down = new Redis({ port: 1, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    down.on('error', () => undefined);
  });
  afterAll(async () => {
    // The failover suite's topologies go with their keys when it ends.
    if (redis && isCluster(redis)) redis.disconnect();
    else if (redis) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        if (keys.length > 0) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
      redis.disconnect();
    }
    down?.disconnect();
  });
  return {
    kind,
    fresh() {
      if (!redis) throw new Error('Redis is not connected');
      return redisStore(redis, `${prefix}${randomBytes(4).toString('hex')}:`);
    },
    unreachable() {
      if (!down) throw new Error('not set up');
      return redisStore(down, `${prefix}down:`);
    },
  };
}

/**
 * Declares `contract` once per store: `describe.each` over both kinds; the Redis half is reported as skipped, with the
 * reason in its name, when REDIS_URL is not set (CI sets it, so it runs there).
 */
export function describeContract(capability: string, contract: (store: StoreUnderTest) => void): void {
  // The failover suite runs the contracts on its Sentinel and Cluster topologies; the main suite on the other two.
  const kinds: Kind[] = inject('haRedis') ? ['Redis Sentinel', 'Redis Cluster'] : ['in-process', 'Redis'];
  describe.each<Kind>(kinds)(`${capability} on %s`, (kind) => {
    const skipped = kind === 'Redis' && !usingRedis;
    describe.skipIf(skipped)(skipped ? 'skipped: REDIS_URL is not set' : 'the contract', () => {
      contract(storeUnderTest(kind));
    });
  });
}
