// Everything that reaches a user by email: confirming an address (and changing it), resetting a password, signing
// in with a code, and short notices about security-relevant changes. Messages go through the durable queue.
import type { ApiKeyService } from '../../kernel/verifiers/api-key-service.js';
import { BackgroundWork } from '../../core/background-work.js';
import type { Clock } from '../../core/clock.js';
import { isUniqueViolation, type Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import type { EmailSettings } from '../../core/config.js';
import type { FailureLockout } from '../../core/failure-lockout.js';
import type { Logger } from '../../core/logger.js';
import type { PasswordHasher } from '../../kernel/passwords/passwords.js';
import type { Sessions, TokenPair } from '../../kernel/sessions/sessions.js';
import type { AuthContext } from '../../kernel/authenticate/authenticate.js';
import type { ClientContext } from '../../kernel/identity/client-context.js';
import type { SecurityEvents } from '../../kernel/events/security-events.js';
import { type PublicUser, toPublicUser } from '../../kernel/identity/user-schemas.js';
import { describeDevice, describeIp } from './device-description.js';
import { type EmailTokens, lockAccount } from '../../kernel/challenges/email-tokens.js';
import type { MailQueue } from './mail-queue.js';
import type { MailTemplates, TemplateName } from './templates.js';

interface Recipient {
  id: string;
  username: string;
  email: string;
}

/** Values for a template, or undefined when there is nothing to send after all (the token was not issued). */
type Values = Record<string, string> | undefined;

export interface EmailDeps {
  prisma: Prisma;
  queue: MailQueue;
  templates: MailTemplates;
  tokens: EmailTokens;
  passwords: PasswordHasher;
  sessions: Sessions;
  /** Counts every message to each address (see send), so nobody can mail-bomb one through us. */
  perAddress: FailureLockout;
  settings: EmailSettings;
  clock: Clock;
  logger: Logger;
  events: SecurityEvents;
  /** Told when a reset removed the account's keys, so no instance keeps trusting one it verified before. */
  apiKeys: Pick<ApiKeyService, 'forgetKeysOf'>;
}

export class EmailService {
  private readonly prisma: Prisma;
  private readonly queue: MailQueue;
  private readonly templates: MailTemplates;
  private readonly tokens: EmailTokens;
  private readonly passwords: PasswordHasher;
  private readonly sessions: Sessions;
  private readonly perAddress: FailureLockout;
  private readonly settings: EmailSettings;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly events: SecurityEvents;
  private readonly apiKeys: Pick<ApiKeyService, 'forgetKeysOf'>;
  /** Messages started in the background and not yet queued: a stop waits for them before the database closes. */
  private readonly background = new BackgroundWork();

  constructor(deps: EmailDeps) {
    ({
      prisma: this.prisma,
      queue: this.queue,
      templates: this.templates,
      tokens: this.tokens,
      passwords: this.passwords,
      sessions: this.sessions,
      perAddress: this.perAddress,
      settings: this.settings,
      clock: this.clock,
      logger: this.logger,
      events: this.events,
      apiKeys: this.apiKeys,
    } = deps);
  }

  get requireVerification(): boolean {
    return this.settings.requireVerification;
  }

  /** The per-address cap in words, for answers that say a message may come ("at most 3 messages in 15 minutes"). */
  get capInWords(): string {
    const { max, windowMs } = this.settings.perAddress;
    return `an address gets at most ${max} message${max === 1 ? '' : 's'} in ${Math.round(windowMs / 60_000)} minutes`;
  }

  /** Sends a link that confirms `email` (the account's address, or the new one it is changing to). */
  async sendVerification(user: Recipient, email = user.email): Promise<void> {
    await this.send({ ...user, email }, 'verify-email', async () => {
      const token = await this.tokens.issueLink(user.id, 'verify_email', email, user.email);
      return token === undefined ? undefined : { link: this.link('verify-email', token) };
    });
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
      if (!user || user.disabledAt || user.emailVerifiedAt) return;
      await this.sendVerification(user);
    });
  }

  /**
   * Spends a confirmation link. For the account's own address it marks it confirmed; for a new address it becomes
   * the account's address, every other link and code (sent to the old address) dies with it, and the old one is told.
   */
  async verifyEmail(token: string, client: ClientContext): Promise<PublicUser> {
    const { userId } = await this.tokens.peekLink(token, 'verify_email');
    const now = new Date(this.clock.now());
    let changed;
    try {
      // One transaction under the account's lock: no link or code can be issued to the old address in between.
      changed = await this.prisma.$transaction(async (tx) => {
        await lockAccount(tx, userId);
        const before = await tx.user.findUnique({ where: { id: userId } });
        if (!before || before.disabledAt) throw new AppError('link_invalid');
        const { email } = await this.tokens.consumeLink(token, 'verify_email', tx);
        const user = await tx.user.update({ where: { id: userId }, data: { email, emailVerifiedAt: now, updatedAt: now }, include: { roles: true } });
        if (before.email !== email) await this.tokens.revokeAll(userId, tx);
        return { before, user };
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('email_taken');
      throw err;
    }
    const { before, user } = changed;
    if (before.email === user.email) return toPublicUser(user);
    this.events.record({ type: 'email.changed', actorId: user.id, targetId: user.id, details: { from: before.email, to: user.email } }, client);
    await this.send(before, 'email-changed', { newEmail: user.email, when: now.toUTCString() }, { toConfirmedOwner: before.emailVerifiedAt !== null });
    return toPublicUser(user);
  }

  /**
   * Starts an email change: nothing changes until the link sent to the new address is opened. The new address's
   * cap applies like any other's: past it the link is quietly not sent, and the answer does not say.
   */
  async requestEmailChange(userId: string, newEmail: string): Promise<void> {
    const user = await this.prisma.user.findUniqueOrThrow({ where: { id: userId } });
    if (user.email === newEmail) return;
    const owner = await this.prisma.user.findUnique({ where: { email: newEmail } });
    // The answer does not say whether the address has an account: its owner is told instead (capped like any send).
    if (owner) await this.send(owner, 'address-in-use', { when: new Date(this.clock.now()).toUTCString() });
    else await this.sendVerification(user, newEmail);
  }

  /** Someone tried to register an address that has an account: its owner is told, within the address's cap. */
  registrationAttempted(email: string): void {
    this.inBackground('tell an address owner of a registration attempt', async () => {
      const owner = await this.prisma.user.findUnique({ where: { email } });
      if (owner && !owner.disabledAt) await this.send(owner, 'address-in-use', { when: new Date(this.clock.now()).toUTCString() });
    });
  }

  /**
   * A code to the account's proven address, for a signed-in user proving the mailbox again (a second proof after a
   * password sign-in). 403 email_not_verified for an address nobody has proven: it may not be this user's.
   */
  async sendStepUpCode(userId: string): Promise<void> {
    const user = await this.prisma.user.findUnique({ where: { id: userId } });
    if (!user || user.disabledAt) throw new AppError('account_unavailable');
    if (!user.emailVerifiedAt) throw new AppError('email_not_verified_for_code');
    await this.send(user, 'step-up-code', async () => {
      const code = await this.tokens.issueCode(user.id, user.email, 'step_up_code');
      return code === undefined ? undefined : { code };
    });
  }

  /** Step-up by mailbox: spends a step-up code of this user (five guesses, ten minutes; 401 otherwise) for a fresh access token whose amr adds otp. */
  async stepUpWithCode(auth: AuthContext, code: string): Promise<Omit<TokenPair, 'refresh_token'>> {
    const user = await this.prisma.user.findUnique({ where: { id: auth.userId }, select: { email: true } });
    const owner = user ? await this.tokens.consumeCode(user.email, code, 'step_up_code') : undefined;
    if (owner !== auth.userId) throw new AppError('step_up_code_invalid');
    return this.sessions.reauthenticated(auth, ['otp']);
  }

  /** Sends a reset link if the address has an account; the same answer and timing either way (work after it). */
  forgotPassword(email: string): void {
    this.inBackground('send a password reset link', async () => {
      const user = await this.prisma.user.findUnique({ where: { email } });
      if (!user || user.disabledAt) return;
      await this.send(user, 'password-reset', async () => {
        const token = await this.tokens.issueLink(user.id, 'reset_password', email);
        return token === undefined ? undefined : { link: this.link('reset-password', token) };
      });
    });
  }

  /**
   * Sets a new password with a reset link: the password is checked before the link is spent (a weak one does not
   * waste it), then every session ends and the owner is told. Opening the link also proves the address.
   */
  /**
   * Returns the account whose password was reset. `removeCredentials`: every passkey and API key goes too, for an
   * owner who fears someone else added one. When the link is the first proof of the address, they go regardless
   * (see claimAddress).
   */
  async resetPassword(
    token: string,
    password: string,
    client: ClientContext,
    { removeCredentials = false }: { removeCredentials?: boolean } = {},
  ): Promise<void> {
    const { userId } = await this.tokens.peekLink(token, 'reset_password');
    const user = await this.prisma.user.findUnique({ where: { id: userId } });
    if (!user || user.disabledAt) throw new AppError('link_invalid');
    const passwordHash = await this.passwords.hashNew(password, { username: user.username, email: user.email });
    await this.tokens.consumeLink(token, 'reset_password');
    const now = new Date(this.clock.now());
    await this.prisma.user.update({ where: { id: userId }, data: { passwordHash, hasPassword: true, updatedAt: now } });
    await this.sessions.revokeEverything(userId, 'password_reset');
    await this.claimAddress(userId, { keepPassword: true });
    if (removeCredentials) await this.removeLongLivedCredentials(userId);
    this.events.record({ type: 'password.reset', actorId: userId, targetId: userId }, client);
    // A notice, to an address the link just proved.
    await this.send(user, 'password-changed', { when: now.toUTCString() }, { toConfirmedOwner: true });
  }

  /** Sends a sign-in code if the address has an account; the same answer and timing either way. */
  sendSignInCode(email: string): void {
    this.inBackground('send a sign-in code', async () => {
      const user = await this.prisma.user.findUnique({ where: { email } });
      if (!user || user.disabledAt) return;
      await this.send(user, 'sign-in-code', async () => {
        const code = await this.tokens.issueCode(user.id, email);
        return code === undefined ? undefined : { code };
      });
    });
  }

  /** The account a right sign-in code belongs to (which also proves its address); one answer for every failure. */
  async verifySignInCode(email: string, code: string): Promise<string> {
    const userId = await this.tokens.consumeCode(email, code);
    if (!userId) throw new AppError('invalid_email_code');
    await this.claimAddress(userId, { keepPassword: false });
    return userId;
  }

  /**
   * The first proof of an account's address by a code or a reset link makes the account its owner's alone: until
   * then anyone may have registered the address. Every session ends, and whatever was added before the proof goes
   * (passkeys, API keys, linked outside sign-ins, two-factor and its recovery codes, pending links); after a code, the password set before
   * goes too (a reset sets a new one). Unverified accounts cannot add those (EnrolmentGuards); this clears what
   * older versions let them add. Later proofs change nothing. Returns whether this was the first.
   */
  private async claimAddress(userId: string, { keepPassword }: { keepPassword: boolean }): Promise<boolean> {
    const now = new Date(this.clock.now());
    const { count } = await this.prisma.user.updateMany({ where: { id: userId, emailVerifiedAt: null }, data: { emailVerifiedAt: now, updatedAt: now } });
    if (count === 0) return false;
    await this.sessions.revokeEverything(userId, 'address_claimed');
    await this.removeLongLivedCredentials(userId);
    await this.prisma.$transaction([
      this.prisma.mfaRecoveryCode.deleteMany({ where: { userId } }),
      this.prisma.mfaFactor.deleteMany({ where: { userId } }),
      this.prisma.emailToken.deleteMany({ where: { userId, usedAt: null, purpose: 'verify_email' } }),
    ]);
    if (!keepPassword) {
      // Nobody knows this one: the owner sets a password through a reset when they want one.
      const passwordHash = await this.passwords.hashOfNobodysPassword();
      await this.prisma.user.update({ where: { id: userId }, data: { passwordHash, hasPassword: false } });
    }
    return true;
  }

  /**
   * A sign-in from a browser not seen before (no device cookie for this account); not for an account just made. The
   * device is described in our words (see describeDevice): the User-Agent is text whoever signed in chose.
   */
  notifyNewSignIn(userId: string, client: { userAgent?: string; ip?: string }): void {
    const when = this.clock.now();
    this.inBackground('send a new-sign-in notice', async () => {
      const user = await this.prisma.user.findUnique({ where: { id: userId } });
      if (!user || when - user.createdAt.getTime() < NEW_ACCOUNT_QUIET_MS) return;
      await this.send(
        user,
        'new-sign-in',
        { when: new Date(when).toUTCString(), device: describeDevice(client.userAgent), ip: describeIp(client.ip) },
        { toConfirmedOwner: user.emailVerifiedAt !== null },
      );
    });
  }

  /** A short notice to the account's owner; it never fails the request that caused it (failures are logged). */
  notify(
    userId: string,
    template: Extract<
      TemplateName,
      'password-changed' | 'mfa-disabled' | 'mfa-enabled' | 'api-key-created' | 'passkey-added' | 'identity-linked' | 'new-sign-in'
    >,
    values: Record<string, string> = {},
  ): void {
    this.inBackground(`send a ${template} notice`, async () => {
      const user = await this.prisma.user.findUnique({ where: { id: userId } });
      if (user)
        await this.send(user, template, { when: new Date(this.clock.now()).toUTCString(), ...values }, { toConfirmedOwner: user.emailVerifiedAt !== null });
    });
  }

  /**
   * Every message leaves through here, so every one counts against its address's cap, whatever asked for it (a
   * public route, registration, a change of address, a notice to an address nobody has confirmed). Past the cap it
   * is quietly dropped, and `values` (which may issue a link or code) is never called. The one message outside the
   * cap is a security notice to an address its account has confirmed (`toConfirmedOwner`): only a use of that account
   * sends one, the cap guards addresses against people who do not own them, and whoever fills the cap through
   * /password/forgot must not silence the warning about their own sign-in, nor a notice use up the owner's share.
   */
  private async send(
    user: Recipient,
    template: TemplateName,
    values: Values | (() => Promise<Values>),
    { toConfirmedOwner = false }: { toConfirmedOwner?: boolean } = {},
  ): Promise<void> {
    if (!toConfirmedOwner && !(await this.withinBudget(user.email))) {
      this.logger.info({ template }, 'an address had its share of messages for now; this one was not sent');
      return;
    }
    const filled = typeof values === 'function' ? await values() : values;
    if (filled === undefined) return;
    const message = this.templates.render(template, { username: user.username, email: user.email, ...filled });
    await this.queue.enqueue({ to: user.email, template, ...message });
  }

  /**
   * Counts one message to the address; false when it has had its share for now. One atomic count (a Redis script,
   * or a synchronous update in process), so requests racing for one address cannot all slip under the cap.
   */
  private async withinBudget(email: string): Promise<boolean> {
    return (await this.perAddress.recordFailure(email)) === 0;
  }

  private link(action: 'verify-email' | 'reset-password', token: string): string {
    // In the fragment: never sent to any server, so never in an access log or a Referer.
    return `${this.settings.baseUrl}/#${action}=${token}`;
  }

  /**
   * An invitation to an organization, to an address that may or may not have an account: nothing here looks, so
   * inviting tells nobody which it is. Counted against the address's share like every message.
   */
  async sendInvitation(message: { to: string; orgName: string; inviter: string; role: string; link: string; expiresAt: Date }): Promise<void> {
    await this.send({ id: '', username: message.to, email: message.to }, 'org-invitation', {
      orgName: message.orgName,
      inviter: message.inviter,
      role: message.role,
      link: message.link,
      expires: message.expiresAt.toUTCString(),
    });
  }

  /** Deletes the account's passkeys, API keys and linked sign-ins; no instance trusts a key it verified before. */
  private async removeLongLivedCredentials(userId: string): Promise<void> {
    await removeLongLivedCredentials(this.prisma, userId);
    await this.apiKeys.forgetKeysOf(userId);
  }

  /** Resolves when every message started in the background has been queued or given up (a stop waits for this). */
  settled(): Promise<void> {
    return this.background.settled();
  }

  private inBackground(what: string, work: () => Promise<void>): void {
    this.background.track(work().catch((err: unknown) => this.logger.warn({ err: err instanceof Error ? err.message : String(err) }, `could not ${what}`)));
  }
}

/** Deletes every passkey, API key and linked outside sign-in of the account (each is read from the database on each use: gone is refused). */
async function removeLongLivedCredentials(prisma: Prisma, userId: string): Promise<void> {
  await prisma.$transaction([
    prisma.passkey.deleteMany({ where: { userId } }),
    prisma.apiKey.deleteMany({ where: { userId } }),
    // An outside sign-in linked before the address was proven may be whoever registered it first.
    prisma.identity.deleteMany({ where: { userId } }),
  ]);
}

/** A notice about a new browser is noise in the first minutes of an account (registration, then the first login). */
const NEW_ACCOUNT_QUIET_MS = 10 * 60_000;
