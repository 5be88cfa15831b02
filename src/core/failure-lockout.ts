// Counts failures per subject (a user's second factor, an account's password, a trusted device) and locks the
// subject after too many, on every instance.
import type { Clock } from './clock.js';
import { AppError } from './errors.js';
import { ExpiringMap } from './expiring-map.js';
import type { SharedStore } from './shared-store.js';

export interface LockoutRule {
  /** Names the counter in the shared store (`<prefix><name>:failures:<subject>`). */
  name: string;
  maxFailures: number;
  /** The window failures count in, and how long the lock lasts once they reach the limit. */
  lockMs: number;
}

export interface FailureLockout {
  readonly rule: LockoutRule;
  /** Milliseconds until the subject unlocks; 0 when it is not locked. */
  lockedForMs(subject: string): Promise<number>;
  /** Counts a failure; returns how long the subject is now locked (0 if not yet). */
  recordFailure(subject: string): Promise<number>;
  clear(subject: string): Promise<void>;
}

// Failures count within a window that starts at the first; the failure that reaches the limit restarts it as the lock.
const RECORD_FAILURE = `
local n = redis.call('INCR', KEYS[1])
if n == 1 or n == tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}`;

/** Without the store nobody can tell how many attempts were made: the caller decides whether to refuse or go on. */
function unavailable(cause: unknown): AppError {
  return new AppError('service_unavailable', 'Failed attempts cannot be counted right now; try again shortly.', { cause, headers: { 'Retry-After': '1' } });
}

class RedisFailureLockout implements FailureLockout {
  constructor(
    private readonly store: Extract<SharedStore, { kind: 'redis' }>,
    readonly rule: LockoutRule,
  ) {}

  private key(subject: string) {
    return `${this.store.prefix}${this.rule.name}:failures:${subject}`;
  }

  async lockedForMs(subject: string) {
    const key = this.key(subject);
    const replies = await this.store.redis.pipeline().get(key).pttl(key).exec().catch((err: unknown) => {
      throw unavailable(err);
    });
    const [[countError, count], [ttlError, ttl]] = replies as [[Error | null, string | null], [Error | null, number]];
    if (countError || ttlError) throw unavailable(countError ?? ttlError);
    return Number(count ?? 0) >= this.rule.maxFailures ? Math.max(ttl, 0) : 0;
  }

  async recordFailure(subject: string) {
    try {
      const [count, ttl] = (await this.store.redis.eval(RECORD_FAILURE, 1, this.key(subject), this.rule.lockMs, this.rule.maxFailures)) as [number, number];
      return count >= this.rule.maxFailures ? ttl : 0;
    } catch (err) {
      throw unavailable(err);
    }
  }

  async clear(subject: string) {
    await this.store.redis.del(this.key(subject)).catch((err: unknown) => {
      throw unavailable(err);
    });
  }
}

/** The same rule as the Redis script. */
class InProcessFailureLockout implements FailureLockout {
  private readonly failures: ExpiringMap<number>;

  constructor(
    clock: Clock,
    readonly rule: LockoutRule,
  ) {
    this.failures = new ExpiringMap(clock);
  }

  lockedForMs(subject: string) {
    return Promise.resolve((this.failures.get(subject) ?? 0) >= this.rule.maxFailures ? this.failures.remainingMs(subject) : 0);
  }

  recordFailure(subject: string) {
    const count = (this.failures.get(subject) ?? 0) + 1;
    const restart = count === 1 || count === this.rule.maxFailures;
    this.failures.set(subject, count, restart ? this.rule.lockMs : this.failures.remainingMs(subject));
    return Promise.resolve(count >= this.rule.maxFailures ? this.failures.remainingMs(subject) : 0);
  }

  clear(subject: string) {
    this.failures.delete(subject);
    return Promise.resolve();
  }
}

export function createFailureLockout(store: SharedStore, clock: Clock, rule: LockoutRule): FailureLockout {
  return store.kind === 'redis' ? new RedisFailureLockout(store, rule) : new InProcessFailureLockout(clock, rule);
}
