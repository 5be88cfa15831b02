// What the OpenID provider remembers between requests (codes, grants, tokens, sessions, interactions, DPoP proofs),
// shared by every instance through Redis, or kept in this process. Contract: tests/contracts/oauth-state.contract.test.ts.
import type { Clock } from '../../core/clock.js';
import { ExpiringMap } from '../../core/expiring-map.js';
import { byStore, cleanupTtlMs, type RedisSharedStore, type SharedStore } from '../../core/shared-store.js';

/**
 * Entries are valid until a deadline on the injected clock. A group names entries that end together (the tokens of
 * one grant); it lives as long as its longest-lived member.
 */
export interface OAuthStateStore {
  put(key: string, value: string, deadlineMs: number, groups?: string[]): Promise<void>;
  get(key: string): Promise<string | undefined>;
  /** Marks the entry spent; the first caller is told when it was spent (now), later callers the first one's time. */
  spend(key: string, deadlineMs: number): Promise<{ first: boolean; spentAtMs: number }>;
  /** When the entry was spent, if it was. */
  spentAt(key: string): Promise<number | undefined>;
  delete(keys: string[]): Promise<void>;
  /** The keys put with `group` (some may have expired since). */
  members(group: string): Promise<string[]>;
}

function parseDeadline(stored: string | null | undefined, now: number): string | undefined {
  if (stored === null || stored === undefined) return undefined;
  const bar = stored.indexOf('|');
  return Number(stored.slice(0, bar)) > now ? stored.slice(bar + 1) : undefined;
}

// Adds members to a set and stretches its expiry to the longest member's, never shortening it.
const ADD_MEMBER = `
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1`;

class RedisOAuthState implements OAuthStateStore {
  constructor(
    private readonly store: RedisSharedStore,
    private readonly clock: Clock,
  ) {}

  private key(name: string): string {
    return `${this.store.prefix}oauth:${name}`;
  }

  async put(key: string, value: string, deadlineMs: number, groups: string[] = []): Promise<void> {
    const ttl = cleanupTtlMs(deadlineMs, this.clock.now());
    // The groups first: an entry is never written unless ending its group ends it too. (Group and entry may live in
    // different slots of a cluster, so they are separate commands; a member whose entry never came is harmless.)
    await Promise.all(groups.map((group) => this.store.redis.eval(ADD_MEMBER, 1, this.key(`group:${group}`), key, String(ttl))));
    await this.store.redis.set(this.key(key), `${deadlineMs}|${value}`, 'PX', ttl);
  }

  async get(key: string): Promise<string | undefined> {
    return parseDeadline(await this.store.redis.get(this.key(key)), this.clock.now());
  }

  async spend(key: string, deadlineMs: number): Promise<{ first: boolean; spentAtMs: number }> {
    const now = this.clock.now();
    const marker = this.key(`spent:${key}`);
    const set = await this.store.redis.set(marker, `${deadlineMs}|${now}`, 'PX', cleanupTtlMs(deadlineMs, now), 'NX');
    if (set === 'OK') return { first: true, spentAtMs: now };
    return { first: false, spentAtMs: Number(parseDeadline(await this.store.redis.get(marker), now) ?? now) };
  }

  async spentAt(key: string): Promise<number | undefined> {
    const spent = parseDeadline(await this.store.redis.get(this.key(`spent:${key}`)), this.clock.now());
    return spent === undefined ? undefined : Number(spent);
  }

  async delete(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    // One DEL per key (they may live in different slots of a cluster), sent together.
    await Promise.all(keys.flatMap((key) => [this.key(key), this.key(`spent:${key}`)]).map((name) => this.store.redis.del(name)));
  }

  async members(group: string): Promise<string[]> {
    return this.store.redis.smembers(this.key(`group:${group}`));
  }
}

class InProcessOAuthState implements OAuthStateStore {
  private readonly entries: ExpiringMap<string>;
  private readonly spent: ExpiringMap<number>;
  private readonly groups: ExpiringMap<Set<string>>;

  constructor(private readonly clock: Clock) {
    this.entries = new ExpiringMap(clock);
    this.spent = new ExpiringMap(clock);
    this.groups = new ExpiringMap(clock);
  }

  put(key: string, value: string, deadlineMs: number, groups: string[] = []): Promise<void> {
    this.entries.setUntil(key, value, deadlineMs);
    for (const group of groups) {
      const members = this.groups.get(group) ?? new Set<string>();
      members.add(key);
      this.groups.setUntil(group, members, Math.max(deadlineMs, this.groups.expiresAt(group) ?? 0));
    }
    return Promise.resolve();
  }

  get(key: string): Promise<string | undefined> {
    return Promise.resolve(this.entries.get(key));
  }

  spend(key: string, deadlineMs: number): Promise<{ first: boolean; spentAtMs: number }> {
    const before = this.spent.get(key);
    if (before !== undefined) return Promise.resolve({ first: false, spentAtMs: before });
    const now = this.clock.now();
    this.spent.setUntil(key, now, deadlineMs);
    return Promise.resolve({ first: true, spentAtMs: now });
  }

  spentAt(key: string): Promise<number | undefined> {
    return Promise.resolve(this.spent.get(key));
  }

  delete(keys: string[]): Promise<void> {
    for (const key of keys) {
      this.entries.delete(key);
      this.spent.delete(key);
    }
    return Promise.resolve();
  }

  members(group: string): Promise<string[]> {
    return Promise.resolve([...(this.groups.get(group) ?? [])]);
  }
}

export function createOAuthStateStore(store: SharedStore, clock: Clock): OAuthStateStore {
  return byStore<OAuthStateStore>(store, {
    redis: (redis) => new RedisOAuthState(redis, clock),
    inProcess: () => new InProcessOAuthState(clock),
  });
}
