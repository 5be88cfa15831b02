// Password hashing for the account flows: bcrypt in the worker pool, the formats of other systems' hashes (imported
// users) verified there too, and a comparison that costs the same whether or not the user exists.
import { randomBytes } from 'node:crypto';
import bcrypt from 'bcryptjs';
import type { PasswordHashPool } from '../../core/password-hash-pool.js';
import { PasswordHashFormats, type PreparedHash } from './hash-formats.js';
import { djangoSaltedFormat, ldapSaltedFormat, md5CryptFormat } from './legacy-hashes.js';
import { argon2Format, bcryptFormat, djangoPbkdf2Format, firebaseScryptFormat, pbkdf2Format, scryptFormat } from './modern-hashes.js';
import type { PasswordOwner, PasswordPolicy } from './password-policy.js';

/** Every format a stored hash may be in, ours (bcrypt) first. */
const FORMATS = [
  bcryptFormat,
  argon2Format,
  scryptFormat,
  firebaseScryptFormat,
  pbkdf2Format,
  djangoPbkdf2Format,
  ldapSaltedFormat,
  djangoSaltedFormat,
  md5CryptFormat,
];

/** What an account that has no password yet (an import without a hash) stores: no format reads it, nothing matches. */
export const NO_PASSWORD_HASH = '!no-password';

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
  private readonly formats: PasswordHashFormats;

  /** `options.legacyHashes`: accept salted SHA and MD5 hashes (PASSWORD_LEGACY_HASHES); refused otherwise. */
  constructor(
    private readonly pool: PasswordHashPool,
    private readonly cost: number,
    private readonly policy?: PasswordPolicy,
    options: { legacyHashes?: boolean } = {},
  ) {
    this.dummyHash = bcrypt.genSaltSync(cost) + bcrypt.encodeBase64(randomBytes(BCRYPT_DIGEST_BYTES), BCRYPT_DIGEST_BYTES);
    this.formats = new PasswordHashFormats(FORMATS, { legacy: options.legacyHashes ?? false });
  }

  /**
   * What a stored hash is (its format's name, whether it is legacy), or a HashFormatError saying why this server
   * cannot use it: an import checks each hash here before storing it.
   */
  inspect(hash: string): Pick<PreparedHash, 'name' | 'legacy'> {
    const { name, legacy } = this.formats.inspect(hash);
    return { name, legacy };
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

  /**
   * Whether a password that matched `hash` should be hashed again with ours: another system's format, or bcrypt at a
   * lower cost than BCRYPT_COST. A hash nothing matches (no password, an unreadable one) never needs it.
   */
  needsRehash(hash: string): boolean {
    let prepared;
    try {
      prepared = this.formats.inspect(hash);
    } catch {
      return false;
    }
    return prepared.name !== 'bcrypt' || this.isWeakerThanConfigured(hash);
  }

  /**
   * Whether `password` matches `hash`, in whichever format it is. A hash cheaper to check than ours (another system's,
   * bcrypt at a lower cost) is checked beside a comparison at our cost, so no account answers sooner than an unknown
   * one; a hash this server cannot use matches nothing and costs that comparison alone.
   */
  async verify(password: string, hash: string): Promise<boolean> {
    let prepared;
    try {
      prepared = this.formats.inspect(hash);
    } catch {
      return this.verifyAgainstNobody(password);
    }
    if (prepared.name === 'bcrypt' && !this.isWeakerThanConfigured(hash)) return this.pool.compare(password, hash);
    const [matches] = await Promise.all([prepared.verify(password, this.pool), this.pool.compare(password, this.dummyHash)]);
    return matches;
  }

  /** Spends the time of a real comparison, so an unknown user cannot be told from a wrong password. */
  async verifyAgainstNobody(password: string): Promise<false> {
    await this.pool.compare(password, this.dummyHash);
    return false;
  }
}
