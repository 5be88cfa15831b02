// createAuthClient: sign-up, every way to sign in, sign-out, step-up, and a fetch that carries the access token and
// keeps it fresh.
import { AuthError } from './errors.js';
import type { AccessTokenResponse, LoginRequest, MfaChallenge, PasskeyAssertion, RegisterRequest, TokenResponse, User } from './generated/types.gen.js';
import { pkcePair } from './pkce.js';
import { type AuthListener, broadcastChannel, type ChannelLike, type LockManagerLike, type Session, SessionKeeper } from './session.js';
import { memoryStorage, type TokenStorage } from './storage.js';

export interface AuthClientOptions {
  /** The service's address, e.g. https://auth.example.com (its routes are resolved against it). */
  baseUrl: string;
  /** Where the session is kept: memory (the default), localStorage, sessionStorage, or an adapter of your own. */
  storage?: TokenStorage;
  /** The storage key (default `authkit.session`); the PKCE verifier of a provider sign-in uses `<key>.pkce`. */
  storageKey?: string;
  /** Seconds before expiry to refresh (default 30). */
  refreshMarginS?: number;
  /** The longest Retry-After a rate-limited refresh waits for before trying once more (default 60 s). */
  maxRetryWaitS?: number;
  /** This client's clock in ms (default Date.now); expiry is counted on it from when each answer arrived. */
  clock?: () => number;
  /** Another fetch (default: the platform's). */
  fetch?: typeof fetch;
  /** SimpleWebAuthn's `startAuthentication`; imported from `@simplewebauthn/browser` when absent. */
  webauthn?: { startAuthentication(options: { optionsJSON: never }): Promise<unknown> };
  /**
   * Coordination with other tabs sharing the storage: Web Locks and a BroadcastChannel where the platform has them
   * (pass `false` to turn it off, or your own for tests).
   */
  crossTab?: false | { locks?: LockManagerLike; channel?: ChannelLike };
}

export type SignInResult =
  | { status: 'signed_in'; session: Session }
  /** Two-factor is on: answer with `signIn.secondFactor` (or `secondFactorPasskey`) before `expiresIn` seconds pass. */
  | { status: 'mfa_required'; mfaToken: string; methods: MfaChallenge['methods']; expiresIn: number };

export interface AuthClient {
  /** Creates an account (sign in afterwards; the address is verified by the emailed link). */
  signUp(input: RegisterRequest): Promise<User>;
  readonly signIn: {
    password(input: LoginRequest): Promise<SignInResult>;
    /** Emails a six-digit code (the same answer whether or not the address has an account). */
    sendEmailCode(input: { email: string }): Promise<void>;
    emailCode(input: { email: string; code: string }): Promise<SignInResult>;
    /** With a passkey on this device (browsers). */
    passkey(): Promise<SignInResult>;
    /** The second step: a code from an authenticator app, or a recovery code. */
    secondFactor(input: { mfaToken: string; code: string }): Promise<Session>;
    /** The second step with a passkey. */
    secondFactorPasskey(input: { mfaToken: string }): Promise<Session>;
    /**
     * Starts a sign-in through an outside provider: answers the address to send the person to (and goes there in a
     * browser unless `navigate` is false). The provider comes back to `redirectTo`; hand that address to
     * `providerCallback`.
     */
    provider(id: string, options: { redirectTo: string; navigate?: boolean }): Promise<string>;
    providerCallback(callbackUrl: string | URL): Promise<SignInResult>;
  };
  /** Ends the session on the server (or every session, `everywhere`) and here, and in the other tabs. */
  signOut(options?: { everywhere?: boolean }): Promise<void>;
  /** Proves who the person is again, for the changes that need a recent sign-in. */
  reauthenticate(input: { password: string; code?: string }): Promise<Session>;
  /** Keeps a new access token the server answered for this session (e.g. POST /orgs/{id}/switch). */
  useAccessToken(answer: AccessTokenResponse): Promise<Session>;
  /** The session, refreshed first if its access token is about to expire; null when signed out. */
  getSession(): Promise<Session | null>;
  /** Refreshes now (one refresh however many ask). */
  refresh(): Promise<Session | null>;
  /** fetch() against the service with the access token, refreshed before expiry and once on a refused token. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** fetch() for JSON: the parsed answer, or an AuthError. */
  request<T>(path: string, init?: RequestInit & { json?: unknown }): Promise<T>;
  /** Called with 'SIGNED_IN', 'TOKEN_REFRESHED' or 'SIGNED_OUT' and the session; returns the unsubscribe. */
  onAuthStateChange(listener: AuthListener): () => void;
  /** Stops timers and closes the channel to other tabs. */
  close(): void;
}

function isChallenge(answer: TokenResponse | MfaChallenge): answer is MfaChallenge {
  return 'mfa_required' in answer && answer.mfa_required === true;
}

export function createAuthClient(options: AuthClientOptions): AuthClient {
  const base = options.baseUrl.replace(/\/+$/, '');
  const send = options.fetch ?? ((input: Parameters<typeof fetch>[0], init?: RequestInit) => globalThis.fetch(input, init));
  const storage = options.storage ?? memoryStorage();
  const storageKey = options.storageKey ?? 'authkit.session';
  const crossTab = options.crossTab === false ? {} : (options.crossTab ?? platformCoordination(storageKey));
  const sessions = new SessionKeeper({
    storage,
    storageKey,
    refreshMarginMs: (options.refreshMarginS ?? 30) * 1000,
    maxRetryWaitMs: (options.maxRetryWaitS ?? 60) * 1000,
    sendRefresh: (refreshToken) => post('/refresh', { refresh_token: refreshToken }),
    locks: crossTab.locks,
    channel: crossTab.channel,
    now: options.clock ?? (() => Date.now()),
  });

  const url = (path: string) => (/^https?:\/\//.test(path) ? path : `${base}${path.startsWith('/') ? '' : '/'}${path}`);

  function post(path: string, body: unknown, token?: Session): Promise<Response> {
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (token) headers.Authorization = `Bearer ${token.accessToken}`;
    return send(url(path), { method: 'POST', headers, body: JSON.stringify(body) });
  }

  /** The JSON of a successful answer, or the AuthError it carries. A network failure is an AuthError too. */
  async function answer<T>(pending: Promise<Response>): Promise<T> {
    let response: Response;
    try {
      response = await pending;
    } catch (err) {
      throw AuthError.network(err);
    }
    if (!response.ok) throw await AuthError.from(response);
    return (response.status === 204 ? undefined : await response.json()) as T;
  }

  async function signedIn(pending: Promise<Response>): Promise<SignInResult> {
    const result = await answer<TokenResponse | MfaChallenge>(pending);
    if (isChallenge(result)) return { status: 'mfa_required', mfaToken: result.mfa_token, methods: result.methods, expiresIn: result.expires_in };
    return { status: 'signed_in', session: await sessions.signedIn(result) };
  }

  async function startAuthentication(optionsJSON: unknown): Promise<PasskeyAssertion> {
    // An optional peer, resolved when first needed (a bundler or an import map provides it).
    const optionalPeer: string = '@simplewebauthn/browser';
    const webauthn = options.webauthn ?? ((await import(/* @vite-ignore */ optionalPeer)) as NonNullable<AuthClientOptions['webauthn']>);
    return (await webauthn.startAuthentication({ optionsJSON: optionsJSON as never })) as PasskeyAssertion;
  }

  async function authorizedFetch(path: string, init: RequestInit = {}): Promise<Response> {
    const attempt = (session: Session | null) => {
      const headers = new Headers(init.headers);
      if (session) headers.set('Authorization', `Bearer ${session.accessToken}`);
      return send(url(path), { ...init, headers });
    };
    const session = await sessions.fresh();
    const response = await attempt(session);
    if (response.status !== 401 || session === null) return response;
    // Only a refused token is worth a refresh (revoked, or expired by the server's clock); a wrong password is not.
    const code = (
      (await response
        .clone()
        .json()
        .catch(() => undefined)) as { error?: { code?: string } } | undefined
    )?.error?.code;
    if (code !== 'invalid_token') return response;
    const renewed = await sessions.refresh(session);
    return renewed ? attempt(renewed) : response;
  }

  return {
    signUp: (input) => answer<User>(post('/register', input)),
    signIn: {
      password: (input) => signedIn(post('/login', input)),
      sendEmailCode: async (input) => void (await answer(post('/login/email-code', input))),
      emailCode: (input) => signedIn(post('/login/email-code/verify', input)),
      async passkey() {
        const challenge = await answer<unknown>(post('/login/passkey/options', {}));
        return signedIn(post('/login/passkey', { response: await startAuthentication(challenge) }));
      },
      async secondFactor({ mfaToken, code }) {
        return sessions.signedIn(await answer<TokenResponse>(post('/login/mfa', { mfa_token: mfaToken, code })));
      },
      async secondFactorPasskey({ mfaToken }) {
        const challenge = await answer<unknown>(post('/login/mfa/passkey/options', { mfa_token: mfaToken }));
        const response = await startAuthentication(challenge);
        return sessions.signedIn(await answer<TokenResponse>(post('/login/mfa/passkey', { mfa_token: mfaToken, response })));
      },
      async provider(id, { redirectTo, navigate = true }) {
        const { verifier, challenge } = await pkcePair();
        await storage.setItem(`${storageKey}.pkce`, verifier);
        const query = new URLSearchParams({ redirect_to: redirectTo, code_challenge: challenge, code_challenge_method: 'S256' });
        const address = `${url(`/auth/providers/${encodeURIComponent(id)}/start`)}?${query.toString()}`;
        const location = (globalThis as { location?: { assign(url: string): void } }).location;
        if (navigate && location) location.assign(address);
        return address;
      },
      async providerCallback(callbackUrl) {
        const params = new URL(String(callbackUrl)).searchParams;
        const code = params.get('code');
        if (code === null) {
          const error = params.get('error') ?? 'the provider sent no code';
          throw new AuthError('unauthorized', `The provider sign-in did not complete: ${error}.`, 0, 'unauthorized', undefined, { error });
        }
        const verifier = await storage.getItem(`${storageKey}.pkce`);
        await storage.removeItem(`${storageKey}.pkce`);
        return signedIn(post('/auth/providers/token', { code, ...(verifier !== null && { code_verifier: verifier }) }));
      },
    },
    async signOut({ everywhere = false } = {}) {
      const session = await sessions.current();
      try {
        // A token the server no longer takes means the session is over already; only the local part is left.
        if (session)
          await send(url(everywhere ? '/logout/all' : '/logout'), { method: 'POST', headers: { Authorization: `Bearer ${session.accessToken}` } }).catch(
            (err: unknown) => {
              throw AuthError.network(err);
            },
          );
      } finally {
        await sessions.signedOut();
      }
    },
    async reauthenticate(input) {
      const session = await sessions.fresh();
      if (session === null) throw new AuthError('not_signed_in', 'Sign in first.', 0);
      return sessions.newAccessToken(await answer<AccessTokenResponse>(post('/reauthenticate', input, session)));
    },
    useAccessToken: (next) => sessions.newAccessToken(next),
    getSession: () => sessions.fresh(),
    refresh: () => sessions.refresh(),
    fetch: authorizedFetch,
    request<T>(path: string, init: RequestInit & { json?: unknown } = {}) {
      const { json, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (json !== undefined) headers.set('Content-Type', 'application/json');
      return answer<T>(authorizedFetch(path, { ...rest, headers, ...(json !== undefined && { body: JSON.stringify(json) }) }));
    },
    onAuthStateChange: (listener) => sessions.subscribe(listener),
    close: () => sessions.close(),
  };
}

/**
 * Web Locks and a BroadcastChannel in a browser's page, where tabs of one origin are one person's. Nowhere else: a
 * server may hold many people's clients in one process, and they must never hear each other.
 */
function platformCoordination(storageKey: string): { locks?: LockManagerLike; channel?: ChannelLike } {
  if (typeof (globalThis as { document?: unknown }).document === 'undefined') return {};
  const locks = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks;
  const channel = typeof BroadcastChannel === 'function' ? broadcastChannel(`authkit:${storageKey}`) : undefined;
  return { locks, channel };
}
