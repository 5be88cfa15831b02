// Entries an earlier version left in Redis (values without deadlines, lapsing by Redis's TTL) keep their meaning.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { createFailureLockout } from '../../src/core/failure-lockout.js';
import { connectRedis, type Redis } from '../../src/core/redis.js';
import { redisStore } from '../../src/core/shared-store.js';
import { createRevocationStore } from '../../src/kernel/revocation/revocation-store.js';
import { createBudgetStore } from '../../src/kernel/throttle/budget-store.js';
import { silentLogger, usingRedis } from '../support/test-app.js';

const MINUTE = 60_000;

describe.skipIf(!usingRedis)(
  usingRedis ? 'entries written before deadlines were kept' : 'entries written before deadlines were kept (skipped: REDIS_URL is not set)',
  () => {
    let redis: Redis;
    const prefix = `authkit-contract:${process.pid}:${randomUUID()}:`;
    beforeAll(async () => {
      redis = await connectRedis(process.env.REDIS_URL ?? '', {}, silentLogger);
    });
    afterAll(async () => {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    });

    it('when Redis holds an earlier revocation, cutoff or spent id, then it still voids and cannot be spent again', async () => {
      const clock = new ManualClock();
      const revocations = createRevocationStore(redisStore(redis, prefix), clock);
      const token = { jti: randomUUID(), sid: randomUUID(), userId: randomUUID(), issuedAtMs: clock.now() - 1 };
      await redis.set(`${prefix}revoked:session:${token.sid}`, '1', 'PX', MINUTE);
      await redis.set(`${prefix}revoked:user:${token.userId}`, String(clock.now()), 'PX', MINUTE);
      await redis.set(`${prefix}revoked:jti:spent`, '1', 'PX', MINUTE);

      expect(await revocations.isRevoked(token)).toBe(true);
      expect(await revocations.isRevoked({ ...token, sid: randomUUID() })).toBe(true);
      expect(await revocations.spendOnce('spent', MINUTE)).toBe(false);
      await revocations.revokeUserTokensBefore(token.userId, clock.now() - 10_000, MINUTE);
      expect(await revocations.isRevoked({ ...token, sid: randomUUID() })).toBe(true);
    });

    it('when Redis holds an earlier failure count or request count, then it keeps counting from it', async () => {
      const clock = new ManualClock();
      const store = redisStore(redis, prefix);
      const lockout = createFailureLockout(store, clock, { name: 'earlier', maxFailures: 3, lockMs: MINUTE });
      const budget = createBudgetStore(store, clock, 'rl:earlier:');
      await budget.init({ windowMs: MINUTE });
      await redis.set(`${prefix}earlier:failures:someone`, '2', 'PX', MINUTE);
      await redis.set(`${prefix}rl:earlier:ip:192.0.2.1`, '4', 'PX', MINUTE);

      expect(await lockout.lockedForMs('someone')).toBe(0);
      expect(await lockout.recordFailure('someone')).toBe(MINUTE);
      expect((await budget.increment('ip:192.0.2.1')).totalHits).toBe(5);
    });
  },
);
