// Which access tokens are void before they expire: by token id, by session, by a per-user cutoff time, or (for a
// token that speaks for an organization) by a cutoff for that member of that organization.
// Contract: tests/contracts/revocation.contract.test.ts.
import type { Clock } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';
import { ExpiringMap } from '../../core/expiring-map.js';
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

class RedisRevocationStore implements RevocationStore {
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
      values = await this.store.redis.mget(names.map((name) => this.key(name)));
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
    const pipeline = this.store.redis.pipeline();
    for (const sid of sessionIds) pipeline.set(this.key(keys.session(sid)), String(deadline), 'PX', cleanupTtlMs(deadline, now));
    const results = await pipeline.exec();
    const failed = results?.find(([err]) => err !== null);
    if (failed) throw failed[0] as Error;
  }

  async revokeUserTokensBefore(userId: string, atMs: number, ttlMs: number): Promise<void> {
    const now = this.clock.now();
    await this.store.redis.eval(LATER_CUTOFF, 1, this.key(keys.user(userId)), Math.floor(atMs), deadlineAfter(now, ttlMs), now, CLEANUP_SLACK_MS);
  }

  async revokeOrgTokensBefore(orgId: string, userIds: string[], atMs: number, ttlMs: number): Promise<void> {
    if (userIds.length === 0) return;
    const now = this.clock.now();
    const pipeline = this.store.redis.pipeline();
    for (const userId of userIds)
      pipeline.eval(LATER_CUTOFF, 1, this.key(keys.member(orgId, userId)), Math.floor(atMs), deadlineAfter(now, ttlMs), now, CLEANUP_SLACK_MS);
    const results = await pipeline.exec();
    const failed = results?.find(([err]) => err !== null);
    if (failed) throw failed[0] as Error;
  }

  async spendOnce(jti: string, ttlMs: number): Promise<boolean> {
    const now = this.clock.now();
    return (await this.store.redis.eval(SPEND_ONCE, 1, this.key(keys.token(jti)), deadlineAfter(now, ttlMs), now, CLEANUP_SLACK_MS)) === 1;
  }
}

/** The single-instance store: the same three checks over a map that expires entries by the injected clock. */
class InProcessRevocationStore implements RevocationStore {
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

  spendOnce(jti: string, ttlMs: number): Promise<boolean> {
    if (this.entries.get(keys.token(jti)) !== undefined) return Promise.resolve(false);
    this.entries.set(keys.token(jti), 1, ttlMs);
    return Promise.resolve(true);
  }
}

export function createRevocationStore(store: SharedStore, clock: Clock): RevocationStore {
  return byStore<RevocationStore>(store, { redis: (redis) => new RedisRevocationStore(redis, clock), inProcess: () => new InProcessRevocationStore(clock) });
}
