// Who may add a credential that outlives a session (a passkey, an API key, a TOTP authenticator): only the proven
// owner of the account's address, and for the first second factor only with two proofs, so neither a password alone
// nor a mailbox alone can enrol a factor of its own and then pass for two.
import type { RequestHandler } from 'express';
import type { Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import { currentAuth } from './authenticate.js';

/** Whether a sign-in used two factors (RFC 8176 `mfa`, or a password and a code proven in one session). */
export function isMultiFactor(amr: string[]): boolean {
  return amr.includes('mfa') || (amr.includes('pwd') && amr.includes('otp'));
}

export interface EnrolmentGuards {
  /**
   * 403 email_not_verified until the account's address is proven. Until then anyone may have registered the
   * address, and whatever they add would outlive the owner's password reset.
   */
  verifiedEmail: RequestHandler;
  /**
   * For an account with no second factor yet: 403 second_proof_required unless this session proved two things (the
   * password and an emailed code, in either order: POST /reauthenticate or POST /reauthenticate/email-code).
   */
  secondProofForFirstFactor: RequestHandler;
}

export function enrolmentGuards(prisma: Prisma): EnrolmentGuards {
  return {
    verifiedEmail: async (req, _res, next) => {
      const user = await prisma.user.findUnique({ where: { id: currentAuth(req).userId }, select: { emailVerifiedAt: true } });
      if (!user?.emailVerifiedAt) {
        throw new AppError('email_not_verified_for_enrolment');
      }
      next();
    },
    secondProofForFirstFactor: async (req, _res, next) => {
      const auth = currentAuth(req);
      if (isMultiFactor(auth.amr)) {
        next();
        return;
      }
      const [factor, passkeys] = await Promise.all([
        prisma.mfaFactor.findUnique({ where: { userId: auth.userId }, select: { enabledAt: true } }),
        prisma.passkey.count({ where: { userId: auth.userId } }),
      ]);
      if ((factor?.enabledAt ?? null) === null && passkeys === 0) {
        const next_ = auth.amr.includes('pwd')
          ? 'an emailed code (POST /reauthenticate/email-code/send, then POST /reauthenticate/email-code)'
          : 'your password (POST /reauthenticate)';
        throw new AppError('second_proof_required', `Adding the account's first second factor needs a second proof in this session: confirm ${next_}.`, {
          details: { proven: auth.amr, accepted: auth.amr.includes('pwd') ? ['email_code'] : ['password'] },
        });
      }
      next();
    },
  };
}
