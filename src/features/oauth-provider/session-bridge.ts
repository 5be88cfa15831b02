// One session: the OpenID provider's browser session stands on one of ours. It lives while ours does, and when ours
// ends (logout, revocation, a disabled account, a password reset) what the provider issued from it ends too.
import type { Clock } from '../../core/clock.js';
import type { Prisma } from '../../core/db.js';
import type { Logger } from '../../core/logger.js';
import { BackgroundWork } from '../../core/background-work.js';
import type { OAuthStateStore } from './oauth-state-store.js';

export interface BoundSession {
  sessionId: string;
  userId: string;
}

/** What the provider's claims are made of. */
export const ACCOUNT_FIELDS = { id: true, username: true, email: true, emailVerifiedAt: true, disabledAt: true, updatedAt: true } as const;
export interface LiveAccount {
  id: string;
  /** The organization our session speaks for (POST /orgs/{id}/switch), if any. */
  orgId?: string | null;
  username: string;
  email: string;
  emailVerifiedAt: Date | null;
  disabledAt: Date | null;
  updatedAt: Date;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether a value can be one of our ids (a UUID): anything else is never looked up in PostgreSQL. */
export const isUuid = (value: string) => UUID.test(value);

/** What the bridge needs of the provider to end one of its sessions (see oidc-provider.ts). */
export interface ProviderSessionEnder {
  endProviderSession(uid: string): Promise<void>;
}

export interface SessionBridgeDeps {
  state: OAuthStateStore;
  prisma: Prisma;
  clock: Clock;
  logger: Logger;
}

export class SessionBridge {
  private ender?: ProviderSessionEnder;
  /** Back-channel logouts on their way; a stop waits for them. */
  readonly background = new BackgroundWork();

  constructor(private readonly deps: SessionBridgeDeps) {}

  attach(ender: ProviderSessionEnder): void {
    this.ender = ender;
  }

  /** Records that the provider session `uid` stands on our session, until ours expires. */
  async bind(uid: string, bound: BoundSession): Promise<void> {
    const session = await this.deps.prisma.session.findUnique({ where: { id: bound.sessionId }, select: { expiresAt: true } });
    if (!session) return;
    const deadline = session.expiresAt.getTime();
    await this.deps.state.put(`bridge:${uid}`, JSON.stringify(bound), deadline, [`session:${bound.sessionId}`]);
  }

  async boundTo(uid: string): Promise<BoundSession | undefined> {
    const stored = await this.deps.state.get(`bridge:${uid}`);
    return stored === undefined ? undefined : (JSON.parse(stored) as BoundSession);
  }

  /** Whether the provider session `uid` stands on a session of ours that is still live, of an account still enabled. */
  async isLive(uid: string, userId?: string): Promise<boolean> {
    return (await this.liveAccount(uid, userId)) !== undefined;
  }

  /** The account behind the provider session `uid`, read with its liveness in one query; undefined once it has ended. */
  async liveAccount(uid: string, userId?: string): Promise<LiveAccount | undefined> {
    const bound = await this.boundTo(uid);
    if (!bound || (userId !== undefined && bound.userId !== userId) || !isUuid(bound.sessionId)) return undefined;
    const session = await this.deps.prisma.session.findFirst({
      where: { id: bound.sessionId, revokedAt: null, expiresAt: { gt: new Date(this.deps.clock.now()) }, user: { disabledAt: null } },
      select: { orgId: true, user: { select: ACCOUNT_FIELDS } },
    });
    return session ? { ...session.user, orgId: session.orgId } : undefined;
  }

  /** Our sessions `sessionIds` ended: end the provider sessions standing on them (in the background). */
  sessionsEnded(sessionIds: string[]): void {
    this.background.track(this.endFor(sessionIds));
  }

  private async endFor(sessionIds: string[]): Promise<void> {
    for (const sessionId of sessionIds) {
      try {
        const members = await this.deps.state.members(`session:${sessionId}`);
        for (const member of members) {
          const uid = member.slice('bridge:'.length);
          await this.ender?.endProviderSession(uid);
          await this.deps.state.delete([member]);
        }
      } catch (err) {
        this.deps.logger.error({ err: err instanceof Error ? err.message : String(err), sessionId }, 'ending the OpenID sessions of a session failed');
      }
    }
  }
}
