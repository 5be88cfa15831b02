// WebAuthn challenges: single-use, short-lived, and kept in the shared store, so any instance can finish a ceremony
// another one started (see single-use.ts).
import type { Clock } from '../../core/clock.js';
import type { SharedStore } from '../../core/shared-store.js';
import { createSingleUseStore, type SingleUseStore } from './single-use.js';

/** What a challenge was issued for; a response is accepted only for the same ceremony (and the same user). */
export type Ceremony =
  | { kind: 'register'; userId: string }
  | { kind: 'sign-in' }
  | { kind: 'second-factor'; userId: string }
  | { kind: 'reauthenticate'; userId: string; sessionId: string };

export const CHALLENGE_TTL_MS = 5 * 60 * 1000;

export type ChallengeStore = SingleUseStore<Ceremony>;

export function createChallengeStore(store: SharedStore, clock: Clock): ChallengeStore {
  return createSingleUseStore<Ceremony>(store, clock, { namespace: 'webauthn:challenge', ttlMs: CHALLENGE_TTL_MS });
}
