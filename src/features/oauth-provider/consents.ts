// What a person allowed each app, remembered across sign-ins (a new browser session asks no again), listed and taken
// back from the account: taking it back ends the app's grants, so its refresh tokens stop working at once.
import type { Clock } from '../../core/clock.js';
import type { Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import { isStandardScope } from './oauth-clients.js';

/**
 * What a request asks, as consent is kept: a standard scope by its name, an API's scope with the API it is for
 * (`https://api.example.com#orders:read`), so allowing one API's scope never allows another API's of the same name.
 */
export function consentEntries(scopes: string[], resources: string[]): string[] {
  return scopes.flatMap((scope) => (isStandardScope(scope) || resources.length === 0 ? [scope] : resources.map((resource) => `${resource}#${scope}`)));
}

/** The resource parameter of a request, however many it named. */
export function resourcesOf(params: Record<string, unknown>): string[] {
  const resource = params.resource;
  return Array.isArray(resource) ? resource.filter((each): each is string => typeof each === 'string') : typeof resource === 'string' ? [resource] : [];
}

export interface ConnectedApp {
  clientId: string;
  name: string;
  scopes: string[];
  grantedAt: string;
  updatedAt: string;
}

/** Ends every grant a person gave an app (see oidc-adapter.ts, which indexes grants by person and app). */
export type GrantRevoker = (userId: string, clientId: string) => Promise<void>;

export class OAuthConsents {
  private revokeGrants: GrantRevoker = () => Promise.resolve();

  constructor(
    private readonly prisma: Prisma,
    private readonly clock: Clock,
  ) {}

  attach(revokeGrants: GrantRevoker): void {
    this.revokeGrants = revokeGrants;
  }

  /** Whether the person allowed the app every one of `scopes` (see consentEntries) before. */
  async covers(userId: string, clientId: string, scopes: string[]): Promise<boolean> {
    const consent = await this.prisma.oAuthConsent.findUnique({ where: { userId_clientId: { userId, clientId } }, select: { scopes: true } });
    return consent !== null && scopes.every((scope) => consent.scopes.includes(scope));
  }

  /** Adds `scopes` to what the person allowed the app. */
  async remember(userId: string, clientId: string, scopes: string[]): Promise<void> {
    const now = new Date(this.clock.now());
    await this.prisma.$transaction(async (tx) => {
      const before = await tx.oAuthConsent.findUnique({ where: { userId_clientId: { userId, clientId } }, select: { scopes: true } });
      const union = [...new Set([...(before?.scopes ?? []), ...scopes])];
      await tx.oAuthConsent.upsert({
        where: { userId_clientId: { userId, clientId } },
        create: { userId, clientId, scopes: union, createdAt: now, updatedAt: now },
        update: { scopes: union, updatedAt: now },
      });
    });
  }

  async list(userId: string): Promise<ConnectedApp[]> {
    const consents = await this.prisma.oAuthConsent.findMany({
      where: { userId },
      include: { client: { select: { name: true } } },
      orderBy: { updatedAt: 'desc' },
    });
    return consents.map((consent) => ({
      clientId: consent.clientId,
      name: consent.client.name,
      scopes: consent.scopes,
      grantedAt: consent.createdAt.toISOString(),
      updatedAt: consent.updatedAt.toISOString(),
    }));
  }

  /** Takes back what the person allowed the app, and ends its grants: the app must ask again. */
  async revoke(userId: string, clientId: string): Promise<void> {
    const { count } = await this.prisma.oAuthConsent.deleteMany({ where: { userId, clientId } });
    if (count === 0) throw new AppError('oauth_consent_not_found');
    await this.revokeGrants(userId, clientId);
  }
}
