// Talks to outside identity providers through openid-client (an OpenID Certified relying party): discovery, the
// authorization URL, and the code exchange with every check (state, PKCE, nonce, issuer, ID token signature).
import jwt from 'jsonwebtoken';
import * as oidc from 'openid-client';
import { z } from 'zod';
import type { Clock } from '../../core/clock.js';
import type { ProviderSettings, ProviderType } from '../../core/config.js';
import { AppError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';

/** What a provider's verified answer says about the person. */
export interface ProviderProfile {
  /** Who vouched for `subject`: the OpenID issuer, or GitHub's API. */
  issuer: string;
  /** Stable at the provider (the ID token's sub; GitHub's numeric id). */
  subject: string;
  email?: string;
  /** Whether the provider vouches for `email`. */
  emailVerified: boolean;
  name?: string;
  /** A handle to start the username from (preferred_username, GitHub's login, the address's local part). */
  handle?: string;
  /** The provider said the person used more than one factor there (its ID token's amr holds mfa). */
  multiFactor: boolean;
}

/** What the callback must check, as stored when the sign-in started. */
export interface FlowChecks {
  state: string;
  nonce: string;
  codeVerifier: string;
  redirectUri: string;
}

/** The parts of GitHub's answers we read (docs.github.com, REST API: users, emails). */
const GithubUser = z.object({ id: z.number().int().positive(), login: z.string().min(1).max(100), name: z.string().max(256).nullable().optional() });
const GithubEmails = z.array(z.object({ email: z.email().max(254), primary: z.boolean(), verified: z.boolean() })).max(100);

const GOOGLE_ISSUER = 'https://accounts.google.com';
const APPLE_ISSUER = 'https://appleid.apple.com';
const GITHUB = {
  authorizationUrl: 'https://github.com/login/oauth/authorize',
  tokenUrl: 'https://github.com/login/oauth/access_token',
  apiUrl: 'https://api.github.com',
};

const DEFAULT_SCOPES: Record<ProviderType, string[]> = {
  oidc: ['openid', 'email', 'profile'],
  google: ['openid', 'email', 'profile'],
  microsoft: ['openid', 'email', 'profile'],
  apple: ['openid', 'email', 'name'],
  github: ['read:user', 'user:email'],
};

/**
 * Whether an ID token vouches for its `email`. OpenID Connect says so with `email_verified`. Microsoft's `email` is
 * whatever a tenant's administrator typed, and comes without `email_verified`: only its optional claim `xms_edov`
 * (the email domain's owner is verified) makes it trustworthy, else anyone's tenant could claim anyone's address.
 */
export function vouchesForEmail(type: ProviderType, claims: Record<string, unknown>): boolean {
  const yes = (value: unknown) => value === true || value === 'true' || value === 1 || value === '1';
  if (type === 'microsoft') return yes(claims.xms_edov);
  return yes(claims.email_verified);
}

/** Where discovery starts for a preset, unless the settings override it. */
function issuerOf(provider: ProviderSettings): string | undefined {
  if (provider.issuer) return provider.issuer;
  if (provider.type === 'google') return GOOGLE_ISSUER;
  if (provider.type === 'apple') return APPLE_ISSUER;
  if (provider.type === 'microsoft') return `https://login.microsoftonline.com/${provider.tenant ?? 'common'}/v2.0`;
  return undefined;
}

function unavailable(cause: unknown): AppError {
  return new AppError('provider_unavailable', { cause, headers: { 'Retry-After': '5' } });
}

/** Errors the provider's answer earns: its own refusal, our checks failing, or no answer at all. */
function judged(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof oidc.AuthorizationResponseError) return new AppError('provider_denied', { cause: err });
  if (err instanceof oidc.ResponseBodyError) return new AppError('provider_response_invalid', { cause: err });
  if (err instanceof oidc.ClientError) {
    // openid-client names a failed request (timeout, refused connection) OAUTH_* / a fetch TypeError as its cause.
    if (err.cause instanceof TypeError || (err.cause as { name?: string } | undefined)?.name === 'TimeoutError') return unavailable(err);
    return new AppError('provider_response_invalid', { cause: err });
  }
  if (err instanceof TypeError || (err as { name?: string } | undefined)?.name === 'TimeoutError') return unavailable(err);
  return new AppError('provider_response_invalid', { cause: err });
}

/** Providers from the environment (or allowed to be plain http: loopback issuers in tests and development). */
export interface ClientOptions {
  timeoutMs: number;
  /** http:// issuers on loopback are accepted (never in production). */
  allowLoopbackHttp: boolean;
}

export class ProviderClients {
  private readonly configurations = new Map<string, Promise<oidc.Configuration>>();

  constructor(
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly options: ClientOptions,
  ) {}

  scopes(provider: ProviderSettings): string[] {
    return provider.scopes && provider.scopes.length > 0 ? provider.scopes : DEFAULT_SCOPES[provider.type];
  }

  async authorizationUrl(provider: ProviderSettings, checks: FlowChecks): Promise<URL> {
    const config = await this.configuration(provider);
    const parameters: Record<string, string> = {
      redirect_uri: checks.redirectUri,
      scope: this.scopes(provider).join(' '),
      state: checks.state,
      code_challenge: await oidc.calculatePKCECodeChallenge(checks.codeVerifier),
      code_challenge_method: 'S256',
    };
    if (provider.type !== 'github') parameters.nonce = checks.nonce;
    // Apple answers with a POST to the callback (form_post) whenever it is asked for the name or email.
    if (provider.type === 'apple') parameters.response_mode = 'form_post';
    return oidc.buildAuthorizationUrl(config, parameters);
  }

  /** Exchanges the code the callback carried and returns who the verified answer names. */
  async complete(provider: ProviderSettings, callback: URL | Request, checks: FlowChecks): Promise<ProviderProfile> {
    const config = await this.configuration(provider);
    try {
      const tokens = await oidc.authorizationCodeGrant(config, callback, {
        expectedState: checks.state,
        pkceCodeVerifier: checks.codeVerifier,
        ...(provider.type === 'github' ? {} : { expectedNonce: checks.nonce, idTokenExpected: true }),
      });
      if (provider.type === 'github') return await this.githubProfile(provider, tokens.access_token);
      const claims = tokens.claims();
      const issuer = config.serverMetadata().issuer;
      if (!claims) throw new AppError('provider_response_invalid');
      const email = typeof claims.email === 'string' ? claims.email.toLowerCase() : undefined;
      const verified = provider.trustEmail !== false && vouchesForEmail(provider.type, claims);
      const handle = typeof claims.preferred_username === 'string' ? claims.preferred_username : email?.split('@')[0];
      return {
        issuer,
        subject: claims.sub,
        email,
        emailVerified: email !== undefined && verified,
        name: typeof claims.name === 'string' ? claims.name : undefined,
        handle,
        multiFactor: Array.isArray(claims.amr) && claims.amr.includes('mfa'),
      };
    } catch (err) {
      const refused = judged(err);
      this.logger.warn(
        { provider: provider.id, reason: refused.reason, err: err instanceof Error ? err.message : String(err) },
        'a provider sign-in was refused',
      );
      throw refused;
    }
  }

  /** GitHub has no ID token: the user and their verified primary address come from its REST API. */
  private async githubProfile(provider: ProviderSettings, accessToken: string): Promise<ProviderProfile> {
    const api = (provider.apiUrl ?? GITHUB.apiUrl).replace(/\/+$/, '');
    const get = async <T>(path: string, shape: z.ZodType<T>): Promise<T> => {
      let res: Response;
      try {
        res = await fetch(`${api}${path}`, {
          headers: { Authorization: `Bearer ${accessToken}`, Accept: 'application/vnd.github+json', 'User-Agent': 'authkit' },
          signal: AbortSignal.timeout(this.options.timeoutMs),
        });
      } catch (err) {
        throw unavailable(err); // no answer in time, or none at all
      }
      const parsed = res.ok ? shape.safeParse(await res.json().catch(() => undefined)) : undefined;
      if (!parsed?.success) throw new AppError('provider_response_invalid');
      return parsed.data;
    };
    const user = await get('/user', GithubUser);
    const emails = await get('/user/emails', GithubEmails);
    const primary = provider.trustEmail === false ? undefined : emails.find((entry) => entry.primary && entry.verified);
    return {
      issuer: api,
      subject: String(user.id),
      email: primary?.email.toLowerCase(),
      emailVerified: primary !== undefined,
      name: user.name ?? undefined,
      handle: user.login,
      multiFactor: false,
    };
  }

  private configuration(provider: ProviderSettings): Promise<oidc.Configuration> {
    const key = `${provider.id}\n${provider.issuer ?? ''}\n${provider.clientId}\n${provider.clientSecret ?? ''}`;
    let config = this.configurations.get(key);
    if (!config) {
      config = this.discover(provider);
      // A failed discovery is not remembered: the next sign-in asks again.
      config.catch(() => this.configurations.delete(key));
      this.configurations.set(key, config);
    }
    return config;
  }

  private async discover(provider: ProviderSettings): Promise<oidc.Configuration> {
    // Apple's secret is signed afresh for every token request: it lives five minutes.
    const auth: oidc.ClientAuth =
      provider.type === 'apple'
        ? (_as, client, body) => {
            body.set('client_id', client.client_id);
            body.set('client_secret', this.appleClientSecret(provider));
          }
        : oidc.ClientSecretPost(provider.clientSecret);
    const loopback = (url: string) => ['127.0.0.1', 'localhost', '[::1]'].includes(new URL(url).hostname);
    let config: oidc.Configuration;
    if (provider.type === 'github') {
      const server: oidc.ServerMetadata = {
        issuer: 'https://github.com',
        authorization_endpoint: provider.authorizationUrl ?? GITHUB.authorizationUrl,
        token_endpoint: provider.tokenUrl ?? GITHUB.tokenUrl,
      };
      config = new oidc.Configuration(server, provider.clientId, undefined, auth);
      if (this.options.allowLoopbackHttp && loopback(server.token_endpoint ?? '')) oidc.allowInsecureRequests(config);
    } else {
      const issuer = issuerOf(provider);
      if (!issuer) throw new AppError('provider_not_found');
      const insecure = this.options.allowLoopbackHttp && issuer.startsWith('http://') && loopback(issuer);
      try {
        config = await oidc.discovery(new URL(issuer), provider.clientId, undefined, auth, {
          timeout: Math.ceil(this.options.timeoutMs / 1000),
          ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
        });
      } catch (err) {
        this.logger.warn({ provider: provider.id, err: err instanceof Error ? err.message : String(err) }, 'could not discover an identity provider');
        throw unavailable(err);
      }
    }
    config.timeout = Math.ceil(this.options.timeoutMs / 1000);
    // The ID token's signature is checked against the provider's JWKS, with the algorithm the provider announced,
    // even though it came straight from the token endpoint (openid-client would otherwise trust TLS for it).
    if (provider.type !== 'github') oidc.enableNonRepudiationChecks(config);
    return config;
  }

  /** Apple's client secret: a short-lived ES256 JWT signed with the team's key (Sign in with Apple, "Creating a client secret"). */
  private appleClientSecret(provider: ProviderSettings): string {
    const apple = provider.apple;
    if (!apple) throw new AppError('provider_not_found');
    const now = Math.floor(this.clock.now() / 1000);
    return jwt.sign({ iss: apple.teamId, iat: now, exp: now + 300, aud: APPLE_ISSUER, sub: provider.clientId }, apple.privateKey, {
      algorithm: 'ES256',
      keyid: apple.keyId,
    });
  }
}
