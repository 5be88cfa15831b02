// A small TTL cache on Redis or in-process, with misses for one key computed once, and a store outage degrading to computing.
import { randomUUID } from 'node:crypto';
import type { Clock } from './clock.js';
import { ExpiringMap } from './expiring-map.js';
import type { Logger } from './logger.js';
import { byStore, cleanupTtlMs, type RedisSharedStore, type SharedStore } from './shared-store.js';

export interface CacheResult<T> {
  value: T;
  hit: boolean;
}

/**
 * The cache's store capability. Contract: tests/contracts/cache-store.contract.test.ts.
 * A value is valid until its deadline by the injected clock on either store; Redis's expiry only cleans up.
 */
export interface CacheStore {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /**
   * Claims the right to compute `key` for `ttlMs`; undefined when another holder has it. The claim is a lease among
   * running processes, so on Redis it lapses by Redis's clock: nobody may hold it forever after a crash.
   */
  claim(key: string, ttlMs: number): Promise<{ release(): Promise<void> } | undefined>;
}

class RedisCacheStore implements CacheStore {
  constructor(
    private readonly store: RedisSharedStore,
    private readonly clock: Clock,
  ) {}

  async get(key: string) {
    const stored = await this.store.redis.get(`${this.store.prefix}cache:${key}`);
    if (stored === null) return undefined;
    // `<deadline>:<value>`
    const separator = stored.indexOf(':');
    return Number(stored.slice(0, separator)) > this.clock.now() ? stored.slice(separator + 1) : undefined;
  }

  async set(key: string, value: string, ttlMs: number) {
    const now = this.clock.now();
    const deadline = now + ttlMs;
    await this.store.redis.set(`${this.store.prefix}cache:${key}`, `${deadline}:${value}`, 'PX', cleanupTtlMs(deadline, now));
  }

  async claim(key: string, ttlMs: number) {
    const lockKey = `${this.store.prefix}cache-lock:${key}`;
    const owner = randomUUID();
    const acquired = await this.store.redis.set(lockKey, owner, 'PX', ttlMs, 'NX');
    if (acquired !== 'OK') return undefined;
    return {
      release: async () => {
        // Delete only our own lock: it may have expired and been taken by someone else meanwhile.
        await this.store.redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0", 1, lockKey, owner);
      },
    };
  }
}

class InProcessCacheStore implements CacheStore {
  private readonly entries: ExpiringMap<string>;
  private readonly claims: ExpiringMap<symbol>;

  constructor(clock: Clock) {
    this.entries = new ExpiringMap(clock);
    this.claims = new ExpiringMap(clock);
  }

  get(key: string) {
    return Promise.resolve(this.entries.get(key));
  }

  set(key: string, value: string, ttlMs: number) {
    this.entries.set(key, value, ttlMs);
    return Promise.resolve();
  }

  claim(key: string, ttlMs: number) {
    // In one process the in-flight map in Cache already makes concurrent misses share one computation; the claim is
    // exclusive all the same, so both stores keep one contract.
    if (this.claims.get(key) !== undefined) return Promise.resolve(undefined);
    const owner = Symbol(key);
    this.claims.set(key, owner, ttlMs);
    return Promise.resolve({
      release: () => {
        if (this.claims.get(key) === owner) this.claims.delete(key);
        return Promise.resolve();
      },
    });
  }
}

export function createCacheStore(store: SharedStore, clock: Clock): CacheStore {
  return byStore<CacheStore>(store, { redis: (redis) => new RedisCacheStore(redis, clock), inProcess: () => new InProcessCacheStore(clock) });
}

export interface CacheOptions {
  /** How long to wait for another instance's computation before computing anyway. */
  waitForOtherMs?: number;
  pollMs?: number;
}

export class Cache {
  private readonly backend: CacheStore;
  private readonly inFlight = new Map<string, Promise<CacheResult<unknown>>>();

  constructor(
    store: SharedStore,
    clock: Clock,
    private readonly logger: Logger,
    private readonly options: CacheOptions = {},
  ) {
    this.backend = createCacheStore(store, clock);
  }

  /**
   * The cached value for `key`, or `compute()`'s result stored for `ttlMs`. Concurrent callers for one key share a
   * single computation in this process and, through a short Redis lock, across instances. If the store fails, the
   * value is computed and served uncached.
   */
  async getOrCompute<T>(key: string, ttlMs: number, compute: () => Promise<T>): Promise<CacheResult<T>> {
    const pending = this.inFlight.get(key);
    if (pending) return (await pending) as CacheResult<T>;
    const work = this.lookupOrCompute(key, ttlMs, compute).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, work);
    return work;
  }

  private async lookupOrCompute<T>(key: string, ttlMs: number, compute: () => Promise<T>): Promise<CacheResult<T>> {
    const cached = await this.safely(() => this.backend.get(key));
    if (cached !== undefined) return { value: JSON.parse(cached) as T, hit: true };

    const waitMs = this.options.waitForOtherMs ?? 5_000;
    let claim: Awaited<ReturnType<CacheStore['claim']>>;
    let storeDown = false;
    try {
      claim = await this.backend.claim(key, waitMs);
    } catch (err) {
      this.warn(err);
      storeDown = true;
    }
    if (claim === undefined && !storeDown) {
      // Another instance is computing it: wait for its result rather than doing the same work.
      // Counted in polls, not read from a clock: this waits on another process in real time, whatever the
      // injected clock says.
      const pollMs = Math.max(1, this.options.pollMs ?? 50);
      for (let waitedMs = 0; waitedMs < waitMs; waitedMs += pollMs) {
        await new Promise((resolve) => setTimeout(resolve, pollMs));
        const value = await this.safely(() => this.backend.get(key));
        if (value !== undefined) return { value: JSON.parse(value) as T, hit: true };
      }
    }
    try {
      const value = await compute();
      await this.safely(() => this.backend.set(key, JSON.stringify(value), ttlMs));
      return { value, hit: false };
    } finally {
      if (claim) await this.safely(() => claim.release());
    }
  }

  /** Runs a store call; a failure is logged and reads as "nothing there". */
  private async safely<R>(call: () => Promise<R>): Promise<R | undefined> {
    try {
      return await call();
    } catch (err) {
      this.warn(err);
      return undefined;
    }
  }

  private warn(err: unknown): void {
    this.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'cache unavailable: computing without it');
  }
}
