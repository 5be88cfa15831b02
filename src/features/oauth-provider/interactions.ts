// The provider's login and consent, finished by the browser page: what an app asks for, and the signed-in person's
// answer, bound to the browser that started the request (oidc-provider's interaction cookie) and to our session.
import { createHmac } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request } from 'express';
import { equalInConstantTime } from '../../core/constant-time.js';
import { readCookie } from '../../kernel/throttle/login-throttle.js';
import type { Clock } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';
import type { AuthContext } from '../../kernel/authenticate/authenticate.js';
import { isFirstParty, isStandardScope } from './oauth-clients.js';
import type { OAuthStateStore } from './oauth-state-store.js';
import { consentEntries, type OAuthConsents, resourcesOf } from './consents.js';
import { acrOf, BOUND_SESSION, type OpenIdProvider } from './oidc-provider.js';

export interface InteractionView {
  uid: string;
  /** login: the person must be signed in here (again, with `reasons` login_prompt or max_age); consent: an app asks. */
  prompt: 'login' | 'consent';
  reasons: string[];
  client: { clientId: string; name: string };
  scopes: string[];
  resources: string[];
  /** Whether the person is asked before the app gets what it asks for (never for a first-party app). */
  consentRequired: boolean;
  loginHint: string | null;
}

type Interaction = Awaited<ReturnType<OpenIdProvider['provider']['interactionDetails']>>;

/** The prompt values a request named (OpenID Connect's space-separated prompt parameter). */
function promptsOf(params: Record<string, unknown>): string[] {
  return typeof params.prompt === 'string' ? params.prompt.split(' ').filter(Boolean) : [];
}

/** What an interaction's request asks, as consent is kept. */
function asked(interaction: { params: unknown }): string[] {
  const params = interaction.params as Record<string, unknown>;
  return consentEntries(requestedScopes(params), resourcesOf(params));
}

export const INTERACTION_TTL_MS = 10 * 60_000;
/** The cookie that marks the browser that answered an interaction (path-scoped to that interaction's resume). */
export const ANSWER_COOKIE = 'authkit_oauth_answer';
const RESUME_PATH = /^\/oauth2\/authorize\/([\w-]+)$/;

/** The scopes a request named (its scope parameter, a space-separated string). */
function requestedScopes(params: Record<string, unknown>): string[] {
  return typeof params.scope === 'string' ? params.scope.split(' ').filter(Boolean) : [];
}

export class OAuthInteractions {
  constructor(
    private readonly openId: OpenIdProvider,
    private readonly state: OAuthStateStore,
    private readonly consents: OAuthConsents,
    private readonly clock: Clock,
    private readonly clockToleranceS: number,
    /** Keys the cookie that says which browser answered an interaction (see answerBinding). */
    private readonly answerKey: Buffer,
  ) {}

  /**
   * The value of the cookie the answering browser gets, for `uid`. The provider resumes a flow only in a browser that
   * holds it: an interaction cookie planted in someone else's browser (from a sibling subdomain, say) would otherwise
   * let its planter carry that person's answer, and session, back to their own browser.
   */
  answerBinding(uid: string): string {
    return createHmac('sha256', this.answerKey).update(uid).digest('base64url');
  }

  /** Whether a request may go on to the provider: a resume needs the cookie of the browser that answered. */
  mayResume(req: Request): boolean {
    const uid = RESUME_PATH.exec(req.path)?.[1];
    if (uid === undefined) return true;
    const presented = readCookie(req, ANSWER_COOKIE);
    return presented !== undefined && equalInConstantTime(presented, this.answerBinding(uid));
  }

  /** The browser reached the hand-over: when, by our clock, is what prompt=login's "a sign-in after this" means. */
  async arrived(uid: string): Promise<void> {
    const key = `arrived:${uid}`;
    const now = this.clock.now();
    if ((await this.state.get(key)) === undefined) await this.state.put(key, String(now), now + INTERACTION_TTL_MS);
  }

  async describe(req: IncomingMessage, res: ServerResponse, uid: string): Promise<InteractionView> {
    const interaction = await this.find(req, res, uid);
    const client = await this.openId.provider.Client.find(String(interaction.params.client_id));
    if (!client) throw new AppError('oauth_interaction_not_found');
    const params = interaction.params as Record<string, unknown>;
    return {
      uid,
      prompt: interaction.prompt.name as 'login' | 'consent',
      reasons: interaction.prompt.reasons,
      client: { clientId: client.clientId, name: client.clientName ?? client.clientId },
      scopes: requestedScopes(params),
      resources: resourcesOf(params),
      // Asked of the person the provider session is for; before a sign-in nobody is known, so the answer is yes.
      consentRequired: await this.needsAsking(interaction, client, interaction.session?.accountId),
      loginHint: typeof params.login_hint === 'string' ? params.login_hint.slice(0, 320) : null,
    };
  }

  /**
   * Whether `accountId` must be asked before the app gets what it asks for: never for a first-party app; always with
   * prompt=consent; otherwise unless they allowed the app all of it before.
   */
  private async needsAsking(interaction: Interaction, client: { clientId: string } | undefined, accountId: string | undefined): Promise<boolean> {
    if (isFirstParty(client)) return false;
    if (promptsOf(interaction.params).includes('consent')) return true;
    return accountId === undefined || !(await this.consents.covers(accountId, String(interaction.params.client_id), asked(interaction)));
  }

  /**
   * The signed-in person's answer: `allow` signs them in to the app as the caller's session (and gives it what it
   * asked for), `deny` sends the app access_denied. Returns where the browser goes next (back through the provider).
   */
  async decide(req: IncomingMessage, res: ServerResponse, uid: string, auth: AuthContext, decision: 'allow' | 'deny' | 'continue'): Promise<string> {
    const interaction = await this.find(req, res, uid);
    // "Go on if there is nothing to ask": a first-party app, or one this person allowed all of it before.
    if (
      decision === 'continue' &&
      (await this.needsAsking(interaction, await this.openId.provider.Client.find(String(interaction.params.client_id)), auth.userId))
    )
      throw new AppError('oauth_consent_required');
    const provider = this.openId.provider;
    if (decision === 'deny')
      return provider.interactionResult(req, res, { error: 'access_denied', error_description: 'the person declined' }, { mergeWithLastSubmission: false });
    if (auth.apiKeyId !== undefined) throw new AppError('forbidden');
    await this.requireFreshEnough(interaction, auth);
    const signedInAs = interaction.session?.accountId;
    const loggingIn = interaction.prompt.name === 'login';
    // A consent question belongs to the person the provider session is for; another person signs in afresh.
    if (!loggingIn && signedInAs !== auth.userId)
      throw new AppError('forbidden', 'This request belongs to another account; go back to the app and start again.');
    const result: Record<string, unknown> = {};
    if (loggingIn) {
      result.login = { accountId: auth.userId, ts: Math.floor(auth.authTimeMs / 1000), amr: auth.amr, acr: acrOf(auth.amr), remember: true };
      result[BOUND_SESSION] = { sessionId: auth.sessionId, userId: auth.userId };
    }
    result.consent = { grantId: await this.grantFor(interaction, auth.userId) };
    await this.consents.remember(auth.userId, String(interaction.params.client_id), asked(interaction));
    return provider.interactionResult(req, res, result);
  }

  /** prompt=login wants a sign-in made after the request; max_age one within that many seconds. */
  private async requireFreshEnough(interaction: Interaction, auth: AuthContext): Promise<void> {
    const reasons = interaction.prompt.reasons;
    const toleranceMs = this.clockToleranceS * 1000;
    const arrivedAt = Number((await this.state.get(`arrived:${interaction.uid}`)) ?? interaction.iat * 1000);
    if (reasons.includes('login_prompt') && auth.authTimeMs + toleranceMs < arrivedAt) throw new AppError('reauthentication_required');
    const rawMaxAge = (interaction.params as Record<string, unknown>).max_age;
    const maxAge = rawMaxAge === undefined || rawMaxAge === null || rawMaxAge === '' ? Number.NaN : Number(rawMaxAge);
    // Whenever max_age is asked, not only when oidc-provider names it as the reason (a login prompted by an ended
    // session would otherwise take a page sign-in of any age).
    if (Number.isFinite(maxAge) && this.clock.now() - auth.authTimeMs > maxAge * 1000 + toleranceMs) throw new AppError('reauthentication_required');
  }

  /**
   * The grant the app gets: the session's grant for it (if any), plus what this request asks. At a consent prompt that
   * is what oidc-provider lists as missing, which can name an API's scope as an OpenID one (every scope of
   * OAUTH_RESOURCES is also among the provider's scopes); at a login prompt nothing is listed yet.
   */
  private async grantFor(interaction: Interaction, accountId: string): Promise<string> {
    const provider = this.openId.provider;
    const clientId = String(interaction.params.client_id);
    const existing = interaction.grantId ? await provider.Grant.find(interaction.grantId) : undefined;
    const grant = existing && existing.accountId === accountId ? existing : new provider.Grant({ accountId, clientId });
    const details = interaction.prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    const params = interaction.params as Record<string, unknown>;
    const requested = requestedScopes(params);
    grant.addOIDCScope((details.missingOIDCScope ?? requested.filter(isStandardScope)).join(' '));
    if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
    const apiScopes = requested.filter((scope) => !isStandardScope(scope));
    const resources = details.missingResourceScopes ?? Object.fromEntries(resourcesOf(params).map((resource) => [resource, apiScopes]));
    for (const [indicator, scopes] of Object.entries(resources)) grant.addResourceScope(indicator, scopes.join(' '));
    return grant.save();
  }

  private async find(req: IncomingMessage, res: ServerResponse, uid: string): Promise<Interaction> {
    let interaction: Interaction;
    try {
      interaction = await this.openId.provider.interactionDetails(req, res);
    } catch {
      throw new AppError('oauth_interaction_not_found');
    }
    // The cookie names the interaction this browser started; a different one in the address is not this browser's.
    if (interaction.uid !== uid) throw new AppError('oauth_interaction_not_found');
    return interaction;
  }
}
