// API keys: issued once, stored as a hash, found by their visible prefix and checked in constant time.
import type { ClientContext } from '../identity/client-context.js';
import type { SecurityEvents } from '../events/security-events.js';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import type { Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { AuthContext } from '../authenticate/authenticate.js';
import { hashToken } from '../tokens/tokens.js';

export const API_KEY_SCOPES = ['images:read', 'images:write', 'profile:read'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];
/** Read-only unless asked for more. */
export const DEFAULT_SCOPES: ApiKeyScope[] = ['images:read', 'profile:read'];

const KEY_FORMAT = /^ak_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})$/;
const LAST_USED_RESOLUTION_MS = 60_000;

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
  constructor(
    private readonly prisma: Prisma,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly events: SecurityEvents,
  ) {}

  /** Creates a key and returns it in full: the only time it is ever shown. */
  async create(
    userId: string,
    input: { name: string; scopes?: ApiKeyScope[]; expiresAt?: Date },
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
        createdAt: new Date(this.clock.now()),
      },
    });
    this.events.record({ type: 'api_key.created', actorId: userId, targetId: userId, details: { keyId: row.id, name: row.name } }, client);
    return { ...toView(row), key };
  }

  async list(userId: string): Promise<ApiKeyView[]> {
    const rows = await this.prisma.apiKey.findMany({ where: { userId, revokedAt: null }, orderBy: { createdAt: 'desc' } });
    return rows.map(toView);
  }

  async revoke(userId: string, id: string, client: ClientContext): Promise<void> {
    const result = await this.prisma.apiKey.updateMany({ where: { id, userId, revokedAt: null }, data: { revokedAt: new Date(this.clock.now()) } });
    if (result.count === 0) throw new AppError('api_key_not_found');
    this.events.record({ type: 'api_key.revoked', actorId: userId, targetId: userId, details: { keyId: id } }, client);
  }

  /** Turns a presented key into the caller's identity, or refuses it (unknown, revoked, expired, disabled owner). */
  async authenticate(presented: string): Promise<AuthContext & { scopes: string[] }> {
    const match = KEY_FORMAT.exec(presented);
    if (!match) throw invalidKey();
    const row = await this.prisma.apiKey.findUnique({
      where: { prefix: match[1] as string },
      include: { user: { select: { disabledAt: true, username: true } } },
    });
    const expected = row ? Buffer.from(row.secretHash, 'hex') : digest('no key has this prefix');
    const matches = timingSafeEqual(digest(presented), expected);
    const now = this.clock.now();
    if (!row || !matches || row.revokedAt || row.user.disabledAt || (row.expiresAt && row.expiresAt.getTime() <= now)) throw invalidKey();

    if (!row.lastUsedAt || now - row.lastUsedAt.getTime() >= LAST_USED_RESOLUTION_MS) {
      // Off the request path, and at most once a minute per key: "last used" need not cost a write per call.
      void this.prisma.apiKey.update({ where: { id: row.id }, data: { lastUsedAt: new Date(now) } }).catch((err: unknown) => {
        this.logger.warn({ err, apiKeyId: row.id }, 'could not record API key use');
      });
    }
    return {
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
      scopes: row.scopes,
    };
  }
}
