// Single-use secrets sent by email: long link tokens (verify an address, reset a password) and short sign-in
// codes. Only keyed hashes are stored; a code also counts its wrong guesses. Each one is bound to the address it was
// sent to and dies with it.
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { equalInConstantTime } from '../../core/constant-time.js';
import type { Clock } from '../../core/clock.js';
import type { Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import type { Prisma as PrismaTypes } from '../../generated/prisma/client.js';
import type { VersionedHmac } from '../keys/purpose-keys.js';

export type LinkPurpose = 'verify_email' | 'reset_password';
/** `step_up_code`: a code a signed-in user asks for to prove the mailbox again (POST /reauthenticate/email-code). */
export type CodePurpose = 'sign_in_code' | 'step_up_code';
type TokenPurpose = LinkPurpose | CodePurpose;
/** The database inside a transaction. */
export type Tx = PrismaTypes.TransactionClient;

export const LINK_TTL_MS: Record<LinkPurpose, number> = { verify_email: 24 * 60 * 60_000, reset_password: 30 * 60_000 };
export const CODE_TTL_MS = 10 * 60_000;
/** Wrong guesses one code survives; the next right guess after them is refused too. */
export const CODE_ATTEMPTS = 5;
const LINK_TOKEN = /^[A-Za-z0-9_-]{43}$/;

function invalidLink(): AppError {
  return new AppError('link_invalid');
}

/**
 * Locks the account's row until the transaction ends and returns its address now (undefined: no such account).
 * Issuing a token and changing the address both take this lock, so for one account they happen one at a time.
 */
export async function lockAccount(tx: Tx, userId: string): Promise<string | undefined> {
  const rows = await tx.$queryRaw<Array<{ email: string }>>`SELECT email FROM users WHERE id = ${userId}::uuid FOR UPDATE`;
  return rows[0]?.email;
}

export class EmailTokens {
  constructor(
    private readonly prisma: Prisma,
    private readonly hmac: VersionedHmac,
    private readonly clock: Clock,
  ) {}

  /**
   * A new link token to `email`; it replaces the user's unused ones of the same purpose. `accountEmail` is the
   * account's address the caller saw (the old one, for a change of address): undefined, and nothing stored, when it
   * is no longer the account's address.
   */
  async issueLink(userId: string, purpose: LinkPurpose, email: string, accountEmail = email): Promise<string | undefined> {
    const token = randomBytes(32).toString('base64url');
    const issued = await this.replace(userId, purpose, email, accountEmail, { tokenHash: this.hmac.digest(token), ttlMs: LINK_TTL_MS[purpose] });
    return issued ? token : undefined;
  }

  /**
   * The user and address a valid, unused link token names, without spending it (to check a new password first).
   * A reset link works only while the address it was sent to is still the account's; a confirmation link to
   * another address is a change of address (every one pending dies when the address changes, see revokeAll).
   */
  async peekLink(token: string, purpose: LinkPurpose, tx: Tx = this.prisma): Promise<{ id: string; userId: string; email: string }> {
    if (!LINK_TOKEN.test(token)) throw invalidLink();
    const row = await tx.emailToken.findFirst({
      where: { tokenHash: { in: this.hmac.candidates(token) }, purpose, usedAt: null, expiresAt: { gt: new Date(this.clock.now()) } },
      select: { id: true, userId: true, email: true, user: { select: { email: true } } },
    });
    if (!row || (purpose === 'reset_password' && row.user.email !== row.email)) throw invalidLink();
    return { id: row.id, userId: row.userId, email: row.email };
  }

  /** Spends a link token: of two requests with one token, only one gets through. */
  async consumeLink(token: string, purpose: LinkPurpose, tx: Tx = this.prisma): Promise<{ userId: string; email: string }> {
    const row = await this.peekLink(token, purpose, tx);
    const { count } = await tx.emailToken.updateMany({ where: { id: row.id, usedAt: null }, data: { usedAt: new Date(this.clock.now()) } });
    if (count === 0) throw invalidLink();
    return row;
  }

  /** A new six-digit sign-in code for the account's address; it replaces the user's unused ones (see issueLink). */
  async issueCode(userId: string, email: string, purpose: CodePurpose = 'sign_in_code'): Promise<string | undefined> {
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    const id = randomUUID();
    const issued = await this.replace(userId, purpose, email, email, { id, tokenHash: this.hmac.digest(`${id}:${code}`), ttlMs: CODE_TTL_MS });
    return issued ? code : undefined;
  }

  /**
   * Spends the address's current code when `code` matches; undefined otherwise (no code, expired, used, out of
   * guesses, sent to an address the account no longer has, or wrong, which costs one guess). The same work and
   * answer whether or not the address has an account.
   */
  async consumeCode(email: string, code: string, purpose: CodePurpose = 'sign_in_code'): Promise<string | undefined> {
    const row = await this.prisma.emailToken.findFirst({
      where: { email, purpose, usedAt: null, expiresAt: { gt: new Date(this.clock.now()) }, attempts: { lt: CODE_ATTEMPTS }, user: { email } },
      orderBy: { createdAt: 'desc' },
    });
    if (!row) return undefined;
    if (!this.hmac.candidates(`${row.id}:${code}`).some((candidate) => equalInConstantTime(candidate, row.tokenHash))) {
      await this.prisma.emailToken.updateMany({ where: { id: row.id }, data: { attempts: { increment: 1 } } });
      return undefined;
    }
    const { count } = await this.prisma.emailToken.updateMany({
      where: { id: row.id, usedAt: null, attempts: { lt: CODE_ATTEMPTS } },
      data: { usedAt: new Date(this.clock.now()) },
    });
    return count === 1 ? row.userId : undefined;
  }

  /** Ends every unused link and code of the account (its address changed: they were sent to the old one). */
  async revokeAll(userId: string, tx: Tx = this.prisma): Promise<void> {
    await tx.emailToken.deleteMany({ where: { userId, usedAt: null } });
  }

  /**
   * Stores a token in place of the account's unused ones of its purpose, under the account's lock: requests racing
   * for one account take turns, so each one's delete sees the token of the one before and only the newest survives.
   */
  private async replace(
    userId: string,
    purpose: TokenPurpose,
    email: string,
    accountEmail: string,
    token: { id?: string; tokenHash: string; ttlMs: number },
  ): Promise<boolean> {
    const now = this.clock.now();
    return this.prisma.$transaction(async (tx) => {
      if ((await lockAccount(tx, userId)) !== accountEmail) return false;
      await tx.emailToken.deleteMany({ where: { userId, purpose, usedAt: null } });
      await tx.emailToken.create({
        data: { id: token.id, userId, purpose, email, tokenHash: token.tokenHash, createdAt: new Date(now), expiresAt: new Date(now + token.ttlMs) },
      });
      return true;
    });
  }
}

/** Deletes tokens that expired or were used more than a day ago; safe on every instance at once. Returns how many. */
export async function pruneEmailTokens(prisma: Prisma, clock: Clock): Promise<number> {
  const cutoff = new Date(clock.now() - 24 * 60 * 60_000);
  const { count } = await prisma.emailToken.deleteMany({ where: { OR: [{ expiresAt: { lt: cutoff } }, { usedAt: { lt: cutoff } }] } });
  return count;
}
