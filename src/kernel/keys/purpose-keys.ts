// One symmetric key per purpose, stored sealed in PostgreSQL so every instance shares them, and rotatable: data
// records the generation of the key that protects it, and every generation stays readable.
import { createHmac, randomBytes } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import { isUniqueViolation, type Prisma } from '../../core/db.js';
import { deriveKey } from '../../core/derived-keys.js';
import { SecretBox, type Sealer } from '../../core/secret-box.js';
import { KEY_RING_REFRESH_MS, type KeySettings, KeyRingError, keyBox, openSigningKeys, type SigningKeys } from './key-ring.js';

/**
 * Generation 1 of each purpose: derived from JWT_SECRET with these labels, as earlier versions derived the first
 * four (so what they protected stays readable).
 */
const FIRST_GENERATION_LABELS = {
  totp: 'authkit totp secrets v1',
  'recovery-codes': 'authkit recovery codes v1',
  'mfa-tokens': 'authkit mfa tokens v1',
  'image-urls': 'authkit signed image urls v1',
  /** Hashes of emailed link tokens and sign-in codes. */
  'email-tokens': 'authkit email tokens v1',
  /** Seals queued messages' bodies (they may carry a link token) until they are sent. */
  'outbound-mail': 'authkit outbound mail v1',
  /** Seals webhook endpoints' signing secrets. */
  'webhook-signing': 'authkit webhook signing secrets v1',
  /** Seals the client secrets of identity providers administrators add at run time. */
  'identity-providers': 'authkit identity provider secrets v1',
} as const;

export type KeyPurpose = keyof typeof FIRST_GENERATION_LABELS;
export const KEY_PURPOSES = Object.keys(FIRST_GENERATION_LABELS) as KeyPurpose[];

/** A rotated-in key protects new data only once every instance has loaded it (two refreshes, to be sure). */
export const PURPOSE_KEY_ACTIVATION_DELAY_MS = 2 * KEY_RING_REFRESH_MS;

export interface PurposeKey {
  generation: number;
  key: Buffer;
}

export interface PurposeKeyInfo {
  purpose: KeyPurpose;
  generation: number;
  createdAt: string;
  activatesAt: string;
  state: 'next' | 'current' | 'previous';
}

interface Loaded extends PurposeKey {
  createdAtMs: number;
  activatesAtMs: number;
}

export class PurposeKeys {
  private keys = new Map<KeyPurpose, Loaded[]>();

  private constructor(
    private readonly prisma: Prisma,
    private readonly box: SecretBox,
    private readonly clock: Clock,
  ) {}

  /**
   * Loads every purpose's keys. A purpose with none gets generation 1: the key earlier versions derived from
   * `jwtSecret`, so what they protected stays readable, and from then on JWT_SECRET no longer matters to it.
   */
  static async open(prisma: Prisma, box: SecretBox, clock: Clock, jwtSecret: string): Promise<PurposeKeys> {
    const keys = new PurposeKeys(prisma, box, clock);
    await keys.reload();
    for (const purpose of KEY_PURPOSES) {
      if (keys.all(purpose).length > 0) continue;
      await keys.add(purpose, 1, deriveKey(jwtSecret, FIRST_GENERATION_LABELS[purpose]), clock.now());
    }
    await keys.reload();
    return keys;
  }

  async reload(): Promise<void> {
    const rows = await this.prisma.purposeKey.findMany({ orderBy: [{ purpose: 'asc' }, { generation: 'asc' }] });
    const keys = new Map<KeyPurpose, Loaded[]>();
    for (const row of rows) {
      if (!(row.purpose in FIRST_GENERATION_LABELS)) continue;
      let secret: string;
      try {
        secret = this.box.open(row.secret);
      } catch {
        throw new KeyRingError(
          `KEY_ENCRYPTION_KEY does not open the ${row.purpose} key (generation ${row.generation}): every instance must share the KEY_ENCRYPTION_KEY that sealed it`,
        );
      }
      const list = keys.get(row.purpose as KeyPurpose) ?? [];
      list.push({
        generation: row.generation,
        key: Buffer.from(secret, 'base64url'),
        createdAtMs: row.createdAt.getTime(),
        activatesAtMs: row.activatesAt.getTime(),
      });
      keys.set(row.purpose as KeyPurpose, list);
    }
    this.keys = keys;
  }

  /** The key that protects new data now: the newest active generation. */
  current(purpose: KeyPurpose): PurposeKey {
    const now = this.clock.now();
    const active = this.all(purpose).filter((key) => key.activatesAtMs <= now);
    const newest = active.at(-1);
    if (!newest) throw new KeyRingError(`no ${purpose} key is active`);
    return newest;
  }

  byGeneration(purpose: KeyPurpose, generation: number): Buffer | undefined {
    return this.all(purpose).find((key) => key.generation === generation)?.key;
  }

  /** Every generation, oldest first (to recognise data any of them protected). */
  all(purpose: KeyPurpose): readonly Loaded[] {
    return this.keys.get(purpose) ?? [];
  }

  /** Adds the next generation of `purpose`; two instances rotating from one view add one key between them. */
  async rotate(purpose: KeyPurpose): Promise<PurposeKeyInfo> {
    const generation = (this.all(purpose).at(-1)?.generation ?? 0) + 1;
    try {
      await this.add(purpose, generation, randomBytes(32), this.clock.now() + PURPOSE_KEY_ACTIVATION_DELAY_MS);
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
    }
    await this.reload();
    const newest = this.all(purpose).at(-1);
    if (!newest) throw new KeyRingError(`the ${purpose} keys are empty after a rotation`);
    return this.describe(purpose, newest);
  }

  list(): PurposeKeyInfo[] {
    return KEY_PURPOSES.flatMap((purpose) => this.all(purpose).map((key) => this.describe(purpose, key)));
  }

  private describe(purpose: KeyPurpose, key: Loaded): PurposeKeyInfo {
    const current = this.current(purpose);
    return {
      purpose,
      generation: key.generation,
      createdAt: new Date(key.createdAtMs).toISOString(),
      activatesAt: new Date(key.activatesAtMs).toISOString(),
      state: key.generation === current.generation ? 'current' : key.generation > current.generation ? 'next' : 'previous',
    };
  }

  private async add(purpose: KeyPurpose, generation: number, key: Buffer, activatesAtMs: number): Promise<void> {
    try {
      await this.prisma.purposeKey.create({
        data: {
          purpose,
          generation,
          secret: this.box.seal(key.toString('base64url')),
          createdAt: new Date(this.clock.now()),
          activatesAt: new Date(activatesAtMs),
        },
      });
    } catch (err) {
      // Another instance made the same generation at the same moment: theirs stands.
      if (generation === 1 && isUniqueViolation(err)) return;
      throw err;
    }
  }
}

/**
 * Seals with the purpose's current key and names its generation: `k<generation>.<iv>.<tag>.<body>`. The three-part
 * form written before keys were stored is generation 1.
 */
export class VersionedBox implements Sealer {
  constructor(
    private readonly keys: PurposeKeys,
    private readonly purpose: KeyPurpose,
  ) {}

  seal(plain: string): string {
    const { generation, key } = this.keys.current(this.purpose);
    return `k${generation}.${new SecretBox(key).seal(plain)}`;
  }

  open(sealed: string): string {
    const parts = sealed.split('.');
    const generation = parts.length === 4 ? Number(parts[0]?.slice(1)) : 1;
    const key = this.keys.byGeneration(this.purpose, generation);
    if (!key) throw new KeyRingError(`no ${this.purpose} key of generation ${generation}`);
    return new SecretBox(key).open(parts.length === 4 ? parts.slice(1).join('.') : sealed);
  }
}

/**
 * Keyed hashes that name their key's generation (`k<generation>:<hex>`), so a lookup can try every generation: data
 * hashed under an older key (or, unprefixed, before keys were stored) still matches after a rotation.
 */
export class VersionedHmac {
  constructor(
    private readonly keys: PurposeKeys,
    private readonly purpose: KeyPurpose,
  ) {}

  digest(value: string): string {
    const { generation, key } = this.keys.current(this.purpose);
    return `k${generation}:${createHmac('sha256', key).update(value).digest('hex')}`;
  }

  /** Every stored form `value` may have: one per generation, and the unprefixed form of generation 1. */
  candidates(value: string): string[] {
    return this.keys.all(this.purpose).flatMap(({ generation, key }) => {
      const hex = createHmac('sha256', key).update(value).digest('hex');
      return generation === 1 ? [hex, `k1:${hex}`] : [`k${generation}:${hex}`];
    });
  }
}

/** Every stored key this service uses, loaded (and, on a new database, created) before the app is built. */
export async function openKeys(settings: KeySettings, prisma: Prisma, clock: Clock): Promise<{ signingKeys: SigningKeys; purposeKeys: PurposeKeys }> {
  const signingKeys = await openSigningKeys(settings, prisma, clock);
  // With HS256 every verifier holds JWT_SECRET: first generations derive from the key-encryption key instead.
  const firstGenerationSecret = settings.algorithm === 'HS256' ? settings.keyEncryptionKey : settings.jwtSecret;
  const purposeKeys = await PurposeKeys.open(prisma, keyBox(settings.keyEncryptionKey), clock, firstGenerationSecret);
  return { signingKeys, purposeKeys };
}
