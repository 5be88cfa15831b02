// Remembers in this process which clients have spent a shared budget, and the refusal they were given, so refusing
// them again costs no round trip: the rate limiter's one memory of refusals.
import type { ClientRateLimitInfo, IncrementResponse, Options, Store } from 'express-rate-limit';
import type { Clock } from '../../core/clock.js';
import type { AppError } from '../../core/errors.js';
import { ExpiringMap } from '../../core/expiring-map.js';

/**
 * How long a refusal is answered from memory. The shared count stays exact: within a window a spent budget stays
 * spent until the window ends, whatever this process remembers. Only an administrator's reset made on another
 * instance takes up to this long to reach this one.
 */
export const REMEMBER_REFUSAL_MS = 1_000;

/** The answer given to a client over its budget, replayed as it is while the refusal is remembered. */
export interface RefusalAnswer {
  headers: Array<[string, string]>;
  error: AppError;
}

interface SpentBudget extends ClientRateLimitInfo {
  resetTime: Date;
  /** Set once the limiter has refused the client; until then only `increment` answers from memory. */
  answer?: RefusalAnswer;
}

/**
 * Wraps a shared store (Redis). While a client's budget is known to be spent, `increment` answers from memory and
 * `rememberedAnswer` gives the refusal itself; every other call goes to the shared store. Counts and answers live in
 * one map, so one reset or one lapse forgets both.
 */
export class SpentBudgets implements Store {
  private readonly spent: ExpiringMap<SpentBudget>;
  private limit = Number.POSITIVE_INFINITY;

  constructor(
    private readonly shared: Store,
    private readonly rememberMs: number,
    private readonly clock: Clock,
  ) {
    this.spent = new ExpiringMap(clock);
  }

  get prefix(): string | undefined {
    return this.shared.prefix;
  }

  get localKeys(): boolean | undefined {
    return this.shared.localKeys;
  }

  init(options: Options): void | Promise<void> {
    if (typeof options.limit === 'number') this.limit = options.limit;
    return this.shared.init?.(options);
  }

  /** True while this process knows the client's budget is spent; then `increment` needs no round trip. */
  knownSpent(key: string): boolean {
    return this.spent.get(key) !== undefined;
  }

  /** The refusal this process last gave the client, while its spent budget is remembered. */
  rememberedAnswer(key: string): RefusalAnswer | undefined {
    return this.spent.get(key)?.answer;
  }

  /**
   * Keeps the refusal just given to a client whose budget is remembered as spent, until that memory lapses. Within it
   * the answer cannot change (the budget stays spent); at worst Retry-After says a second more than needed.
   */
  rememberAnswer(key: string, answer: RefusalAnswer): void {
    const spent = this.spent.get(key);
    if (spent) spent.answer = answer;
  }

  async increment(key: string): Promise<IncrementResponse> {
    const remembered = this.spent.get(key);
    if (remembered) return { totalHits: remembered.totalHits, resetTime: remembered.resetTime };
    const result = await this.shared.increment(key);
    if (result.totalHits > this.limit && result.resetTime) {
      const until = Math.min(this.clock.now() + this.rememberMs, result.resetTime.getTime());
      if (until > this.clock.now()) this.spent.setUntil(key, { totalHits: result.totalHits, resetTime: result.resetTime }, until);
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
