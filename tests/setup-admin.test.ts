// The first administrator of a running embedded server, made with the one-time token it wrote to its data directory.
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { bearer, login, uniqueName } from './support/accounts.js';
import { buildApp, withOwnBackends } from './support/test-app.js';

function setup() {
  const spends: number[] = [];
  return { token: { value: 'a-setup-token-of-the-server-itself-0123456789', spend: () => Promise.resolve(void spends.push(1)) }, spends };
}

const admin = () => {
  const username = uniqueName('first');
  return { username, email: `${username}@example.com`, password: 'the first admin passphrase' };
};

describe('the first administrator of a running embedded server', () => {
  it('when the right token comes from this machine, then the administrator is made once, can reach the admin API, and the token is spent', async () => {
    await withOwnBackends(async (own) => {
      const { token, spends } = setup();
      const { app } = buildApp(own, { setupToken: token });
      const first = admin();
      const made = await request(app)
        .post('/setup/admin')
        .send({ token: token.value, ...first });
      expect(made.status).toBe(201);
      expect(made.body).toMatchObject({ username: first.username, roles: ['admin', 'user'], emailVerified: true });
      expect(spends).toHaveLength(1);
      const signedIn = await login(app, first);
      expect(
        (
          await request(app)
            .get('/admin/users')
            .set(...bearer(signedIn.accessToken))
        ).status,
      ).toBe(200);

      const again = await request(app)
        .post('/setup/admin')
        .send({ token: token.value, ...admin() });
      expect(again.status).toBe(401);
    });
  });

  it('when the token is wrong, missing, or the request came through a proxy, then nothing is made', async () => {
    await withOwnBackends(async (own) => {
      const { token } = setup();
      const { app } = buildApp(own, { setupToken: token });
      expect(
        (
          await request(app)
            .post('/setup/admin')
            .send({ token: 'guess', ...admin() })
        ).status,
      ).toBe(401);
      expect(
        (
          await request(app)
            .post('/setup/admin')
            .send({ ...admin() })
        ).status,
      ).toBe(400);
      expect(
        (
          await request(app)
            .post('/setup/admin')
            .set('X-Forwarded-For', '203.0.113.5')
            .send({ token: token.value, ...admin() })
        ).status,
      ).toBe(404);
      expect(await own.db.prisma.userRole.count({ where: { roleName: 'admin' } })).toBe(0);
    });
  });

  it('when an administrator exists already, or the address has an account, then 409 and the token stays unspent', async () => {
    await withOwnBackends(async (own) => {
      const { token, spends } = setup();
      const { app } = buildApp(own, { setupToken: token });
      const taken = admin();
      await request(app).post('/register').send(taken).expect(201);
      const refused = await request(app)
        .post('/setup/admin')
        .send({ token: token.value, ...taken, username: uniqueName('other') });
      expect(refused.status).toBe(409);
      expect(spends).toHaveLength(0);
      await request(app)
        .post('/setup/admin')
        .send({ token: token.value, ...admin() })
        .expect(201);

      const { app: second } = buildApp(own, { setupToken: setup().token });
      expect(
        (
          await request(second)
            .post('/setup/admin')
            .send({ token: setup().token.value, ...admin() })
        ).status,
      ).toBe(409);
    });
  });

  it('when the server is not embedded or has an administrator, then there is no such route', async () => {
    await withOwnBackends(async (own) => {
      const { app } = buildApp(own);
      expect(
        (
          await request(app)
            .post('/setup/admin')
            .send({ token: 'x', ...admin() })
        ).status,
      ).toBe(404);
    });
  });
});
