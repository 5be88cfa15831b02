// The OpenID provider and OAuth 2.1 authorization server: panva's oidc-provider (OpenID Certified), configured over
// our accounts, sessions and key ring. Each place this configuration departs from its defaults says why.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import Provider, { type Configuration, errors, interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import type { Clock } from '../../core/clock.js';
import type { Prisma } from '../../core/db.js';
import type { Logger } from '../../core/logger.js';
import type { SigningKeys } from '../../kernel/keys/key-ring.js';
import type { Sessions } from '../../kernel/sessions/sessions.js';
import { adapterFactory, grantsOf } from './oidc-adapter.js';
import type { Adapter } from 'oidc-provider';
import { consentEntries, type OAuthConsents, resourcesOf } from './consents.js';
import type { OAuthStateStore } from './oauth-state-store.js';
import type { OrgAccess } from '../../kernel/authenticate/org-access.js';
import { isFirstParty, isStandardScope, type OAuthClients, secretMatches, STANDARD_SCOPES } from './oauth-clients.js';
import { errorPage, logoutPage, loggedOutPage } from './provider-pages.js';
import { ACCOUNT_FIELDS, isUuid, type LiveAccount, type SessionBridge } from './session-bridge.js';

/** Where the provider's endpoints live; discovery stays at the issuer's /.well-known, the JWKS where it always was. */
export const OAUTH_ROUTES = {
  authorization: '/oauth2/authorize',
  token: '/oauth2/token',
  userinfo: '/oauth2/userinfo',
  introspection: '/oauth2/introspect',
  revocation: '/oauth2/revoke',
  end_session: '/oauth2/logout',
  registration: '/oauth2/register',
  pushed_authorization_request: '/oauth2/par',
  jwks: '/.well-known/jwks.json',
} as const;

/** The interaction a browser is sent to: it hands over to the page (see interaction-routes.ts). */
export const interactionPath = (uid: string) => `/oauth2/interaction/${uid}`;

/** The result key that tells the session check which of our sessions a login stands on. */
export const BOUND_SESSION = 'authkit_session';

export interface OpenIdSettings {
  issuer: string;
  accessTokenTtlS: number;
  sessionTtlS: number;
  codeTtlS: number;
  idTokenTtlS: number;
  refreshReuseIntervalS: number;
  clockToleranceS: number;
  resources: { resource: string; scopes: string[] }[];
  registrationToken?: string;
  /** Outside production, back-channel logouts and client JWKS fetches may go to loopback addresses (local apps, tests). */
  allowLoopback: boolean;
}

export interface OpenIdDeps {
  settings: OpenIdSettings;
  signingKeys: SigningKeys;
  clients: OAuthClients;
  state: OAuthStateStore;
  bridge: SessionBridge;
  sessions: Sessions;
  prisma: Prisma;
  clock: Clock;
  logger: Logger;
  /** Signs the provider's cookies (derived from this service's own secret). */
  cookieKey: string;
  consents: OAuthConsents;
  /** Members' roles, for the organization scope's claims. */
  orgs: Pick<OrgAccess, 'standing'>;
}

/** What oidc-provider's client has for back-channel logout (its typings leave the method out). */
interface BackchannelClient {
  backchannelLogoutUri?: string;
  backchannelLogout(sub: string, sid: string): Promise<void>;
}

/** Adds what a request asks to a grant: OpenID Connect's scopes, and the API scopes for each resource it named. */
function grantAsked(
  grant: { addOIDCScope(scope: string): void; addResourceScope(resource: string, scope: string): void },
  scopes: string[],
  resources: string[],
): void {
  grant.addOIDCScope(scopes.filter(isStandardScope).join(' '));
  const apiScopes = scopes.filter((scope) => !isStandardScope(scope)).join(' ');
  for (const resource of resources) grant.addResourceScope(resource, apiScopes);
}

/** The assurance level a set of proofs reaches: two factors are aal2. */
export const acrOf = (amr: string[]) => (amr.includes('mfa') ? 'aal2' : 'aal1');

/**
 * The provider, rebuilt whenever the key ring starts signing with a new key (oidc-provider reads its keys once). The
 * state it keeps is all in the store, so a rebuilt provider carries on every flow the previous one began.
 */
export class OpenIdProvider {
  private current?: { kid: string; provider: Provider; serve: ReturnType<Provider['callback']> };
  /** The storage adapter of each model, made once (every rebuilt provider shares them). */
  private readonly adapters: (model: string) => Adapter;
  private readonly grants: Adapter;
  /** The issuer's host and scheme, which every request to the provider is given (see handle). */
  private readonly issuerHost: string;
  private readonly issuerScheme: string;

  constructor(private readonly deps: OpenIdDeps) {
    const { state, clients, clock, settings } = deps;
    const offeredScopes = new Set([...STANDARD_SCOPES, ...settings.resources.flatMap((entry) => entry.scopes)]);
    const factory = adapterFactory({ state, clients, clock, refreshReuseIntervalS: settings.refreshReuseIntervalS, offeredScopes });
    const made = new Map<string, Adapter>();
    this.adapters = (model) => made.get(model) ?? made.set(model, factory(model)).get(model)!;
    this.grants = this.adapters('Grant');
    const issuer = new URL(settings.issuer);
    this.issuerHost = issuer.host;
    this.issuerScheme = issuer.protocol.slice(0, -1);
    deps.bridge.attach(this);
    deps.consents.attach((userId, clientId) => this.revokeGrantsOf(userId, clientId));
  }

  /** Ends every grant the person gave the app: its refresh and access tokens stop working. */
  async revokeGrantsOf(userId: string, clientId: string): Promise<void> {
    for (const key of await this.deps.state.members(grantsOf(userId, clientId))) await this.grants.revokeByGrantId(key.slice('Grant:'.length));
  }

  /** The provider signing with the key ring's current key, and its request handler (Koa composes it once). */
  private get signing(): { provider: Provider; serve: ReturnType<Provider['callback']> } {
    const { kid } = this.deps.signingKeys.signing();
    if (this.current?.kid !== kid) {
      const provider = this.build();
      this.current = { kid, provider, serve: provider.callback() };
    }
    return this.current;
  }

  get provider(): Provider {
    return this.signing.provider;
  }

  /**
   * Serves one request to an endpoint the provider owns. Every URL it builds (discovery, redirects) comes from the
   * issuer, never from the Host or X-Forwarded-* headers a client sent.
   */
  handle(req: IncomingMessage, res: ServerResponse): void {
    req.headers.host = this.issuerHost;
    req.headers['x-forwarded-host'] = this.issuerHost;
    req.headers['x-forwarded-proto'] = this.issuerScheme;
    void this.signing.serve(req, res);
  }

  /** Checks client metadata as the provider will read it; throws oidc-provider's InvalidClientMetadata. */
  async validate(metadata: Record<string, unknown>): Promise<void> {
    await this.provider.Client.validate(metadata as never);
  }

  /** Ends a provider session: back-channel logout to each app it signed in to, and every grant it made revoked. */
  async endProviderSession(uid: string): Promise<void> {
    const provider = this.provider;
    const session = await provider.Session.findByUid(uid);
    if (!session) return;
    for (const [clientId, authorization] of Object.entries(session.authorizations ?? {})) {
      const client = (await provider.Client.find(clientId)) as (BackchannelClient & object) | undefined;
      if (client?.backchannelLogoutUri && session.accountId)
        await client.backchannelLogout(session.accountId, authorization.sid ?? '').catch((err: unknown) => {
          this.deps.logger.warn({ clientId, err: err instanceof Error ? err.message : String(err) }, 'a back-channel logout was not accepted');
        });
      if (authorization.grantId) await this.grants.revokeByGrantId(authorization.grantId);
    }
    await session.destroy();
  }

  private build(): Provider {
    const { settings, logger } = this.deps;
    const provider = new Provider(settings.issuer, this.configuration());
    // The scheme and host are always the issuer's (see handle), so the provider reads them from the headers set there.
    provider.proxy = true;
    // Secrets are kept as digests (oauth-clients.ts), so the comparison hashes what the client presents.
    provider.Client.prototype.compareClientSecret = function (this: { clientSecret?: string }, presented: string) {
      return Promise.resolve(this.clientSecret !== undefined && secretMatches(this.clientSecret, presented));
    };
    // oidc-provider looks a DPoP proof or client assertion id up and then saves it: two requests racing with one proof
    // would both pass. Spending the id in one atomic step refuses the second on every instance.
    const state = this.deps.state;
    const clock = this.deps.clock;
    Object.defineProperty(provider.ReplayDetection, 'unique', {
      value: async (iss: string, jti: string, exp: number) => {
        const spent = await state.spend(`replay:${iss}:${jti}`, Math.max(exp * 1000, clock.now() + 60_000));
        return spent.first;
      },
    });
    provider.on('server_error', (_ctx, err) => logger.error({ err: err.message }, 'the OpenID provider failed a request'));
    // Runs around oidc-provider's routes: after a confirmed logout, and before its answer leaves, our session ends too.
    // Only a logout oidc-provider carried out (its anti-forgery check passed) counts: it says so with end_session.success.
    const confirmed = new WeakSet<object>();
    provider.on('end_session.success', (ctx) => confirmed.add(ctx));
    provider.use(async (ctx, next) => {
      await next();
      if (confirmed.has(ctx)) await this.loggedOutAtProvider(ctx as KoaContextWithOIDC);
    });
    return provider;
  }

  /** "Sign out" at the provider (RP-initiated logout, confirmed) ends our session under it too: one session. */
  private async loggedOutAtProvider(ctx: KoaContextWithOIDC): Promise<void> {
    if (!ctx.oidc.params?.logout || !ctx.oidc.session) return;
    const bound = await this.deps.bridge.boundTo(ctx.oidc.session.uid);
    if (bound) await this.deps.sessions.revoke({ id: bound.sessionId }, 'oidc_logout');
  }

  private configuration(): Configuration {
    const { settings, bridge, prisma, signingKeys, orgs } = this.deps;
    const resources = new Map(settings.resources.map((entry) => [entry.resource, entry.scopes]));
    const key = signingKeys.signing();
    const policy = interactionPolicy.base();
    // A provider session stands on one of ours: once ours has ended (logout, revocation, a disabled account, a
    // password reset), signing in to an app asks for a sign-in again, and prompt=none answers login_required.
    policy.get('login')?.checks.add(
      new interactionPolicy.Check('session_ended', 'the sign-in behind this session has ended', 'login_required', async (ctx) => {
        const { session, result } = ctx.oidc;
        if (!session?.accountId) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
        const justBound = result?.[BOUND_SESSION] as { sessionId: string; userId: string } | undefined;
        if (justBound && justBound.userId === session.accountId) {
          await bridge.bind(session.uid, justBound);
          return interactionPolicy.Check.NO_NEED_TO_PROMPT;
        }
        return (await bridge.isLive(session.uid, session.accountId)) ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT;
      }),
    );

    return {
      adapter: this.adapters,
      // The current key signs; oidc-provider takes the first key that fits an algorithm.
      jwks: { keys: [{ ...(key.key.export({ format: 'jwk' }) as object), kid: key.kid, alg: 'ES256', use: 'sig' }] as never },
      findAccount: async (_ctx, sub, token) => {
        if (!isUuid(sub)) return undefined;
        // A token issued through a provider session lives only while our session under it does: one query says both.
        const sessionUid = (token as { sessionUid?: string } | undefined)?.sessionUid;
        const user: LiveAccount | null | undefined =
          sessionUid !== undefined ? await bridge.liveAccount(sessionUid, sub) : await prisma.user.findUnique({ where: { id: sub }, select: ACCOUNT_FIELDS });
        if (!user || user.disabledAt) return undefined;
        // The organization scope: the organization our session speaks for, with the member's role as it is now.
        const org = user.orgId ? await orgs.standing(user.orgId, user.id) : undefined;
        return {
          accountId: user.id,
          claims: () => ({
            ...(org && { org_id: org.orgId, org_role: org.role, org_permissions: org.permissions }),
            sub: user.id,
            preferred_username: user.username,
            name: user.username,
            updated_at: Math.floor(user.updatedAt.getTime() / 1000),
            email: user.email,
            email_verified: user.emailVerifiedAt !== null,
          }),
        };
      },
      // acr, amr and auth_time ride with the openid scope, so every ID token carries them (oidc-provider's default sends
      // them only when asked for through the claims parameter, max_age or acr_values).
      claims: {
        acr: null,
        auth_time: null,
        sid: null,
        iss: null,
        openid: ['sub', 'acr', 'amr', 'auth_time'],
        profile: ['name', 'preferred_username', 'updated_at'],
        email: ['email', 'email_verified'],
        organization: ['org_id', 'org_role', 'org_permissions'],
      },
      scopes: ['openid', 'offline_access', ...settings.resources.flatMap((entry) => entry.scopes)],
      acrValues: ['aal1', 'aal2'],
      // OAuth 2.1: the code flow only (no implicit or hybrid), PKCE with S256 for every client.
      responseTypes: ['code'],
      pkce: { required: () => true },
      clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
      clientDefaults: { grant_types: ['authorization_code'], response_types: ['code'], id_token_signed_response_alg: 'ES256' },
      // Explicit algorithm allowlists: our tokens are ES256 (the key ring); what clients sign may be any modern one.
      enabledJWA: {
        idTokenSigningAlgValues: ['ES256'],
        userinfoSigningAlgValues: ['ES256'],
        introspectionSigningAlgValues: ['ES256'],
        authorizationSigningAlgValues: ['ES256'],
        requestObjectSigningAlgValues: ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA'],
        clientAuthSigningAlgValues: ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA'],
        // A DPoP proof brings its own key: no RSA, whose huge exponents cost milliseconds to check (as our own DPoP).
        dPoPSigningAlgValues: ['ES256', 'ES384', 'EdDSA'],
      },
      extraClientMetadata: {
        properties: ['authkit_first_party', 'authkit_introspection', 'authkit_resources'],
        validator(_ctx, property, value) {
          const ok = property === 'authkit_resources' ? value === undefined || Array.isArray(value) : value === undefined || typeof value === 'boolean';
          if (!ok) throw new errors.InvalidClientMetadata(`${property} is not valid`);
        },
      },
      // An ID token carries the claims of every scope granted (profile, email, organization), as apps expect of it;
      // the default keeps them to UserInfo whenever an access token is issued too.
      conformIdTokenClaims: false,
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        // RFC 7662 for the clients an administrator allows, and only for them (the default lets any client ask).
        introspection: {
          enabled: true,
          allowedPolicy: (_ctx, client) =>
            Promise.resolve(client.clientAuthMethod !== 'none' && (client as unknown as Record<string, unknown>).authkit_introspection === true),
        },
        // RFC 7009 §2.1: a client revokes only tokens issued to it; another's token is answered 200 and left alone.
        revocation: { enabled: true, allowedPolicy: (_ctx, client, token) => Promise.resolve(token.clientId === client.clientId) },
        userinfo: { enabled: true },
        dPoP: { enabled: true },
        backchannelLogout: { enabled: true },
        rpInitiatedLogout: {
          enabled: true,
          logoutSource: (ctx, form) => {
            ctx.type = 'html';
            ctx.body = logoutPage(form, ctx.oidc.client?.clientName);
            return Promise.resolve();
          },
          postLogoutSuccessSource: (ctx) => {
            ctx.type = 'html';
            ctx.body = loggedOutPage(ctx.oidc.client?.clientName);
            return Promise.resolve();
          },
        },
        registration: {
          enabled: settings.registrationToken !== undefined,
          ...(settings.registrationToken !== undefined && { initialAccessToken: settings.registrationToken }),
          idFactory: () => randomBytes(16).toString('base64url'),
          secretFactory: () => randomBytes(32).toString('base64url'),
        },
        resourceIndicators: {
          enabled: true,
          // Without a resource, an access token is for UserInfo alone (opaque); with one, a JWT for that API.
          defaultResource: () => undefined,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx, resource, client) => {
            const scopes = resources.get(resource);
            const allowed = (client as unknown as Record<string, unknown>).authkit_resources;
            if (scopes === undefined || !Array.isArray(allowed) || !allowed.includes(resource)) throw new errors.InvalidTarget();
            return {
              scope: scopes.join(' '),
              audience: resource,
              accessTokenTTL: settings.accessTokenTtlS,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg: 'ES256' } },
            };
          },
        },
      },
      // Consent is remembered per person and app (consents.ts), so a new browser session does not ask again; a
      // first-party app never asks. prompt=consent still asks (oidc-provider's consent_prompt check).
      loadExistingGrant: async (ctx) => {
        const { oidc } = ctx;
        if (!oidc.client || !oidc.session?.accountId) return undefined;
        const grantId = (oidc.result?.consent as { grantId?: string } | undefined)?.grantId ?? oidc.session.grantIdFor(oidc.client.clientId);
        if (grantId) return oidc.provider.Grant.find(grantId);
        const requested = [...(oidc.requestParamScopes ?? [])];
        const asked = consentEntries(requested, resourcesOf(oidc.params as unknown as Record<string, unknown>));
        if (!isFirstParty(oidc.client) && !(await this.deps.consents.covers(oidc.session.accountId, oidc.client.clientId, asked))) return undefined;
        const grant = new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
        grantAsked(grant, requested, Object.keys(oidc.resourceServers ?? {}));
        await grant.save();
        return grant;
      },
      issueRefreshToken: (_ctx, client, code) => Promise.resolve(client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access')),
      rotateRefreshToken: true,
      interactions: { url: (_ctx, interaction) => Promise.resolve(interactionPath(interaction.uid)), policy },
      cookies: {
        keys: [this.deps.cookieKey],
        long: { signed: true, httpOnly: true, sameSite: 'lax' },
        short: { signed: true, httpOnly: true, sameSite: 'lax' },
      },
      ttl: {
        AccessToken: settings.accessTokenTtlS,
        ClientCredentials: settings.accessTokenTtlS,
        AuthorizationCode: settings.codeTtlS,
        IdToken: settings.idTokenTtlS,
        RefreshToken: settings.sessionTtlS,
        Grant: settings.sessionTtlS,
        Session: settings.sessionTtlS,
        Interaction: 600,
      },
      clockTolerance: settings.clockToleranceS,
      // oidc-provider refuses special-use addresses for what it fetches (SSRF protection); outside production a loopback
      // app is allowed, as for outside providers (ProviderClients).
      fetch: (url, options) => {
        const host = new URL(url).hostname;
        const loopback = host === '127.0.0.1' || host === 'localhost' || host === '[::1]';
        return globalThis.fetch(url, settings.allowLoopback && loopback ? { ...options, dispatcher: undefined } : options);
      },
      routes: OAUTH_ROUTES,
      renderError: (ctx, out) => {
        ctx.type = 'html';
        ctx.body = errorPage(out);
        return Promise.resolve();
      },
    };
  }
}

/** Whether a path is one the provider answers (its endpoints and the discovery document). */
export function isProviderPath(path: string): boolean {
  if (path === '/.well-known/openid-configuration') return true;
  if (!path.startsWith('/oauth2/') || path.startsWith('/oauth2/interaction/')) return false;
  return true;
}
