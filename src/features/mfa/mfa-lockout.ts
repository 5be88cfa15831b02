// Counts wrong second-factor codes per user and locks the second factor after too many, on every instance.
import type { Clock } from '../../core/clock.js';
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

class InProcessMfaLockout implements MfaLockout {
  private readonly failures = new Map<string, { count: number; until: number }>();

  constructor(private readonly clock: Clock) {}

  private current(userId: string) {
    const entry = this.failures.get(userId);
    if (entry && entry.until <= this.clock.now()) {
      this.failures.delete(userId);
      return undefined;
    }
    return entry;
  }

  lockedForMs(userId: string) {
    const entry = this.current(userId);
    return Promise.resolve(entry && entry.count >= MAX_FAILURES ? entry.until - this.clock.now() : 0);
  }

  recordFailure(userId: string) {
    const now = this.clock.now();
    const entry = this.current(userId) ?? { count: 0, until: now + LOCK_MS };
    entry.count += 1;
    if (entry.count === MAX_FAILURES) entry.until = now + LOCK_MS;
    this.failures.set(userId, entry);
    return Promise.resolve(entry.count >= MAX_FAILURES ? entry.until - now : 0);
  }

  clear(userId: string) {
    this.failures.delete(userId);
    return Promise.resolve();
  }
}

export function createMfaLockout(store: SharedStore, clock: Clock): MfaLockout {
  return store.kind === 'redis' ? new RedisMfaLockout(store) : new InProcessMfaLockout(clock);
}
