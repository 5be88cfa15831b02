// Every place that asks for a password (sign-in, step-up, changing or deleting the account) checks it here: under the
// one per-account failure budget, and audited alike, so no route is a free password oracle for a stolen token.
import { AppError } from '../../core/errors.js';
import type { SignInMethod, SignInRecorder } from '../events/security-events.js';
import type { ClientContext } from '../identity/client-context.js';
import type { LoginThrottle } from '../throttle/login-throttle.js';
import type { PasswordHasher } from './passwords.js';

interface Account {
  id: string;
  passwordHash: string;
  disabledAt: Date | null;
}

export class PasswordProof {
  constructor(
    private readonly passwords: PasswordHasher,
    private readonly throttle: LoginThrottle,
    private readonly signIns: SignInRecorder,
  ) {}

  /**
   * Whether `password` signs in to `user` (null: no account answers to `identifier`). Unknown users, wrong passwords
   * and disabled accounts cost one comparison each and spend one attempt; past the budget, 429 before any comparison.
   */
  async signIn(user: Account | null, identifier: string, password: string, client: ClientContext, method: SignInMethod = 'password'): Promise<boolean> {
    const counter = this.throttle.counterFor(user, identifier, client.deviceCookie);
    try {
      await this.throttle.attempt(counter);
    } catch (err) {
      if (err instanceof AppError && err.code === 'login_throttled') this.signIns.failed(method, 'locked', client, user?.id);
      throw err;
    }
    const matches = user ? await this.passwords.verify(password, user.passwordHash) : await this.passwords.verifyAgainstNobody(password);
    if (!user || !matches || user.disabledAt) {
      this.signIns.failed(method, !user ? 'unknown_user' : !matches ? 'wrong_password' : 'disabled', client, user?.id);
      return false;
    }
    await this.throttle.succeeded(counter);
    return true;
  }

  /**
   * A signed-in user confirms their password (a step-up, a new password or address, deleting the account): the same
   * budget and audit as a sign-in; a wrong one answers 401 invalid_credentials.
   */
  async confirm(user: Account, password: string | undefined, client: ClientContext): Promise<void> {
    if (password === undefined || !(await this.signIn(user, user.id, password, client, 'password_confirmation'))) {
      throw new AppError('wrong_password');
    }
  }
}
