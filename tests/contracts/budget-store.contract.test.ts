// The rate limiter's store contract (counts per window, and the one memory of refusals over it), the same on Redis
// and in-process.
import { randomUUID } from 'node:crypto';
import type { Options } from 'express-rate-limit';
import { describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { AppError } from '../../src/core/errors.js';
import { createBudgetStore } from '../../src/kernel/throttle/budget-store.js';
import { SpentBudgets } from '../../src/kernel/throttle/spent-budgets.js';
import { describeContract } from './stores.js';

const WINDOW_MS = 60_000;

describeContract('rate-limit budget store', (stores) => {
  async function budget(windowMs = WINDOW_MS) {
    const clock = new ManualClock();
    const counts = createBudgetStore(stores.fresh(), clock, 'rl:contract:');
    await counts.init({ windowMs });
    return { clock, counts, key: `ip:${randomUUID()}` };
  }

  // rate-limit-redis (the project's chosen Redis store) ends its windows by Redis's own expiry, not the injected clock:
  // the cases that move the clock to a window's end hold for the in-process store only.
  const clockWindows = stores.kind === 'in-process' ? it : it.skip;

  clockWindows('when a client makes requests, then each is counted and the window ends a window after the first', async () => {
    const { clock, counts, key } = await budget();
    const start = clock.now();
    await counts.increment(key);
    clock.advance(1_000);

    const second = await counts.increment(key);

    expect(second).toEqual({ totalHits: 2, resetTime: new Date(start + WINDOW_MS) });
    expect(await counts.get(key)).toEqual({ totalHits: 2, resetTime: new Date(start + WINDOW_MS) });
  });

  clockWindows('when the clock reaches the window deadline, then the count starts again from one with a new window', async () => {
    const { clock, counts, key } = await budget();
    await counts.increment(key);
    await counts.increment(key);
    clock.advance(WINDOW_MS - 1);
    const justBefore = await counts.increment(key);

    clock.advance(1);

    expect(justBefore.totalHits).toBe(3);
    expect(await counts.get(key)).toBeUndefined();
    expect(await counts.increment(key)).toEqual({ totalHits: 1, resetTime: new Date(clock.now() + WINDOW_MS) });
  });

  it('when clients and budgets differ, then their counts are independent', async () => {
    const store = stores.fresh();
    const clock = new ManualClock();
    const auth = createBudgetStore(store, clock, 'rl:contract-auth:');
    const account = createBudgetStore(store, clock, 'rl:contract-account:');
    await auth.init({ windowMs: WINDOW_MS });
    await account.init({ windowMs: WINDOW_MS });
    const [one, two] = [`ip:${randomUUID()}`, `ip:${randomUUID()}`];

    await auth.increment(one);
    await auth.increment(one);

    expect((await auth.increment(two)).totalHits).toBe(1);
    expect((await account.increment(one)).totalHits).toBe(1);
    expect(auth.prefix).not.toBe(account.prefix);
  });

  it('when 50 requests are counted at once, then the count is exactly 50', async () => {
    const { counts, key } = await budget();

    const answers = await Promise.all(Array.from({ length: 50 }, () => counts.increment(key)));

    expect(answers.map((answer) => answer.totalHits).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect((await counts.get(key))?.totalHits).toBe(50);
  });

  it('when a hit is taken back, then the count drops within the same window, never below zero', async () => {
    const { clock, counts, key } = await budget();
    const start = clock.now();
    await counts.increment(key);
    await counts.increment(key);
    await counts.decrement(key);
    await counts.decrement(key);
    await counts.decrement(key);

    clock.advance(1_000);

    const again = await counts.increment(key);
    expect(again.totalHits).toBe(1);
    if (stores.kind === 'in-process') expect(again.resetTime).toEqual(new Date(start + WINDOW_MS));
  });

  it('when a key is reset, then its count starts again and other keys keep theirs', async () => {
    const { counts, key } = await budget();
    const other = `ip:${randomUUID()}`;
    await counts.increment(key);
    await counts.increment(other);

    await counts.resetKey(key);

    expect(await counts.get(key)).toBeUndefined();
    expect((await counts.increment(key)).totalHits).toBe(1);
    expect((await counts.increment(other)).totalHits).toBe(2);
  });

  describe('with the refusal memory over it', () => {
    async function remembering(limit: number) {
      const { clock, counts, key } = await budget();
      const spent = new SpentBudgets(counts, 1_000, clock);
      await spent.init({ limit, windowMs: WINDOW_MS } as Options);
      return { clock, counts, spent, key };
    }
    const answer = { headers: [['Retry-After', '60']] as Array<[string, string]>, error: new AppError('rate_limited') };

    it('when a budget is spent and refused, then counts and the refusal are answered from memory until it lapses', async () => {
      const { clock, counts, spent, key } = await remembering(1);
      const counted = vi.spyOn(counts, 'increment');
      await spent.increment(key);
      await spent.increment(key);
      spent.rememberAnswer(key, answer);

      const remembered = await spent.increment(key);
      const replayed = spent.rememberedAnswer(key);
      clock.advance(1_000);

      expect(remembered.totalHits).toBe(2);
      expect(replayed).toBe(answer);
      expect(counted).toHaveBeenCalledTimes(2);
      expect(spent.rememberedAnswer(key)).toBeUndefined();
      expect((await spent.increment(key)).totalHits).toBe(3);
    });

    it('when a client is not over its budget, then no refusal is kept for it', async () => {
      const { spent, key } = await remembering(5);
      await spent.increment(key);

      spent.rememberAnswer(key, answer);

      expect(spent.knownSpent(key)).toBe(false);
      expect(spent.rememberedAnswer(key)).toBeUndefined();
    });

    it('when a remembered client is reset, then its count and its refusal are forgotten together', async () => {
      const { spent, key } = await remembering(1);
      await spent.increment(key);
      await spent.increment(key);
      spent.rememberAnswer(key, answer);

      await spent.resetKey(key);

      expect(spent.rememberedAnswer(key)).toBeUndefined();
      expect((await spent.increment(key)).totalHits).toBe(1);
    });

    clockWindows('when the window ends before the memory would lapse, then the refusal is forgotten with the window', async () => {
      const { clock, spent, key } = await remembering(1);
      await spent.increment(key);
      clock.advance(WINDOW_MS - 500);
      await spent.increment(key);
      spent.rememberAnswer(key, answer);

      clock.advance(500);

      expect(spent.rememberedAnswer(key)).toBeUndefined();
      expect((await spent.increment(key)).totalHits).toBe(1);
    });
  });

  it('when the store cannot be reached, then every call fails (the limiter answers 503, or lets it through when failing open)', async ({ skip }) => {
    const down = stores.unreachable();
    if (!down) return skip('the in-process store is never unreachable');
    const counts = createBudgetStore(down, new ManualClock(), 'rl:contract:');
    await counts.init({ windowMs: WINDOW_MS });

    await expect(counts.increment('k')).rejects.toThrow();
    await expect(counts.get('k')).rejects.toThrow();
    await expect(counts.decrement('k')).rejects.toThrow();
    await expect(counts.resetKey('k')).rejects.toThrow();
  });
});
