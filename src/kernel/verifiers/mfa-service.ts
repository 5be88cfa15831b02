// Two-factor authentication: enrolment, recovery codes, and checking a second factor with replay and lockout rules.
import type { ClientContext } from '../identity/client-context.js';
import type { SecurityEvents } from '../events/security-events.js';
import { randomBytes } from 'node:crypto';
import QRCode from 'qrcode';
import type { Clock } from '../../core/clock.js';
import type { Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import type { PasswordHasher } from '../passwords/passwords.js';
import type { FailureLockout, LockoutRule } from '../../core/failure-lockout.js';
import type { Sealer } from '../../core/secret-box.js';
import type { VersionedHmac } from '../keys/purpose-keys.js';
import { matchingStep, newTotpSecret, otpauthUri } from './totp.js';

/** Five wrong codes lock a user's second factor for 15 minutes, on every instance. */
export const MFA_LOCKOUT: LockoutRule = { name: 'mfa', maxFailures: 5, lockMs: 15 * 60 * 1000 };
const RECOVERY_CODE_COUNT = 10;
const RECOVERY_CODE = /^[a-z2-9]{5}-[a-z2-9]{5}$/;
const RECOVERY_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';

export interface MfaStatus {
  enabled: boolean;
  recoveryCodesLeft: number;
}

export interface MfaSetup {
  secret: string;
  otpauthUri: string;
  /** A PNG data URL of the QR code for authenticator apps. */
  qrCode: string;
}

function newRecoveryCode(): string {
  const chars = [...randomBytes(10)].map((byte) => RECOVERY_ALPHABET[byte % RECOVERY_ALPHABET.length]).join('');
  return `${chars.slice(0, 5)}-${chars.slice(5)}`;
}

export interface MfaDeps {
  prisma: Prisma;
  /** Seals TOTP secrets (the `totp` purpose key). */
  box: Sealer;
  recoveryHash: VersionedHmac;
  /** Wrong codes, counted per account on every instance. */
  lockout: FailureLockout;
  passwords: PasswordHasher;
  clock: Clock;
  /** The name authenticator apps show beside the account. */
  issuer: string;
  events: SecurityEvents;
}

export class MfaService {
  /**
   * @param box seals TOTP secrets at rest.
   * @param recoveryHash keyed hashes of recovery codes: a database dump alone is not enough to test guesses offline.
   */
  private readonly prisma: Prisma;
  private readonly box: Sealer;
  private readonly recoveryHash: VersionedHmac;
  private readonly lockout: FailureLockout;
  private readonly passwords: PasswordHasher;
  private readonly clock: Clock;
  private readonly issuer: string;
  private readonly events: SecurityEvents;

  constructor(deps: MfaDeps) {
    ({
      prisma: this.prisma,
      box: this.box,
      recoveryHash: this.recoveryHash,
      lockout: this.lockout,
      passwords: this.passwords,
      clock: this.clock,
      issuer: this.issuer,
      events: this.events,
    } = deps);
  }

  async isEnabled(userId: string): Promise<boolean> {
    const factor = await this.prisma.mfaFactor.findUnique({ where: { userId }, select: { enabledAt: true } });
    return (factor?.enabledAt ?? null) !== null;
  }

  async status(userId: string): Promise<MfaStatus> {
    const [enabled, recoveryCodesLeft] = await Promise.all([this.isEnabled(userId), this.prisma.mfaRecoveryCode.count({ where: { userId, usedAt: null } })]);
    return { enabled, recoveryCodesLeft: enabled ? recoveryCodesLeft : 0 };
  }

  /** Starts enrolment with a fresh secret; it takes effect only once `enable` sees a valid code from it. */
  async setup(userId: string): Promise<MfaSetup> {
    const user = await this.prisma.user.findUniqueOrThrow({ where: { id: userId }, include: { mfa: true } });
    if (user.mfa?.enabledAt) throw new AppError('mfa_already_enabled');
    const secret = newTotpSecret();
    await this.prisma.mfaFactor.upsert({
      where: { userId },
      create: { userId, secretEnc: this.box.seal(secret), createdAt: new Date(this.clock.now()) },
      update: { secretEnc: this.box.seal(secret), lastUsedStep: null },
    });
    const uri = otpauthUri(secret, this.issuer, user.email);
    return { secret, otpauthUri: uri, qrCode: await QRCode.toDataURL(uri, { errorCorrectionLevel: 'M', margin: 1, width: 200 }) };
  }

  /** Confirms enrolment with a code and returns the recovery codes, the only time they are shown. */
  async enable(userId: string, code: string, client: ClientContext): Promise<{ recoveryCodes: string[] }> {
    const factor = await this.prisma.mfaFactor.findUnique({ where: { userId } });
    if (!factor) throw new AppError('mfa_setup_not_started');
    if (factor.enabledAt) throw new AppError('mfa_already_enabled');
    await this.checkTotp(userId, factor, code);
    const recoveryCodes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
    await this.prisma.$transaction([
      this.prisma.mfaFactor.update({ where: { userId }, data: { enabledAt: new Date(this.clock.now()) } }),
      this.prisma.mfaRecoveryCode.deleteMany({ where: { userId } }),
      this.prisma.mfaRecoveryCode.createMany({
        data: recoveryCodes.map((recovery) => ({ userId, codeHash: this.recoveryHash.digest(recovery.toLowerCase()) })),
      }),
    ]);
    this.events.record({ type: 'mfa.enabled', actorId: userId, targetId: userId }, client);
    return { recoveryCodes };
  }

  /** Turns two-factor off after checking both the password and a current code (or a recovery code). */
  async disable(userId: string, password: string, code: string, client: ClientContext): Promise<void> {
    const user = await this.prisma.user.findUniqueOrThrow({ where: { id: userId } });
    if (!(await this.passwords.verify(password, user.passwordHash))) {
      throw new AppError('wrong_password');
    }
    if (!(await this.isEnabled(userId))) throw new AppError('mfa_not_enabled');
    await this.verifySecondFactor(userId, code);
    await this.prisma.$transaction([this.prisma.mfaRecoveryCode.deleteMany({ where: { userId } }), this.prisma.mfaFactor.delete({ where: { userId } })]);
    this.events.record({ type: 'mfa.disabled', actorId: userId, targetId: userId }, client);
  }

  /**
   * Accepts a current TOTP code or an unused recovery code. Each TOTP step is accepted once; wrong codes count
   * towards a lockout shared by every instance.
   */
  async verifySecondFactor(userId: string, code: string): Promise<'totp' | 'recovery'> {
    const lockedMs = await this.lockout.lockedForMs(userId);
    if (lockedMs > 0) throw this.locked(lockedMs);
    const normalised = code.trim().toLowerCase();
    if (RECOVERY_CODE.test(normalised)) {
      const used = await this.prisma.mfaRecoveryCode.updateMany({
        where: { userId, codeHash: { in: this.recoveryHash.candidates(normalised) }, usedAt: null },
        data: { usedAt: new Date(this.clock.now()) },
      });
      if (used.count === 1) {
        await this.lockout.clear(userId);
        return 'recovery';
      }
      return this.fail(userId);
    }
    const factor = await this.prisma.mfaFactor.findUnique({ where: { userId } });
    if (!factor?.enabledAt) throw new AppError('mfa_not_enabled');
    await this.checkTotp(userId, factor, normalised);
    return 'totp';
  }

  private async checkTotp(userId: string, factor: { secretEnc: string; lastUsedStep: bigint | null }, code: string): Promise<void> {
    const step = matchingStep(this.box.open(factor.secretEnc), code, this.clock.now());
    if (step === undefined) return this.fail(userId);
    // The conditional update is the replay check: of two requests with one code, only one can move the step on.
    const accepted = await this.prisma.mfaFactor.updateMany({
      where: { userId, OR: [{ lastUsedStep: null }, { lastUsedStep: { lt: BigInt(step) } }] },
      data: { lastUsedStep: BigInt(step) },
    });
    if (accepted.count === 0) return this.fail(userId, 'mfa_code_reused');
    await this.lockout.clear(userId);
  }

  private async fail(userId: string, reason: 'invalid_mfa_code' | 'mfa_code_reused' = 'invalid_mfa_code'): Promise<never> {
    const lockedMs = await this.lockout.recordFailure(userId);
    if (lockedMs > 0) throw this.locked(lockedMs);
    throw new AppError(reason);
  }

  private locked(ms: number): AppError {
    const seconds = Math.ceil(Math.min(ms, this.lockout.rule.lockMs) / 1000);
    return new AppError('mfa_locked', `Too many wrong codes. Two-factor sign-in is locked for ${Math.ceil(seconds / 60)} minutes.`, {
      headers: { 'Retry-After': String(seconds) },
      details: { retryAfterSeconds: seconds },
    });
  }
}
