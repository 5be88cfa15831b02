// What a new password must be (NIST SP 800-63B, OWASP): long enough, not guessable, not known from breaches. No
// composition rules.
import { createHash } from 'node:crypto';
import type { PasswordPolicySettings } from '../../core/config.js';
import { AppError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { PasswordHashPool } from '../../core/password-hash-pool.js';

/** Who the password is for: names it must not be built from. */
export interface PasswordOwner {
  username?: string;
  email?: string;
  /** Other personal inputs (a previous username, a new address asked for in the same request). */
  otherInputs?: string[];
}

type WeakReason = 'too_short' | 'personal' | 'common' | 'guessable' | 'breached';

/** `message` carries this password's numbers (the length, the breach count); the reason says which rule it broke. */
function weak(message: string, details: { reason: WeakReason } & Record<string, unknown>): AppError {
  return new AppError(`password_${details.reason}`, message, { details: { path: 'password', ...details } });
}

export class PasswordPolicy {
  constructor(
    private readonly pool: PasswordHashPool,
    private readonly settings: PasswordPolicySettings,
    private readonly logger: Logger,
  ) {}

  /** Throws 400 weak_password saying why, or 503 when a fail-closed breach check cannot be made. */
  async check(password: string, owner: PasswordOwner): Promise<void> {
    if ([...password].length < this.settings.minLength) {
      throw weak(`The password must be at least ${this.settings.minLength} characters long.`, { reason: 'too_short' });
    }
    const addresses = [owner.email, ...(owner.otherInputs ?? []).filter((input) => input.includes('@'))];
    const names = [owner.username, ...(owner.otherInputs ?? []), ...addresses.flatMap((address) => (address ? [address, address.split('@')[0]] : []))].filter(
      (name): name is string => !!name,
    );
    if (names.some((name) => name.toLowerCase() === password.toLowerCase())) {
      throw weak('The password must not be your username or email.', { reason: 'personal' });
    }
    const strength = await this.pool.strength(password, names);
    if (strength.common) {
      throw weak('This password is in lists of common and leaked passwords; choose another.', { reason: 'common', score: strength.score });
    }
    if (strength.score < this.settings.minScore) {
      const why = strength.warning ? ` ${strength.warning}` : '';
      throw weak(`This password is too easy to guess.${why} A few unrelated words make a strong one.`, {
        reason: 'guessable',
        score: strength.score,
        minScore: this.settings.minScore,
        suggestions: strength.suggestions,
      });
    }
    const breaches = await this.breachCount(password);
    if (breaches > 0) {
      throw weak(`This password has appeared in ${breaches.toLocaleString('en')} data breaches; choose another.`, { reason: 'breached' });
    }
  }

  /**
   * How often the password appears in Have I Been Pwned's Pwned Passwords, by k-anonymity: only the first five hex
   * characters of its SHA-1 leave this server, and the answer is padded so its size says nothing either.
   */
  private async breachCount(password: string): Promise<number> {
    const { mode, url, timeoutMs } = this.settings.breached;
    if (mode === 'off') return 0;
    const sha1 = createHash('sha1').update(password, 'utf8').digest('hex').toUpperCase();
    try {
      const res = await fetch(`${url}/range/${sha1.slice(0, 5)}`, {
        headers: { 'Add-Padding': 'true', 'User-Agent': 'authkit' },
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!res.ok) throw new Error(`the range API answered ${res.status}`);
      const suffix = sha1.slice(5);
      for (const line of (await res.text()).split('\n')) {
        const [hash, count] = line.trim().split(':');
        if (hash === suffix) return Number(count) || 0;
      }
      return 0;
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      if (mode === 'fail-open') {
        this.logger.warn({ err: reason }, 'breached-password check failed; the password was accepted unchecked (BREACHED_PASSWORD_CHECK=fail-open)');
        return 0;
      }
      throw new AppError('breach_check_unavailable', {
        cause: err,
        headers: { 'Retry-After': '5' },
      });
    }
  }
}
