// Which access tokens are void before they expire: by token id, by session, or by a per-user cutoff time.
import type { Clock } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';
import { ExpiringMap } from '../../core/expiring-map.js';
import type { SharedStore } from '../../core/shared-store.js';

export interface AccessTokenRef {
  jti: string;
  sid: string;
  userId: string;
  /** When the token was issued, in milliseconds. */
  issuedAtMs: number;
}

/** Every method's TTL is how long the entry must outlive the tokens it voids: an access token's lifetime. */
export interface RevocationStore {
  /** Answers from one round trip to the store, however many checks it makes. */
  isRevoked(token: AccessTokenRef): Promise<boolean>;
  revokeToken(jti: string, ttlMs: number): Promise<void>;
  revokeSessions(sessionIds: string[], ttlMs: number): Promise<void>;
  /** Voids every token of the user issued before `atMs`. */
  revokeUserTokensBefore(userId: string, atMs: number, ttlMs: number): Promise<void>;
  /** Marks a single-use token id as spent; true only for the first caller, on any instance. */
  spendOnce(jti: string, ttlMs: number): Promise<boolean>;
}

const keys = {
  token: (jti: string) => `revoked:jti:${jti}`,
  session: (sid: string) => `revoked:session:${sid}`,
  user: (userId: string) => `revoked:user:${userId}`,
};

function unavailable(cause: unknown): AppError {
  // Without the store nobody can tell a revoked token from a live one, so refuse rather than guess.
  return new AppError('service_unavailable', 'Token revocation cannot be checked right now; try again shortly.', {
    cause,
    headers: { 'Retry-After': '1' },
  });
}

function isSet(value: string | null | undefined): value is string {
  return value !== null && value !== undefined;
}

/**
 * Sets a cutoff only forward: two instances revoking at nearly the same moment (or with clocks a little apart) must
 * never move "void before T" back and revive tokens the later call voided. The entry lives at least `ttl` either way.
 */
const LATER_CUTOFF = `
local current = tonumber(redis.call('GET', KEYS[1]))
if current == nil or current < tonumber(ARGV[1]) then
  return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 'KEPT'
`;

class RedisRevocationStore implements RevocationStore {
  constructor(private readonly store: Extract<SharedStore, { kind: 'redis' }>) {}

  private key(suffix: string): string {
    return `${this.store.prefix}${suffix}`;
  }

  async isRevoked(token: AccessTokenRef): Promise<boolean> {
    // One command for all three checks, issued at once: the client can send it in the same write as the
    // request's rate-limit increment.
    let values: Array<string | null>;
    try {
      values = await this.store.redis.mget(this.key(keys.token(token.jti)), this.key(keys.session(token.sid)), this.key(keys.user(token.userId)));
    } catch (err) {
      throw unavailable(err);
    }
    // A reply of the wrong shape must never read as "not revoked".
    if (values.length !== 3) throw unavailable(new Error(`MGET answered ${values.length} values for 3 keys`));
    const [tokenRevoked, sessionRevoked, cutoff] = values;
    return isSet(tokenRevoked) || isSet(sessionRevoked) || (isSet(cutoff) && token.issuedAtMs < Number(cutoff));
  }

  async revokeToken(jti: string, ttlMs: number): Promise<void> {
    await this.store.redis.set(this.key(keys.token(jti)), '1', 'PX', Math.max(1, Math.ceil(ttlMs)));
  }

  async revokeSessions(sessionIds: string[], ttlMs: number): Promise<void> {
    if (sessionIds.length === 0) return;
    const pipeline = this.store.redis.pipeline();
    for (const sid of sessionIds) pipeline.set(this.key(keys.session(sid)), '1', 'PX', Math.max(1, Math.ceil(ttlMs)));
    const results = await pipeline.exec();
    const failed = results?.find(([err]) => err !== null);
    if (failed) throw failed[0] as Error;
  }

  async revokeUserTokensBefore(userId: string, atMs: number, ttlMs: number): Promise<void> {
    await this.store.redis.eval(LATER_CUTOFF, 1, this.key(keys.user(userId)), String(atMs), String(Math.max(1, Math.ceil(ttlMs))));
  }

  async spendOnce(jti: string, ttlMs: number): Promise<boolean> {
    return (await this.store.redis.set(this.key(keys.token(jti)), '1', 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX')) === 'OK';
  }
}

/** The single-instance store: the same three checks over a map that expires entries by the injected clock. */
class InProcessRevocationStore implements RevocationStore {
  private readonly entries: ExpiringMap<number>;

  constructor(clock: Clock) {
    this.entries = new ExpiringMap(clock);
  }

  isRevoked(token: AccessTokenRef): Promise<boolean> {
    const cutoff = this.entries.get(keys.user(token.userId));
    return Promise.resolve(
      this.entries.get(keys.token(token.jti)) !== undefined ||
        this.entries.get(keys.session(token.sid)) !== undefined ||
        (cutoff !== undefined && token.issuedAtMs < cutoff),
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
    this.entries.set(keys.user(userId), Math.max(atMs, this.entries.get(keys.user(userId)) ?? 0), ttlMs);
    return Promise.resolve();
  }

  spendOnce(jti: string, ttlMs: number): Promise<boolean> {
    if (this.entries.get(keys.token(jti)) !== undefined) return Promise.resolve(false);
    this.entries.set(keys.token(jti), 1, ttlMs);
    return Promise.resolve(true);
  }
}

export function createRevocationStore(store: SharedStore, clock: Clock): RevocationStore {
  return store.kind === 'redis' ? new RedisRevocationStore(store) : new InProcessRevocationStore(clock);
}
