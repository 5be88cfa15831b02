// Which outside identity providers are enabled: those of the environment (AUTH_PROVIDERS) and those administrators
// add at run time (the identity_providers table, client secrets sealed with the identity-providers purpose key).
import type { Clock } from '../../core/clock.js';
import { defaultProviderName, PROVIDER_TYPES, type ProviderSettings, type ProviderType } from '../../core/config.js';
import { isUniqueViolation, type Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import type { Sealer } from '../../core/secret-box.js';

/** How long an instance trusts its copy of the table: a change reaches every instance within this. */
export const DIRECTORY_REFRESH_MS = 30_000;

/** A provider as administrators see it: never its secret. */
export interface ProviderView {
  id: string;
  type: ProviderType;
  name: string;
  clientId: string;
  issuer: string | null;
  scopes: string[];
  /** false: its addresses never make an account (its identities can only be linked). */
  trustEmail: boolean;
  enabled: boolean;
  /** environment: read-only here (change AUTH_PROVIDER_<ID>_* and restart); api: added through this API. */
  source: 'environment' | 'api';
  hasSecret: boolean;
}

export interface NewProvider {
  id: string;
  type: ProviderType;
  name?: string;
  clientId: string;
  clientSecret?: string;
  issuer?: string;
  scopes?: string[];
  trustEmail?: boolean;
  enabled?: boolean;
}

export type ProviderChange = Partial<Omit<NewProvider, 'id' | 'type'>>;

type Row = NonNullable<Awaited<ReturnType<Prisma['identityProvider']['findUnique']>>>;

export function isProviderType(value: string): value is ProviderType {
  return (PROVIDER_TYPES as readonly string[]).includes(value);
}

export class ProviderDirectory {
  /** The enabled providers as last read, secrets opened once per read (not once per request). */
  private cached?: { providers: ProviderSettings[]; loadedAt: number };
  private loading?: Promise<ProviderSettings[]>;

  constructor(
    private readonly deps: {
      prisma: Prisma;
      clock: Clock;
      /** Seals client secrets at rest (the identity-providers purpose key). */
      box: Sealer;
      fromEnvironment: ProviderSettings[];
    },
  ) {}

  /** The enabled providers, environment first, as the sign-in page lists them. */
  async enabled(): Promise<ProviderSettings[]> {
    const now = this.deps.clock.now();
    if (this.cached && now - this.cached.loadedAt < DIRECTORY_REFRESH_MS) return this.cached.providers;
    this.loading ??= this.deps.prisma.identityProvider
      .findMany({ where: { enabled: true }, orderBy: { createdAt: 'asc' } })
      .then((rows) => {
        const providers = [...this.deps.fromEnvironment, ...rows.map((row) => this.settingsOf(row))];
        this.cached = { providers, loadedAt: now };
        return providers;
      })
      .finally(() => (this.loading = undefined));
    return this.loading;
  }

  /** One enabled provider, or 404 provider_not_found. */
  async get(id: string): Promise<ProviderSettings> {
    const provider = (await this.enabled()).find((each) => each.id === id);
    if (!provider) throw new AppError('provider_not_found');
    return provider;
  }

  async list(): Promise<ProviderView[]> {
    const fromEnvironment = this.deps.fromEnvironment.map((provider): ProviderView => ({
      id: provider.id,
      type: provider.type,
      name: provider.name,
      clientId: provider.clientId,
      issuer: provider.issuer ?? null,
      scopes: provider.scopes ?? [],
      trustEmail: provider.trustEmail !== false,
      enabled: true,
      source: 'environment',
      hasSecret: provider.clientSecret !== undefined || provider.apple !== undefined,
    }));
    const rows = await this.deps.prisma.identityProvider.findMany({ orderBy: { createdAt: 'asc' } });
    return [...fromEnvironment, ...rows.map((row) => viewOf(row))];
  }

  async add(input: NewProvider): Promise<ProviderView> {
    if (this.deps.fromEnvironment.some((provider) => provider.id === input.id)) throw new AppError('provider_id_taken');
    requireIssuer(input.type, input.issuer);
    const now = new Date(this.deps.clock.now());
    try {
      const row = await this.deps.prisma.identityProvider.create({
        data: {
          id: input.id,
          type: input.type,
          name: input.name ?? defaultProviderName(input.type, input.id),
          clientId: input.clientId,
          secretSealed: input.clientSecret === undefined ? null : this.deps.box.seal(input.clientSecret),
          issuer: input.issuer ?? null,
          scopes: input.scopes ?? [],
          trustEmail: input.trustEmail ?? true,
          enabled: input.enabled ?? true,
          createdAt: now,
          updatedAt: now,
        },
      });
      this.cached = undefined;
      return viewOf(row);
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('provider_id_taken');
      throw err;
    }
  }

  async change(id: string, change: ProviderChange): Promise<ProviderView> {
    const current = await this.stored(id);
    requireIssuer(current.type as ProviderType, change.issuer ?? current.issuer ?? undefined);
    const row = await this.deps.prisma.identityProvider.update({
      where: { id },
      data: {
        ...(change.name !== undefined && { name: change.name }),
        ...(change.clientId !== undefined && { clientId: change.clientId }),
        ...(change.clientSecret !== undefined && { secretSealed: this.deps.box.seal(change.clientSecret) }),
        ...(change.issuer !== undefined && { issuer: change.issuer }),
        ...(change.scopes !== undefined && { scopes: change.scopes }),
        ...(change.trustEmail !== undefined && { trustEmail: change.trustEmail }),
        ...(change.enabled !== undefined && { enabled: change.enabled }),
        updatedAt: new Date(this.deps.clock.now()),
      },
    });
    this.cached = undefined;
    return viewOf(row);
  }

  /** Removes a provider added through the API; the identities linked through it stay, unusable until it returns. */
  async remove(id: string): Promise<void> {
    await this.stored(id);
    await this.deps.prisma.identityProvider.delete({ where: { id } });
    this.cached = undefined;
  }

  private async stored(id: string): Promise<Row> {
    if (this.deps.fromEnvironment.some((provider) => provider.id === id)) throw new AppError('provider_configured_in_environment');
    const row = await this.deps.prisma.identityProvider.findUnique({ where: { id } });
    if (!row) throw new AppError('provider_not_found');
    return row;
  }

  private settingsOf(row: Row): ProviderSettings {
    return {
      id: row.id,
      type: row.type as ProviderType,
      name: row.name,
      clientId: row.clientId,
      clientSecret: row.secretSealed === null ? undefined : this.deps.box.open(row.secretSealed),
      issuer: row.issuer ?? undefined,
      scopes: row.scopes.length > 0 ? row.scopes : undefined,
      trustEmail: row.trustEmail,
    };
  }
}

function requireIssuer(type: ProviderType, issuer: string | undefined): void {
  if (type === 'oidc' && !issuer)
    throw new AppError('validation_failed', { details: [{ path: 'issuer', message: 'required for an OpenID Connect provider' }] });
}

function viewOf(row: Row): ProviderView {
  return {
    id: row.id,
    type: row.type as ProviderType,
    name: row.name,
    clientId: row.clientId,
    issuer: row.issuer,
    scopes: row.scopes,
    trustEmail: row.trustEmail,
    enabled: row.enabled,
    source: 'api',
    hasSecret: row.secretSealed !== null,
  };
}
