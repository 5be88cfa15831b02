// Organizations for tests: create one, invite an address and read the emailed link, join through it, switch to it.
import type { Express } from 'express';
import request from 'supertest';
import { expect } from 'vitest';
import { readOutbox } from '../../src/features/email/transport.js';
import { bearer, type LoggedIn, registerAndLogin, uniqueName } from './accounts.js';
import { builtWith } from './test-app.js';

/** An access token's claims, read without checking its signature. */
export function claims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString('utf8')) as Record<string, unknown>;
}

export async function createOrg(app: Express, token: string, slug = uniqueName('org').replace(/_/g, '-')): Promise<{ id: string; slug: string }> {
  const res = await request(app)
    .post('/orgs')
    .set(...bearer(token))
    .send({ name: `Team ${slug}`, slug });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; slug: string };
}

/** The ids of the messages in the test app's outbox so far, to tell the next one apart. */
export async function outboxIds(app: Express): Promise<Set<string>> {
  return new Set((await readOutbox(builtWith(app).config.email.outboxDir, 500)).map((mail) => mail.id));
}

/** The invitation token from the newest invitation message to `email` that is not in `after`. */
export async function invitationToken(app: Express, email: string, after = new Set<string>()): Promise<string> {
  const { config } = builtWith(app);
  let token: string | undefined;
  await expect
    .poll(
      async () => {
        const mail = (await readOutbox(config.email.outboxDir, 500)).find(
          (entry) => !after.has(entry.id) && entry.to === email.toLowerCase() && /invited/.test(entry.subject),
        );
        token = mail ? /#invitation=(inv_[A-Za-z0-9_-]+)/.exec(mail.text)?.[1] : undefined;
        return token;
      },
      { timeout: 10_000 },
    )
    .toBeDefined();
  return token as string;
}

/** Invites `email` with `role`; the invitation as answered, and the token its message carries. */
export async function invite(app: Express, token: string, orgId: string, email: string, role = 'member') {
  const before = await outboxIds(app);
  const res = await request(app)
    .post(`/orgs/${orgId}/invitations`)
    .set(...bearer(token))
    .send({ email, role });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { invitation: res.body as { id: string }, token: await invitationToken(app, email, before) };
}

/** A new account that joined the organization with `role` through an invitation from `inviter`. */
export async function joined(app: Express, inviter: LoggedIn, orgId: string, role = 'member'): Promise<LoggedIn> {
  const member = await registerAndLogin(app);
  const { token } = await invite(app, inviter.accessToken, orgId, member.email, role);
  const res = await request(app)
    .post('/invitations/accept')
    .set(...bearer(member.accessToken))
    .send({ token });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return member;
}

/** An access token for the same session that speaks for the organization. */
export async function switchTo(app: Express, token: string, orgId: string): Promise<string> {
  const res = await request(app)
    .post(`/orgs/${orgId}/switch`)
    .set(...bearer(token));
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.access_token as string;
}
