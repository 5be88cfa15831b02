// The WebAuthn challenge contract (single use, short-lived), the same on Redis and in-process.
import { randomUUID } from 'node:crypto';
import { expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { AppError } from '../../src/core/errors.js';
import { CHALLENGE_TTL_MS, type Ceremony, createChallengeStore } from '../../src/kernel/challenges/webauthn-challenges.js';
import { describeContract } from './stores.js';

describeContract('passkey challenges', (stores) => {
  function challenges() {
    const clock = new ManualClock();
    return { clock, challenges: createChallengeStore(stores.fresh(), clock) };
  }
  const ceremony: Ceremony = { kind: 'reauthenticate', userId: 'user-1', sessionId: 'session-1' };

  it('when a challenge is put, then taking it gives back its ceremony', async () => {
    const { challenges: store } = challenges();
    const challenge = randomUUID();

    await store.put(challenge, ceremony);

    expect(await store.take(challenge)).toEqual(ceremony);
  });

  it('when a challenge was never put, then taking it finds nothing', async () => {
    const { challenges: store } = challenges();

    expect(await store.take(randomUUID())).toBeUndefined();
  });

  it('when two challenges are put, then each gives back its own ceremony', async () => {
    const { challenges: store } = challenges();
    const [first, second] = [randomUUID(), randomUUID()];
    await store.put(first, { kind: 'sign-in' });
    await store.put(second, { kind: 'register', userId: 'user-2' });

    expect(await store.take(second)).toEqual({ kind: 'register', userId: 'user-2' });
    expect(await store.take(first)).toEqual({ kind: 'sign-in' });
  });

  it('when ten callers take one challenge at once, then exactly one gets it', async () => {
    const { challenges: store } = challenges();
    const challenge = randomUUID();
    await store.put(challenge, ceremony);

    const taken = await Promise.all(Array.from({ length: 10 }, () => store.take(challenge)));

    expect(taken.filter((found) => found !== undefined)).toEqual([ceremony]);
  });

  it('when the clock reaches the deadline, then the challenge is gone', async () => {
    const { clock, challenges: store } = challenges();
    const [early, late] = [randomUUID(), randomUUID()];
    await store.put(early, ceremony);
    await store.put(late, ceremony);
    clock.advance(CHALLENGE_TTL_MS - 1);
    const justBefore = await store.take(early);

    clock.advance(1);

    expect(justBefore).toEqual(ceremony);
    expect(await store.take(late)).toBeUndefined();
  });

  it('when the store cannot be reached, then putting and taking fail with service_unavailable (503)', async ({ skip }) => {
    const down = stores.unreachable();
    if (!down) return skip('the in-process store is never unreachable');
    const store = createChallengeStore(down, new ManualClock());
    const isUnavailable = (err: unknown) => err instanceof AppError && err.status === 503 && err.code === 'service_unavailable';

    await expect(store.put('c', ceremony)).rejects.toSatisfy(isUnavailable);
    await expect(store.take('c')).rejects.toSatisfy(isUnavailable);
  });
});
