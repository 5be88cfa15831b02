// Password hashing for the account flows: bcrypt in the worker pool, and a comparison that costs the same whether or not the user exists.
import { randomBytes } from 'node:crypto';
import bcrypt from 'bcryptjs';
import type { PasswordHashPool } from '../../core/password-hash-pool.js';
import type { PasswordOwner, PasswordPolicy } from './password-policy.js';

/** bcrypt reads only the first 72 bytes; longer passwords are refused rather than silently truncated. */
export const MAX_PASSWORD_BYTES = 72;

/** bcrypt's digest is 23 bytes, written as 31 characters of its own base64. */
const BCRYPT_DIGEST_BYTES = 23;

export class PasswordHasher {
  /**
   * What an unknown user's password is compared with. A comparison costs the hash's cost factor whatever its digest
   * holds, so a random salt and digest at the configured cost time exactly like a real user's hash, and making
   * one costs nothing (no hash at start-up, no thread woken for it).
   */
  private readonly dummyHash: string;

  constructor(
    private readonly pool: PasswordHashPool,
    private readonly cost: number,
    private readonly policy?: PasswordPolicy,
  ) {
    this.dummyHash = bcrypt.genSaltSync(cost) + bcrypt.encodeBase64(randomBytes(BCRYPT_DIGEST_BYTES), BCRYPT_DIGEST_BYTES);
  }

  hash(password: string): Promise<string> {
    return this.pool.hash(password, this.cost);
  }

  /** The hash of a random secret nobody is told: for an account that has no password of its own (yet). */
  hashOfNobodysPassword(): Promise<string> {
    return this.hash(randomBytes(32).toString('base64url'));
  }

  /** A password someone chose (registration, a change): checked against the policy, then hashed. */
  async hashNew(password: string, owner: PasswordOwner): Promise<string> {
    await this.policy?.check(password, owner);
    return this.hash(password);
  }

  /** Whether `hash` was made at a lower cost than the configured one (it is re-hashed at the next login). */
  isWeakerThanConfigured(hash: string): boolean {
    try {
      return bcrypt.getRounds(hash) < this.cost;
    } catch {
      return false;
    }
  }

  verify(password: string, hash: string): Promise<boolean> {
    return this.pool.compare(password, hash);
  }

  /** Spends the time of a real comparison, so an unknown user cannot be told from a wrong password. */
  async verifyAgainstNobody(password: string): Promise<false> {
    await this.pool.compare(password, this.dummyHash);
    return false;
  }
}
