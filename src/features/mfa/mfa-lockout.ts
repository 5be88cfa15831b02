// Counts wrong second-factor codes per user and locks the second factor after too many, on every instance.
import type { Clock } from '../../core/clock.js';
import { ExpiringMap } from '../../core/expiring-map.js';
import type { SharedStore } from '../../core/shared-store.js';

export const MAX_FAILURES = 5;
export const LOCK_MS = 15 * 60 * 1000;

export interface MfaLockout {
  /** Milliseconds until the user's second factor unlocks; 0 when it is not locked. */
  lockedForMs(userId: string): Promise<number>;
  /** Counts a wrong code; returns how long the factor is now locked (0 if not yet). */
  recordFailure(userId: string): Promise<number>;
  clear(userId: string): Promise<void>;
}

// Failures count within a 15-minute window; the failure that reaches the limit restarts it as the lock.
const RECORD_FAILURE = `
local n = redis.call('INCR', KEYS[1])
if n == 1 or n == tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}`;

class RedisMfaLockout implements MfaLockout {
  constructor(private readonly store: Extract<SharedStore, { kind: 'redis' }>) {}

  private key(userId: string) {
    return `${this.store.prefix}mfa:failures:${userId}`;
  }

  async lockedForMs(userId: string) {
    const [[, count], [, ttl]] = (await this.store.redis.pipeline().get(this.key(userId)).pttl(this.key(userId)).exec()) as [
      [null, string | null],
      [null, number],
    ];
    return Number(count ?? 0) >= MAX_FAILURES ? Math.max(ttl, 0) : 0;
  }

  async recordFailure(userId: string) {
    const [count, ttl] = (await this.store.redis.eval(RECORD_FAILURE, 1, this.key(userId), LOCK_MS, MAX_FAILURES)) as [number, number];
    return count >= MAX_FAILURES ? ttl : 0;
  }

  async clear(userId: string) {
    await this.store.redis.del(this.key(userId));
  }
}

/** The same rule as the Redis script: the window starts at the first failure and restarts at the limit. */
class InProcessMfaLockout implements MfaLockout {
  private readonly failures: ExpiringMap<number>;

  constructor(clock: Clock) {
    this.failures = new ExpiringMap(clock);
  }

  lockedForMs(userId: string) {
    return Promise.resolve((this.failures.get(userId) ?? 0) >= MAX_FAILURES ? this.failures.remainingMs(userId) : 0);
  }

  recordFailure(userId: string) {
    const count = (this.failures.get(userId) ?? 0) + 1;
    this.failures.set(userId, count, count === 1 || count === MAX_FAILURES ? LOCK_MS : this.failures.remainingMs(userId));
    return Promise.resolve(count >= MAX_FAILURES ? this.failures.remainingMs(userId) : 0);
  }

  clear(userId: string) {
    this.failures.delete(userId);
    return Promise.resolve();
  }
}

export function createMfaLockout(store: SharedStore, clock: Clock): MfaLockout {
  return store.kind === 'redis' ? new RedisMfaLockout(store) : new InProcessMfaLockout(clock);
}
