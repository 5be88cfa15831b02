// Device cookies, OWASP's answer to "lock accounts after failed logins without letting anyone lock a victim out":
// a browser that signed in to an account before keeps its own budget of attempts while the account is locked for
// everyone else, so guessing a victim's password from many addresses stops the guesser, not the victim.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { AppError } from '../../core/errors.js';
import type { FailureLockout } from '../../core/failure-lockout.js';

export const DEVICE_COOKIE = 'authkit_device';
/** How long a browser keeps its device cookie. */
export const DEVICE_COOKIE_MAX_AGE_MS = 180 * 24 * 60 * 60 * 1000;
/** Wrong passwords one trusted browser may send while its account is locked to everyone else. */
export const DEVICE_FAILURES_MAX = 5;
const NONCE = /^[A-Za-z0-9_-]{22}$/;

export class TrustedDevices {
  constructor(private readonly key: Buffer) {}

  /** A cookie value naming a fresh device for `userId`: `<nonce>.<mac>`, bound to the user without naming them. */
  issue(userId: string): string {
    const nonce = randomBytes(16).toString('base64url');
    return `${nonce}.${this.mac(userId, nonce)}`;
  }

  /** The device's id when `cookie` is one this server issued for `userId`; otherwise undefined. */
  recognise(cookie: string | undefined, userId: string): string | undefined {
    const [nonce, mac, ...rest] = cookie?.split('.') ?? [];
    if (!nonce || !mac || rest.length > 0 || !NONCE.test(nonce)) return undefined;
    const expected = Buffer.from(this.mac(userId, nonce));
    const given = Buffer.from(mac);
    return given.length === expected.length && timingSafeEqual(given, expected) ? nonce : undefined;
  }

  private mac(userId: string, nonce: string): string {
    return createHmac('sha256', this.key).update(`${userId}.${nonce}`).digest('base64url');
  }
}

/** The counter one login attempt spends. */
interface Counter {
  lockout: FailureLockout;
  subject: string;
}

/**
 * Failed logins per account, across every address and instance. Past the limit the account answers 429 to everyone,
 * except a browser whose device cookie says it signed in to this account before: that one spends its own, smaller
 * budget instead. Unknown names are counted exactly like accounts, so the answers say nothing about which exist.
 */
export class LoginThrottle {
  constructor(
    private readonly accounts: FailureLockout,
    private readonly devices: FailureLockout,
    readonly trusted: TrustedDevices,
    /** RATE_LIMIT_FAIL_OPEN: while the store is unreachable, let logins through uncounted rather than answer 503. */
    private readonly failOpen: boolean,
  ) {}

  counterFor(user: { id: string } | null, identifier: string, deviceCookie: string | undefined): Counter {
    const device = user ? this.trusted.recognise(deviceCookie, user.id) : undefined;
    if (device) return { lockout: this.devices, subject: device };
    return { lockout: this.accounts, subject: user ? `user:${user.id}` : `name:${identifier}` };
  }

  /**
   * Spends one attempt before the password is compared, or answers 429 when the budget is spent. Counting first is
   * what keeps the limit exact: a burst of parallel guesses, on one instance or many, gets at most the budget's
   * number of comparisons. A right password gives its attempt back (`succeeded`).
   */
  async attempt({ lockout, subject }: Counter): Promise<void> {
    const { allowed, lockedMs } = await this.unlessStoreDown(() => lockout.reserve(subject), { allowed: true, lockedMs: 0 });
    if (allowed) return;
    const seconds = Math.ceil(lockedMs / 1000);
    throw new AppError(
      'login_throttled',
      `Too many failed sign-ins for this account. Try again in ${Math.ceil(seconds / 60)} minutes, or from a browser that signed in to it before.`,
      { headers: { 'Retry-After': String(seconds) }, details: { retryAfterSeconds: seconds } },
    );
  }

  /**
   * The password was right: the attempt is given back. A device starts again; the account's count keeps the other
   * failures and runs out on its own (a success does not hand a guesser a fresh budget).
   */
  async succeeded({ lockout, subject }: Counter): Promise<void> {
    if (lockout === this.devices) await this.unlessStoreDown(() => lockout.clear(subject), undefined);
    else await this.unlessStoreDown(() => lockout.refund(subject), undefined);
  }

  private async unlessStoreDown<T>(step: () => Promise<T>, fallback: T): Promise<T> {
    try {
      return await step();
    } catch (err) {
      if (this.failOpen && err instanceof AppError && err.code === 'service_unavailable') return fallback;
      throw err;
    }
  }
}

/** One cookie's value from the request's Cookie header, without a parser for the rest. */
export function readCookie(req: Request, name: string): string | undefined {
  for (const pair of req.headers.cookie?.split(';') ?? []) {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
  }
  return undefined;
}
