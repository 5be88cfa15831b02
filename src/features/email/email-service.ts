// Everything that reaches a user by email: confirming an address (and changing it), resetting a password, signing
// in with a code, and short notices about security-relevant changes. Messages go through the durable queue.
import type { Clock } from '../../core/clock.js';
import { isUniqueViolation, type Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import type { EmailSettings } from '../../core/config.js';
import type { FailureLockout } from '../../core/failure-lockout.js';
import type { Logger } from '../../core/logger.js';
import type { PasswordHasher } from '../auth/passwords.js';
import type { ClientContext, Sessions } from '../sessions/session-service.js';
import { type PublicUser, toPublicUser } from '../users/user-schemas.js';
import type { EmailTokens } from './email-tokens.js';
import type { MailQueue } from './mail-queue.js';
import type { MailTemplates, TemplateName } from './templates.js';

interface Recipient {
  id: string;
  username: string;
  email: string;
}

export class EmailService {
  constructor(
    private readonly prisma: Prisma,
    private readonly queue: MailQueue,
    private readonly templates: MailTemplates,
    private readonly tokens: EmailTokens,
    private readonly passwords: PasswordHasher,
    private readonly sessions: Sessions,
    /** Counts the messages the public routes send to each address, so nobody can mail-bomb one through us. */
    private readonly perAddress: FailureLockout,
    private readonly settings: EmailSettings,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  get requireVerification(): boolean {
    return this.settings.requireVerification;
  }

  /** Sends a link that confirms `email` (the account's address, or the new one it is changing to). */
  async sendVerification(user: Recipient, email = user.email): Promise<void> {
    const token = await this.tokens.issueLink(user.id, 'verify_email', email);
    await this.send({ ...user, email }, 'verify-email', { link: this.link('verify-email', token) });
  }

  /** After registration: the confirmation link, sent beside the answer (the account stands whether or not it goes). */
  welcome(user: Recipient): void {
    this.inBackground('send the confirmation link of a new account', () => this.sendVerification(user));
  }

  /**
   * Resends the confirmation link to an account's address that is not confirmed yet. Answers the same whether or
   * not the address has an account (the work happens after the answer).
   */
  resendVerification(email: string): void {
    this.inBackground('resend a verification link', async () => {
      const user = await this.prisma.user.findUnique({ where: { email } });
      if (!user || user.disabledAt || user.emailVerifiedAt || !(await this.withinBudget(email))) return;
      await this.sendVerification(user);
    });
  }

  /**
   * Spends a confirmation link. For the account's own address it marks it confirmed; for a new address it becomes
   * the account's address, and the old one is told.
   */
  async verifyEmail(token: string): Promise<{ user: PublicUser; previousEmail?: string }> {
    const { userId, email } = await this.tokens.consumeLink(token, 'verify_email');
    const before = await this.prisma.user.findUnique({ where: { id: userId } });
    if (!before || before.disabledAt) throw new AppError('invalid_token', 'This link is not valid.');
    const now = new Date(this.clock.now());
    let user;
    try {
      user = await this.prisma.user.update({ where: { id: userId }, data: { email, emailVerifiedAt: now, updatedAt: now }, include: { roles: true } });
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('already_registered', 'That email address was registered by another account meanwhile.');
      throw err;
    }
    if (before.email === email) return { user: toPublicUser(user) };
    await this.send(before, 'email-changed', { newEmail: email, when: now.toUTCString() });
    return { user: toPublicUser(user), previousEmail: before.email };
  }

  /** Starts an email change: nothing changes until the link sent to the new address is opened. */
  async requestEmailChange(userId: string, newEmail: string): Promise<void> {
    const user = await this.prisma.user.findUniqueOrThrow({ where: { id: userId } });
    if (user.email === newEmail) return;
    if (await this.prisma.user.findUnique({ where: { email: newEmail }, select: { id: true } })) {
      throw new AppError('already_registered', 'That username or email is already registered.');
    }
    await this.sendVerification(user, newEmail);
  }

  /** Sends a reset link if the address has an account; the same answer and timing either way (work after it). */
  forgotPassword(email: string): void {
    this.inBackground('send a password reset link', async () => {
      const user = await this.prisma.user.findUnique({ where: { email } });
      if (!user || user.disabledAt || !(await this.withinBudget(email))) return;
      const token = await this.tokens.issueLink(user.id, 'reset_password', email);
      await this.send(user, 'password-reset', { link: this.link('reset-password', token) });
    });
  }

  /**
   * Sets a new password with a reset link: the password is checked before the link is spent (a weak one does not
   * waste it), then every session ends and the owner is told. Opening the link also proves the address.
   */
  /** Returns the account whose password was reset. */
  async resetPassword(token: string, password: string): Promise<string> {
    const { userId } = await this.tokens.peekLink(token, 'reset_password');
    const user = await this.prisma.user.findUnique({ where: { id: userId } });
    if (!user || user.disabledAt) throw new AppError('invalid_token', 'This link is not valid.');
    const passwordHash = await this.passwords.hashNew(password, { username: user.username, email: user.email });
    await this.tokens.consumeLink(token, 'reset_password');
    const now = new Date(this.clock.now());
    await this.prisma.user.update({ where: { id: userId }, data: { passwordHash, emailVerifiedAt: user.emailVerifiedAt ?? now, updatedAt: now } });
    await this.sessions.revokeEverything(userId, 'password_reset');
    await this.send(user, 'password-changed', { when: now.toUTCString() });
    return userId;
  }

  /** Sends a sign-in code if the address has an account; the same answer and timing either way. */
  sendSignInCode(email: string): void {
    this.inBackground('send a sign-in code', async () => {
      const user = await this.prisma.user.findUnique({ where: { email } });
      if (!user || user.disabledAt || !(await this.withinBudget(email))) return;
      const code = await this.tokens.issueCode(user.id, email);
      await this.send(user, 'sign-in-code', { code });
    });
  }

  /** The account a right sign-in code belongs to (which also proves its address); one answer for every failure. */
  async verifySignInCode(email: string, code: string): Promise<string> {
    const userId = await this.tokens.consumeCode(email, code);
    if (!userId) throw new AppError('invalid_credentials', 'The email or code is not correct, or the code has expired.');
    await this.prisma.user.updateMany({ where: { id: userId, emailVerifiedAt: null }, data: { emailVerifiedAt: new Date(this.clock.now()) } });
    return userId;
  }

  /** A sign-in from a browser not seen before (no device cookie for this account); not for an account just made. */
  notifyNewSignIn(user: PublicUser, client: ClientContext): void {
    if (this.clock.now() - Date.parse(user.createdAt) < NEW_ACCOUNT_QUIET_MS) return;
    this.notify(user.id, 'new-sign-in', { when: new Date(this.clock.now()).toUTCString(), device: client.userAgent?.slice(0, 200) ?? 'unknown', ip: client.ip ?? 'unknown' });
  }

  /** A short notice to the account's owner; it never fails the request that caused it (failures are logged). */
  notify(userId: string, template: Extract<TemplateName, 'password-changed' | 'mfa-disabled' | 'api-key-created' | 'new-sign-in'>, values: Record<string, string> = {}): void {
    this.inBackground(`send a ${template} notice`, async () => {
      const user = await this.prisma.user.findUnique({ where: { id: userId } });
      if (user) await this.send(user, template, { when: new Date(this.clock.now()).toUTCString(), ...values });
    });
  }

  private async send(user: Recipient, template: TemplateName, values: Record<string, string>): Promise<void> {
    const message = this.templates.render(template, { username: user.username, email: user.email, ...values });
    await this.queue.enqueue({ to: user.email, template, ...message });
  }

  /**
   * Counts one message to the address; false when it has had its share for now. One atomic count (a Redis script,
   * or a synchronous update in process), so requests racing for one address cannot all slip under the cap.
   */
  private async withinBudget(email: string): Promise<boolean> {
    if ((await this.perAddress.recordFailure(email)) === 0) return true;
    this.logger.info('an address had its share of messages for now; this one was not sent');
    return false;
  }

  private link(action: 'verify-email' | 'reset-password', token: string): string {
    // In the fragment: never sent to any server, so never in an access log or a Referer.
    return `${this.settings.baseUrl}/#${action}=${token}`;
  }

  private inBackground(what: string, work: () => Promise<void>): void {
    void work().catch((err: unknown) => this.logger.warn({ err: err instanceof Error ? err.message : String(err) }, `could not ${what}`));
  }
}

/** A notice about a new browser is noise in the first minutes of an account (registration, then the first login). */
const NEW_ACCOUNT_QUIET_MS = 10 * 60_000;
