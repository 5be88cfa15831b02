import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { inProcessStore, type SharedStore } from '../src/core/shared-store.js';
import { createRevocationStore } from '../src/kernel/revocation/revocation-store.js';
import { type Backends, freshStore, openBackends, usingRedis } from './support/test-app.js';

const MINUTE = 60_000;

describe.each([
  ['the in-process store', false],
  ['Redis', true],
])('revocation on %s', (_name, redis) => {
  let backends: Backends | undefined;
  beforeAll(async () => {
    if (redis && usingRedis) backends = await openBackends();
  });
  afterAll(async () => {
    await backends?.close();
  });

  function store(): SharedStore | undefined {
    if (!redis) return inProcessStore;
    return backends ? freshStore(backends) : undefined;
  }

  it.runIf(!redis || usingRedis)('when an earlier cutoff arrives after a later one, then the later cutoff stands', async () => {
    const clock = new ManualClock();
    const revocations = createRevocationStore(store() ?? inProcessStore, clock);
    const userId = randomUUID();
    const later = clock.now();
    const earlier = later - 5_000;
    const issuedBetween = { jti: randomUUID(), sid: randomUUID(), userId, issuedAtMs: later - 1_000 };

    await revocations.revokeUserTokensBefore(userId, later, MINUTE);
    await revocations.revokeUserTokensBefore(userId, earlier, MINUTE);

    expect(await revocations.isRevoked(issuedBetween)).toBe(true);
    expect(await revocations.isRevoked({ ...issuedBetween, issuedAtMs: later + 1 })).toBe(false);
  });
});
