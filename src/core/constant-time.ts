// Comparing secrets (or their digests) without telling an attacker, by the time it takes, how much of a guess matched.
import { timingSafeEqual } from 'node:crypto';

/** Whether two strings are equal, in time that depends only on their length. */
export function equalInConstantTime(a: string, b: string): boolean {
  return bytesEqualInConstantTime(Buffer.from(a), Buffer.from(b));
}

/** Whether two byte strings are equal, in time that depends only on their length. */
export function bytesEqualInConstantTime(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
