// Which access tokens are void before they expire: by token id, by session, by a per-user cutoff time, or (for a
// token that speaks for an organization) by a cutoff for that member of that organization.
// Contract: tests/contracts/revocation.contract.test.ts.
import type { Clock } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';
import { ExpiringMap } from '../../core/expiring-map.js';
import { onServerLost, readKeys } from '../../core/redis.js';
import type { RevocationLedger, RevocationRecord } from './revocation-ledger.js';
import { byStore, CLEANUP_SLACK_MS, cleanupTtlMs, type RedisSharedStore, type SharedStore } from '../../core/shared-store.js';

export interface AccessTokenRef {
  jti: string;
  sid: string;
  userId: string;
  /** When the token was issued, in milliseconds. */
  issuedAtMs: number;
  /** The organization the token speaks for, if any. */
  orgId?: string;
}

/**
 * Every method's TTL is how long the entry must outlive the tokens it voids: an access token's lifetime. An entry is
 * valid until its deadline by the injected clock, on either store.
 */
export interface RevocationStore {
  /** Answers from one round trip to the store, however many checks it makes. */
  isRevoked(token: AccessTokenRef): Promise<boolean>;
  revokeToken(jti: string, ttlMs: number): Promise<void>;
  revokeSessions(sessionIds: string[], ttlMs: number): Promise<void>;
  /** Voids every token of the user issued before `atMs`. */
  revokeUserTokensBefore(userId: string, atMs: number, ttlMs: number): Promise<void>;
  /**
   * Voids the tokens each user holds for the organization issued before `atMs` (their membership changed or ended);
   * their other tokens live on.
   */
  revokeOrgTokensBefore(orgId: string, userIds: string[], atMs: number, ttlMs: number): Promise<void>;
  /** Marks a single-use token id as spent; true only for the first caller, on any instance. */
  spendOnce(jti: string, ttlMs: number): Promise<boolean>;
}

const keys = {
  token: (jti: string) => `revoked:jti:${jti}`,
  session: (sid: string) => `revoked:session:${sid}`,
  user: (userId: string) => `revoked:user:${userId}`,
  member: (orgId: string, userId: string) => `revoked:org:${orgId.toLowerCase()}:${userId.toLowerCase()}`,
};

function unavailable(cause: unknown): AppError {
  // Without the store nobody can tell a revoked token from a live one, so refuse rather than guess.
  return new AppError('revocation_unavailable', {
    cause,
    headers: { 'Retry-After': '1' },
  });
}

/**
 * A token or session entry holds its deadline; it voids tokens while the deadline is ahead of the clock. One written
 * before deadlines were kept holds '1' and lapses by Redis's TTL alone: it voids while it exists.
 */
function liveDeadline(value: string | null | undefined, now: number): boolean {
  return value !== null && value !== undefined && (value === '1' || Number(value) > now);
}

/**
 * A user's entry holds `<cutoff>:<deadline>`: while the deadline is ahead, tokens issued before the cutoff are void.
 * One written before deadlines were kept holds the cutoff alone and applies while it exists.
 */
function liveCutoff(value: string | null | undefined, now: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const [cutoff, deadline] = value.split(':').map(Number);
  return deadline === undefined || deadline > now ? cutoff : undefined;
}

function deadlineAfter(now: number, ttlMs: number): number {
  return now + Math.max(1, Math.ceil(ttlMs));
}

/**
 * Sets a cutoff only forward: two instances revoking at nearly the same moment (or with clocks a little apart) must
 * never move "void before T" back and revive tokens the later call voided. The entry lives at least `ttl` either way.
 * ARGV: cutoff, deadline, now, cleanup slack.
 */
const LATER_CUTOFF = `
local cutoff, deadline, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local current = redis.call('GET', KEYS[1])
if current then
  local sep = string.find(current, ':', 1, true)
  local currentCutoff, currentDeadline
  if sep then
    currentCutoff, currentDeadline = tonumber(string.sub(current, 1, sep - 1)), tonumber(string.sub(current, sep + 1))
  else
    -- written before deadlines were kept: the cutoff alone, lapsing by Redis's TTL
    currentCutoff, currentDeadline = tonumber(current), now + redis.call('PTTL', KEYS[1])
  end
  if currentDeadline > now then
    cutoff = math.max(cutoff, currentCutoff)
    deadline = math.max(deadline, currentDeadline)
  end
end
redis.call('SET', KEYS[1], string.format('%d:%d', cutoff, deadline), 'PX', math.max(1, deadline - now) + tonumber(ARGV[4]))
return 1
`;

/** Marks a token id spent unless a live entry (or one written before deadlines, '1') already does. ARGV: deadline, now, cleanup slack. */
const SPEND_ONCE = `
local current = tonumber(redis.call('GET', KEYS[1]))
local deadline, now = tonumber(ARGV[1]), tonumber(ARGV[2])
if current and (current == 1 or current > now) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', math.max(1, deadline - now) + tonumber(ARGV[3]))
return 1
`;

/** Sets a deadline entry only later, never earlier. ARGV: deadline, now, cleanup slack. */
const LATER_DEADLINE = `
local current = tonumber(redis.call('GET', KEYS[1]))
local deadline, now = tonumber(ARGV[1]), tonumber(ARGV[2])
if current and current ~= 1 and current >= deadline then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', math.max(1, deadline - now) + tonumber(ARGV[3]))
return 1
`;

/** A store that can be given recorded entries again (after it lost them); an entry it holds is only ever extended. */
interface RestorableRevocationStore extends RevocationStore {
  restore(records: RevocationRecord[]): Promise<void>;
}

class RedisRevocationStore implements RestorableRevocationStore {
  constructor(
    private readonly store: RedisSharedStore,
    private readonly clock: Clock,
  ) {}

  private key(suffix: string): string {
    return `${this.store.prefix}${suffix}`;
  }

  async isRevoked(token: AccessTokenRef): Promise<boolean> {
    // One command for all three checks, issued at once: the client can send it in the same write as the
    // request's rate-limit increment.
    const names = [keys.token(token.jti), keys.session(token.sid), keys.user(token.userId)];
    if (token.orgId !== undefined) names.push(keys.member(token.orgId, token.userId));
    let values: Array<string | null>;
    try {
      values = await readKeys(
        this.store.redis,
        names.map((name) => this.key(name)),
      );
    } catch (err) {
      throw unavailable(err);
    }
    // A reply of the wrong shape must never read as "not revoked".
    if (values.length !== names.length) throw unavailable(new Error(`MGET answered ${values.length} values for ${names.length} keys`));
    const [tokenRevoked, sessionRevoked, cutoffEntry, memberEntry] = values;
    const now = this.clock.now();
    const before = (entry: string | null | undefined) => {
      const cutoff = liveCutoff(entry, now);
      return cutoff !== undefined && token.issuedAtMs < cutoff;
    };
    return liveDeadline(tokenRevoked, now) || liveDeadline(sessionRevoked, now) || before(cutoffEntry) || before(memberEntry);
  }

  async revokeToken(jti: string, ttlMs: number): Promise<void> {
    const now = this.clock.now();
    const deadline = deadlineAfter(now, ttlMs);
    await this.store.redis.set(this.key(keys.token(jti)), String(deadline), 'PX', cleanupTtlMs(deadline, now));
  }

  async revokeSessions(sessionIds: string[], ttlMs: number): Promise<void> {
    if (sessionIds.length === 0) return;
    const now = this.clock.now();
    const deadline = deadlineAfter(now, ttlMs);
    // Issued together, so the client sends them in one write (one per node on a cluster, where they may live apart).
    await Promise.all(sessionIds.map((sid) => this.store.redis.set(this.key(keys.session(sid)), String(deadline), 'PX', cleanupTtlMs(deadline, now))));
  }

  async revokeUserTokensBefore(userId: string, atMs: number, ttlMs: number): Promise<void> {
    const now = this.clock.now();
    await this.store.redis.eval(LATER_CUTOFF, 1, this.key(keys.user(userId)), Math.floor(atMs), deadlineAfter(now, ttlMs), now, CLEANUP_SLACK_MS);
  }

  async revokeOrgTokensBefore(orgId: string, userIds: string[], atMs: number, ttlMs: number): Promise<void> {
    if (userIds.length === 0) return;
    const now = this.clock.now();
    await Promise.all(
      userIds.map((userId) =>
        this.store.redis.eval(LATER_CUTOFF, 1, this.key(keys.member(orgId, userId)), Math.floor(atMs), deadlineAfter(now, ttlMs), now, CLEANUP_SLACK_MS),
      ),
    );
  }

  async restore(records: RevocationRecord[]): Promise<void> {
    const now = this.clock.now();
    // Issued together: the client sends them in as few writes as it can (per node on a cluster).
    await Promise.all(
      records.map((record) =>
        record.cutoffMs === undefined
          ? this.store.redis.eval(LATER_DEADLINE, 1, this.key(record.key), record.deadlineMs, now, CLEANUP_SLACK_MS)
          : this.store.redis.eval(LATER_CUTOFF, 1, this.key(record.key), record.cutoffMs, record.deadlineMs, now, CLEANUP_SLACK_MS),
      ),
    );
  }

  async spendOnce(jti: string, ttlMs: number): Promise<boolean> {
    const now = this.clock.now();
    return (await this.store.redis.eval(SPEND_ONCE, 1, this.key(keys.token(jti)), deadlineAfter(now, ttlMs), now, CLEANUP_SLACK_MS)) === 1;
  }
}

/** The single-instance store: the same three checks over a map that expires entries by the injected clock. */
class InProcessRevocationStore implements RestorableRevocationStore {
  private readonly entries: ExpiringMap<number>;

  constructor(private readonly clock: Clock) {
    this.entries = new ExpiringMap(clock);
  }

  isRevoked(token: AccessTokenRef): Promise<boolean> {
    const before = (key: string) => {
      const cutoff = this.entries.get(key);
      return cutoff !== undefined && token.issuedAtMs < cutoff;
    };
    return Promise.resolve(
      this.entries.get(keys.token(token.jti)) !== undefined ||
        this.entries.get(keys.session(token.sid)) !== undefined ||
        before(keys.user(token.userId)) ||
        (token.orgId !== undefined && before(keys.member(token.orgId, token.userId))),
    );
  }

  revokeToken(jti: string, ttlMs: number): Promise<void> {
    this.entries.set(keys.token(jti), 1, ttlMs);
    return Promise.resolve();
  }

  revokeSessions(sessionIds: string[], ttlMs: number): Promise<void> {
    for (const sid of sessionIds) this.entries.set(keys.session(sid), 1, ttlMs);
    return Promise.resolve();
  }

  revokeUserTokensBefore(userId: string, atMs: number, ttlMs: number): Promise<void> {
    this.laterCutoff(keys.user(userId), atMs, ttlMs);
    return Promise.resolve();
  }

  revokeOrgTokensBefore(orgId: string, userIds: string[], atMs: number, ttlMs: number): Promise<void> {
    for (const userId of userIds) this.laterCutoff(keys.member(orgId, userId), atMs, ttlMs);
    return Promise.resolve();
  }

  /** A cutoff only moves forward, and lives at least `ttlMs`. */
  private laterCutoff(key: string, atMs: number, ttlMs: number): void {
    const deadline = Math.max(this.clock.now() + ttlMs, this.entries.expiresAt(key) ?? 0);
    this.entries.setUntil(key, Math.max(atMs, this.entries.get(key) ?? 0), deadline);
  }

  restore(records: RevocationRecord[]): Promise<void> {
    for (const record of records) {
      const deadline = Math.max(record.deadlineMs, this.entries.expiresAt(record.key) ?? 0);
      this.entries.setUntil(record.key, Math.max(record.cutoffMs ?? 1, this.entries.get(record.key) ?? 0), deadline);
    }
    return Promise.resolve();
  }

  spendOnce(jti: string, ttlMs: number): Promise<boolean> {
    if (this.entries.get(keys.token(jti)) !== undefined) return Promise.resolve(false);
    this.entries.set(keys.token(jti), 1, ttlMs);
    return Promise.resolve(true);
  }
}

/** How long the background restore waits between attempts (doubling up to the last), and how many it makes. */
const RESTORE_RETRY_MS = [100, 250, 500, 1_000, 2_000];
const RESTORE_ATTEMPTS = 60;

/**
 * Every revocation written to the store is also recorded in the database, and the store is given the record again
 * whenever it may have lost part of it: at start (an embedded server's memory, a Redis emptied by a restart) and
 * whenever the client loses a Redis server (a failover promotes a replica that Redis's asynchronous replication had
 * not yet sent the last writes to). Until that is done, `isRevoked` answers only after the record is restored (or
 * 503): a revocation that was confirmed is never forgotten. Single-use ids (`spendOnce`) are not recorded: they
 * guard proofs that live seconds to minutes, and recording each would cost a database write per DPoP request.
 */
class RecordedRevocationStore implements RevocationStore {
  /** Whether the store may lack part of the record; set at start and at every lost server. */
  private pending = true;
  /** Bumped at every lost server: a restore that began before it does not clear `pending`. */
  private generation = 0;
  private attempt: Promise<void> | undefined;

  constructor(
    private readonly inner: RestorableRevocationStore,
    private readonly ledger: RevocationLedger,
    private readonly clock: Clock,
  ) {}

  /** Resolves once the store holds the whole record (at start: before the service answers). */
  async restored(): Promise<void> {
    while (this.pending) await this.restoreOnce();
  }

  /** The store may have lost entries: restore them in the background, and answer nothing from it until then. */
  serverLost(): void {
    this.generation++;
    this.pending = true;
    void this.restoreInBackground(this.generation);
  }

  isRevoked(token: AccessTokenRef): Promise<boolean> {
    // The usual case calls the store in this same turn, so its command still shares a write with the request's budget.
    if (!this.pending) return this.inner.isRevoked(token);
    return this.restoreOnce().then(
      () => {
        if (this.pending) throw unavailable(new Error('the revocation store lost a server again while it was being restored'));
        return this.inner.isRevoked(token);
      },
      (err: unknown) => {
        throw unavailable(err);
      },
    );
  }

  async revokeToken(jti: string, ttlMs: number): Promise<void> {
    const deadlineMs = deadlineAfter(this.clock.now(), ttlMs);
    await this.inner.revokeToken(jti, ttlMs);
    await this.ledger.record([{ key: keys.token(jti), deadlineMs }]);
  }

  async revokeSessions(sessionIds: string[], ttlMs: number): Promise<void> {
    const deadlineMs = deadlineAfter(this.clock.now(), ttlMs);
    await this.inner.revokeSessions(sessionIds, ttlMs);
    await this.ledger.record(sessionIds.map((sid) => ({ key: keys.session(sid), deadlineMs })));
  }

  async revokeUserTokensBefore(userId: string, atMs: number, ttlMs: number): Promise<void> {
    const deadlineMs = deadlineAfter(this.clock.now(), ttlMs);
    await this.inner.revokeUserTokensBefore(userId, atMs, ttlMs);
    await this.ledger.record([{ key: keys.user(userId), cutoffMs: Math.floor(atMs), deadlineMs }]);
  }

  async revokeOrgTokensBefore(orgId: string, userIds: string[], atMs: number, ttlMs: number): Promise<void> {
    const deadlineMs = deadlineAfter(this.clock.now(), ttlMs);
    await this.inner.revokeOrgTokensBefore(orgId, userIds, atMs, ttlMs);
    await this.ledger.record(userIds.map((userId) => ({ key: keys.member(orgId, userId), cutoffMs: Math.floor(atMs), deadlineMs })));
  }

  spendOnce(jti: string, ttlMs: number): Promise<boolean> {
    return this.inner.spendOnce(jti, ttlMs);
  }

  /** One restore at a time; it clears `pending` only if no server was lost while it ran. */
  private restoreOnce(): Promise<void> {
    const generation = this.generation;
    this.attempt ??= (async () => {
      await this.inner.restore(await this.ledger.live(this.clock.now()));
      if (generation === this.generation) this.pending = false;
    })().finally(() => {
      this.attempt = undefined;
    });
    return this.attempt;
  }

  private async restoreInBackground(generation: number): Promise<void> {
    for (let attempt = 0; attempt < RESTORE_ATTEMPTS && this.pending && generation === this.generation; attempt++) {
      try {
        await this.restoreOnce();
      } catch {
        // The store or the database is still away; a request meanwhile answers 503 and tries too.
        const delay = RESTORE_RETRY_MS[Math.min(attempt, RESTORE_RETRY_MS.length - 1)];
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
      }
    }
  }
}

export interface RecordedRevocations extends RevocationStore {
  /** Resolves once the store holds every recorded revocation. */
  restored(): Promise<void>;
}

/**
 * The revocation store on Redis or in process. With a ledger, every revocation is recorded in the database too and
 * restored into a store that lost it (see RecordedRevocationStore); without one (the contract tests), the store alone.
 */
export function createRevocationStore(store: SharedStore, clock: Clock): RevocationStore;
export function createRevocationStore(store: SharedStore, clock: Clock, ledger: RevocationLedger): RecordedRevocations;
export function createRevocationStore(store: SharedStore, clock: Clock, ledger?: RevocationLedger): RevocationStore {
  return byStore<RevocationStore>(store, {
    redis: (redis) => {
      const inner = new RedisRevocationStore(redis, clock);
      if (!ledger) return inner;
      const recorded = new RecordedRevocationStore(inner, ledger, clock);
      onServerLost(redis.redis, () => recorded.serverLost());
      return recorded;
    },
    inProcess: () => {
      const inner = new InProcessRevocationStore(clock);
      return ledger ? new RecordedRevocationStore(inner, ledger, clock) : inner;
    },
  });
}
