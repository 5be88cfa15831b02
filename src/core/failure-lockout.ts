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
  /**
   * Counts an attempt as a failure before its outcome is known, and refuses it (0 returned as `lockedMs` > 0) when
   * the budget is already spent: however many attempts race, at most `maxFailures` are ever evaluated per window.
   * An attempt that then succeeds gives its count back with `refund`.
   */
  reserve(subject: string): Promise<{ allowed: boolean; lockedMs: number }>;
  /** Gives back one reserved count (the attempt succeeded); never below zero. */
  refund(subject: string): Promise<void>;
  clear(subject: string): Promise<void>;
}

// Failures count within a window that starts at the first; the failure that reaches the limit restarts it as the lock.
const RECORD_FAILURE = `
local n = redis.call('INCR', KEYS[1])
if n == 1 or n == tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}`;

// The same count as RECORD_FAILURE, taken before the attempt is evaluated; a count past the limit is not kept.
const RESERVE = `
local n = redis.call('INCR', KEYS[1])
local max = tonumber(ARGV[2])
if n > max then
  redis.call('DECR', KEYS[1])
  return {0, redis.call('PTTL', KEYS[1])}
end
if n == 1 or n == max then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {1, 0}`;

const REFUND = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return 1`;

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

  async reserve(subject: string) {
    try {
      const [allowed, ttl] = (await this.store.redis.eval(RESERVE, 1, this.key(subject), this.rule.lockMs, this.rule.maxFailures)) as [number, number];
      return { allowed: allowed === 1, lockedMs: allowed === 1 ? 0 : Math.max(ttl, 1) };
    } catch (err) {
      throw unavailable(err);
    }
  }

  async refund(subject: string) {
    await this.store.redis.eval(REFUND, 1, this.key(subject)).catch((err: unknown) => {
      throw unavailable(err);
    });
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

  reserve(subject: string) {
    const count = this.failures.get(subject) ?? 0;
    if (count >= this.rule.maxFailures) return Promise.resolve({ allowed: false, lockedMs: Math.max(this.failures.remainingMs(subject), 1) });
    const restart = count === 0 || count + 1 === this.rule.maxFailures;
    this.failures.set(subject, count + 1, restart ? this.rule.lockMs : this.failures.remainingMs(subject));
    return Promise.resolve({ allowed: true, lockedMs: 0 });
  }

  refund(subject: string) {
    const count = this.failures.get(subject) ?? 0;
    if (count > 0) this.failures.set(subject, count - 1, this.failures.remainingMs(subject));
    return Promise.resolve();
  }

  clear(subject: string) {
    this.failures.delete(subject);
    return Promise.resolve();
  }
}

export function createFailureLockout(store: SharedStore, clock: Clock, rule: LockoutRule): FailureLockout {
  return store.kind === 'redis' ? new RedisFailureLockout(store, rule) : new InProcessFailureLockout(clock, rule);
}
