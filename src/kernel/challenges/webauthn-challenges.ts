// WebAuthn challenges: single-use, short-lived, and kept in the shared store, so any instance can finish a ceremony
// another one started. Contract: tests/contracts/challenges.contract.test.ts.
import type { Clock } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';
import { ExpiringMap } from '../../core/expiring-map.js';
import { byStore, cleanupTtlMs, type RedisSharedStore, type SharedStore } from '../../core/shared-store.js';

/** What a challenge was issued for; a response is accepted only for the same ceremony (and the same user). */
export type Ceremony =
  | { kind: 'register'; userId: string }
  | { kind: 'sign-in' }
  | { kind: 'second-factor'; userId: string }
  | { kind: 'reauthenticate'; userId: string; sessionId: string };

export const CHALLENGE_TTL_MS = 5 * 60 * 1000;

export interface ChallengeStore {
  put(challenge: string, ceremony: Ceremony): Promise<void>;
  /** The ceremony the challenge was issued for, removing it: a second take of the same challenge finds nothing. */
  take(challenge: string): Promise<Ceremony | undefined>;
}

function unavailable(cause: unknown): AppError {
  return new AppError('challenges_unavailable', { cause, headers: { 'Retry-After': '1' } });
}

/** Stored with its deadline, so expiry follows the service's clock on either store (Redis's TTL only cleans up). */
interface Issued {
  ceremony: Ceremony;
  expiresAt: number;
}

class RedisChallenges implements ChallengeStore {
  constructor(
    private readonly store: RedisSharedStore,
    private readonly clock: Clock,
  ) {}

  private key(challenge: string) {
    return `${this.store.prefix}webauthn:challenge:${challenge}`;
  }

  async put(challenge: string, ceremony: Ceremony) {
    const now = this.clock.now();
    const issued: Issued = { ceremony, expiresAt: now + CHALLENGE_TTL_MS };
    await this.store.redis.set(this.key(challenge), JSON.stringify(issued), 'PX', cleanupTtlMs(issued.expiresAt, now)).catch((err: unknown) => {
      throw unavailable(err);
    });
  }

  async take(challenge: string) {
    // GETDEL is atomic: of two instances finishing one ceremony at once, only one gets it.
    const stored = await this.store.redis.getdel(this.key(challenge)).catch((err: unknown) => {
      throw unavailable(err);
    });
    if (stored === null) return undefined;
    const issued = JSON.parse(stored) as Issued;
    return issued.expiresAt > this.clock.now() ? issued.ceremony : undefined;
  }
}

class InProcessChallenges implements ChallengeStore {
  private readonly challenges: ExpiringMap<Ceremony>;

  constructor(clock: Clock) {
    this.challenges = new ExpiringMap(clock);
  }

  put(challenge: string, ceremony: Ceremony) {
    this.challenges.set(challenge, ceremony, CHALLENGE_TTL_MS);
    return Promise.resolve();
  }

  take(challenge: string) {
    const ceremony = this.challenges.get(challenge);
    this.challenges.delete(challenge);
    return Promise.resolve(ceremony);
  }
}

export function createChallengeStore(store: SharedStore, clock: Clock): ChallengeStore {
  return byStore<ChallengeStore>(store, { redis: (redis) => new RedisChallenges(redis, clock), inProcess: () => new InProcessChallenges(clock) });
}
