// Counts failures per subject (a user's second factor, an account's password, a trusted device, a mail address) and
// locks the subject after too many, on every instance. Contract: tests/contracts/failure-lockout.contract.test.ts.
import type { Clock } from './clock.js';
import { AppError } from './errors.js';
import { ExpiringMap } from './expiring-map.js';
import { byStore, CLEANUP_SLACK_MS, countWithDeadlineLua, type RedisSharedStore, type SharedStore } from './shared-store.js';

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

// ARGV: the service's time, the lock time, the limit, the cleanup slack. Validity is the deadline kept with the count.
const LOAD = countWithDeadlineLua(4);

const LOCKED_FOR = `${LOAD}
local n, deadline = load()
if n >= tonumber(ARGV[3]) then return deadline - now end
return 0`;

// Failures count within a window that starts at the first; the failure that reaches the limit restarts it as the lock.
const RECORD_FAILURE = `${LOAD}
local lockMs, max = tonumber(ARGV[2]), tonumber(ARGV[3])
local n, deadline = load()
n = n + 1
if n == 1 or n == max then deadline = now + lockMs end
save(n, deadline)
if n >= max then return deadline - now end
return 0`;

// The same count as RECORD_FAILURE, taken before the attempt is evaluated; a count past the limit is not kept.
const RESERVE = `${LOAD}
local lockMs, max = tonumber(ARGV[2]), tonumber(ARGV[3])
local n, deadline = load()
if n >= max then return {0, deadline - now} end
n = n + 1
if n == 1 or n == max then deadline = now + lockMs end
save(n, deadline)
return {1, 0}`;

const REFUND = `${LOAD}
local n, deadline = load()
if n > 0 then save(n - 1, deadline) end
return 1`;

/** Without the store nobody can tell how many attempts were made: the caller decides whether to refuse or go on. */
function unavailable(cause: unknown): AppError {
  return new AppError('lockout_unavailable', { cause, headers: { 'Retry-After': '1' } });
}

class RedisFailureLockout implements FailureLockout {
  constructor(
    private readonly store: RedisSharedStore,
    private readonly clock: Clock,
    readonly rule: LockoutRule,
  ) {}

  private key(subject: string) {
    return `${this.store.prefix}${this.rule.name}:failures:${subject}`;
  }

  /** Runs one of the scripts with the service's time and the rule, mapping an unreachable store to 503. */
  private async run<T>(script: string, subject: string): Promise<T> {
    try {
      return (await this.store.redis.eval(script, 1, this.key(subject), this.clock.now(), this.rule.lockMs, this.rule.maxFailures, CLEANUP_SLACK_MS)) as T;
    } catch (err) {
      throw unavailable(err);
    }
  }

  async lockedForMs(subject: string) {
    return Math.max(0, await this.run<number>(LOCKED_FOR, subject));
  }

  async recordFailure(subject: string) {
    return Math.max(0, await this.run<number>(RECORD_FAILURE, subject));
  }

  async reserve(subject: string) {
    const [allowed, lockedMs] = await this.run<[number, number]>(RESERVE, subject);
    return { allowed: allowed === 1, lockedMs: allowed === 1 ? 0 : Math.max(lockedMs, 1) };
  }

  async refund(subject: string) {
    await this.run(REFUND, subject);
  }

  async clear(subject: string) {
    await this.store.redis.del(this.key(subject)).catch((err: unknown) => {
      throw unavailable(err);
    });
  }
}

/** The same rule as the Redis scripts, over a map whose entries lapse at their deadline by the same clock. */
class InProcessFailureLockout implements FailureLockout {
  private readonly failures: ExpiringMap<number>;

  constructor(
    private readonly clock: Clock,
    readonly rule: LockoutRule,
  ) {
    this.failures = new ExpiringMap(clock);
  }

  /** The subject's live count and its deadline (a zero count when it has lapsed). */
  private load(subject: string): { count: number; deadline: number } {
    return { count: this.failures.get(subject) ?? 0, deadline: this.failures.expiresAt(subject) ?? 0 };
  }

  /** Adds one to the count; the first and the one reaching the limit restart the window. */
  private count(subject: string, count: number, deadline: number): number {
    const next = count + 1;
    const until = next === 1 || next === this.rule.maxFailures ? this.clock.now() + this.rule.lockMs : deadline;
    this.failures.setUntil(subject, next, until);
    return until;
  }

  lockedForMs(subject: string) {
    const { count, deadline } = this.load(subject);
    return Promise.resolve(count >= this.rule.maxFailures ? Math.max(0, deadline - this.clock.now()) : 0);
  }

  recordFailure(subject: string) {
    const { count, deadline } = this.load(subject);
    const until = this.count(subject, count, deadline);
    return Promise.resolve(count + 1 >= this.rule.maxFailures ? Math.max(0, until - this.clock.now()) : 0);
  }

  reserve(subject: string) {
    const { count, deadline } = this.load(subject);
    if (count >= this.rule.maxFailures) return Promise.resolve({ allowed: false, lockedMs: Math.max(deadline - this.clock.now(), 1) });
    this.count(subject, count, deadline);
    return Promise.resolve({ allowed: true, lockedMs: 0 });
  }

  refund(subject: string) {
    const { count, deadline } = this.load(subject);
    if (count > 0) this.failures.setUntil(subject, count - 1, deadline);
    return Promise.resolve();
  }

  clear(subject: string) {
    this.failures.delete(subject);
    return Promise.resolve();
  }
}

export function createFailureLockout(store: SharedStore, clock: Clock, rule: LockoutRule): FailureLockout {
  return byStore<FailureLockout>(store, {
    redis: (redis) => new RedisFailureLockout(redis, clock, rule),
    inProcess: () => new InProcessFailureLockout(clock, rule),
  });
}
