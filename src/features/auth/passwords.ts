// bcrypt hashing that yields to the event loop, and a comparison that costs the same whether or not the user exists.
import bcrypt from 'bcryptjs';

/** bcrypt reads only the first 72 bytes; longer passwords are refused rather than silently truncated. */
export const MAX_PASSWORD_BYTES = 72;

/** A bcrypt hash at `cost`, computed in slices between event-loop turns. */
export function hashPassword(password: string, cost: number): Promise<string> {
  return bcrypt.hash(password, cost);
}

export class PasswordHasher {
  private readonly dummyHash: Promise<string>;

  constructor(private readonly cost: number) {
    // Made up front so the first unknown-user login costs no more than later ones.
    this.dummyHash = bcrypt.hash('not-a-real-password-for-timing-only', cost);
  }

  /** Async bcryptjs works in slices between event-loop turns, so other requests keep being served. */
  hash(password: string): Promise<string> {
    return hashPassword(password, this.cost);
  }

  verify(password: string, hash: string): Promise<boolean> {
    return bcrypt.compare(password, hash);
  }

  /** Spends the time of a real comparison, so an unknown user cannot be told from a wrong password. */
  async verifyAgainstNobody(password: string): Promise<false> {
    await bcrypt.compare(password, await this.dummyHash);
    return false;
  }
}
