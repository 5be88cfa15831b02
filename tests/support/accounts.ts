// Creates throwaway accounts for tests, each with names no other test uses.
import { randomBytes } from 'node:crypto';
import type { Express } from 'express';
import request from 'supertest';
import { expect } from 'vitest';

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

export function bearer(token: string): [string, string] {
  return ['Authorization', `Bearer ${token}`];
}

/** A JSON value as a base64url JWT segment, for forging tokens by hand. */
export function jwtSegment(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}
