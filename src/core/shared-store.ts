// Where state shared by every instance lives: Redis, or this process when the service runs alone.
import type { RedisClient } from './redis.js';

export type SharedStore =
  | { readonly kind: 'redis'; readonly redis: RedisClient; /** Prepended to every key this service writes. */ readonly prefix: string }
  | { readonly kind: 'memory' };

export type RedisSharedStore = Extract<SharedStore, { kind: 'redis' }>;

export const inProcessStore: SharedStore = { kind: 'memory' };

export function redisStore(redis: RedisClient, prefix: string): SharedStore {
  return { kind: 'redis', redis, prefix };
}

/**
 * Builds a store capability's Redis or in-process implementation: the one place that looks at the store's kind, so
 * each capability has a single factory and both of its implementations answer to the same contract.
 */
export function byStore<T>(store: SharedStore, implementations: { redis: (store: RedisSharedStore) => T; inProcess: () => T }): T {
  return store.kind === 'redis' ? implementations.redis(store) : implementations.inProcess();
}

/**
 * How long a Redis entry outlives its deadline. Validity is always the deadline (kept in the value) against the
 * injected clock; Redis's own expiry only cleans up, so it must never remove an entry that is still valid even when
 * Redis's wall clock runs a little ahead of the service's.
 */
export const CLEANUP_SLACK_MS = 60_000;

/** The PEXPIRE for an entry valid until `deadline` (service clock, now `now`): the deadline plus the cleanup slack. */
export function cleanupTtlMs(deadline: number, now: number): number {
  return Math.max(1, Math.ceil(deadline - now)) + CLEANUP_SLACK_MS;
}

/** Resolves when the store answers; the in-process store always does. */
export async function pingStore(store: SharedStore): Promise<void> {
  await byStore(store, { redis: async ({ redis }) => void (await redis.ping()), inProcess: () => Promise.resolve() });
}

/**
 * Lua shared by the counting stores (lockouts, rate-limit budgets): a count kept with its deadline in a hash
 * `{ n, until }`, read by `load()` as `n, deadline` (0, 0 once the deadline has passed by ARGV[1], the service's time)
 * and written by `save(n, deadline)` with ARGV[slackArg] as the cleanup slack. A plain string count left by an earlier
 * version (which lapsed by Redis's TTL alone) is first turned into the hash with that TTL as its deadline.
 */
export function countWithDeadlineLua(slackArg: number): string {
  return `
local now = tonumber(ARGV[1])
local function load()
  if redis.call('TYPE', KEYS[1]).ok == 'string' then
    local n, ttl = tonumber(redis.call('GET', KEYS[1])) or 0, redis.call('PTTL', KEYS[1])
    redis.call('DEL', KEYS[1])
    if ttl > 0 then
      redis.call('HSET', KEYS[1], 'n', n, 'until', now + ttl)
      redis.call('PEXPIRE', KEYS[1], ttl)
    end
  end
  local v = redis.call('HMGET', KEYS[1], 'n', 'until')
  local n, deadline = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  if deadline <= now then return 0, 0 end
  return n, deadline
end
local function save(n, deadline)
  redis.call('HSET', KEYS[1], 'n', n, 'until', deadline)
  redis.call('PEXPIRE', KEYS[1], math.max(1, deadline - now) + tonumber(ARGV[${slackArg}]))
end`;
}
