// The keys that sign access tokens: ES256 key pairs kept in PostgreSQL (private halves sealed), rotated without
// downtime; or, when HS256 is chosen, the one shared JWT_SECRET.
import { createHash, createPrivateKey, createPublicKey, createSecretKey, generateKeyPairSync, type JsonWebKey, type KeyObject, randomBytes } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import { isUniqueViolation, type Prisma } from '../../core/db.js';
import { deriveKey } from '../../core/derived-keys.js';
import { SecretBox } from '../../core/secret-box.js';

export type AccessTokenAlgorithm = 'ES256' | 'HS256';

/** What a JWKS consumer caches a key set for; a new key is published at least this long before it signs. */
export const JWKS_MAX_AGE_S = 300;
/** How often every instance re-reads the key set (so each knows a new key long before it signs). */
export const KEY_RING_REFRESH_MS = 60_000;
/** How long after its creation a rotated-in key starts signing: one JWKS cache lifetime plus one refresh. */
export const ACTIVATION_DELAY_MS = JWKS_MAX_AGE_S * 1000 + KEY_RING_REFRESH_MS;

export interface SigningKey {
  kid: string;
  alg: AccessTokenAlgorithm;
  key: KeyObject;
}

export interface SigningKeys {
  readonly algorithm: AccessTokenAlgorithm;
  /** The key that signs tokens now. */
  signing(): SigningKey;
  /** The key that checks a token naming `kid`, while tokens it signed may still be live; undefined otherwise. */
  verifying(kid: string): SigningKey | undefined;
  /** The public keys to publish (none for HS256: a shared secret is never published). */
  publicJwks(): JsonWebKey[];
}

export interface KeyLifetimes {
  accessTtlS: number;
  clockToleranceS: number;
}

/** HS256 with JWT_SECRET: one key, named by a digest of the secret so a changed secret is a different `kid`. */
export class SharedSecretKey implements SigningKeys {
  readonly algorithm = 'HS256';
  private readonly key: SigningKey;

  constructor(secret: string) {
    const kid = `hs256-${createHash('sha256').update('authkit kid').update(secret).digest('base64url').slice(0, 16)}`;
    // A KeyObject made once verifies about fifty times faster than a string secret re-imported per call.
    this.key = { kid, alg: 'HS256', key: createSecretKey(Buffer.from(secret, 'utf8')) };
  }

  signing() {
    return this.key;
  }

  verifying(kid: string) {
    return kid === this.key.kid ? this.key : undefined;
  }

  publicJwks() {
    return [];
  }
}

interface LoadedKey {
  kid: string;
  generation: number;
  createdAtMs: number;
  activatesAtMs: number;
  /** When the next generation starts signing; Infinity while this is the newest. */
  retiresAtMs: number;
  publicJwk: JsonWebKey;
  signingKey: SigningKey;
  verifyingKey: SigningKey;
}

export interface KeyInfo {
  kid: string;
  generation: number;
  algorithm: AccessTokenAlgorithm;
  createdAt: string;
  activatesAt: string;
  retiresAt: string | null;
  /** When it leaves the JWKS: its last token has expired. */
  unpublishedAt: string | null;
  state: 'next' | 'signing' | 'retired';
}

/** Thrown at start when the stored keys cannot be read: the instance must not run with a key set of its own. */
export class KeyRingError extends Error {
  override name = 'KeyRingError';
}

/**
 * ES256 key pairs shared by every instance through PostgreSQL. A key is published from its creation, signs from
 * `activatesAt`, retires when the next generation activates, and is published (and accepted) until the tokens it
 * signed have expired. Imported keys are kept in memory: signing and verifying never read the database.
 */
export class KeyRing implements SigningKeys {
  readonly algorithm = 'ES256';
  private keys: LoadedKey[] = [];
  private readonly imported = new Map<string, LoadedKey>();

  private constructor(
    private readonly prisma: Prisma,
    private readonly box: SecretBox,
    private readonly clock: Clock,
    private readonly lifetimes: KeyLifetimes,
  ) {}

  /** Loads the key set, creating the first key of a new database (it signs at once: nobody has cached a JWKS yet). */
  static async open(prisma: Prisma, box: SecretBox, clock: Clock, lifetimes: KeyLifetimes): Promise<KeyRing> {
    const ring = new KeyRing(prisma, box, clock, lifetimes);
    await ring.reload();
    if (ring.keys.length === 0) {
      try {
        await ring.add(1, clock.now());
      } catch (err) {
        // Several instances starting on an empty database race for the first key: one adds it, the others read it.
        if (!isUniqueViolation(err)) throw err;
        await ring.reload();
      }
    }
    return ring;
  }

  /** Re-reads the key set; every instance does so every KEY_RING_REFRESH_MS. */
  async reload(): Promise<void> {
    const rows = await this.prisma.signingKey.findMany({ orderBy: { generation: 'asc' } });
    const loaded = rows.map((row) => this.imported.get(row.id) ?? this.importRow(row));
    for (const kid of this.imported.keys()) if (!rows.some((row) => row.id === kid)) this.imported.delete(kid);
    loaded.forEach((key, i) => {
      key.retiresAtMs = loaded[i + 1]?.activatesAtMs ?? Infinity;
    });
    this.keys = loaded;
  }

  /**
   * Adds the generation after the newest this instance knows. It is published at once and signs after
   * ACTIVATION_DELAY_MS, so every verifier has seen it first. Instances that rotate from the same view of the set (at
   * the same moment, or within one refresh) add one key between them: the others get the one that was added.
   */
  async rotate(): Promise<KeyInfo> {
    const generation = (this.keys.at(-1)?.generation ?? 0) + 1;
    try {
      await this.add(generation, this.clock.now() + ACTIVATION_DELAY_MS);
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      await this.reload();
    }
    const newest = this.keys.at(-1);
    if (!newest) throw new KeyRingError('the key set is empty after a rotation');
    return this.describe(newest);
  }

  /** Rotates when the newest key, as the database has it now, is older than `maxAgeMs`. */
  async rotateIfOlderThan(maxAgeMs: number): Promise<KeyInfo | undefined> {
    await this.reload();
    const newest = this.keys.at(-1);
    if (newest && this.clock.now() - newest.createdAtMs < maxAgeMs) return undefined;
    return this.rotate();
  }

  /**
   * What every instance runs every KEY_RING_REFRESH_MS: re-read the set, rotate when the newest key is older than
   * `rotateAfterMs` (0: only on demand), and delete keys whose tokens have all expired.
   */
  async maintain(rotateAfterMs: number): Promise<{ rotated?: KeyInfo; pruned: number }> {
    let rotated: KeyInfo | undefined;
    if (rotateAfterMs > 0) rotated = await this.rotateIfOlderThan(rotateAfterMs);
    else await this.reload();
    return { rotated, pruned: await this.pruneRetired() };
  }

  /** Deletes keys whose tokens have all expired; returns how many. */
  async pruneRetired(): Promise<number> {
    const gone = this.keys.filter((key) => this.unpublishAtMs(key) <= this.clock.now());
    if (gone.length === 0) return 0;
    const { count } = await this.prisma.signingKey.deleteMany({ where: { id: { in: gone.map((key) => key.kid) } } });
    await this.reload();
    return count;
  }

  signing(): SigningKey {
    const now = this.clock.now();
    for (let i = this.keys.length - 1; i >= 0; i--) {
      const key = this.keys[i] as LoadedKey;
      if (key.activatesAtMs <= now) return key.signingKey;
    }
    // Only possible if every key was created to activate later, which `open` never does.
    throw new KeyRingError('no signing key is active yet');
  }

  verifying(kid: string): SigningKey | undefined {
    const key = this.imported.get(kid);
    if (!key || !this.keys.includes(key)) return undefined;
    const now = this.clock.now();
    // A key signs nothing before it activates, and nothing it signed outlives its unpublishing.
    return key.activatesAtMs <= now && now < this.unpublishAtMs(key) ? key.verifyingKey : undefined;
  }

  publicJwks(): JsonWebKey[] {
    const now = this.clock.now();
    return this.keys.filter((key) => now < this.unpublishAtMs(key)).map((key) => key.publicJwk);
  }

  list(): KeyInfo[] {
    return this.keys.map((key) => this.describe(key));
  }

  private unpublishAtMs(key: LoadedKey): number {
    return key.retiresAtMs + (this.lifetimes.accessTtlS + this.lifetimes.clockToleranceS) * 1000;
  }

  private describe(key: LoadedKey): KeyInfo {
    const now = this.clock.now();
    const unpublishAt = this.unpublishAtMs(key);
    return {
      kid: key.kid,
      generation: key.generation,
      algorithm: 'ES256',
      createdAt: new Date(key.createdAtMs).toISOString(),
      activatesAt: new Date(key.activatesAtMs).toISOString(),
      retiresAt: Number.isFinite(key.retiresAtMs) ? new Date(key.retiresAtMs).toISOString() : null,
      unpublishedAt: Number.isFinite(unpublishAt) ? new Date(unpublishAt).toISOString() : null,
      state: now < key.activatesAtMs ? 'next' : now < key.retiresAtMs ? 'signing' : 'retired',
    };
  }

  private async add(generation: number, activatesAtMs: number): Promise<void> {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const kid = randomBytes(12).toString('base64url');
    await this.prisma.signingKey.create({
      data: {
        id: kid,
        generation,
        algorithm: 'ES256',
        publicJwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' },
        privateKey: this.box.seal(privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()),
        createdAt: new Date(this.clock.now()),
        activatesAt: new Date(activatesAtMs),
      },
    });
    await this.reload();
  }

  private importRow(row: {
    id: string;
    generation: number;
    algorithm: string;
    publicJwk: unknown;
    privateKey: string;
    createdAt: Date;
    activatesAt: Date;
  }): LoadedKey {
    if (row.algorithm !== 'ES256') throw new KeyRingError(`signing key ${row.id} has an unknown algorithm ${row.algorithm}`);
    let pem: string;
    try {
      pem = this.box.open(row.privateKey);
    } catch {
      throw new KeyRingError(
        `KEY_ENCRYPTION_KEY does not open signing key ${row.id}: every instance must share the KEY_ENCRYPTION_KEY that sealed the keys in this database`,
      );
    }
    const privateKey = createPrivateKey(pem);
    const { kty, crv, x, y } = row.publicJwk as JsonWebKey;
    const publicJwk: JsonWebKey = { kty, crv, x, y, kid: row.id, alg: 'ES256', use: 'sig' };
    const key: LoadedKey = {
      kid: row.id,
      generation: row.generation,
      createdAtMs: row.createdAt.getTime(),
      activatesAtMs: row.activatesAt.getTime(),
      retiresAtMs: Infinity,
      publicJwk,
      signingKey: { kid: row.id, alg: 'ES256', key: privateKey },
      verifyingKey: { kid: row.id, alg: 'ES256', key: createPublicKey({ key: publicJwk, format: 'jwk' }) },
    };
    this.imported.set(row.id, key);
    return key;
  }
}

export interface KeySettings extends KeyLifetimes {
  algorithm: AccessTokenAlgorithm;
  jwtSecret: string;
  keyEncryptionKey: string;
}

/** The sealed box every stored key is kept in, under a key derived from KEY_ENCRYPTION_KEY. */
export function keyBox(keyEncryptionKey: string): SecretBox {
  return new SecretBox(deriveKey(keyEncryptionKey, 'authkit signing keys v1'));
}

/** The configured access-token keys: the shared key ring (ES256), or JWT_SECRET (HS256). */
export async function openSigningKeys(settings: KeySettings, prisma: Prisma, clock: Clock): Promise<SigningKeys> {
  if (settings.algorithm === 'HS256') return new SharedSecretKey(settings.jwtSecret);
  return KeyRing.open(prisma, keyBox(settings.keyEncryptionKey), clock, settings);
}
