// Registration, login and logout: the account-facing half of authentication.
import { isUniqueViolation, type Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { ClientContext, Sessions, TokenPair } from '../sessions/session-service.js';
import { type PublicUser, toPublicUser } from '../users/user-schemas.js';
import type { AuthContext } from './authenticate.js';
import type { PasswordHasher } from './passwords.js';
import type { MfaService } from '../mfa/mfa-service.js';
import type { RevocationStore } from './revocation-store.js';
import { InvalidTokenError, type MfaTokens } from './tokens.js';
import type { AuthenticationResponseJSON } from '@simplewebauthn/server';
import type { PasskeyService } from '../passkeys/passkey-service.js';
import type { SecurityEvents, SignInMethod, SignInRecorder } from '../audit/audit-log.js';
import type { PasswordProof } from './password-proof.js';
import type { Clock } from '../../core/clock.js';
import { randomUUID } from 'node:crypto';

export const DEFAULT_ROLE = 'user';

type UserRow = NonNullable<Awaited<ReturnType<Prisma['user']['findUnique']>>> & { roles: Array<{ roleName: string }> };

/** The second factors an account with two-factor on can answer `mfa_required` with. */
export type SecondFactorMethod = 'totp' | 'recovery_code' | 'passkey';

export type LoginResult = (TokenPair & { user: PublicUser }) | { mfa_required: true; mfa_token: string; expires_in: number; methods: SecondFactorMethod[] };

/** A second factor as sent: a TOTP or recovery code, or a passkey's answer to POST /login/mfa/passkey/options. */
export type SecondFactor = { code: string } | { passkey: AuthenticationResponseJSON };

export interface AuthServiceDeps {
  prisma: Prisma;
  passwords: PasswordHasher;
  /** Checks passwords under the per-account failure budget (sign-in and step-up alike). */
  proof: PasswordProof;
  sessions: Sessions;
  revocations: RevocationStore;
  mfa: MfaService;
  mfaTokens: MfaTokens;
  clock: Clock;
  logger: Logger;
  passkeys: PasskeyService;
  /** REQUIRE_EMAIL_VERIFICATION: no session for an account whose address is not confirmed. */
  requireEmailVerification: boolean;
  signIns: SignInRecorder;
  events: SecurityEvents;
  /** What a new account is sent (the link that confirms its address), and what an address's owner is told. */
  mail: { welcome(user: PublicUser): void; registrationAttempted(email: string): void };
}

export class AuthService {
  private readonly prisma: Prisma;
  private readonly passwords: PasswordHasher;
  private readonly proof: PasswordProof;
  private readonly sessions: Sessions;
  private readonly revocations: RevocationStore;
  private readonly mfa: MfaService;
  private readonly mfaTokens: MfaTokens;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly passkeys: PasskeyService;
  private readonly requireEmailVerification: boolean;
  private readonly signIns: SignInRecorder;
  private readonly events: SecurityEvents;
  private readonly mail: AuthServiceDeps['mail'];

  constructor(deps: AuthServiceDeps) {
    ({
      prisma: this.prisma,
      passwords: this.passwords,
      proof: this.proof,
      sessions: this.sessions,
      revocations: this.revocations,
      mfa: this.mfa,
      mfaTokens: this.mfaTokens,
      clock: this.clock,
      logger: this.logger,
      passkeys: this.passkeys,
      requireEmailVerification: this.requireEmailVerification,
      signIns: this.signIns,
      events: this.events,
      mail: this.mail,
    } = deps);
  }

  /**
   * Creates an account, records it and mails the link that confirms its address. Registration never says whether an
   * address has an account: a taken address gets the same 201 and body shape (an id that names nothing), and its
   * owner is told by email instead. Usernames are public handles, so a taken one answers 409.
   */
  async register(input: { username: string; email: string; password: string }, client: ClientContext): Promise<PublicUser> {
    const email = input.email.toLowerCase();
    const passwordHash = await this.passwords.hashNew(input.password, { username: input.username, email });
    try {
      const user = await this.prisma.user.create({
        data: {
          username: input.username,
          usernameKey: input.username.toLowerCase(),
          email,
          passwordHash,
          createdAt: new Date(this.clock.now()),
          updatedAt: new Date(this.clock.now()),
          roles: { create: { roleName: DEFAULT_ROLE } },
        },
        include: { roles: true },
      });
      const created = toPublicUser(user);
      this.events.record({ type: 'user.registered', actorId: created.id, targetId: created.id }, client);
      this.mail.welcome(created);
      return created;
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      const usernameTaken = (await this.prisma.user.count({ where: { usernameKey: input.username.toLowerCase() } })) > 0;
      if (usernameTaken) throw new AppError('username_taken', { details: [{ path: 'username', message: 'taken' }] });
      this.mail.registrationAttempted(email);
      return {
        id: randomUUID(),
        username: input.username,
        email,
        emailVerified: false,
        roles: [DEFAULT_ROLE],
        createdAt: new Date(this.clock.now()).toISOString(),
      };
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
    if (!(await this.proof.signIn(user, identifier, input.password, client)) || !user) {
      throw new AppError('invalid_credentials');
    }
    if (this.passwords.isWeakerThanConfigured(user.passwordHash)) this.upgradeHash(user.id, input.password, user.passwordHash);
    return this.firstFactorPassed(user, ['pwd'], 'password', client);
  }

  /**
   * Sign-in with an emailed code (already checked; it proved the address): a session, or the second step when
   * two-factor is on.
   */
  async loginWithEmailCode(userId: string, client: ClientContext): Promise<LoginResult> {
    const user = await this.prisma.user.findUnique({ where: { id: userId }, include: { roles: true } });
    if (!user || user.disabledAt) throw new AppError('invalid_email_code');
    return this.firstFactorPassed(user, ['otp'], 'email_code', client);
  }

  private async firstFactorPassed(user: UserRow, amr: string[], method: SignInMethod, client: ClientContext): Promise<LoginResult> {
    this.requireVerifiedEmail(user, method, client);
    if (await this.mfa.isEnabled(user.id)) {
      this.signIns.secondFactorNeeded(method);
      const { token, claims } = this.mfaTokens.sign(user.id, amr);
      const hasPasskey = (await this.prisma.passkey.count({ where: { userId: user.id } })) > 0;
      const methods: SecondFactorMethod[] = ['totp', 'recovery_code', ...(hasPasskey ? (['passkey'] as const) : [])];
      return { mfa_required: true, mfa_token: token, expires_in: claims.exp - claims.iat, methods };
    }
    return this.startSession(user, amr, method, client);
  }

  private async startSession(user: UserRow, amr: string[], method: SignInMethod, client: ClientContext): Promise<TokenPair & { user: PublicUser }> {
    const publicUser = toPublicUser(user);
    const pair = await this.sessions.start(publicUser, client, amr);
    this.signIns.succeeded(user.id, method, client);
    return { ...pair, user: publicUser };
  }

  private requireVerifiedEmail(user: { id: string; emailVerifiedAt: Date | null }, method: SignInMethod, client: ClientContext): void {
    if (this.requireEmailVerification && !user.emailVerifiedAt) {
      this.signIns.failed(method, 'email_not_verified', client, user.id);
      throw new AppError('email_not_verified');
    }
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
      .catch((err: unknown) =>
        this.logger.warn({ err: err instanceof Error ? err.message : String(err), userId }, 'could not re-hash a password at the current cost'),
      );
  }

  /**
   * Usernameless sign-in: a passkey's answer to POST /login/passkey/options. With user verification the passkey is
   * two factors in one, so two-factor accounts need no further step.
   */
  async loginWithPasskey(response: AuthenticationResponseJSON, client: ClientContext): Promise<TokenPair & { user: PublicUser }> {
    let verified;
    try {
      verified = await this.passkeys.verifyAssertion(response, { kind: 'sign-in' });
    } catch (err) {
      if (err instanceof AppError && err.code === 'invalid_passkey') this.signIns.failed('passkey', 'invalid_passkey', client);
      throw err;
    }
    const user = await this.prisma.user.findUnique({ where: { id: verified.userId }, include: { roles: true } });
    if (!user || user.disabledAt) {
      this.signIns.failed('passkey', 'disabled', client, verified.userId);
      throw new AppError('invalid_credentials');
    }
    this.requireVerifiedEmail(user, 'passkey', client);
    return this.startSession(user, verified.amr, 'passkey', client);
  }

  /** The account an unspent mfa_token was issued to (for the passkey options of the second step). */
  async mfaTokenSubject(mfaToken: string): Promise<string> {
    return (await this.readMfaToken(mfaToken)).sub;
  }

  /** The second step of a two-factor login: a valid, unspent mfa_token and a TOTP code, a recovery code or a passkey. */
  async completeMfaLogin(mfaToken: string, secondFactor: SecondFactor, client: ClientContext): Promise<TokenPair & { user: PublicUser }> {
    const claims = await this.readMfaToken(mfaToken);
    const method: SignInMethod = 'code' in secondFactor ? 'totp' : 'passkey_second_factor';
    let second: string[];
    try {
      if ('code' in secondFactor) {
        const used = await this.mfa.verifySecondFactor(claims.sub, secondFactor.code);
        if (used === 'recovery') this.signIns.recoveryCodeUsed(claims.sub, client);
        second = ['otp'];
      } else {
        second = (await this.passkeys.verifyAssertion(secondFactor.passkey, { kind: 'second-factor', userId: claims.sub })).amr;
      }
    } catch (err) {
      if (err instanceof AppError && err.status < 500) this.signIns.failed(method, err.code === 'mfa_locked' ? 'locked' : 'mfa_failed', client, claims.sub);
      throw err;
    }
    // The first step and this one are two factors, whatever each proved on its own.
    const amr = [...new Set([...claims.amr, ...second, 'mfa'])];
    // Spent only on success, so a typo does not force the password step again, yet two racing uses cannot both win.
    if (!(await this.revocations.spendOnce(claims.jti, (claims.exp - claims.iat) * 1000 + 60_000))) {
      throw new AppError('mfa_token_used');
    }
    const user = await this.prisma.user.findUnique({ where: { id: claims.sub }, include: { roles: true } });
    if (!user || user.disabledAt) throw new AppError('invalid_credentials');
    return this.startSession(user, amr, method, client);
  }

  private async readMfaToken(mfaToken: string) {
    let claims;
    try {
      claims = this.mfaTokens.verify(mfaToken);
    } catch (err) {
      if (err instanceof InvalidTokenError) throw new AppError(err.reason === 'expired' ? 'mfa_token_expired' : 'mfa_token_invalid');
      throw err;
    }
    if (await this.revocations.isRevoked({ jti: claims.jti, sid: claims.jti, userId: claims.sub, issuedAtMs: claims.iat * 1000 })) {
      throw new AppError('mfa_token_used');
    }
    return claims;
  }

  /**
   * Step-up: the signed-in user proves again who they are (the password, and a second factor when two-factor is on)
   * and gets an access token for the same session that says so, for the routes that need a recent sign-in.
   */
  async reauthenticate(auth: AuthContext, input: { password: string; code?: string }, client: ClientContext): Promise<Omit<TokenPair, 'refresh_token'>> {
    const user = await this.prisma.user.findUnique({ where: { id: auth.userId } });
    if (!user || user.disabledAt) throw new AppError('wrong_password');
    await this.proof.confirm(user, input.password, client);
    if (await this.mfa.isEnabled(user.id)) {
      if (input.code === undefined) throw new AppError('mfa_code_required');
      await this.mfa.verifySecondFactor(user.id, input.code);
      return this.sessions.reauthenticated(auth, ['pwd', 'otp', 'mfa']);
    }
    return this.sessions.reauthenticated(auth, ['pwd']);
  }

  /** Step-up with one of the user's passkeys instead of the password. */
  async reauthenticateWithPasskey(auth: AuthContext, response: AuthenticationResponseJSON): Promise<Omit<TokenPair, 'refresh_token'>> {
    const { amr } = await this.passkeys.verifyAssertion(response, { kind: 'reauthenticate', userId: auth.userId, sessionId: auth.sessionId });
    const user = await this.prisma.user.findUnique({ where: { id: auth.userId } });
    if (!user || user.disabledAt) throw new AppError('invalid_credentials');
    return this.sessions.reauthenticated(auth, amr);
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
