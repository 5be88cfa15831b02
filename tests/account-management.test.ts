import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { bearer, register, registerAndLogin, uniqueName } from './support/accounts.js';
import { buildApp, useBackends } from './support/test-app.js';

describe('the signed-in user: /me and /sessions', () => {
  const backends = useBackends();

  it('when the user reads /me, then the public user comes back, saying the account has a password', async () => {
    const { app } = buildApp(backends);
    const account = await registerAndLogin(app);
    const res = await request(app)
      .get('/me')
      .set(...bearer(account.accessToken));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: account.id, username: account.username, email: account.email, roles: ['user'], hasPassword: true });
  });

  it('when the username changes, then no password is needed and the new name logs in', async () => {
    const { app } = buildApp(backends);
    const account = await registerAndLogin(app);
    const username = uniqueName('renamed');
    const res = await request(app)
      .patch('/me')
      .set(...bearer(account.accessToken))
      .send({ username });
    expect(res.status).toBe(200);
    expect(res.body.username).toBe(username);
    expect((await request(app).post('/login').send({ username, password: account.password })).status).toBe(200);
  });

  it('when the password or email changes without the current password, then 400 naming it; with a wrong one, 401; nothing changes', async () => {
    const { app } = buildApp(backends);
    const account = await registerAndLogin(app);
    const missing = await request(app)
      .patch('/me')
      .set(...bearer(account.accessToken))
      .send({ password: 'a brand new password' });
    const wrong = await request(app)
      .patch('/me')
      .set(...bearer(account.accessToken))
      .send({ password: 'a brand new password', currentPassword: 'not it at all' });
    const missingForEmail = await request(app)
      .patch('/me')
      .set(...bearer(account.accessToken))
      .send({ email: `new-${account.email}` });
    for (const res of [missing, missingForEmail]) {
      expect(res.status).toBe(400);
      expect(res.body.error.details).toEqual([{ path: 'currentPassword', message: 'required to change the email or the password' }]);
    }
    expect(wrong.status).toBe(401);
    expect((await request(app).post('/login').send({ username: account.username, password: account.password })).status).toBe(200);
  });

  it('when the password changes, then other sessions end and the current one carries on', async () => {
    const { app } = buildApp(backends);
    const account = await registerAndLogin(app);
    const other = await request(app).post('/login').send({ username: account.username, password: account.password });
    const res = await request(app)
      .patch('/me')
      .set(...bearer(account.accessToken))
      .send({ password: 'a brand new password', currentPassword: account.password });
    expect(res.status).toBe(200);
    expect(
      (
        await request(app)
          .get('/me')
          .set(...bearer(account.accessToken))
      ).status,
    ).toBe(200);
    expect(
      (
        await request(app)
          .get('/me')
          .set(...bearer(other.body.access_token))
      ).status,
    ).toBe(401);
    expect((await request(app).post('/refresh').send({ refresh_token: other.body.refresh_token })).status).toBe(401);
    expect((await request(app).post('/login').send({ username: account.username, password: 'a brand new password' })).status).toBe(200);
  });

  it("when the email changes to another user's, then the answer does not say so and the account keeps its address", async () => {
    const { app } = buildApp(backends);
    const taken = await register(app);
    const account = await registerAndLogin(app);
    const res = await request(app)
      .patch('/me')
      .set(...bearer(account.accessToken))
      .send({ email: taken.email.toUpperCase(), currentPassword: account.password });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ email: account.email, pendingEmail: taken.email });
    expect(
      (
        await request(app)
          .get('/me')
          .set(...bearer(account.accessToken))
      ).body.email,
    ).toBe(account.email);
  });

  it.each([
    ['no change at all', {}],
    ['an extra field', { username: 'fine_name', roles: ['admin'] }],
    ['a wrong type', { username: ['array'] }],
  ])('when PATCH /me has %s, then 400', async (_case, body) => {
    const { app } = buildApp(backends);
    const account = await registerAndLogin(app);
    const res = await request(app)
      .patch('/me')
      .set(...bearer(account.accessToken))
      .send(body);
    expect(res.status).toBe(400);
  });

  it('when the account is deleted with the right password, then it is gone and its tokens die', async () => {
    const { app } = buildApp(backends);
    const account = await registerAndLogin(app);
    const wrong = await request(app)
      .delete('/me')
      .set(...bearer(account.accessToken))
      .send({ password: 'not it at all' });
    expect(wrong.status).toBe(401);
    const res = await request(app)
      .delete('/me')
      .set(...bearer(account.accessToken))
      .send({ password: account.password });
    expect(res.status).toBe(204);
    expect(
      (
        await request(app)
          .get('/me')
          .set(...bearer(account.accessToken))
      ).status,
    ).toBe(401);
    expect((await request(app).post('/login').send({ username: account.username, password: account.password })).status).toBe(401);
    expect(await backends.db.prisma.session.count({ where: { userId: account.id } })).toBe(0);
  });

  it('when sessions are listed, then each active one shows, with the caller marked current', async () => {
    const { app } = buildApp(backends);
    const account = await registerAndLogin(app);
    await request(app).post('/login').set('User-Agent', 'PhoneApp/1.0').send({ username: account.username, password: account.password });
    const res = await request(app)
      .get('/sessions')
      .set(...bearer(account.accessToken));
    expect(res.status).toBe(200);
    expect(res.body.sessions).toHaveLength(2);
    const sessions = res.body.sessions as Array<{ current: boolean; userAgent: string }>;
    expect(sessions.filter((session) => session.current)).toHaveLength(1);
    expect(sessions.map((session) => session.userAgent)).toContain('PhoneApp/1.0');
    expect(res.body.sessions[0]).toEqual(
      expect.objectContaining({ id: expect.any(String), createdAt: expect.any(String), lastUsedAt: expect.any(String), ip: expect.any(String) }),
    );
  });

  it('when one session is revoked, then its tokens die, others live, and it leaves the list', async () => {
    const { app } = buildApp(backends);
    const account = await registerAndLogin(app);
    const phone = await request(app).post('/login').send({ username: account.username, password: account.password });
    const list = await request(app)
      .get('/sessions')
      .set(...bearer(account.accessToken));
    const phoneSession = (list.body.sessions as Array<{ id: string; current: boolean }>).find((session) => !session.current);

    const res = await request(app)
      .delete(`/sessions/${phoneSession?.id}`)
      .set(...bearer(account.accessToken));
    expect(res.status).toBe(204);
    expect(
      (
        await request(app)
          .get('/me')
          .set(...bearer(phone.body.access_token))
      ).status,
    ).toBe(401);
    expect((await request(app).post('/refresh').send({ refresh_token: phone.body.refresh_token })).status).toBe(401);
    expect(
      (
        await request(app)
          .get('/me')
          .set(...bearer(account.accessToken))
      ).status,
    ).toBe(200);
    const after = await request(app)
      .get('/sessions')
      .set(...bearer(account.accessToken));
    expect(after.body.sessions).toHaveLength(1);
  });

  it("when a user revokes another user's session or a malformed id, then 404 or 400, and the session lives", async () => {
    const { app } = buildApp(backends);
    const victim = await registerAndLogin(app);
    const attacker = await registerAndLogin(app);
    const victimSessions = await request(app)
      .get('/sessions')
      .set(...bearer(victim.accessToken));
    const res = await request(app)
      .delete(`/sessions/${victimSessions.body.sessions[0].id}`)
      .set(...bearer(attacker.accessToken));
    const malformed = await request(app)
      .delete('/sessions/not-a-uuid')
      .set(...bearer(attacker.accessToken));
    expect(res.status).toBe(404);
    expect(malformed.status).toBe(400);
    expect(
      (
        await request(app)
          .get('/me')
          .set(...bearer(victim.accessToken))
      ).status,
    ).toBe(200);
  });
});
