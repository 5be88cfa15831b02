// The database's record of revocations: a store that lost its entries (a restarted embedded server, a Redis emptied
// by a restart or a failover to a replica that had not received them) is given them again, and nothing confirmed is
// forgotten meanwhile.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { AppError } from '../src/core/errors.js';
import { connectRedis } from '../src/core/redis.js';
import { inProcessStore, redisStore, type SharedStore } from '../src/core/shared-store.js';
import { PrismaRevocationLedger } from '../src/kernel/revocation/revocation-ledger.js';
import { type AccessTokenRef, createRevocationStore } from '../src/kernel/revocation/revocation-store.js';
import { freshStore, redisThroughProxy, silentLogger, useBackends, usingRedis } from './support/test-app.js';

const MINUTE = 60_000;

describe('the record of revocations', () => {
  const backends = useBackends();

  /** A fresh store: what a restarted embedded server, or a Redis that lost everything, starts with. */
  const emptyStore = (): SharedStore => freshStore(backends) ?? inProcessStore;

  function tokens(clock: ManualClock) {
    const userId = randomUUID();
    const issued = (overrides: Partial<AccessTokenRef> = {}): AccessTokenRef => ({
      jti: randomUUID(),
      sid: randomUUID(),
      userId,
      issuedAtMs: clock.now() - 1,
      ...overrides,
    });
    return { userId, issued };
  }

  it('when the store starts empty, then every revocation confirmed before is in force again, and nothing else is', async () => {
    const clock = new ManualClock();
    const ledger = new PrismaRevocationLedger(backends.db.prisma);
    const before = createRevocationStore(emptyStore(), clock, ledger);
    const { userId, issued } = tokens(clock);
    const [byId, bySession, byCutoff, byMembership, untouched] = [issued(), issued(), issued(), issued({ orgId: randomUUID() }), tokens(clock).issued()];
    await before.revokeToken(byId.jti, MINUTE);
    await before.revokeSessions([bySession.sid], MINUTE);
    await before.revokeOrgTokensBefore(byMembership.orgId as string, [randomUUID(), userId.toUpperCase()], clock.now(), MINUTE);
    clock.advance(10);
    await before.revokeUserTokensBefore(randomUUID(), clock.now(), MINUTE);
    const cutoffUser = tokens(clock);
    const cutOff = cutoffUser.issued();
    await before.revokeUserTokensBefore(cutoffUser.userId, clock.now(), MINUTE);

    const after = createRevocationStore(emptyStore(), clock, ledger);
    await after.restored();

    for (const revoked of [byId, bySession, byMembership, cutOff]) expect(await after.isRevoked(revoked)).toBe(true);
    expect(await after.isRevoked(byCutoff)).toBe(false);
    expect(await after.isRevoked(untouched)).toBe(false);
    // A cutoff voids what came before it, not what came after.
    expect(await after.isRevoked({ ...cutOff, issuedAtMs: clock.now() + 1 })).toBe(false);
    // Without the record, the same empty store would have forgotten them: the record is what holds them.
    expect(await createRevocationStore(emptyStore(), clock).isRevoked(byId)).toBe(false);
  });

  it('when a recorded cutoff is earlier than the one the store holds, then the restore never moves it back', async () => {
    const clock = new ManualClock();
    const ledger = new PrismaRevocationLedger(backends.db.prisma);
    const store = emptyStore();
    const { userId, issued } = tokens(clock);
    const early = clock.now();
    await ledger.record([{ key: `revoked:user:${userId}`, cutoffMs: early - 5_000, deadlineMs: early + MINUTE }]);
    const revocations = createRevocationStore(store, clock, ledger);
    await revocations.revokeUserTokensBefore(userId, early, MINUTE);

    await createRevocationStore(store, clock, ledger).restored();

    expect(await revocations.isRevoked(issued({ issuedAtMs: early - 1_000 }))).toBe(true);
  });

  it('when entries pass their deadline, then they are neither restored nor kept', async () => {
    const clock = new ManualClock();
    const ledger = new PrismaRevocationLedger(backends.db.prisma);
    const { issued } = tokens(clock);
    const gone = issued();
    await createRevocationStore(emptyStore(), clock, ledger).revokeToken(gone.jti, MINUTE);
    clock.advance(MINUTE + 1);

    expect((await ledger.live(clock.now())).some((record) => record.key.endsWith(gone.jti))).toBe(false);
    expect(await ledger.prune(clock.now())).toBeGreaterThanOrEqual(1);
    expect(await backends.db.prisma.revocationEntry.count({ where: { key: { endsWith: gone.jti } } })).toBe(0);
  });

  describe.runIf(usingRedis)('on Redis', () => {
    it('when the connection loses its server and the server comes back without the entries, then they are restored before any answer', async () => {
      const clock = new ManualClock();
      const ledger = new PrismaRevocationLedger(backends.db.prisma);
      const { proxy, redis, close } = await redisThroughProxy();
      const direct = await connectRedis(process.env.REDIS_URL as string, {}, silentLogger);
      try {
        const prefix = `${backends.redisPrefix}${randomUUID()}:`;
        const revocations = createRevocationStore(redisStore(redis, prefix), clock, ledger);
        await revocations.restored();
        const { issued } = tokens(clock);
        const loggedOut = issued();
        await revocations.revokeSessions([loggedOut.sid], MINUTE);
        expect(await revocations.isRevoked(loggedOut)).toBe(true);

        // The server goes away, and what comes back lacks the entry (a replica it had not reached yet).
        await proxy.stop();
        await direct.del(`${prefix}revoked:session:${loggedOut.sid}`);
        const during = await revocations.isRevoked(loggedOut).then(
          () => 'answered',
          (err: unknown) => (err instanceof AppError ? err.status : String(err)),
        );
        expect(during).toBe(503);
        await proxy.start();

        await expect.poll(() => revocations.isRevoked(loggedOut).catch(() => 'unavailable'), { timeout: 10_000 }).toBe(true);
        expect(await direct.get(`${prefix}revoked:session:${loggedOut.sid}`)).not.toBeNull();
      } finally {
        direct.disconnect();
        await close();
      }
    });
  });
});
