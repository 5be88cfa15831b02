// The revocation contract (token ids, sessions, per-user cutoffs, single-use ids), the same on Redis and in-process.
import { randomUUID } from 'node:crypto';
import { expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { AppError } from '../../src/core/errors.js';
import { type AccessTokenRef, createRevocationStore } from '../../src/kernel/revocation/revocation-store.js';
import { describeContract } from './stores.js';

const MINUTE = 60_000;

describeContract('revocation', (stores) => {
  function revocation() {
    const clock = new ManualClock();
    const token = (issuedAtMs = clock.now()): AccessTokenRef => ({ jti: randomUUID(), sid: randomUUID(), userId: randomUUID(), issuedAtMs });
    return { clock, token, revocations: createRevocationStore(stores.fresh(), clock) };
  }

  it('when nothing was revoked, then a token is live', async () => {
    const { token, revocations } = revocation();

    expect(await revocations.isRevoked(token())).toBe(false);
  });

  it('when a token id, a session or a user cutoff is revoked, then only the tokens it names are void', async () => {
    const { clock, token, revocations } = revocation();
    const [byId, bySession, byUser, other] = [token(), token(), token(clock.now() - 1), token()];

    await revocations.revokeToken(byId.jti, MINUTE);
    await revocations.revokeSessions([bySession.sid, randomUUID()], MINUTE);
    await revocations.revokeUserTokensBefore(byUser.userId, clock.now(), MINUTE);

    expect(await revocations.isRevoked(byId)).toBe(true);
    expect(await revocations.isRevoked(bySession)).toBe(true);
    expect(await revocations.isRevoked(byUser)).toBe(true);
    expect(await revocations.isRevoked({ ...byUser, issuedAtMs: clock.now() })).toBe(false);
    expect(await revocations.isRevoked(other)).toBe(false);
  });

  it('when a member of an organization is cut off, then only their tokens for that organization issued before are void', async () => {
    const { clock, token, revocations } = revocation();
    const [orgId, otherOrg] = [randomUUID(), randomUUID()];
    const forOrg = { ...token(clock.now() - 1), orgId };
    const sameUserElsewhere = { ...forOrg, jti: randomUUID(), orgId: otherOrg };
    const sameUserNoOrg = { ...forOrg, jti: randomUUID(), orgId: undefined };
    const otherMember = { ...token(clock.now() - 1), orgId };

    await revocations.revokeOrgTokensBefore(orgId, [forOrg.userId, randomUUID()], clock.now(), MINUTE);

    expect(await revocations.isRevoked(forOrg)).toBe(true);
    expect(await revocations.isRevoked({ ...forOrg, issuedAtMs: clock.now() })).toBe(false);
    expect(await revocations.isRevoked(sameUserElsewhere)).toBe(false);
    expect(await revocations.isRevoked(sameUserNoOrg)).toBe(false);
    expect(await revocations.isRevoked(otherMember)).toBe(false);
    clock.advance(MINUTE);
    expect(await revocations.isRevoked(forOrg)).toBe(false);
  });

  it('when the clock reaches an entry deadline, then the entry no longer voids anything', async () => {
    const { clock, token, revocations } = revocation();
    const [byId, bySession, byUser] = [token(), token(), token(clock.now() - 1)];
    await revocations.revokeToken(byId.jti, MINUTE);
    await revocations.revokeSessions([bySession.sid], MINUTE);
    await revocations.revokeUserTokensBefore(byUser.userId, clock.now(), MINUTE);
    clock.advance(MINUTE - 1);
    const justBefore = await Promise.all([byId, bySession, byUser].map((t) => revocations.isRevoked(t)));

    clock.advance(1);

    expect(justBefore).toEqual([true, true, true]);
    expect(await Promise.all([byId, bySession, byUser].map((t) => revocations.isRevoked(t)))).toEqual([false, false, false]);
  });

  it('when an earlier cutoff arrives after a later one, then the later cutoff stands', async () => {
    const { clock, revocations, token } = revocation();
    const later = clock.now();
    const issuedBetween = { ...token(later - 1_000) };

    await revocations.revokeUserTokensBefore(issuedBetween.userId, later, MINUTE);
    await revocations.revokeUserTokensBefore(issuedBetween.userId, later - 5_000, MINUTE);

    expect(await revocations.isRevoked(issuedBetween)).toBe(true);
    expect(await revocations.isRevoked({ ...issuedBetween, issuedAtMs: later + 1 })).toBe(false);
  });

  it('when a cutoff is set again with a shorter lifetime, then it keeps the longer deadline', async () => {
    const { clock, revocations, token } = revocation();
    const revoked = token(clock.now() - 1);
    await revocations.revokeUserTokensBefore(revoked.userId, clock.now(), 10 * MINUTE);
    await revocations.revokeUserTokensBefore(revoked.userId, clock.now(), MINUTE);

    clock.advance(5 * MINUTE);

    expect(await revocations.isRevoked(revoked)).toBe(true);
  });

  it('when a cutoff has lapsed and an earlier one is set, then only the new one counts', async () => {
    const { clock, revocations, token } = revocation();
    const userId = randomUUID();
    const start = clock.now();
    await revocations.revokeUserTokensBefore(userId, start + 10_000, MINUTE);
    clock.advance(MINUTE);

    await revocations.revokeUserTokensBefore(userId, start, MINUTE);

    expect(await revocations.isRevoked({ ...token(start + 5_000), userId })).toBe(false);
    expect(await revocations.isRevoked({ ...token(start - 1), userId })).toBe(true);
  });

  it('when ten callers spend one id at once, then exactly one succeeds, and the id is void', async () => {
    const { revocations, token } = revocation();
    const spent = token();

    const answers = await Promise.all(Array.from({ length: 10 }, () => revocations.spendOnce(spent.jti, MINUTE)));

    expect(answers.filter(Boolean)).toHaveLength(1);
    expect(await revocations.isRevoked(spent)).toBe(true);
  });

  it('when a spent id reaches its deadline, then it can be spent again', async () => {
    const { clock, revocations } = revocation();
    const jti = randomUUID();
    await revocations.spendOnce(jti, MINUTE);
    clock.advance(MINUTE - 1);
    const justBefore = await revocations.spendOnce(jti, MINUTE);

    clock.advance(1);

    expect(justBefore).toBe(false);
    expect(await revocations.spendOnce(jti, MINUTE)).toBe(true);
  });

  it('when the store cannot be reached, then the check fails with service_unavailable (503) and revoking fails', async ({ skip }) => {
    const down = stores.unreachable();
    if (!down) return skip('the in-process store is never unreachable');
    const revocations = createRevocationStore(down, new ManualClock());
    const ref = { jti: 'j', sid: 's', userId: 'u', issuedAtMs: 0 };

    await expect(revocations.isRevoked(ref)).rejects.toSatisfy((err) => err instanceof AppError && err.status === 503 && err.code === 'service_unavailable');
    await expect(revocations.revokeToken('j', MINUTE)).rejects.toThrow();
    await expect(revocations.revokeSessions(['s'], MINUTE)).rejects.toThrow();
    await expect(revocations.revokeUserTokensBefore('u', 1, MINUTE)).rejects.toThrow();
    await expect(revocations.spendOnce('j', MINUTE)).rejects.toThrow();
  });
});
