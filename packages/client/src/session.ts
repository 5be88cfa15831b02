// The session: kept in the storage given, refreshed shortly before it expires and when the server refuses the access
// token, one refresh at a time within this client and across the tabs that share its storage (Web Locks), with the
// new pair handed to the other tabs (a BroadcastChannel).
import { AuthError } from './errors.js';
import type { AccessTokenResponse, TokenResponse, User } from './generated/types.gen.js';
import type { TokenStorage } from './storage.js';

export interface Session {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer' | 'DPoP';
  /**
   * When the access token expires, by this client's clock (ms since the epoch): the lifetime the server gave,
   * counted from when its answer arrived, so the two clocks need not agree.
   */
  expiresAt: number;
  user: User;
}

export type AuthEvent = 'SIGNED_IN' | 'TOKEN_REFRESHED' | 'SIGNED_OUT';
export type AuthListener = (event: AuthEvent, session: Session | null) => void;

/** The part of the Web Locks API this uses (navigator.locks in browsers). */
export interface LockManagerLike {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

/** The part of BroadcastChannel this uses (`broadcastChannel(name)` makes one from the platform's). */
export interface ChannelLike {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  close(): void;
}

type Message = { type: 'session'; session: Session } | { type: 'signed-out' };

export interface SessionKeeperOptions {
  storage: TokenStorage;
  storageKey: string;
  /** Refresh this long before expiry (and treat a token this close to it as expired). */
  refreshMarginMs: number;
  /** The longest Retry-After a rate-limited refresh waits for before trying once more. */
  maxRetryWaitMs: number;
  /** Sends POST /refresh; a network failure rejects. */
  sendRefresh(refreshToken: string): Promise<Response>;
  locks?: LockManagerLike;
  channel?: ChannelLike;
  now(): number;
}

export class SessionKeeper {
  private session: Session | null = null;
  private loaded: Promise<void> | undefined;
  private refreshing: Promise<Session | null> | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly listeners = new Set<AuthListener>();

  constructor(private readonly options: SessionKeeperOptions) {
    options.channel?.addEventListener('message', (event) => this.heard(event.data as Message));
  }

  /** The session as kept (read from storage the first time), without refreshing it. */
  async current(): Promise<Session | null> {
    this.loaded ??= this.read().then((stored) => {
      // A sign-in that happened while storage was being read wins over what was stored.
      if (this.session === null && stored !== null) this.set(stored, undefined);
    });
    await this.loaded;
    return this.session;
  }

  /** The session with an access token that is not about to expire: refreshed first if it is. */
  async fresh(): Promise<Session | null> {
    const session = await this.current();
    if (session === null || session.expiresAt - this.options.now() > this.options.refreshMarginMs) return session;
    return this.refresh(session);
  }

  /**
   * Exchanges the refresh token for a new pair, once however many callers ask at the same time, here or in other
   * tabs: a caller that finds the pair already renewed (by another tab, while it waited for the lock) takes that
   * one instead. Resolves null, signed out, when the server refuses the refresh token.
   */
  refresh(stale?: Session | null): Promise<Session | null> {
    this.refreshing ??= (async () => {
      try {
        const basis = stale === undefined ? await this.current() : stale;
        const locks = this.options.locks;
        return locks
          ? await locks.request(`authkit-refresh:${this.options.storageKey}`, () => this.refreshUnderLock(basis))
          : await this.refreshUnderLock(basis);
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  /** Keeps the pair a sign-in answered, and tells listeners and other tabs. */
  async signedIn(tokens: TokenResponse): Promise<Session> {
    const session = this.fromTokens(tokens);
    await this.keep(session, 'SIGNED_IN');
    return session;
  }

  /** Keeps a new access token for the same session (a step-up, a switch of organization); the refresh token stays. */
  async newAccessToken(answer: AccessTokenResponse): Promise<Session> {
    const current = await this.current();
    if (current === null) throw new AuthError('not_signed_in', 'There is no session to update.', 0);
    const session = { ...current, accessToken: answer.access_token, tokenType: answer.token_type, expiresAt: this.options.now() + answer.expires_in * 1000 };
    await this.keep(session, 'TOKEN_REFRESHED');
    return session;
  }

  /** Forgets the session here and in the other tabs. */
  async signedOut(): Promise<void> {
    await this.options.storage.removeItem(this.options.storageKey);
    this.options.channel?.postMessage({ type: 'signed-out' } satisfies Message);
    this.set(null, 'SIGNED_OUT');
  }

  subscribe(listener: AuthListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    clearTimeout(this.timer);
    this.options.channel?.close();
    this.listeners.clear();
  }

  private async refreshUnderLock(stale: Session | null): Promise<Session | null> {
    const now = this.options.now();
    const stored = await this.read();
    // Renewed meanwhile, in another tab (storage) or here (a message from one): take that pair, spend nothing.
    const renewed = [stored, this.session].find(
      (candidate) => candidate !== null && candidate.refreshToken !== stale?.refreshToken && candidate.expiresAt - now > this.options.refreshMarginMs,
    );
    if (renewed) {
      if (renewed !== this.session) this.set(renewed, 'TOKEN_REFRESHED');
      return renewed;
    }
    const basis = stale ?? stored;
    if (basis === null) return null;
    let response = await this.send(basis.refreshToken);
    if (response.status === 429) {
      const error = await AuthError.from(response);
      const waitMs = (error.retryAfter ?? 1) * 1000;
      if (waitMs > this.options.maxRetryWaitMs) throw error;
      await new Promise((resolve) => setTimeout(resolve, waitMs));
      response = await this.send(basis.refreshToken);
    }
    if (response.ok) {
      const session = this.fromTokens((await response.json()) as TokenResponse);
      await this.keep(session, 'TOKEN_REFRESHED');
      return session;
    }
    // The refresh token is spent, revoked or expired: the session is over, here and in every tab.
    if (response.status === 401) {
      await this.signedOut();
      return null;
    }
    throw await AuthError.from(response);
  }

  private async send(refreshToken: string): Promise<Response> {
    try {
      return await this.options.sendRefresh(refreshToken);
    } catch (err) {
      throw AuthError.network(err);
    }
  }

  private fromTokens(tokens: TokenResponse): Session {
    return {
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token,
      tokenType: tokens.token_type,
      expiresAt: this.options.now() + tokens.expires_in * 1000,
      user: tokens.user,
    };
  }

  private async keep(session: Session, event: AuthEvent): Promise<void> {
    await this.options.storage.setItem(this.options.storageKey, JSON.stringify(session));
    this.options.channel?.postMessage({ type: 'session', session } satisfies Message);
    this.set(session, event);
  }

  private async read(): Promise<Session | null> {
    const text = await this.options.storage.getItem(this.options.storageKey);
    if (text === null) return null;
    try {
      const session = JSON.parse(text) as Session;
      return typeof session.refreshToken === 'string' && typeof session.accessToken === 'string' ? session : null;
    } catch {
      return null;
    }
  }

  /** What another tab says: its renewed pair, or that it signed out. */
  private heard(message: Message): void {
    if (message.type === 'signed-out') {
      if (this.session !== null) this.set(null, 'SIGNED_OUT');
    } else if (message.session.accessToken !== this.session?.accessToken) {
      this.set(message.session, this.session === null ? 'SIGNED_IN' : 'TOKEN_REFRESHED');
    }
  }

  private set(session: Session | null, event: AuthEvent | undefined): void {
    this.session = session;
    this.loaded ??= Promise.resolve();
    clearTimeout(this.timer);
    if (session !== null) {
      // Renewed a little before it expires, so requests rarely meet an expired token.
      const inMs = Math.max(1_000, session.expiresAt - this.options.now() - this.options.refreshMarginMs);
      this.timer = setTimeout(() => void this.refresh(this.session).catch(() => undefined), inMs);
      (this.timer as { unref?: () => void }).unref?.();
    }
    if (event) for (const listener of this.listeners) listener(event, session);
  }
}

/** A ChannelLike over the platform's BroadcastChannel. */
export function broadcastChannel(name: string): ChannelLike {
  const channel = new BroadcastChannel(name);
  return {
    postMessage: (message) => channel.postMessage(message),
    addEventListener: (_type, listener) => channel.addEventListener('message', (event) => listener(event as unknown as { data: unknown })),
    close: () => channel.close(),
  };
}
