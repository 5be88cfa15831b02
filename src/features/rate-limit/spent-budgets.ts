// Remembers in this process which clients have spent a shared budget, so refusing them again costs no round trip.
import type { ClientRateLimitInfo, IncrementResponse, Options, Store } from 'express-rate-limit';
import { type Clock, systemClock } from '../../core/clock.js';
import { ExpiringMap } from '../../core/expiring-map.js';

/**
 * How long a refusal is answered from memory. The shared count stays exact: within a window a spent budget stays
 * spent until the window ends, whatever this process remembers. Only an administrator's reset made on another
 * instance takes up to this long to reach this one.
 */
export const REMEMBER_REFUSAL_MS = 1_000;

/**
 * Wraps a shared store (Redis). While a client's budget is known to be spent, `increment` answers from memory; every
 * other call goes to the shared store. express-rate-limit counts time with the system clock, and so does this.
 */
export class SpentBudgets implements Store {
  private readonly spent: ExpiringMap<ClientRateLimitInfo>;
  private limit = Number.POSITIVE_INFINITY;

  constructor(
    private readonly shared: Store,
    private readonly rememberMs = REMEMBER_REFUSAL_MS,
    private readonly clock: Clock = systemClock,
  ) {
    this.spent = new ExpiringMap(clock);
  }

  get prefix(): string | undefined {
    return this.shared.prefix;
  }

  init(options: Options): void | Promise<void> {
    if (typeof options.limit === 'number') this.limit = options.limit;
    return this.shared.init?.(options);
  }

  /** True while this process knows the client's budget is spent; then `increment` needs no round trip. */
  knownSpent(key: string): boolean {
    return this.spent.get(key) !== undefined;
  }

  async increment(key: string): Promise<IncrementResponse> {
    const remembered = this.spent.get(key);
    if (remembered) return { totalHits: remembered.totalHits, resetTime: remembered.resetTime };
    const result = await this.shared.increment(key);
    if (result.totalHits > this.limit && result.resetTime) {
      const ttlMs = Math.min(this.rememberMs, result.resetTime.getTime() - this.clock.now());
      if (ttlMs > 0) this.spent.set(key, { totalHits: result.totalHits, resetTime: result.resetTime }, ttlMs);
    }
    return result;
  }

  async decrement(key: string): Promise<void> {
    await this.shared.decrement(key);
  }

  async resetKey(key: string): Promise<void> {
    this.spent.delete(key);
    await this.shared.resetKey(key);
  }
}
