// Comparing secrets (or their digests) without telling an attacker, by the time it takes, how much of a guess matched.
import { timingSafeEqual } from 'node:crypto';

/** Whether two strings are equal, in time that depends only on their length. */
export function equalInConstantTime(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
