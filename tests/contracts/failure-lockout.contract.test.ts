// The failure-lockout contract (login throttle, code guesses, mail caps), the same on Redis and in-process.
import { randomUUID } from 'node:crypto';
import { expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { AppError } from '../../src/core/errors.js';
import { createFailureLockout, type LockoutRule } from '../../src/core/failure-lockout.js';
import { describeContract } from './stores.js';

const MINUTE = 60_000;

describeContract('failure lockout', (stores) => {
  function lockout(rule: Partial<LockoutRule> = {}) {
    const clock = new ManualClock();
    const subject = randomUUID();
    return { clock, subject, lockout: createFailureLockout(stores.fresh(), clock, { name: 'contract', maxFailures: 3, lockMs: MINUTE, ...rule }) };
  }

  it('when failures stay below the limit, then the subject is not locked', async () => {
    const { subject, lockout: failures } = lockout();

    const answers = [await failures.recordFailure(subject), await failures.recordFailure(subject)];

    expect(answers).toEqual([0, 0]);
    expect(await failures.lockedForMs(subject)).toBe(0);
  });

  it('when failures reach the limit, then the subject is locked for the lock time from that failure', async () => {
    const { clock, subject, lockout: failures } = lockout();
    await failures.recordFailure(subject);
    clock.advance(10_000);
    await failures.recordFailure(subject);

    const locked = await failures.recordFailure(subject);

    expect(locked).toBe(MINUTE);
    expect(await failures.lockedForMs(subject)).toBe(MINUTE);
  });

  it('when the clock reaches the lock deadline, then the subject is unlocked and counts from zero', async () => {
    const { clock, subject, lockout: failures } = lockout();
    for (let i = 0; i < 3; i++) await failures.recordFailure(subject);
    clock.advance(MINUTE - 1);
    const justBefore = await failures.lockedForMs(subject);

    clock.advance(1);

    expect(justBefore).toBe(1);
    expect(await failures.lockedForMs(subject)).toBe(0);
    expect(await failures.recordFailure(subject)).toBe(0);
    expect(await failures.reserve(subject)).toEqual({ allowed: true, lockedMs: 0 });
  });

  it('when the window from the first failure ends before the limit, then earlier failures no longer count', async () => {
    const { clock, subject, lockout: failures } = lockout();
    await failures.recordFailure(subject);
    await failures.recordFailure(subject);

    clock.advance(MINUTE);

    expect(await failures.recordFailure(subject)).toBe(0);
    expect(await failures.recordFailure(subject)).toBe(0);
    expect(await failures.recordFailure(subject)).toBe(MINUTE);
  });

  it('when one subject is locked, then another subject and another rule are not', async () => {
    const store = stores.fresh();
    const clock = new ManualClock();
    const login = createFailureLockout(store, clock, { name: 'contract-a', maxFailures: 1, lockMs: MINUTE });
    const codes = createFailureLockout(store, clock, { name: 'contract-b', maxFailures: 1, lockMs: MINUTE });
    const [locked, other] = [randomUUID(), randomUUID()];

    await login.recordFailure(locked);

    expect(await login.lockedForMs(locked)).toBe(MINUTE);
    expect(await login.lockedForMs(other)).toBe(0);
    expect(await codes.lockedForMs(locked)).toBe(0);
  });

  it('when the subject is cleared, then it is unlocked and counts from zero', async () => {
    const { subject, lockout: failures } = lockout();
    for (let i = 0; i < 3; i++) await failures.recordFailure(subject);

    await failures.clear(subject);

    expect(await failures.lockedForMs(subject)).toBe(0);
    expect(await failures.recordFailure(subject)).toBe(0);
  });

  it('when the limit is reserved, then the next reserve is refused with the lock time left', async () => {
    const { clock, subject, lockout: failures } = lockout();
    for (let i = 0; i < 3; i++) expect(await failures.reserve(subject)).toEqual({ allowed: true, lockedMs: 0 });
    clock.advance(1_000);

    const refused = await failures.reserve(subject);

    expect(refused).toEqual({ allowed: false, lockedMs: MINUTE - 1_000 });
    expect(await failures.lockedForMs(subject)).toBe(MINUTE - 1_000);
  });

  it('when a reserved attempt succeeds and is refunded, then its count is given back, and never below zero', async () => {
    const { subject, lockout: failures } = lockout();
    await failures.reserve(subject);
    await failures.reserve(subject);
    await failures.refund(subject);
    await failures.refund(subject);
    await failures.refund(subject);

    const reserves = [];
    for (let i = 0; i < 4; i++) reserves.push((await failures.reserve(subject)).allowed);

    expect(reserves).toEqual([true, true, true, false]);
  });

  it('when a lock has lapsed, then a refund does not revive its count', async () => {
    const { clock, subject, lockout: failures } = lockout({ maxFailures: 2 });
    await failures.reserve(subject);
    await failures.reserve(subject);
    clock.advance(MINUTE);

    await failures.refund(subject);

    expect(await failures.reserve(subject)).toEqual({ allowed: true, lockedMs: 0 });
    expect(await failures.reserve(subject)).toEqual({ allowed: true, lockedMs: 0 });
    expect((await failures.reserve(subject)).allowed).toBe(false);
  });

  it('when 20 attempts reserve at once with a limit of 5, then exactly 5 are allowed', async () => {
    const { subject, lockout: failures } = lockout({ maxFailures: 5 });

    const answers = await Promise.all(Array.from({ length: 20 }, () => failures.reserve(subject)));

    expect(answers.filter((answer) => answer.allowed)).toHaveLength(5);
    expect(await failures.lockedForMs(subject)).toBe(MINUTE);
  });

  it('when 20 failures are recorded at once, then all count and the subject is locked', async () => {
    const { subject, lockout: failures } = lockout({ maxFailures: 20 });

    const answers = await Promise.all(Array.from({ length: 20 }, () => failures.recordFailure(subject)));

    expect(answers.filter((lockedMs) => lockedMs > 0)).toHaveLength(1);
    expect(await failures.lockedForMs(subject)).toBe(MINUTE);
  });

  it('when the store cannot be reached, then every call fails with service_unavailable (503)', async ({ skip }) => {
    const down = stores.unreachable();
    if (!down) return skip('the in-process store is never unreachable');
    const failures = createFailureLockout(down, new ManualClock(), { name: 'contract', maxFailures: 3, lockMs: MINUTE });

    const calls = [failures.lockedForMs('x'), failures.recordFailure('x'), failures.reserve('x'), failures.refund('x'), failures.clear('x')];

    for (const call of calls)
      await expect(call).rejects.toSatisfy((err) => err instanceof AppError && err.status === 503 && err.code === 'service_unavailable');
  });
});
