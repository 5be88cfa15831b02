// How many requests each client made in its current window: the rate limiter's store, on Redis or in-process.
import type { ClientRateLimitInfo, IncrementResponse, Options, Store } from 'express-rate-limit';
import type { Clock } from '../../core/clock.js';
import { ExpiringMap } from '../../core/expiring-map.js';
import { loadScript } from '../../core/redis.js';
import { RedisStore } from 'rate-limit-redis';
import { byStore, type RedisSharedStore, type SharedStore } from '../../core/shared-store.js';

/**
 * express-rate-limit's `Store`, with every method it may call present. A window starts at a client's first request and
 * ends at its deadline (`resetTime`): by the injected clock in process, by Redis's expiry on Redis (rate-limit-redis).
 * `init` must run first (the limiter calls it) to set the window. Contract: tests/contracts/budget-store.contract.test.ts.
 */
export interface BudgetStore extends Store {
  /** Every client's keys carry this prefix, so two budgets never count into each other. */
  readonly prefix: string;
  init(options: Pick<Options, 'windowMs'>): void | Promise<void>;
  get(key: string): Promise<ClientRateLimitInfo | undefined>;
  increment(key: string): Promise<IncrementResponse>;
  /** Takes one hit back within the current window; never below zero, and never into a window that has ended. */
  decrement(key: string): Promise<void>;
  resetKey(key: string): Promise<void>;
}

/**
 * On Redis, rate-limit-redis (the store this project's users chose) keeps the count; its windows end by Redis's own
 * expiry, the one place a deadline is not the injected clock's (tests/contracts/budget-store.contract.test.ts says
 * which cases that leaves to the in-process store). rate-limit-redis loads its Lua scripts once, at start; if Redis
 * was unreachable then, the rejected load would poison every later call, so this reloads them on the first call
 * after a failure, and the limiter heals by itself.
 */
const FLOORED_DECREMENT = `local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return 1`;

class RedisBudgetStore extends RedisStore implements BudgetStore {
  private reloadScripts = false;

  constructor(store: RedisSharedStore, prefix: string) {
    super({
      // A script is loaded where its key's slot may live (every primary of a cluster); other commands go by their key.
      sendCommand: (command: string, ...args: string[]) =>
        (command === 'SCRIPT' && args[0] === 'LOAD' ? loadScript(store.redis, args[1] ?? '') : store.redis.call(command, ...args)) as never,
      prefix: `${store.prefix}${prefix}`,
    });
  }

  /** Loads the scripts; a load refused because Redis is down is retried on the next call, never left unhandled. */
  override async init(options: Parameters<RedisStore['init']>[0]) {
    try {
      await super.init(options);
    } catch {
      this.reloadScripts = true;
    }
  }

  /** A client with no count reads as absent (rate-limit-redis answers a count of NaN). */
  override async get(key: string) {
    const info = await super.get(key);
    return info && Number.isFinite(info.totalHits) && info.totalHits > 0 ? info : undefined;
  }

  /** Never below zero (rate-limit-redis's own DECR would go there). */
  override async decrement(key: string) {
    const prefixed = this.prefixKey(key);
    await this.sendCommand({ key: prefixed, isReadOnly: false, command: ['EVAL', FLOORED_DECREMENT, '1', prefixed] });
  }

  override async increment(key: string) {
    if (this.reloadScripts) {
      this.reloadScripts = false;
      this.incrementScriptSha = this.loadIncrementScript();
      this.getScriptSha = this.loadGetScript();
      this.getScriptSha.catch(() => {
        this.reloadScripts = true;
      });
    }
    try {
      return await super.increment(key);
    } catch (err) {
      this.reloadScripts = true;
      throw err;
    }
  }
}

/** The same windows as the Redis script, over a map whose entries lapse at their deadline by the same clock. */
class InProcessBudgetStore implements BudgetStore {
  readonly localKeys = true;
  private windowMs = 60_000;
  private readonly counts: ExpiringMap<number>;

  constructor(
    private readonly clock: Clock,
    readonly prefix: string,
  ) {
    this.counts = new ExpiringMap(clock);
  }

  init(options: Pick<Options, 'windowMs'>) {
    this.windowMs = options.windowMs;
  }

  get(key: string) {
    const totalHits = this.counts.get(key);
    const resetAt = this.counts.expiresAt(key);
    return Promise.resolve(totalHits && resetAt !== undefined ? { totalHits, resetTime: new Date(resetAt) } : undefined);
  }

  increment(key: string) {
    const totalHits = (this.counts.get(key) ?? 0) + 1;
    const resetAt = this.counts.expiresAt(key) ?? this.clock.now() + this.windowMs;
    this.counts.setUntil(key, totalHits, resetAt);
    return Promise.resolve({ totalHits, resetTime: new Date(resetAt) });
  }

  decrement(key: string) {
    const totalHits = this.counts.get(key);
    const resetAt = this.counts.expiresAt(key);
    if (totalHits && resetAt !== undefined) this.counts.setUntil(key, totalHits - 1, resetAt);
    return Promise.resolve();
  }

  resetKey(key: string) {
    this.counts.delete(key);
    return Promise.resolve();
  }
}

/** One budget's store; `prefix` names the budget (`rl:<group>:`), under the shared store's own prefix on Redis. */
export function createBudgetStore(store: SharedStore, clock: Clock, prefix: string): BudgetStore {
  return byStore<BudgetStore>(store, { redis: (redis) => new RedisBudgetStore(redis, prefix), inProcess: () => new InProcessBudgetStore(clock, prefix) });
}
