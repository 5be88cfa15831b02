// Signing in: a first factor (password, emailed code, passkey), the second step, step-up, and the session they open.
import type { Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Sessions, TokenPair } from '../sessions/sessions.js';
import type { ClientContext } from '../identity/client-context.js';
import { type PublicUser, toPublicUser } from '../identity/user-schemas.js';
import type { AuthContext } from './authenticate.js';
import type { PasswordHasher } from '../passwords/passwords.js';
import type { MfaService } from '../verifiers/mfa-service.js';
import type { RevocationStore } from '../revocation/revocation-store.js';
import { InvalidTokenError, issuedAtMs, type MfaTokens } from '../tokens/tokens.js';
import type { AuthenticationResponseJSON } from '@simplewebauthn/server';
import type { PasskeyService } from '../verifiers/passkey-service.js';
import type { SignInMethod, SignInRecorder } from '../events/security-events.js';
import type { TrustedDevices } from '../throttle/login-throttle.js';
import type { PasswordProof } from '../passwords/password-proof.js';
import type { Clock } from '../../core/clock.js';

type UserRow = NonNullable<Awaited<ReturnType<Prisma['user']['findUnique']>>> & { roles: Array<{ roleName: string }> };

/** The second factors an account with two-factor on can answer `mfa_required` with. */
export type SecondFactorMethod = 'totp' | 'recovery_code' | 'passkey';

/** A session opened: the answer's body, and the device cookie that marks this browser as one that signed in before. */
export interface SignedIn {
  body: TokenPair & { user: PublicUser };
  deviceCookie: string;
}

/** The first factor passed on an account with two-factor on: the answer names the second step. */
export interface SecondStepNeeded {
  body: { mfa_required: true; mfa_token: string; expires_in: number; methods: SecondFactorMethod[] };
}

export type LoginResult = SignedIn | SecondStepNeeded;

/** A second factor as sent: a TOTP or recovery code, or a passkey's answer to POST /login/mfa/passkey/options. */
export type SecondFactor = { code: string } | { passkey: AuthenticationResponseJSON };

export interface SignInDeps {
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
  /** Checks an emailed sign-in code and names its account (the email feature's; it also proves the address). */
  emailCodes: { verifySignInCode(email: string, code: string): Promise<string> };
  /** Device cookies: a browser that signed in before is told apart from a new one (see LoginThrottle). */
  devices: TrustedDevices;
}

export class SignInFlow {
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
  private readonly devices: TrustedDevices;
  private readonly emailCodes: SignInDeps['emailCodes'];

  constructor(deps: SignInDeps) {
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
      devices: this.devices,
      emailCodes: this.emailCodes,
    } = deps);
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
    if (this.passwords.needsRehash(user.passwordHash)) this.upgradeHash(user.id, input.password, user.passwordHash);
    return this.firstFactorPassed(user, ['pwd'], 'password', client);
  }

  /**
   * Sign-in with an emailed code, which also proves the address: a session, or the second step when two-factor is on.
   */
  async loginWithEmailCode(email: string, code: string, client: ClientContext): Promise<LoginResult> {
    let userId;
    try {
      userId = await this.emailCodes.verifySignInCode(email, code);
    } catch (err) {
      if (err instanceof AppError && err.code === 'invalid_credentials') this.signIns.failed('email_code', 'invalid_code', client);
      throw err;
    }
    const user = await this.prisma.user.findUnique({ where: { id: userId }, include: { roles: true } });
    if (!user || user.disabledAt) throw new AppError('invalid_email_code');
    return this.firstFactorPassed(user, ['otp'], 'email_code', client);
  }

  /**
   * Sign-in through an outside identity provider whose answer was verified and whose identity is linked to `userId`:
   * a session, or the second step when two-factor is on here. `amr` says what the provider proved (see federation).
   */
  async loginWithIdentity(userId: string, amr: string[], provider: string, client: ClientContext): Promise<LoginResult> {
    const user = await this.prisma.user.findUnique({ where: { id: userId }, include: { roles: true } });
    if (!user || user.disabledAt) {
      this.signIns.failed('provider', 'disabled', client, userId);
      throw new AppError('invalid_credentials');
    }
    return this.firstFactorPassed(user, amr, 'provider', client, provider);
  }

  /** `provider`: the outside identity provider that proved the first factor, for the sign-in's audit event. */
  private async firstFactorPassed(user: UserRow, amr: string[], method: SignInMethod, client: ClientContext, provider?: string): Promise<LoginResult> {
    this.requireVerifiedEmail(user, method, client);
    if (await this.mfa.isEnabled(user.id)) {
      this.signIns.secondFactorNeeded(method);
      const { token, claims } = this.mfaTokens.sign(user.id, amr, provider);
      const hasPasskey = (await this.prisma.passkey.count({ where: { userId: user.id } })) > 0;
      const methods: SecondFactorMethod[] = ['totp', 'recovery_code', ...(hasPasskey ? (['passkey'] as const) : [])];
      return { body: { mfa_required: true, mfa_token: token, expires_in: claims.exp - claims.iat, methods } };
    }
    return this.startSession(user, amr, method, client, provider);
  }

  /**
   * Opens the session and records the sign-in, saying whether the browser is new to the account (it carries no device
   * cookie for it: the owner is told by email), then hands the browser a fresh device cookie.
   */
  private async startSession(user: UserRow, amr: string[], method: SignInMethod, client: ClientContext, provider?: string): Promise<SignedIn> {
    const publicUser = toPublicUser(user);
    const pair = await this.sessions.start(publicUser, client, amr);
    const newBrowser = this.devices.recognise(client.deviceCookie, user.id) === undefined;
    this.signIns.succeeded(user.id, method, client, { newBrowser, provider });
    return { body: { ...pair, user: publicUser }, deviceCookie: this.devices.issue(user.id) };
  }

  private requireVerifiedEmail(user: { id: string; emailVerifiedAt: Date | null }, method: SignInMethod, client: ClientContext): void {
    if (this.requireEmailVerification && !user.emailVerifiedAt) {
      this.signIns.failed(method, 'email_not_verified', client, user.id);
      throw new AppError('email_not_verified');
    }
  }

  /**
   * Re-hashes a password stored at a lower cost than BCRYPT_COST, or in another system's format (an imported user's),
   * with our bcrypt, now that it is known to be right. It runs beside the login, not before its answer, and replaces
   * the hash only if it is still the one that was checked (a password changed meanwhile stays changed).
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
  async loginWithPasskey(response: AuthenticationResponseJSON, client: ClientContext): Promise<SignedIn> {
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
  async completeMfaLogin(mfaToken: string, secondFactor: SecondFactor, client: ClientContext): Promise<SignedIn> {
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
    return this.startSession(user, amr, method, client, claims.idp);
  }

  private async readMfaToken(mfaToken: string) {
    let claims;
    try {
      claims = this.mfaTokens.verify(mfaToken);
    } catch (err) {
      if (err instanceof InvalidTokenError) throw new AppError(err.reason === 'expired' ? 'mfa_token_expired' : 'mfa_token_invalid');
      throw err;
    }
    if (await this.revocations.isRevoked({ jti: claims.jti, sid: claims.jti, userId: claims.sub, issuedAtMs: issuedAtMs(claims) })) {
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
}
