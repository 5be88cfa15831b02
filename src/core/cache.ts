// A small TTL cache on Redis or in-process, with misses for one key computed once, and a store outage degrading to computing.
import { randomUUID } from 'node:crypto';
import type { Clock } from './clock.js';
import { ExpiringMap } from './expiring-map.js';
import type { Logger } from './logger.js';
import type { SharedStore } from './shared-store.js';

export interface CacheResult<T> {
  value: T;
  hit: boolean;
}

interface CacheBackend {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /** Claims the right to compute `key` for `ttlMs`; false when another holder has it. */
  claim(key: string, ttlMs: number): Promise<{ release(): Promise<void> } | undefined>;
}

class RedisCacheBackend implements CacheBackend {
  constructor(private readonly store: Extract<SharedStore, { kind: 'redis' }>) {}

  async get(key: string) {
    return (await this.store.redis.get(`${this.store.prefix}cache:${key}`)) ?? undefined;
  }

  async set(key: string, value: string, ttlMs: number) {
    await this.store.redis.set(`${this.store.prefix}cache:${key}`, value, 'PX', ttlMs);
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

class InProcessCacheBackend implements CacheBackend {
  private readonly entries: ExpiringMap<string>;

  constructor(clock: Clock) {
    this.entries = new ExpiringMap(clock);
  }

  get(key: string) {
    return Promise.resolve(this.entries.get(key));
  }

  set(key: string, value: string, ttlMs: number) {
    this.entries.set(key, value, ttlMs);
    return Promise.resolve();
  }

  claim() {
    // One process: the in-flight map in Cache already makes concurrent misses share one computation.
    return Promise.resolve({ release: () => Promise.resolve() });
  }
}

export interface CacheOptions {
  /** How long to wait for another instance's computation before computing anyway. */
  waitForOtherMs?: number;
  pollMs?: number;
}

export class Cache {
  private readonly backend: CacheBackend;
  private readonly inFlight = new Map<string, Promise<CacheResult<unknown>>>();

  constructor(
    store: SharedStore,
    clock: Clock,
    private readonly logger: Logger,
    private readonly options: CacheOptions = {},
  ) {
    this.backend = store.kind === 'redis' ? new RedisCacheBackend(store) : new InProcessCacheBackend(clock);
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
    let claim: Awaited<ReturnType<CacheBackend['claim']>>;
    let storeDown = false;
    try {
      claim = await this.backend.claim(key, waitMs);
    } catch (err) {
      this.warn(err);
      storeDown = true;
    }
    if (claim === undefined && !storeDown) {
      // Another instance is computing it: wait for its result rather than doing the same work.
      const deadline = Date.now() + waitMs;
      while (Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, this.options.pollMs ?? 50));
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
