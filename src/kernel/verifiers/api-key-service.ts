// API keys: issued once, stored as a hash, found by their visible prefix and checked in constant time. A key is a
// person's own (its scopes say what of theirs it may touch) or an organization's (its scopes are organization
// permissions, and it can do no more than its creator can there now).
import type { ClientContext } from '../identity/client-context.js';
import type { SecurityEvents } from '../events/security-events.js';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import type { Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { AuthContext } from '../authenticate/authenticate.js';
import { hashToken } from '../tokens/tokens.js';
import type { OrgAccess } from '../authenticate/org-access.js';
import type { AccessTokenRef, RevocationStore } from '../revocation/revocation-store.js';

export const API_KEY_SCOPES = ['images:read', 'images:write', 'profile:read'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];
/** Read-only unless asked for more. */
export const DEFAULT_SCOPES: ApiKeyScope[] = ['images:read', 'profile:read'];

const KEY_FORMAT = /^ak_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})$/;
const LAST_USED_RESOLUTION_MS = 60_000;
/** How long a verified key is trusted without reading PostgreSQL again; revocations reach it at once (see `cached`). */
export const VERIFIED_KEY_TTL_MS = 60_000;
const VERIFIED_KEYS_KEPT = 10_000;

/** A key this instance verified against the database, with what the revocation check needs. */
interface VerifiedKey {
  auth: AuthContext & { scopes: string[] };
  /** Taken before the database read, so a change committed after the read's start voids the entry (a cutoff at or after it). */
  verifiedAtMs: number;
  expiresAtMs: number | null;
  trustedUntilMs: number;
  lastUsedWriteMs: number;
}

export interface ApiKeyView {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
}

/** The stored form of a key: the refresh tokens' SHA-256, as raw bytes for the constant-time comparison. */
function digest(value: string): Buffer {
  return Buffer.from(hashToken(value), 'hex');
}

function toView(row: {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  createdAt: Date;
  lastUsedAt: Date | null;
  expiresAt: Date | null;
}): ApiKeyView {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    scopes: row.scopes,
    createdAt: row.createdAt.toISOString(),
    lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
    expiresAt: row.expiresAt?.toISOString() ?? null,
  };
}

const invalidKey = () => new AppError('api_key_invalid', { headers: { 'WWW-Authenticate': 'ApiKey realm="authkit", error="invalid_token"' } });

export class ApiKeyService {
  /**
   * A person's keys verified here, by the SHA-256 of the key (so the map holds no key itself). A hit costs no database
   * read; the caller still asks the revocation store (with the request's budget, one round trip) whether the entry
   * has been voided since: a revoked key, or any change to its owner's account, reaches every instance at once.
   */
  private readonly verified = new Map<string, VerifiedKey>();

  constructor(
    private readonly prisma: Prisma,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly events: SecurityEvents,
    private readonly orgs: Pick<OrgAccess, 'standing'>,
    private readonly revocations: Pick<RevocationStore, 'revokeToken' | 'revokeUserTokensBefore'>,
  ) {}

  /**
   * The identity of a key this instance verified within VERIFIED_KEY_TTL_MS, and the revocation entry to check it
   * against (its id; the owner's cutoffs: a logout everywhere, a disabling, a reset); undefined otherwise. An
   * organization's key is never kept: its creator's standing is read on each use.
   */
  cached(presented: string): { auth: AuthContext & { scopes: string[] }; ref: AccessTokenRef } | undefined {
    const digestKey = hashToken(presented);
    const entry = this.verified.get(digestKey);
    if (!entry) return undefined;
    const now = this.clock.now();
    if (now >= entry.trustedUntilMs || (entry.expiresAtMs !== null && now >= entry.expiresAtMs)) {
      this.verified.delete(digestKey);
      return undefined;
    }
    if (now - entry.lastUsedWriteMs >= LAST_USED_RESOLUTION_MS) {
      entry.lastUsedWriteMs = now;
      this.recordUse(entry.auth.apiKeyId as string, now);
    }
    const id = entry.auth.apiKeyId as string;
    // One millisecond earlier: a cutoff in the very millisecond of the read voids the entry too (a read costs less than a doubt).
    return { auth: entry.auth, ref: { jti: `apikey:${id}`, sid: `apikey:${id}`, userId: entry.auth.userId, issuedAtMs: entry.verifiedAtMs - 1 } };
  }

  /** Drops a key this instance kept (the revocation store said its entry is void): the next use reads the database. */
  forget(presented: string): void {
    this.verified.delete(hashToken(presented));
  }

  /**
   * Voids, on every instance, what was verified of the user's keys until now: called after their keys were deleted
   * (a reset that removes credentials, a deleted account), so the next use of any reads the database.
   */
  async forgetKeysOf(userId: string): Promise<void> {
    await this.revocations.revokeUserTokensBefore(userId, this.clock.now(), VERIFIED_KEY_TTL_MS);
  }

  private recordUse(id: string, now: number): void {
    // Off the request path, and at most once a minute per key: "last used" need not cost a write per call.
    void this.prisma.apiKey.update({ where: { id }, data: { lastUsedAt: new Date(now) } }).catch((err: unknown) => {
      this.logger.warn({ err, apiKeyId: id }, 'could not record API key use');
    });
  }

  /** Creates a key and returns it in full: the only time it is ever shown. */
  async create(
    userId: string,
    input: { name: string; scopes?: readonly string[]; expiresAt?: Date; orgId?: string },
    client: ClientContext,
  ): Promise<ApiKeyView & { key: string }> {
    if (input.expiresAt && input.expiresAt.getTime() <= this.clock.now()) {
      throw new AppError('expires_at_in_past', { details: [{ path: 'expiresAt', message: 'in the past' }] });
    }
    // 12 characters of [A-Za-z0-9] for finding the key, 256 random bits for proving it.
    const prefix = randomBytes(12)
      .toString('base64url')
      .replace(/[^A-Za-z0-9]/g, '')
      .padEnd(12, '0')
      .slice(0, 12);
    const secret = randomBytes(32).toString('base64url');
    const key = `ak_${prefix}_${secret}`;
    const row = await this.prisma.apiKey.create({
      data: {
        userId,
        name: input.name,
        prefix,
        secretHash: hashToken(key),
        scopes: [...new Set(input.scopes ?? DEFAULT_SCOPES)],
        expiresAt: input.expiresAt ?? null,
        orgId: input.orgId ?? null,
        createdAt: new Date(this.clock.now()),
      },
    });
    const details = { keyId: row.id, name: row.name, ...(input.orgId !== undefined && { orgId: input.orgId }) };
    this.events.record({ type: 'api_key.created', actorId: userId, targetId: userId, details }, client);
    return { ...toView(row), key };
  }

  /** The active keys of a person (`{ userId }`, their own) or of an organization (`{ orgId }`), newest first. */
  async list(owner: { userId: string } | { orgId: string }): Promise<(ApiKeyView & { createdBy: string })[]> {
    const where = 'orgId' in owner ? { orgId: owner.orgId } : { userId: owner.userId, orgId: null };
    const rows = await this.prisma.apiKey.findMany({ where: { ...where, revokedAt: null }, orderBy: { createdAt: 'desc' } });
    return rows.map((row) => ({ ...toView(row), createdBy: row.userId }));
  }

  /** Revokes a person's own key, or (with `orgId`) one of the organization's. */
  async revoke(actorId: string, anyCaseId: string, client: ClientContext, orgId?: string): Promise<void> {
    // The revocation entry below is compared as a string: the id as the database writes it.
    const id = anyCaseId.toLowerCase();
    const owner = orgId === undefined ? { userId: actorId, orgId: null } : { orgId };
    const result = await this.prisma.apiKey.updateMany({ where: { id, ...owner, revokedAt: null }, data: { revokedAt: new Date(this.clock.now()) } });
    if (result.count === 0) throw new AppError('api_key_not_found');
    // Every instance that kept the key verified refuses it from its next use.
    await this.revocations.revokeToken(`apikey:${id}`, VERIFIED_KEY_TTL_MS);
    const details = { keyId: id, ...(orgId !== undefined && { orgId }) };
    this.events.record({ type: 'api_key.revoked', actorId, targetId: actorId, details }, client);
  }

  /** Turns a presented key into the caller's identity, or refuses it (unknown, revoked, expired, disabled owner). */
  async authenticate(presented: string): Promise<AuthContext & { scopes: string[] }> {
    const match = KEY_FORMAT.exec(presented);
    if (!match) throw invalidKey();
    const verifiedAtMs = this.clock.now();
    const row = await this.prisma.apiKey.findUnique({
      where: { prefix: match[1] as string },
      include: { user: { select: { disabledAt: true, username: true } } },
    });
    const expected = row ? Buffer.from(row.secretHash, 'hex') : digest('no key has this prefix');
    const matches = timingSafeEqual(digest(presented), expected);
    const now = this.clock.now();
    if (!row || !matches || row.revokedAt || row.user.disabledAt || (row.expiresAt && row.expiresAt.getTime() <= now)) throw invalidKey();

    const lastUsedMs = row.lastUsedAt?.getTime() ?? Number.NEGATIVE_INFINITY;
    if (now - lastUsedMs >= LAST_USED_RESOLUTION_MS) this.recordUse(row.id, now);
    // An organization's key can do no more than its creator can there now: nothing once they have left.
    let org: AuthContext['org'];
    if (row.orgId !== null) {
      const standing = await this.orgs.standing(row.orgId, row.userId);
      if (!standing) throw invalidKey();
      org = { id: row.orgId, role: 'api-key', permissions: row.scopes.filter((scope) => standing.permissions.includes(scope)) };
    }
    const auth = {
      userId: row.userId,
      username: row.user.username,
      sessionId: '',
      roles: [],
      amr: [],
      jti: '',
      issuedAtMs: row.createdAt.getTime(),
      expiresAtMs: Number.POSITIVE_INFINITY,
      authTimeMs: 0,
      apiKeyId: row.id,
      scopes: org?.permissions ?? row.scopes,
      ...(org && { org }),
    };
    if (!org) this.keep(presented, auth, verifiedAtMs, row.expiresAt?.getTime() ?? null, Math.max(lastUsedMs, now));
    return auth;
  }

  private keep(presented: string, auth: VerifiedKey['auth'], verifiedAtMs: number, expiresAtMs: number | null, lastUsedWriteMs: number): void {
    if (this.verified.size >= VERIFIED_KEYS_KEPT) this.verified.delete(this.verified.keys().next().value as string);
    this.verified.set(hashToken(presented), { auth, verifiedAtMs, expiresAtMs, trustedUntilMs: verifiedAtMs + VERIFIED_KEY_TTL_MS, lastUsedWriteMs });
  }
}
