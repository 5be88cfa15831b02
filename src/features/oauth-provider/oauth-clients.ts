// The apps that sign people in with us or get tokens for themselves: registered by administrators (or, behind a
// setting, by dynamic registration), kept in PostgreSQL with only a digest of each secret.
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Clock } from '../../core/clock.js';
import { isUniqueViolation, type Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import { equalInConstantTime } from '../../core/constant-time.js';
import type { Prisma as PrismaTypes } from '../../generated/prisma/client.js';

/** A JWK Set as PostgreSQL keeps it (JSONB). */
const asJson = (jwks: unknown) => (jwks ?? undefined) as PrismaTypes.InputJsonValue | undefined;

export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const;
/** client_secret_jwt is left out on purpose: it needs the secret itself as an HMAC key, and only its digest is kept. */
export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const;
import { STANDARD_SCOPES } from '../../core/config.js';

export { isStandardScope, STANDARD_SCOPES } from '../../core/config.js';

const RedirectUri = z
  .string()
  .max(2048)
  .refine((value) => URL.canParse(value) && !new URL(value).hash, 'an absolute URI without a fragment');
const Scope = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/, 'RFC 6749 scope characters');
const JwkSet = z.object({
  keys: z
    .array(z.looseObject({ kty: z.string() }))
    .min(1)
    .max(10),
});

const clientFields = {
  name: z.string().trim().min(1).max(100),
  redirectUris: z.array(RedirectUri).max(20),
  postLogoutRedirectUris: z.array(RedirectUri).max(20),
  grantTypes: z.array(z.enum(GRANT_TYPES)).min(1),
  scopes: z.array(Scope).max(50),
  resources: z.array(z.url().max(2048)).max(20).meta({ description: 'Resources (RFC 8707) this client may ask tokens for' }),
  tokenEndpointAuthMethod: z.enum(AUTH_METHODS),
  firstParty: z.boolean().meta({ description: 'A first-party app skips the consent screen' }),
  introspection: z.boolean().meta({ description: 'May call the introspection endpoint' }),
  requireDpop: z.boolean().meta({ description: 'Every token it gets must be DPoP-bound (a stolen refresh token of a browser app is then useless)' }),
  backchannelLogoutUri: z.url().max(2048).nullable(),
  jwks: JwkSet.nullable().meta({ description: 'The public keys of a private_key_jwt client' }),
  jwksUri: z.url().max(2048).nullable(),
};

export const NewClientBody = z
  .object({
    name: clientFields.name,
    redirectUris: clientFields.redirectUris.default([]),
    postLogoutRedirectUris: clientFields.postLogoutRedirectUris.default([]),
    grantTypes: clientFields.grantTypes.default(['authorization_code', 'refresh_token']),
    scopes: clientFields.scopes.default([...STANDARD_SCOPES]),
    resources: clientFields.resources.default([]),
    tokenEndpointAuthMethod: clientFields.tokenEndpointAuthMethod.optional(),
    public: z.boolean().default(false).meta({ description: 'A browser or mobile app that cannot keep a secret (tokenEndpointAuthMethod none)' }),
    firstParty: clientFields.firstParty.default(false),
    introspection: clientFields.introspection.default(false),
    requireDpop: clientFields.requireDpop.default(false),
    backchannelLogoutUri: clientFields.backchannelLogoutUri.default(null),
    jwks: clientFields.jwks.default(null),
    jwksUri: clientFields.jwksUri.default(null),
  })
  .strict()
  .meta({ id: 'NewOAuthClient' });
export type NewClient = z.output<typeof NewClientBody>;

export const ClientChangeBody = z
  .object({ ...clientFields, rotateSecret: z.literal(true).meta({ description: 'Issue a new secret (shown once); the old one stops working' }) })
  .partial()
  .omit({ tokenEndpointAuthMethod: true })
  .strict()
  .refine((body) => Object.keys(body).length > 0, 'name at least one field to change')
  .meta({ id: 'OAuthClientChange' });
export type ClientChange = z.output<typeof ClientChangeBody>;

export const OAuthClientView = z
  .object({
    clientId: z.string(),
    clientSecret: z.string().optional().meta({ description: 'Only in the answer that created or rotated it' }),
    ...clientFields,
    public: z.boolean(),
    dynamic: z.boolean(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'OAuthClient' });
export type OAuthClientView = z.infer<typeof OAuthClientView>;

type ClientRow = NonNullable<Awaited<ReturnType<Prisma['oAuthClient']['findUnique']>>>;

/** Whether oidc-provider's client (or its metadata) is a first-party app, which never asks for consent. */
export function isFirstParty(client: object | undefined): boolean {
  return (client as Record<string, unknown> | undefined)?.authkit_first_party === true;
}

/** The digest kept instead of a secret: the secret is 256 random bits, so a plain SHA-256 cannot be reversed. */
export function secretDigest(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('base64url');
}

/** Whether `presented` is the secret behind `digest`, in time that does not depend on where they differ. */
export function secretMatches(digest: string, presented: string): boolean {
  return equalInConstantTime(digest, secretDigest(presented));
}

const usesSecret = (method: string) => method === 'client_secret_basic' || method === 'client_secret_post';

function isLoopbackOrCustomScheme(uri: string): boolean {
  const url = new URL(uri);
  if (url.protocol === 'http:' || url.protocol === 'https:') return url.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  return true;
}

/** The client as oidc-provider reads it (snake_case metadata); `client_secret` holds the digest (see oidc-provider.ts). */
export function toProviderMetadata(row: ClientRow): Record<string, unknown> {
  const authorizes = row.grantTypes.includes('authorization_code');
  return {
    client_id: row.id,
    client_name: row.name,
    ...(row.secretHash && { client_secret: row.secretHash }),
    redirect_uris: row.redirectUris,
    post_logout_redirect_uris: row.postLogoutRedirectUris,
    grant_types: row.grantTypes,
    response_types: authorizes ? ['code'] : [],
    // Never left out: oidc-provider reads a client without scope as one that may ask for any (see checked()).
    scope: row.scopes.join(' '),
    token_endpoint_auth_method: row.tokenEndpointAuthMethod,
    // Loopback and private-use redirects are native apps (RFC 8252); oidc-provider refuses them for web clients.
    application_type: row.redirectUris.length > 0 && row.redirectUris.every(isLoopbackOrCustomScheme) ? 'native' : 'web',
    ...(row.backchannelLogoutUri && { backchannel_logout_uri: row.backchannelLogoutUri, backchannel_logout_session_required: true }),
    ...(row.jwks !== null && { jwks: row.jwks }),
    ...(row.jwksUri && { jwks_uri: row.jwksUri }),
    dpop_bound_access_tokens: row.requireDpop,
    authkit_first_party: row.firstParty,
    authkit_introspection: row.introspection,
    authkit_resources: row.resources,
  };
}

function toView(row: ClientRow, clientSecret?: string): OAuthClientView {
  return {
    clientId: row.id,
    ...(clientSecret !== undefined && { clientSecret }),
    name: row.name,
    redirectUris: row.redirectUris,
    postLogoutRedirectUris: row.postLogoutRedirectUris,
    grantTypes: row.grantTypes as OAuthClientView['grantTypes'],
    scopes: row.scopes,
    resources: row.resources,
    tokenEndpointAuthMethod: row.tokenEndpointAuthMethod as OAuthClientView['tokenEndpointAuthMethod'],
    public: row.tokenEndpointAuthMethod === 'none',
    firstParty: row.firstParty,
    introspection: row.introspection,
    requireDpop: row.requireDpop,
    backchannelLogoutUri: row.backchannelLogoutUri,
    jwks: row.jwks as OAuthClientView['jwks'],
    jwksUri: row.jwksUri,
    dynamic: row.dynamic,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/** Checks metadata the way the provider will read it, so a client that could never work is refused when it is made. */
export type MetadataCheck = (metadata: Record<string, unknown>) => Promise<void>;

export interface OAuthClientsDeps {
  prisma: Prisma;
  clock: Clock;
  check: MetadataCheck;
}

/**
 * How long an instance reuses what it read of a client. Every token request names its client, so this saves a query
 * each; a change made on another instance (a rotated secret, a removed client) reaches this one within it.
 */
export const CLIENT_CACHE_MS = 10_000;

export class OAuthClients {
  private readonly cache = new Map<string, { metadata: Record<string, unknown> | undefined; until: number }>();

  constructor(private readonly deps: OAuthClientsDeps) {}

  async list(): Promise<OAuthClientView[]> {
    const rows = await this.deps.prisma.oAuthClient.findMany({ orderBy: { createdAt: 'asc' } });
    return rows.map((row) => toView(row));
  }

  async get(clientId: string): Promise<OAuthClientView> {
    return toView(await this.row(clientId));
  }

  /** The provider's view of a client, or undefined when there is none. */
  async metadata(clientId: string): Promise<Record<string, unknown> | undefined> {
    const now = this.deps.clock.now();
    const cached = this.cache.get(clientId);
    if (cached && cached.until > now) return cached.metadata;
    const row = await this.deps.prisma.oAuthClient.findUnique({ where: { id: clientId } });
    const metadata = row ? toProviderMetadata(row) : undefined;
    // Unknown ids are not remembered: a flood of made-up ids must not fill the map.
    if (metadata) {
      if (this.cache.size >= 10_000) this.cache.clear();
      this.cache.set(clientId, { metadata, until: now + CLIENT_CACHE_MS });
    } else this.cache.delete(clientId);
    return metadata;
  }

  /** Registers a client; a confidential one gets its secret here, in the only answer that ever shows it. */
  async create(input: NewClient): Promise<OAuthClientView> {
    const method = input.tokenEndpointAuthMethod ?? (input.public ? 'none' : 'client_secret_basic');
    if (input.public && method !== 'none') throw invalid('a public client authenticates with none', 'tokenEndpointAuthMethod');
    const secret = usesSecret(method) ? randomBytes(32).toString('base64url') : undefined;
    const now = new Date(this.deps.clock.now());
    const data = {
      id: randomBytes(16).toString('base64url'),
      name: input.name,
      secretHash: secret === undefined ? null : secretDigest(secret),
      tokenEndpointAuthMethod: method,
      redirectUris: input.redirectUris,
      postLogoutRedirectUris: input.postLogoutRedirectUris,
      grantTypes: input.grantTypes,
      scopes: input.scopes,
      resources: input.resources,
      firstParty: input.firstParty,
      introspection: input.introspection,
      requireDpop: input.requireDpop,
      backchannelLogoutUri: input.backchannelLogoutUri,
      jwks: asJson(input.jwks),
      jwksUri: input.jwksUri,
      dynamic: false,
      createdAt: now,
      updatedAt: now,
    };
    await this.checked({ ...data, jwks: input.jwks });
    const row = await this.deps.prisma.oAuthClient.create({ data });
    return toView(row, secret);
  }

  async change(clientId: string, change: ClientChange): Promise<OAuthClientView> {
    const row = await this.row(clientId);
    const { rotateSecret, ...fields } = change;
    if (rotateSecret && !usesSecret(row.tokenEndpointAuthMethod)) throw invalid('this client has no secret to rotate', 'rotateSecret');
    const secret = rotateSecret ? randomBytes(32).toString('base64url') : undefined;
    const next = { ...row, ...fields, ...(secret !== undefined && { secretHash: secretDigest(secret) }), updatedAt: new Date(this.deps.clock.now()) };
    await this.checked(next);
    const { id: _id, createdAt: _created, jwks, ...data } = next;
    const updated = await this.deps.prisma.oAuthClient.update({ where: { id: clientId }, data: { ...data, jwks: asJson(jwks) } });
    this.cache.delete(clientId);
    return toView(updated, secret);
  }

  async remove(clientId: string): Promise<void> {
    const { count } = await this.deps.prisma.oAuthClient.deleteMany({ where: { id: clientId } });
    this.cache.delete(clientId);
    if (count === 0) throw new AppError('oauth_client_not_found');
  }

  /**
   * Stores what dynamic client registration made (RFC 7591). The provider hands the secret in the clear; only its
   * digest is kept, and the provider is told the digest from then on.
   */
  async saveRegistered(clientId: string, metadata: Record<string, unknown>): Promise<void> {
    const text = (value: unknown) => (typeof value === 'string' ? value : null);
    const list = (value: unknown) => (Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : []);
    const method = text(metadata.token_endpoint_auth_method) ?? 'client_secret_basic';
    const secret = text(metadata.client_secret);
    const now = new Date(this.deps.clock.now());
    const data = {
      name: text(metadata.client_name) ?? clientId,
      secretHash: secret === null ? null : secretDigest(secret),
      tokenEndpointAuthMethod: method,
      redirectUris: list(metadata.redirect_uris),
      postLogoutRedirectUris: list(metadata.post_logout_redirect_uris),
      grantTypes: list(metadata.grant_types),
      scopes: text(metadata.scope)?.split(' ').filter(Boolean) ?? [...STANDARD_SCOPES],
      resources: [],
      requireDpop: metadata.dpop_bound_access_tokens === true,
      backchannelLogoutUri: text(metadata.backchannel_logout_uri),
      jwks: asJson(metadata.jwks),
      jwksUri: text(metadata.jwks_uri),
      dynamic: true,
      updatedAt: now,
    };
    try {
      await this.deps.prisma.oAuthClient.create({ data: { id: clientId, ...data, createdAt: now } });
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      await this.deps.prisma.oAuthClient.update({ where: { id: clientId }, data });
    }
  }

  private async row(clientId: string): Promise<ClientRow> {
    const row = await this.deps.prisma.oAuthClient.findUnique({ where: { id: clientId } });
    if (!row) throw new AppError('oauth_client_not_found');
    return row;
  }

  /** The rules a client must keep however it came to be (made or changed): one place, so a change cannot skip them. */
  private async checked(row: Omit<ClientRow, 'jwks'> & { jwks: unknown }): Promise<void> {
    // oidc-provider reads a client without scopes as one that may ask for any.
    if (row.scopes.length === 0) throw invalid('a client needs at least one scope (none would mean any)', 'scopes');
    if (row.tokenEndpointAuthMethod === 'none') {
      if (row.grantTypes.includes('client_credentials')) throw invalid('a public client cannot use client_credentials', 'grantTypes');
      if (row.introspection) throw invalid('a public client cannot introspect: anyone could, in its name', 'introspection');
    }
    if (row.tokenEndpointAuthMethod === 'private_key_jwt' && row.jwks === null && row.jwksUri === null)
      throw invalid('private_key_jwt needs jwks or jwksUri', 'jwks');
    try {
      await this.deps.check(toProviderMetadata(row as ClientRow));
    } catch (err) {
      if (err instanceof AppError) throw err;
      const description = (err as { error_description?: string }).error_description ?? 'the client metadata is not valid';
      throw invalid(description, 'client');
    }
  }
}

function invalid(message: string, path: string): AppError {
  return new AppError('oauth_client_invalid', { details: [{ path, message }] });
}
