// Runs one store capability's contract against the in-process store and, with REDIS_URL, against Redis.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe } from 'vitest';
import { connectRedis } from '../../src/core/redis.js';
import { inProcessStore, redisStore, type SharedStore } from '../../src/core/shared-store.js';
import { silentLogger, usingRedis } from '../support/test-app.js';

export interface StoreUnderTest {
  kind: Kind;
  /** A store of its own: a fresh key prefix on Redis, a fresh implementation in-process (the factory builds one). */
  fresh(): SharedStore;
  /** A Redis store whose server cannot be reached; undefined for the in-process store, which is never unreachable. */
  unreachable(): SharedStore | undefined;
}

export type Kind = 'in-process' | 'Redis';

function storeUnderTest(kind: Kind): StoreUnderTest {
  if (kind === 'in-process') return { kind, fresh: () => inProcessStore, unreachable: () => undefined };
  let redis: Redis | undefined;
  let down: Redis | undefined;
  const prefix = `authkit-contract:${process.pid}:${randomBytes(4).toString('hex')}:`;
  beforeAll(async () => {
    redis = await connectRedis({ url: process.env.REDIS_URL ?? '' }, silentLogger);
    // Never connected and never queueing: every command fails at once, as while Redis is down.
    down = new Redis({ port: 1, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    down.on('error', () => undefined);
  });
  afterAll(async () => {
    if (redis) {
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
  describe.each<Kind>(['in-process', 'Redis'])(`${capability} on %s`, (kind) => {
    const skipped = kind === 'Redis' && !usingRedis;
    describe.skipIf(skipped)(skipped ? 'skipped: REDIS_URL is not set' : 'the contract', () => {
      contract(storeUnderTest(kind));
    });
  });
}
