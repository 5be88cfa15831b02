// Single-use secrets sent by email: long link tokens (verify an address, reset a password) and short sign-in
// codes. Only keyed hashes are stored; a code also counts its wrong guesses.
import { randomBytes, randomInt, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import type { Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import type { VersionedHmac } from '../keys/purpose-keys.js';

export type LinkPurpose = 'verify_email' | 'reset_password';

export const LINK_TTL_MS: Record<LinkPurpose, number> = { verify_email: 24 * 60 * 60_000, reset_password: 30 * 60_000 };
export const CODE_TTL_MS = 10 * 60_000;
/** Wrong guesses one code survives; the next right guess after them is refused too. */
export const CODE_ATTEMPTS = 5;
const LINK_TOKEN = /^[A-Za-z0-9_-]{43}$/;

function invalidLink(): AppError {
  return new AppError('invalid_token', 'This link is not valid: it may have expired, been used already, or been replaced by a newer one.');
}

function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

export class EmailTokens {
  constructor(
    private readonly prisma: Prisma,
    private readonly hmac: VersionedHmac,
    private readonly clock: Clock,
  ) {}

  /** A new link token; it replaces the user's unused ones of the same purpose. */
  async issueLink(userId: string, purpose: LinkPurpose, email: string): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    const now = this.clock.now();
    await this.prisma.$transaction([
      this.prisma.emailToken.deleteMany({ where: { userId, purpose, usedAt: null } }),
      this.prisma.emailToken.create({
        data: { userId, purpose, email, tokenHash: this.hmac.digest(token), createdAt: new Date(now), expiresAt: new Date(now + LINK_TTL_MS[purpose]) },
      }),
    ]);
    return token;
  }

  /** The user and address a valid, unused link token names, without spending it (to check a new password first). */
  async peekLink(token: string, purpose: LinkPurpose): Promise<{ id: string; userId: string; email: string }> {
    if (!LINK_TOKEN.test(token)) throw invalidLink();
    const row = await this.prisma.emailToken.findFirst({
      where: { tokenHash: { in: this.hmac.candidates(token) }, purpose, usedAt: null, expiresAt: { gt: new Date(this.clock.now()) } },
      select: { id: true, userId: true, email: true },
    });
    if (!row) throw invalidLink();
    return row;
  }

  /** Spends a link token: of two requests with one token, only one gets through. */
  async consumeLink(token: string, purpose: LinkPurpose): Promise<{ userId: string; email: string }> {
    const row = await this.peekLink(token, purpose);
    const { count } = await this.prisma.emailToken.updateMany({ where: { id: row.id, usedAt: null }, data: { usedAt: new Date(this.clock.now()) } });
    if (count === 0) throw invalidLink();
    return row;
  }

  /** A new six-digit sign-in code for the address; it replaces the user's unused ones. */
  async issueCode(userId: string, email: string): Promise<string> {
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    const id = randomUUID();
    const now = this.clock.now();
    await this.prisma.$transaction([
      this.prisma.emailToken.deleteMany({ where: { userId, purpose: 'sign_in_code', usedAt: null } }),
      this.prisma.emailToken.create({
        data: { id, userId, purpose: 'sign_in_code', email, tokenHash: this.hmac.digest(`${id}:${code}`), createdAt: new Date(now), expiresAt: new Date(now + CODE_TTL_MS) },
      }),
    ]);
    return code;
  }

  /**
   * Spends the address's current code when `code` matches; undefined otherwise (no code, expired, used, out of
   * guesses, or wrong, which costs one guess). The same work and answer whether or not the address has an account.
   */
  async consumeCode(email: string, code: string): Promise<string | undefined> {
    const row = await this.prisma.emailToken.findFirst({
      where: { email, purpose: 'sign_in_code', usedAt: null, expiresAt: { gt: new Date(this.clock.now()) }, attempts: { lt: CODE_ATTEMPTS } },
      orderBy: { createdAt: 'desc' },
    });
    if (!row) return undefined;
    if (!this.hmac.candidates(`${row.id}:${code}`).some((candidate) => sameHash(candidate, row.tokenHash))) {
      await this.prisma.emailToken.updateMany({ where: { id: row.id }, data: { attempts: { increment: 1 } } });
      return undefined;
    }
    const { count } = await this.prisma.emailToken.updateMany({ where: { id: row.id, usedAt: null, attempts: { lt: CODE_ATTEMPTS } }, data: { usedAt: new Date(this.clock.now()) } });
    return count === 1 ? row.userId : undefined;
  }
}

/** Deletes tokens that expired or were used more than a day ago; safe on every instance at once. Returns how many. */
export async function pruneEmailTokens(prisma: Prisma, clock: Clock): Promise<number> {
  const cutoff = new Date(clock.now() - 24 * 60 * 60_000);
  const { count } = await prisma.emailToken.deleteMany({ where: { OR: [{ expiresAt: { lt: cutoff } }, { usedAt: { lt: cutoff } }] } });
  return count;
}
