// The cache store contract (values until a deadline, an exclusive claim to compute), the same on Redis and in-process.
import { randomUUID } from 'node:crypto';
import { expect, it } from 'vitest';
import { createCacheStore } from '../../src/core/cache.js';
import { ManualClock } from '../../src/core/clock.js';
import { describeContract } from './stores.js';

const MINUTE = 60_000;

describeContract('cache store', (stores) => {
  function cache() {
    const clock = new ManualClock();
    return { clock, cache: createCacheStore(stores.fresh(), clock) };
  }

  it('when a value is set, then it is read back as it was, colons and all', async () => {
    const { cache: store } = cache();
    const key = randomUUID();

    await store.set(key, '{"a":"b:c"}', MINUTE);

    expect(await store.get(key)).toBe('{"a":"b:c"}');
  });

  it('when keys differ, then their values are independent, and a missing key reads as undefined', async () => {
    const { cache: store } = cache();
    const [first, second] = [randomUUID(), randomUUID()];
    await store.set(first, '1', MINUTE);
    await store.set(second, '2', MINUTE);

    expect([await store.get(first), await store.get(second), await store.get(randomUUID())]).toEqual(['1', '2', undefined]);
  });

  it('when a value is set again, then the new value and its new deadline hold', async () => {
    const { clock, cache: store } = cache();
    const key = randomUUID();
    await store.set(key, 'old', MINUTE);
    clock.advance(MINUTE / 2);

    await store.set(key, 'new', MINUTE);
    clock.advance(MINUTE / 2);

    expect(await store.get(key)).toBe('new');
  });

  it('when the clock reaches the deadline, then the value reads as missing', async () => {
    const { clock, cache: store } = cache();
    const key = randomUUID();
    await store.set(key, 'v', MINUTE);
    clock.advance(MINUTE - 1);
    const justBefore = await store.get(key);

    clock.advance(1);

    expect(justBefore).toBe('v');
    expect(await store.get(key)).toBeUndefined();
  });

  it('when a key is claimed, then nobody else can claim it until it is released', async () => {
    const { cache: store } = cache();
    const key = randomUUID();

    const claims = await Promise.all(Array.from({ length: 5 }, () => store.claim(key, MINUTE)));
    const held = claims.filter((claim) => claim !== undefined);
    const whileHeld = await store.claim(key, MINUTE);
    await held[0]?.release();
    const afterRelease = await store.claim(key, MINUTE);

    expect(held).toHaveLength(1);
    expect(whileHeld).toBeUndefined();
    expect(afterRelease).toBeDefined();
    expect(await store.claim(randomUUID(), MINUTE)).toBeDefined();
  });

  it('when the store cannot be reached, then every call fails (the cache then computes without it)', async ({ skip }) => {
    const down = stores.unreachable();
    if (!down) return skip('the in-process store is never unreachable');
    const store = createCacheStore(down, new ManualClock());

    await expect(store.get('k')).rejects.toThrow();
    await expect(store.set('k', 'v', MINUTE)).rejects.toThrow();
    await expect(store.claim('k', MINUTE)).rejects.toThrow();
  });
});
