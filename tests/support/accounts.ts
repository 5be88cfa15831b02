// Creates throwaway accounts for tests, each with names no other test uses.
import { randomBytes } from 'node:crypto';
import type { Express } from 'express';
import request from 'supertest';
import { expect } from 'vitest';
import { type AdminBootstrap, ensureAdmin } from '../../src/features/admin/admin-service.js';
import type { AppDeps } from '../../src/composition.js';
import { readOutbox } from '../../src/features/email/transport.js';
import { builtWith } from './test-app.js';

export interface TestAccount {
  username: string;
  email: string;
  password: string;
  id: string;
}

export interface LoggedIn extends TestAccount {
  accessToken: string;
  refreshToken: string;
}

export function uniqueName(prefix = 'user'): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

export async function register(app: Express, overrides: Partial<Omit<TestAccount, 'id'>> = {}): Promise<TestAccount> {
  const username = overrides.username ?? uniqueName();
  const account = { username, email: overrides.email ?? `${username}@example.com`, password: overrides.password ?? 'correct horse battery' };
  const res = await request(app).post('/register').send(account);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { ...account, email: account.email.toLowerCase(), id: res.body.id as string };
}

export async function login(app: Express, account: Pick<TestAccount, 'username' | 'password'>): Promise<{ accessToken: string; refreshToken: string }> {
  const res = await request(app).post('/login').send({ username: account.username, password: account.password });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return { accessToken: res.body.access_token as string, refreshToken: res.body.refresh_token as string };
}

export async function registerAndLogin(app: Express, overrides: Partial<Omit<TestAccount, 'id'>> = {}): Promise<LoggedIn> {
  const account = await register(app, overrides);
  return { ...account, ...(await login(app, account)) };
}

/** Creates an administrator straight in the database, as ADMIN_EMAIL at startup does (see ensureAdmin). */
export function createAdmin(deps: Pick<AppDeps, 'db' | 'passwordPool' | 'config' | 'clock'>, input: AdminBootstrap): ReturnType<typeof ensureAdmin> {
  return ensureAdmin(deps.db.prisma, (password) => deps.passwordPool.hash(password, deps.config.bcryptCost), input, deps.clock);
}

export function bearer(token: string): [string, string] {
  return ['Authorization', `Bearer ${token}`];
}

/** A JSON value as a base64url JWT segment, for forging tokens by hand. */
export function jwtSegment(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/**
 * Marks the account's address as proven, as opening the emailed link does (the link's own flow is tested in
 * email.test.ts): adding a passkey, an API key or two-factor needs it.
 */
export async function proveAddress(app: Express, account: Pick<TestAccount, 'id'>): Promise<void> {
  const { db } = builtWith(app);
  await db.prisma.user.update({ where: { id: account.id }, data: { emailVerifiedAt: new Date() } });
}

/**
 * A second proof in this session, the way a person gives one: a code mailed to the account's address (read from the
 * outbox the test app writes to), sent to POST /reauthenticate/email-code. Resolves with the new access token, whose
 * amr holds two factors, as enrolling a first second factor needs.
 */
export async function emailedCodeStepUp(app: Express, account: Pick<TestAccount, 'email'>, accessToken: string): Promise<string> {
  const { config } = builtWith(app);
  const before = new Set((await readOutbox(config.email.outboxDir, 500)).map((mail) => mail.id));
  const sent = await request(app)
    .post('/reauthenticate/email-code/send')
    .set(...bearer(accessToken));
  expect(sent.status, JSON.stringify(sent.body)).toBe(202);
  let code: string | undefined;
  await expect
    .poll(
      async () => {
        const mail = (await readOutbox(config.email.outboxDir, 500)).find(
          (entry) => !before.has(entry.id) && entry.to === account.email && /confirmation code/.test(entry.subject),
        );
        code = mail ? /^\s+(\d{6})\s*$/m.exec(mail.text)?.[1] : undefined;
        return code;
      },
      { timeout: 10_000 },
    )
    .toBeDefined();
  const res = await request(app)
    .post('/reauthenticate/email-code')
    .set(...bearer(accessToken))
    .send({ code });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.access_token as string;
}

/** A signed-in account whose address is proven and whose access token carries two proofs: ready to enrol factors. */
export async function readyToEnrol(app: Express, overrides: Partial<Omit<TestAccount, 'id'>> = {}): Promise<LoggedIn> {
  const account = await registerAndLogin(app, overrides);
  await proveAddress(app, account);
  return { ...account, accessToken: await emailedCodeStepUp(app, account, account.accessToken) };
}
