// The signed-in user's own account: read it, change it, delete it.
import type { ApiKeyService } from '../../kernel/verifiers/api-key-service.js';
import type { Clock } from '../../core/clock.js';
import { isUniqueViolation, type Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import type { AuthContext } from '../../kernel/authenticate/authenticate.js';
import type { PasswordHasher } from '../../kernel/passwords/passwords.js';
import type { Sessions } from '../../kernel/sessions/sessions.js';
import type { ClientContext } from '../../kernel/identity/client-context.js';
import type { PasswordProof } from '../../kernel/passwords/password-proof.js';
import type { SecurityEvents } from '../../kernel/events/security-events.js';
import { type PublicUser, toPublicUser } from '../../kernel/identity/user-schemas.js';

export interface ProfileChanges {
  username?: string;
  password?: string;
  currentPassword?: string;
  /** Check currentPassword even without a new password (an email change, which EmailService then starts). */
  verifyPassword?: boolean;
  /** The address asked for in the same request (the password must not be it either). */
  newEmail?: string;
}

/**
 * Called before an account row is deleted; returns what to do once the row (and, by cascade, everything it owns
 * in the database) is gone, such as removing stored files. Removing them only afterwards means a failed delete
 * never leaves rows pointing at missing files.
 */
export type AccountDeletionHook = (userId: string) => Promise<() => Promise<void>>;

/** The mail a change of address sends: the link that confirms the new one (the email feature's). */
export interface AddressChangeMail {
  requestEmailChange(userId: string, newEmail: string): Promise<void>;
}

export interface UserDeps {
  prisma: Prisma;
  passwords: PasswordHasher;
  proof: PasswordProof;
  sessions: Sessions;
  clock: Clock;
  events: SecurityEvents;
  mail: AddressChangeMail;
  /** Told when the account is gone, so no instance keeps trusting one of its keys it verified before. */
  apiKeys: Pick<ApiKeyService, 'forgetKeysOf'>;
}

/** Asked before anything of an account is touched for its deletion; throws an AppError to refuse it (and may prepare). */
export type AccountDeletionCheck = (userId: string, client: ClientContext) => Promise<void>;

export class UserService {
  private readonly deletionHooks: AccountDeletionHook[] = [];
  private readonly deletionChecks: AccountDeletionCheck[] = [];

  constructor(private readonly deps: UserDeps) {}

  private get prisma(): Prisma {
    return this.deps.prisma;
  }

  onAccountDeleted(hook: AccountDeletionHook): void {
    this.deletionHooks.push(hook);
  }

  /** Lets a feature refuse an account's deletion (the only owner of an organization others belong to). */
  beforeAccountDeleted(check: AccountDeletionCheck): void {
    this.deletionChecks.push(check);
  }

  async get(userId: string): Promise<PublicUser> {
    return (await this.account(userId)).user;
  }

  /**
   * The account as its owner reads it: the public user, and whether it has a password of its own (an account made
   * by an outside provider has none until a reset sets one, so it cannot answer a password step-up).
   */
  async describe(userId: string): Promise<PublicUser & { hasPassword: boolean }> {
    const { user, hasPassword } = await this.account(userId);
    return { ...user, hasPassword };
  }

  private async account(userId: string): Promise<{ user: PublicUser; hasPassword: boolean }> {
    const user = await this.prisma.user.findUnique({ where: { id: userId }, include: { roles: true } });
    if (!user || user.disabledAt) throw new AppError('account_unavailable');
    return { user: toPublicUser(user), hasPassword: user.hasPassword };
  }

  /** The current password, checked under the account's failure budget (a stolen access token is no password oracle). */
  private async requirePassword(userId: string, password: string | undefined, client: ClientContext) {
    const user = await this.prisma.user.findUnique({
      where: { id: userId },
      select: { id: true, passwordHash: true, disabledAt: true, email: true, username: true },
    });
    if (!user) throw new AppError('account_unavailable');
    await this.deps.proof.confirm(user, password, client);
    return user;
  }

  /**
   * Changes username or password, and starts a change of address. A password change (or a new address) needs the
   * current password; a new password ends every other session of the user and is recorded (its owner is told). A new
   * address takes effect once the link sent to it is opened: until then it is `pendingEmail`.
   */
  async update(auth: AuthContext, changes: ProfileChanges, client: ClientContext): Promise<PublicUser & { pendingEmail?: string }> {
    const user = await this.updateProfile(auth, { ...changes, verifyPassword: changes.newEmail !== undefined }, client);
    if (changes.password !== undefined) this.deps.events.record({ type: 'password.changed', actorId: auth.userId, targetId: auth.userId }, client);
    if (changes.newEmail === undefined || changes.newEmail === user.email) return user;
    await this.deps.mail.requestEmailChange(auth.userId, changes.newEmail);
    return { ...user, pendingEmail: changes.newEmail };
  }

  private async updateProfile(auth: AuthContext, changes: ProfileChanges, client: ClientContext): Promise<PublicUser> {
    const { passwords, clock, sessions } = this.deps;
    const confirmed =
      changes.verifyPassword || changes.password !== undefined ? await this.requirePassword(auth.userId, changes.currentPassword, client) : undefined;
    // Every personal input the policy knows: the new and current username, the address, and a new address asked for.
    const owner = {
      username: changes.username ?? confirmed?.username ?? auth.username,
      email: confirmed?.email,
      otherInputs: [auth.username, ...(changes.newEmail === undefined ? [] : [changes.newEmail])],
    };
    const passwordHash = changes.password === undefined ? undefined : await passwords.hashNew(changes.password, owner);
    try {
      const user = await this.prisma.user.update({
        where: { id: auth.userId },
        data: {
          ...(changes.username !== undefined && { username: changes.username, usernameKey: changes.username.toLowerCase() }),
          ...(passwordHash !== undefined && { passwordHash }),
          updatedAt: new Date(clock.now()),
        },
        include: { roles: true },
      });
      if (passwordHash !== undefined) await sessions.revoke({ userId: auth.userId, excludeId: auth.sessionId }, 'password_changed');
      return toPublicUser(user);
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('already_registered');
      throw err;
    }
  }

  /** Deletes the account and everything it owns, after checking the password; its tokens stop working at once. */
  async delete(auth: AuthContext, password: string, client: ClientContext): Promise<void> {
    await this.requirePassword(auth.userId, password, client);
    for (const check of this.deletionChecks) await check(auth.userId, client);
    await this.deps.sessions.revokeEverything(auth.userId, 'account_deleted');
    const afterDelete = await Promise.all(this.deletionHooks.map((hook) => hook(auth.userId)));
    await this.prisma.user.delete({ where: { id: auth.userId } });
    await this.deps.apiKeys.forgetKeysOf(auth.userId);
    this.deps.events.record({ type: 'account.deleted', actorId: auth.userId, targetId: auth.userId, details: { username: auth.username } }, client);
    for (const cleanup of afterDelete) await cleanup();
  }
}
