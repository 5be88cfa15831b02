// Signing in with an outside identity provider: the start, the callback, the code an app exchanges for tokens, and
// the identities an account has linked. Accounts are never linked by email alone (see `signInOrCreate`).
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import { equalInConstantTime } from '../../core/constant-time.js';
import { isUniqueViolation, type Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { SharedStore } from '../../core/shared-store.js';
import type { LoginResult, SignInFlow } from '../../kernel/authenticate/sign-in.js';
import { createSingleUseStore, type SingleUseStore } from '../../kernel/challenges/single-use.js';
import type { SecurityEvents } from '../../kernel/events/security-events.js';
import type { ClientContext } from '../../kernel/identity/client-context.js';
import { DEFAULT_ROLE } from '../../kernel/identity/roles.js';
import type { PasswordHasher } from '../../kernel/passwords/passwords.js';
import type { ProviderClients, ProviderProfile } from './provider-clients.js';
import type { ProviderDirectory } from './provider-directory.js';

/** How long a person may spend at the provider between the start and the callback. */
const FLOW_TTL_MS = 10 * 60_000;
/** How long the code handed back to an app (or the page) lives: it is exchanged at once. */
const CODE_TTL_MS = 60_000;

/** What the start stored for the callback to check, keyed by `state`. */
interface Flow {
  providerId: string;
  nonce: string;
  codeVerifier: string;
  redirectUri: string;
  /** SHA-256 of the browser's binding cookie: the callback must come from the browser that started. */
  binding: string;
  /** An app's allowlisted address; absent: back to the page. */
  redirectTo?: string;
  /** The app's PKCE challenge (S256) for the code it will exchange. */
  appChallenge?: string;
  /** Set when a signed-in person links the provider to their account, from this session. */
  link?: { userId: string; sessionId: string };
}

/** What a code stands for until it is exchanged: who signed in, how, and what proves the exchanger is the starter. */
interface PendingSignIn {
  userId: string;
  /** The identity that signed in: unlinked (or cleared by a claim of the address) before the exchange, no session. */
  identityId: string;
  providerId: string;
  amr: string[];
  appChallenge?: string;
  binding: string;
}

export interface StartRequest {
  redirectTo?: string;
  codeChallenge?: string;
  /** A signed-in person linking this provider to their account, and the session they do it from. */
  link?: { userId: string; sessionId: string };
}

export interface Started {
  /** The provider's authorization URL, where the browser goes next. */
  url: URL;
  /** The browser binding: set as a cookie, and sent back by the browser to the callback and the exchange. */
  binding: string;
  /** Apple answers with a cross-site POST (form_post): its binding cookie must be SameSite=None. */
  crossSitePost: boolean;
}

/** Where the callback sends the browser: an app's address with a code, or the page with a code or an error. */
export interface CallbackOutcome {
  location: string;
}

export interface FederationDeps {
  prisma: Prisma;
  directory: ProviderDirectory;
  clients: ProviderClients;
  signIn: SignInFlow;
  passwords: PasswordHasher;
  events: SecurityEvents;
  store: SharedStore;
  clock: Clock;
  logger: Logger;
  /** This service's public address (PUBLIC_URL): callbacks live under it, and the page is its root. */
  siteUrl: string;
  /** AUTH_REDIRECT_URLS: an app's redirect_to must start with one of them. */
  redirectUrls: string[];
}

export interface LinkedIdentity {
  id: string;
  provider: string;
  email: string | null;
  createdAt: string;
  lastUsedAt: string | null;
}

const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url');

/** Whether `url` starts with an allowlisted address, compared as parsed URLs (no prefix tricks such as `https://a.com.evil`). */
export function isAllowedRedirect(url: string, allowlist: string[]): boolean {
  if (!URL.canParse(url)) return false;
  const target = new URL(url);
  if (target.username || target.password || target.hash) return false;
  return allowlist.some((entry) => {
    const allowed = new URL(entry);
    // Scheme and host, not `origin`: every custom scheme (com.example.app:) has the origin "null".
    if (allowed.protocol !== target.protocol || allowed.host !== target.host) return false;
    const base = allowed.pathname.endsWith('/') ? allowed.pathname : `${allowed.pathname}/`;
    return target.pathname === allowed.pathname || target.pathname.startsWith(base);
  });
}

export class Federation {
  private readonly flows: SingleUseStore<Flow>;
  private readonly codes: SingleUseStore<PendingSignIn>;

  constructor(private readonly deps: FederationDeps) {
    this.flows = createSingleUseStore<Flow>(deps.store, deps.clock, { namespace: 'federation-flow', ttlMs: FLOW_TTL_MS });
    this.codes = createSingleUseStore<PendingSignIn>(deps.store, deps.clock, { namespace: 'federation-code', ttlMs: CODE_TTL_MS });
  }

  /** The page's own address, always allowed as redirect_to. */
  private get page(): string {
    return `${this.deps.siteUrl}/`;
  }

  /** The page, told why a sign-in did not happen. */
  pageWithError(reason: string): string {
    return this.back(undefined, { error: reason });
  }

  callbackUrl(providerId: string): string {
    return `${this.deps.siteUrl}/auth/providers/${providerId}/callback`;
  }

  async start(providerId: string, request: StartRequest): Promise<Started> {
    const provider = await this.deps.directory.get(providerId);
    if (request.redirectTo !== undefined && !isAllowedRedirect(request.redirectTo, [this.deps.siteUrl, ...this.deps.redirectUrls])) {
      throw new AppError('redirect_not_allowed');
    }
    const binding = randomBytes(32).toString('base64url');
    const flow: Flow = {
      providerId,
      nonce: randomBytes(24).toString('base64url'),
      codeVerifier: randomBytes(48).toString('base64url'),
      redirectUri: this.callbackUrl(providerId),
      binding: sha256(binding),
      redirectTo: request.redirectTo,
      appChallenge: request.codeChallenge,
      link: request.link,
    };
    const state = randomBytes(32).toString('base64url');
    const url = await this.deps.clients.authorizationUrl(provider, { state, ...flow });
    await this.flows.put(state, flow);
    return { url, binding, crossSitePost: provider.type === 'apple' };
  }

  /**
   * The provider sent the browser back. Every refusal ends at the page (or, once the flow is known to be this
   * browser's, at the app's address) with the reason, never with a token.
   */
  async callback(providerId: string, params: URLSearchParams, binding: string | undefined, client: ClientContext): Promise<CallbackOutcome> {
    const state = params.get('state');
    const flow = state ? await this.flows.take(state) : undefined;
    // Unknown, spent or expired state; a callback on another provider's path (mix-up); or another browser.
    if (!flow || flow.providerId !== providerId || binding === undefined || !equalInConstantTime(sha256(binding), flow.binding)) {
      return { location: this.back(undefined, { error: 'state_mismatch' }) };
    }
    try {
      if (params.has('error')) throw new AppError('provider_denied');
      const provider = await this.deps.directory.get(providerId);
      const callback = new URL(flow.redirectUri);
      for (const [name, value] of params) callback.searchParams.append(name, value);
      const profile = await this.deps.clients.complete(provider, callback, { state: state ?? '', ...flow });
      if (flow.link) {
        await this.link(flow.link, provider.name, providerId, profile, client);
        return { location: this.back(flow, { linked: providerId }) };
      }
      const { userId, identityId } = await this.signInOrCreate(providerId, profile, client);
      const amr = ['fed', ...(profile.multiFactor ? ['mfa'] : [])];
      const code = randomBytes(32).toString('base64url');
      await this.codes.put(sha256(code), { userId, identityId, providerId, amr, appChallenge: flow.appChallenge, binding: flow.binding });
      return { location: this.back(flow, { code }) };
    } catch (err) {
      if (!(err instanceof AppError)) this.deps.logger.error({ err, provider: providerId }, 'a provider sign-in failed');
      return { location: this.back(flow, { error: err instanceof AppError ? err.reason : 'internal_error' }) };
    }
  }

  /**
   * The code the callback handed back, for the usual answer of POST /login. An app proves it started the sign-in with
   * its PKCE verifier; the page without one, with the browser binding cookie.
   */
  async exchange(code: string, codeVerifier: string | undefined, binding: string | undefined, client: ClientContext): Promise<LoginResult> {
    const pending = await this.codes.take(sha256(code));
    if (!pending) throw new AppError('provider_code_invalid');
    const proven = pending.appChallenge
      ? codeVerifier !== undefined && equalInConstantTime(sha256(codeVerifier), pending.appChallenge)
      : binding !== undefined && equalInConstantTime(sha256(binding), pending.binding);
    if (!proven) throw new AppError('provider_code_invalid');
    if ((await this.deps.prisma.identity.count({ where: { id: pending.identityId, userId: pending.userId } })) === 0) {
      throw new AppError('provider_code_invalid');
    }
    return this.deps.signIn.loginWithIdentity(pending.userId, pending.amr, pending.providerId, client);
  }

  async identities(userId: string): Promise<LinkedIdentity[]> {
    const rows = await this.deps.prisma.identity.findMany({ where: { userId }, orderBy: { createdAt: 'asc' } });
    return rows.map((row) => ({
      id: row.id,
      provider: row.providerId,
      email: row.email,
      createdAt: row.createdAt.toISOString(),
      lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
    }));
  }

  /** Unlinks one of the account's identities, unless it is the last way in (no password, no passkey, no other identity). */
  async unlink(userId: string, identityId: string, client: ClientContext): Promise<void> {
    const removed = await this.deps.prisma.$transaction(async (tx) => {
      // One unlink at a time per account: two racing unlinks of its last two identities cannot both pass the count.
      await tx.$queryRaw`SELECT id FROM users WHERE id = ${userId}::uuid FOR UPDATE`;
      const identity = await tx.identity.findFirst({ where: { id: identityId, userId } });
      if (!identity) throw new AppError('identity_not_found');
      const user = await tx.user.findUnique({ where: { id: userId }, select: { hasPassword: true } });
      const others = (await tx.identity.count({ where: { userId } })) - 1 + (await tx.passkey.count({ where: { userId } }));
      if (!user?.hasPassword && others === 0) throw new AppError('last_sign_in_method');
      await tx.identity.delete({ where: { id: identity.id } });
      return identity;
    });
    this.deps.events.record({ type: 'identity.unlinked', actorId: userId, targetId: userId, details: { provider: removed.providerId } }, client);
  }

  /**
   * Links a verified provider identity to a signed-in account. The account's address must be proven (as for a passkey
   * or an API key: until then anyone may have registered it), and the session that started the link must still be
   * alive when the provider answers. An identity linked to another account is refused.
   */
  private async link(
    by: { userId: string; sessionId: string },
    providerName: string,
    providerId: string,
    profile: ProviderProfile,
    client: ClientContext,
  ): Promise<void> {
    const { prisma, clock } = this.deps;
    const now = new Date(clock.now());
    const [user, session] = await Promise.all([
      prisma.user.findUnique({ where: { id: by.userId }, select: { emailVerifiedAt: true, disabledAt: true } }),
      prisma.session.findUnique({ where: { id: by.sessionId }, select: { userId: true, revokedAt: true, expiresAt: true } }),
    ]);
    if (!user || user.disabledAt) throw new AppError('account_unavailable');
    if (!user.emailVerifiedAt) throw new AppError('email_not_verified_for_enrolment');
    if (!session || session.userId !== by.userId || session.revokedAt || session.expiresAt <= now) throw new AppError('session_revoked');
    const key = { providerId_issuer_subject: { providerId, issuer: profile.issuer, subject: profile.subject } };
    const existing = await prisma.identity.findUnique({ where: key });
    if (existing && existing.userId !== by.userId) throw new AppError('identity_already_linked');
    if (existing) return;
    try {
      await prisma.identity.create({
        data: {
          userId: by.userId,
          providerId,
          issuer: profile.issuer,
          subject: profile.subject,
          email: profile.email ?? null,
          emailVerified: profile.emailVerified,
          createdAt: now,
        },
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('identity_already_linked');
      throw err;
    }
    const details = { provider: providerId, providerName, providerEmail: profile.email ?? '' };
    this.deps.events.record({ type: 'identity.linked', actorId: by.userId, targetId: by.userId, details }, client);
  }

  /**
   * The account this identity is linked to; or, for an identity new here, a new account, if the provider vouches for
   * an address no account has. An address that has an account is never linked by itself (whoever controls the
   * provider account, or registered the address here first, would get the other's account): the person signs in
   * and links from their settings.
   */
  private async signInOrCreate(providerId: string, profile: ProviderProfile, client: ClientContext): Promise<{ userId: string; identityId: string }> {
    const { prisma, clock } = this.deps;
    const key = { providerId_issuer_subject: { providerId, issuer: profile.issuer, subject: profile.subject } };
    const linked = await prisma.identity.findUnique({ where: key });
    const now = new Date(clock.now());
    if (linked) {
      await prisma.identity.update({
        where: { id: linked.id },
        data: { lastUsedAt: now, email: profile.email ?? linked.email, emailVerified: profile.emailVerified },
      });
      return { userId: linked.userId, identityId: linked.id };
    }
    if (!profile.email || !profile.emailVerified) throw new AppError('provider_email_unverified');
    if ((await prisma.user.count({ where: { email: profile.email } })) > 0) throw new AppError('link_requires_sign_in');
    // The account has no password until its owner sets one through a reset.
    const passwordHash = await this.deps.passwords.hashOfNobodysPassword();
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const username = usernameFrom(profile, attempt);
      try {
        const user = await prisma.user.create({
          data: {
            username,
            usernameKey: username.toLowerCase(),
            email: profile.email,
            passwordHash,
            hasPassword: false,
            emailVerifiedAt: now,
            createdAt: now,
            updatedAt: now,
            roles: { create: { roleName: DEFAULT_ROLE } },
            identities: {
              create: {
                providerId,
                issuer: profile.issuer,
                subject: profile.subject,
                email: profile.email,
                emailVerified: true,
                createdAt: now,
                lastUsedAt: now,
              },
            },
          },
          include: { identities: true },
        });
        this.deps.events.record({ type: 'user.registered', actorId: user.id, targetId: user.id, details: { provider: providerId } }, client);
        return { userId: user.id, identityId: user.identities[0]?.id ?? '' };
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        // The same identity finished at once in another request: that one made the account.
        const raced = await prisma.identity.findUnique({ where: key });
        if (raced) return { userId: raced.userId, identityId: raced.id };
        if ((await prisma.user.count({ where: { email: profile.email } })) > 0) throw new AppError('link_requires_sign_in');
        // Otherwise the username was taken: try another.
      }
    }
    throw new AppError('username_taken');
  }

  /** Where the browser goes: the app's address with query parameters, or the page with them in the fragment. */
  private back(flow: Flow | undefined, values: Record<string, string>): string {
    const parameters = new URLSearchParams(values);
    if (flow?.redirectTo) {
      const target = new URL(flow.redirectTo);
      for (const [name, value] of parameters) target.searchParams.set(name, value);
      return target.href;
    }
    const prefixed = new URLSearchParams([...parameters].map(([name, value]): [string, string] => [`provider-${name}`, value]));
    return `${this.page}#${prefixed.toString()}`;
  }
}

/** A username from the provider's handle (letters, digits, `_.-`, 3 to 32), with a suffix after a clash. */
function usernameFrom(profile: ProviderProfile, attempt: number): string {
  const base = (profile.handle ?? profile.email?.split('@')[0] ?? 'user').replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 24) || 'user';
  const padded = base.length < 3 ? `${base}${'_'.repeat(3 - base.length)}` : base;
  return attempt === 0 ? padded : `${padded}-${randomUUID().slice(0, 6)}`;
}
