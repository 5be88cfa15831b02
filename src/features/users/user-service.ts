// The signed-in user's own account: read it, change it, delete it.
import type { Clock } from '../../core/clock.js';
import { isUniqueViolation, type Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import type { AuthContext } from '../auth/authenticate.js';
import type { PasswordHasher } from '../auth/passwords.js';
import type { ClientContext, Sessions } from '../sessions/session-service.js';
import type { PasswordProof } from '../auth/password-proof.js';
import { type PublicUser, toPublicUser } from './user-schemas.js';

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

export class UserService {
  private readonly deletionHooks: AccountDeletionHook[] = [];

  constructor(
    private readonly prisma: Prisma,
    private readonly passwords: PasswordHasher,
    private readonly proof: PasswordProof,
    private readonly sessions: Sessions,
    private readonly clock: Clock,
  ) {}

  onAccountDeleted(hook: AccountDeletionHook): void {
    this.deletionHooks.push(hook);
  }

  async get(userId: string): Promise<PublicUser> {
    const user = await this.prisma.user.findUnique({ where: { id: userId }, include: { roles: true } });
    if (!user || user.disabledAt) throw new AppError('account_unavailable');
    return toPublicUser(user);
  }

  /** The current password, checked under the account's failure budget (a stolen access token is no password oracle). */
  private async requirePassword(userId: string, password: string | undefined, client: ClientContext) {
    const user = await this.prisma.user.findUnique({
      where: { id: userId },
      select: { id: true, passwordHash: true, disabledAt: true, email: true, username: true },
    });
    if (!user) throw new AppError('account_unavailable');
    await this.proof.confirm(user, password, client);
    return user;
  }

  /**
   * Changes username or password. A password change (or `verifyPassword`) needs the current password, and a new
   * password ends every other session of the user.
   */
  async update(auth: AuthContext, changes: ProfileChanges, client: ClientContext): Promise<PublicUser> {
    const confirmed =
      changes.verifyPassword || changes.password !== undefined ? await this.requirePassword(auth.userId, changes.currentPassword, client) : undefined;
    // Every personal input the policy knows: the new and current username, the address, and a new address asked for.
    const owner = {
      username: changes.username ?? confirmed?.username ?? auth.username,
      email: confirmed?.email,
      otherInputs: [auth.username, ...(changes.newEmail === undefined ? [] : [changes.newEmail])],
    };
    const passwordHash = changes.password === undefined ? undefined : await this.passwords.hashNew(changes.password, owner);
    try {
      const user = await this.prisma.user.update({
        where: { id: auth.userId },
        data: {
          ...(changes.username !== undefined && { username: changes.username, usernameKey: changes.username.toLowerCase() }),
          ...(passwordHash !== undefined && { passwordHash }),
          updatedAt: new Date(this.clock.now()),
        },
        include: { roles: true },
      });
      if (passwordHash !== undefined) await this.sessions.revoke({ userId: auth.userId, excludeId: auth.sessionId }, 'password_changed');
      return toPublicUser(user);
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('already_registered');
      throw err;
    }
  }

  /** Deletes the account and everything it owns, after checking the password; its tokens stop working at once. */
  async delete(auth: AuthContext, password: string, client: ClientContext): Promise<void> {
    await this.requirePassword(auth.userId, password, client);
    await this.sessions.revokeEverything(auth.userId, 'account_deleted');
    const afterDelete = await Promise.all(this.deletionHooks.map((hook) => hook(auth.userId)));
    await this.prisma.user.delete({ where: { id: auth.userId } });
    for (const cleanup of afterDelete) await cleanup();
  }
}
