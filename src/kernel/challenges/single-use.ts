// Single-use values with a deadline, in the shared store so any instance can finish what another started: WebAuthn
// challenges, an outside provider's sign-in state, the code an app exchanges for tokens. Contract:
// tests/contracts/challenges.contract.test.ts.
import type { Clock } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';
import { ExpiringMap } from '../../core/expiring-map.js';
import { byStore, cleanupTtlMs, type RedisSharedStore, type SharedStore } from '../../core/shared-store.js';

export interface SingleUseStore<T> {
  put(key: string, value: T): Promise<void>;
  /** The value, removing it: a second take of the same key finds nothing; past its deadline, nothing either. */
  take(key: string): Promise<T | undefined>;
}

export interface SingleUseOptions {
  /** Keeps each kind of value apart in the shared store. */
  namespace: string;
  ttlMs: number;
}

function unavailable(cause: unknown): AppError {
  return new AppError('challenges_unavailable', { cause, headers: { 'Retry-After': '1' } });
}

/** Stored with its deadline, so expiry follows the service's clock on either store (Redis's TTL only cleans up). */
interface Issued<T> {
  value: T;
  expiresAt: number;
}

class RedisSingleUse<T> implements SingleUseStore<T> {
  constructor(
    private readonly store: RedisSharedStore,
    private readonly clock: Clock,
    private readonly options: SingleUseOptions,
  ) {}

  private key(key: string) {
    return `${this.store.prefix}${this.options.namespace}:${key}`;
  }

  async put(key: string, value: T) {
    const now = this.clock.now();
    const issued: Issued<T> = { value, expiresAt: now + this.options.ttlMs };
    await this.store.redis.set(this.key(key), JSON.stringify(issued), 'PX', cleanupTtlMs(issued.expiresAt, now)).catch((err: unknown) => {
      throw unavailable(err);
    });
  }

  async take(key: string) {
    // GETDEL is atomic: of two instances finishing one ceremony at once, only one gets it.
    const stored = await this.store.redis.getdel(this.key(key)).catch((err: unknown) => {
      throw unavailable(err);
    });
    if (stored === null) return undefined;
    const issued = JSON.parse(stored) as Issued<T>;
    return issued.expiresAt > this.clock.now() ? issued.value : undefined;
  }
}

class InProcessSingleUse<T> implements SingleUseStore<T> {
  private readonly values: ExpiringMap<T>;

  constructor(
    clock: Clock,
    private readonly options: SingleUseOptions,
  ) {
    this.values = new ExpiringMap(clock);
  }

  put(key: string, value: T) {
    this.values.set(key, value, this.options.ttlMs);
    return Promise.resolve();
  }

  take(key: string) {
    const value = this.values.get(key);
    this.values.delete(key);
    return Promise.resolve(value);
  }
}

export function createSingleUseStore<T>(store: SharedStore, clock: Clock, options: SingleUseOptions): SingleUseStore<T> {
  return byStore<SingleUseStore<T>>(store, {
    redis: (redis) => new RedisSingleUse<T>(redis, clock, options),
    inProcess: () => new InProcessSingleUse<T>(clock, options),
  });
}
