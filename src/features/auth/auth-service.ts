// Registration, login and logout: the account-facing half of authentication.
import { isUniqueViolation, type Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { ClientContext, Sessions, TokenPair } from '../sessions/session-service.js';
import { type PublicUser, toPublicUser } from '../users/user-schemas.js';
import type { AuthContext } from './authenticate.js';
import type { LoginThrottle } from './login-throttle.js';
import type { PasswordHasher } from './passwords.js';
import type { MfaService } from '../mfa/mfa-service.js';
import type { RevocationStore } from './revocation-store.js';
import { InvalidTokenError, type MfaTokens } from './tokens.js';

export const DEFAULT_ROLE = 'user';

export type LoginResult = (TokenPair & { user: PublicUser }) | { mfa_required: true; mfa_token: string; expires_in: number };

export class AuthService {
  constructor(
    private readonly prisma: Prisma,
    private readonly passwords: PasswordHasher,
    private readonly sessions: Sessions,
    private readonly revocations: RevocationStore,
    private readonly mfa: MfaService,
    private readonly mfaTokens: MfaTokens,
    private readonly clock: { now(): number },
    private readonly throttle: LoginThrottle,
    private readonly logger: Logger,
  ) {}

  async register(input: { username: string; email: string; password: string }): Promise<PublicUser> {
    const passwordHash = await this.passwords.hashNew(input.password, { username: input.username, email: input.email });
    try {
      const user = await this.prisma.user.create({
        data: {
          username: input.username,
          usernameKey: input.username.toLowerCase(),
          email: input.email,
          passwordHash,
          roles: { create: { roleName: DEFAULT_ROLE } },
        },
        include: { roles: true },
      });
      return toPublicUser(user);
    } catch (err) {
      // One message for either field, so the answer does not say which of the two is taken.
      if (isUniqueViolation(err)) throw new AppError('already_registered', 'That username or email is already registered.');
      throw err;
    }
  }

  /**
   * Checks a username-or-email and password. Unknown users, wrong passwords and disabled accounts all cost one
   * bcrypt comparison, count towards the account's failed-login throttle, and get the same answer.
   */
  async login(input: { identifier: string; password: string }, client: ClientContext): Promise<LoginResult> {
    const identifier = input.identifier.toLowerCase();
    const user = await this.prisma.user.findUnique({
      where: identifier.includes('@') ? { email: identifier } : { usernameKey: identifier },
      include: { roles: true },
    });
    const counter = this.throttle.counterFor(user, identifier, client.deviceCookie);
    await this.throttle.refuseIfLocked(counter);
    const matches = user ? await this.passwords.verify(input.password, user.passwordHash) : await this.passwords.verifyAgainstNobody(input.password);
    if (!user || !matches || user.disabledAt) {
      await this.throttle.failed(counter);
      throw new AppError('invalid_credentials', 'The username, email or password is not correct.');
    }
    await this.throttle.succeeded(counter);
    if (this.passwords.isWeakerThanConfigured(user.passwordHash)) this.upgradeHash(user.id, input.password, user.passwordHash);
    if (await this.mfa.isEnabled(user.id)) {
      const { token, claims } = this.mfaTokens.sign(user.id);
      return { mfa_required: true, mfa_token: token, expires_in: claims.exp - claims.iat };
    }
    const publicUser = toPublicUser(user);
    const pair = await this.sessions.start(publicUser, client, ['pwd']);
    return { ...pair, user: publicUser };
  }

  /**
   * Re-hashes a password stored at a lower cost than BCRYPT_COST, now that it is known to be right. It runs beside
   * the login, not before its answer, and replaces the hash only if it is still the one that was checked (a password
   * changed meanwhile stays changed).
   */
  private upgradeHash(userId: string, password: string, checkedHash: string): void {
    void this.passwords
      .hash(password)
      .then((passwordHash) => this.prisma.user.updateMany({ where: { id: userId, passwordHash: checkedHash }, data: { passwordHash } }))
      .catch((err: unknown) => this.logger.warn({ err: err instanceof Error ? err.message : String(err), userId }, 'could not re-hash a password at the current cost'));
  }

  /** The second step of a two-factor login: a valid, unspent mfa_token and a TOTP or recovery code. */
  async completeMfaLogin(input: { mfaToken: string; code: string }, client: ClientContext): Promise<TokenPair & { user: PublicUser }> {
    let claims;
    try {
      claims = this.mfaTokens.verify(input.mfaToken);
    } catch (err) {
      if (err instanceof InvalidTokenError) throw new AppError('invalid_token', err.message);
      throw err;
    }
    if (await this.revocations.isRevoked({ jti: claims.jti, sid: claims.jti, userId: claims.sub, issuedAtMs: claims.iat * 1000 })) {
      throw new AppError('invalid_token', 'This mfa_token was already used; log in again.');
    }
    await this.mfa.verifySecondFactor(claims.sub, input.code);
    // Spent only on success, so a typo does not force the password step again, yet two racing uses cannot both win.
    if (!(await this.revocations.spendOnce(claims.jti, (claims.exp - claims.iat) * 1000 + 60_000))) {
      throw new AppError('invalid_token', 'This mfa_token was already used; log in again.');
    }
    const user = await this.prisma.user.findUnique({ where: { id: claims.sub }, include: { roles: true } });
    if (!user || user.disabledAt) throw new AppError('invalid_credentials', 'The username, email or password is not correct.');
    const publicUser = toPublicUser(user);
    const pair = await this.sessions.start(publicUser, client, ['pwd', 'otp']);
    return { ...pair, user: publicUser };
  }

  /**
   * Step-up: the signed-in user proves again who they are (the password, and a second factor when two-factor is on)
   * and gets an access token for the same session that says so, for the routes that need a recent sign-in.
   */
  async reauthenticate(auth: AuthContext, input: { password: string; code?: string }): Promise<Omit<TokenPair, 'refresh_token'>> {
    const user = await this.prisma.user.findUnique({ where: { id: auth.userId } });
    if (!user || user.disabledAt || !(await this.passwords.verify(input.password, user.passwordHash))) {
      throw new AppError('invalid_credentials', 'The password is not correct.');
    }
    if (await this.mfa.isEnabled(user.id)) {
      if (input.code === undefined) throw new AppError('invalid_mfa_code', 'Two-factor is on: send a current code (or a recovery code) with the password.');
      await this.mfa.verifySecondFactor(user.id, input.code);
    }
    return this.sessions.reauthenticated(auth);
  }

  /** Ends the caller's session and voids the access token they used, on every instance. */
  async logout(auth: AuthContext): Promise<void> {
    await this.revocations.revokeToken(auth.jti, Math.max(0, auth.expiresAtMs - this.clock.now()) + this.sessions.revocationTtlMs);
    await this.sessions.revoke({ id: auth.sessionId }, 'logout');
  }

  async logoutEverywhere(auth: AuthContext): Promise<void> {
    await this.sessions.revokeEverything(auth.userId, 'logout_all');
  }
}
