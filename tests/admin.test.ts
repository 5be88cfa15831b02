import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import type { AppDeps } from '../src/composition.js';
import { bearer, createAdmin, login, register, registerAndLogin, uniqueName } from './support/accounts.js';
import { buildApp, builtWith, testConfig, useBackends } from './support/test-app.js';

describe('administration', () => {
  const backends = useBackends();

  async function adminSession(app: Parameters<typeof request>[0], deps: AppDeps) {
    const username = uniqueName('admin');
    const password = 'admin password 123';
    await createAdmin(deps, { email: `${username}@example.com`, username, password });
    return { username, ...(await login(app as never, { username, password })) };
  }

  it('when a non-admin calls any admin route, then 403 forbidden', async () => {
    const { app } = buildApp(backends);
    const user = await registerAndLogin(app);
    const target = await register(app);
    const calls = [
      request(app).get('/admin/users'),
      request(app)
        .patch(`/admin/users/${target.id}/roles`)
        .send({ roles: ['admin'] }),
      request(app).post(`/admin/users/${target.id}/disable`),
      request(app).post(`/admin/users/${target.id}/enable`),
      request(app).delete(`/admin/users/${target.id}/sessions`),
    ];
    for (const call of calls) {
      const res = await call.set(...bearer(user.accessToken));
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('forbidden');
    }
  });

  it('when an admin searches users, then matching users come back paginated with a total', async () => {
    const { app, deps } = buildApp(backends);
    const admin = await adminSession(app, deps);
    const tag = uniqueName('findme');
    for (let i = 0; i < 3; i++) await register(app, { username: `${tag}${i}` });
    const page1 = await request(app)
      .get('/admin/users')
      .query({ q: tag.toUpperCase(), pageSize: 2 })
      .set(...bearer(admin.accessToken));
    const page2 = await request(app)
      .get('/admin/users')
      .query({ q: tag, pageSize: 2, page: 2 })
      .set(...bearer(admin.accessToken));
    expect(page1.status).toBe(200);
    expect(page1.body.total).toBe(3);
    expect(page1.body.users).toHaveLength(2);
    expect(page2.body.users).toHaveLength(1);
    expect(page1.body.users[0]).toEqual(expect.objectContaining({ disabled: false, roles: ['user'] }));
    const bad = await request(app)
      .get('/admin/users')
      .query({ pageSize: 1000 })
      .set(...bearer(admin.accessToken));
    expect(bad.status).toBe(400);
  });

  it('when an admin grants a role, then the user gets it at the next refresh and the old token dies', async () => {
    const clock = new ManualClock();
    const { app, deps } = buildApp(backends, { clock });
    const admin = await adminSession(app, deps);
    const user = await registerAndLogin(app);
    const res = await request(app)
      .patch(`/admin/users/${user.id}/roles`)
      .set(...bearer(admin.accessToken))
      .send({ roles: ['user', 'admin'] });
    expect(res.status).toBe(200);
    expect(res.body.roles).toEqual(['admin', 'user']);
    expect(
      (
        await request(app)
          .get('/admin/users')
          .set(...bearer(user.accessToken))
      ).status,
    ).toBe(401);
    clock.advance(1);
    const refreshed = await request(app).post('/refresh').send({ refresh_token: user.refreshToken });
    expect(refreshed.body.user.roles).toEqual(['admin', 'user']);
    expect(
      (
        await request(app)
          .get('/admin/users')
          .set(...bearer(refreshed.body.access_token))
      ).status,
    ).toBe(200);
  });

  it('when an admin names an unknown role or a malformed id, then 400; an unknown user, 404', async () => {
    const { app, deps } = buildApp(backends);
    const admin = await adminSession(app, deps);
    const user = await register(app);
    const unknownRole = await request(app)
      .patch(`/admin/users/${user.id}/roles`)
      .set(...bearer(admin.accessToken))
      .send({ roles: ['wizard'] });
    const malformed = await request(app)
      .patch('/admin/users/123/roles')
      .set(...bearer(admin.accessToken))
      .send({ roles: ['user'] });
    const missing = await request(app)
      .patch('/admin/users/00000000-0000-4000-8000-000000000000/roles')
      .set(...bearer(admin.accessToken))
      .send({ roles: ['user'] });
    expect(unknownRole.status).toBe(400);
    expect(malformed.status).toBe(400);
    expect(missing.status).toBe(404);
  });

  it('when an admin disables a user, then their live tokens die at once and they cannot log in until enabled', async () => {
    const { app, deps } = buildApp(backends);
    const admin = await adminSession(app, deps);
    const user = await registerAndLogin(app);

    const disabled = await request(app)
      .post(`/admin/users/${user.id}/disable`)
      .set(...bearer(admin.accessToken));
    expect(disabled.status).toBe(200);
    expect(disabled.body.disabled).toBe(true);
    expect(
      (
        await request(app)
          .get('/me')
          .set(...bearer(user.accessToken))
      ).status,
    ).toBe(401);
    expect((await request(app).post('/refresh').send({ refresh_token: user.refreshToken })).status).toBe(401);
    expect((await request(app).post('/login').send({ username: user.username, password: user.password })).status).toBe(401);

    const enabled = await request(app)
      .post(`/admin/users/${user.id}/enable`)
      .set(...bearer(admin.accessToken));
    expect(enabled.body.disabled).toBe(false);
    expect((await request(app).post('/login').send({ username: user.username, password: user.password })).status).toBe(200);
  });

  it('when an admin tries to disable themselves, then 409 and nothing changes', async () => {
    const { app, deps } = buildApp(backends);
    const admin = await adminSession(app, deps);
    const me = await request(app)
      .get('/me')
      .set(...bearer(admin.accessToken));
    const res = await request(app)
      .post(`/admin/users/${me.body.id}/disable`)
      .set(...bearer(admin.accessToken));
    expect(res.status).toBe(409);
    expect(
      (
        await request(app)
          .get('/me')
          .set(...bearer(admin.accessToken))
      ).status,
    ).toBe(200);
  });

  it("when an admin ends another administrator's sessions, then every refresh and access token of theirs is refused, the account stays usable, and the log says who did it", async () => {
    const { app, deps } = buildApp(backends);
    const admin = await adminSession(app, deps);
    const target = await adminSession(app, deps);
    const me = await request(app)
      .get('/me')
      .set(...bearer(target.accessToken));
    const second = await login(app, { username: target.username, password: 'admin password 123' });

    const res = await request(app)
      .delete(`/admin/users/${me.body.id}/sessions`)
      .set(...bearer(admin.accessToken));

    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ended: 2 });
    for (const token of [target.accessToken, second.accessToken]) {
      expect(
        (
          await request(app)
            .get('/me')
            .set(...bearer(token))
        ).status,
      ).toBe(401);
    }
    for (const refreshToken of [target.refreshToken, second.refreshToken]) {
      expect((await request(app).post('/refresh').send({ refresh_token: refreshToken })).status).toBe(401);
    }
    // The caller's own session is untouched, and the account is not disabled: it signs in again.
    expect(
      (
        await request(app)
          .get('/admin/users')
          .set(...bearer(admin.accessToken))
      ).status,
    ).toBe(200);
    expect((await request(app).post('/login').send({ username: target.username, password: 'admin password 123' })).status).toBe(200);
    await builtWith(app).graph.audit.settled();
    const audit = await request(app)
      .get('/admin/audit')
      .query({ userId: me.body.id, type: 'session.signed_out_everywhere' })
      .set(...bearer(admin.accessToken));
    const adminId = (
      await request(app)
        .get('/me')
        .set(...bearer(admin.accessToken))
    ).body.id;
    expect(audit.body.events).toEqual([expect.objectContaining({ actorId: adminId, targetId: me.body.id, details: { sessions: 2 } })]);
  });

  it('when an admin ends the sessions of a user signed in nowhere, then 200 with none ended; an unknown user 404, a malformed id 400, a non-admin 403', async () => {
    const { app, deps } = buildApp(backends);
    const admin = await adminSession(app, deps);
    const idle = await register(app);
    const user = await registerAndLogin(app);

    const none = await request(app)
      .delete(`/admin/users/${idle.id}/sessions`)
      .set(...bearer(admin.accessToken));
    const unknown = await request(app)
      .delete('/admin/users/00000000-0000-4000-8000-000000000000/sessions')
      .set(...bearer(admin.accessToken));
    const malformed = await request(app)
      .delete('/admin/users/not-a-uuid/sessions')
      .set(...bearer(admin.accessToken));
    const forged = await request(app)
      .delete(`/admin/users/${idle.id}/sessions`)
      .set(...bearer(user.accessToken));
    const anonymous = await request(app).delete(`/admin/users/${user.id}/sessions`);

    expect(none.status).toBe(200);
    expect(none.body).toEqual({ ended: 0 });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('not_found');
    expect(malformed.status).toBe(400);
    expect(forged.status).toBe(403);
    expect(forged.body.error.code).toBe('forbidden');
    expect(anonymous.status).toBe(401);
    // The refused attempts ended nothing: the user who tried is still signed in.
    expect(
      (
        await request(app)
          .get('/me')
          .set(...bearer(user.accessToken))
      ).status,
    ).toBe(200);
    expect((await request(app).post('/refresh').send({ refresh_token: user.refreshToken })).status).toBe(200);
  });

  it('when the bootstrap email already belongs to an account, then it is never promoted, and its password is kept', async () => {
    const { app, deps } = buildApp(backends, { config: testConfig() });
    const squatter = await registerAndLogin(app);

    const result = await createAdmin(deps, { email: squatter.email, username: 'ignored', password: 'another password' });
    const adminRoute = await request(app)
      .get('/admin/users')
      .set(...bearer(squatter.accessToken));
    const login = await request(app).post('/login').send({ username: squatter.username, password: squatter.password });

    expect(result.created).toBe(false);
    expect(result.user.roles).toEqual(['user']);
    expect(adminRoute.status).toBe(403);
    expect(login.status).toBe(200);
    expect(login.body.user.roles).toEqual(['user']);
  });

  it('when a bootstrapped administrator was demoted, then the next start does not promote them again', async () => {
    const { deps } = buildApp(backends, { config: testConfig() });
    const username = uniqueName('boot');
    const bootstrap = { email: `${username}@example.com`, username, password: 'admin password 1' };
    const first = await createAdmin(deps, bootstrap);
    await deps.db.prisma.userRole.deleteMany({ where: { userId: first.user.id, roleName: 'admin' } });

    const restart = await createAdmin(deps, bootstrap);

    expect(first).toMatchObject({ created: true, user: { roles: ['admin', 'user'] } });
    expect(restart).toMatchObject({ created: false, user: { roles: ['user'] } });
  });
});
