import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import type { RateLimitSettings } from '../src/core/config.js';
import { bearer, createAdmin, login, readyToEnrol, uniqueName } from './support/accounts.js';
import { png } from './support/images.js';
import { buildApp, freshStore, testConfig, useBackends, usingRedis } from './support/test-app.js';

const apiKey = (key: string): [string, string] => ['X-API-Key', key];

describe('API keys', () => {
  const backends = useBackends();

  async function createKey(app: Parameters<typeof request>[0], token: string, body: Record<string, unknown> = {}) {
    const res = await request(app)
      .post('/api-keys')
      .set(...bearer(token))
      .send({ name: 'ci', ...body });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body as { id: string; key: string; prefix: string; scopes: string[] };
  }

  it('when a key is created, then it is shown once with a prefix, and the list never shows the secret', async () => {
    const { app } = buildApp(backends);
    const user = await readyToEnrol(app);
    const created = await createKey(app, user.accessToken, { scopes: ['images:read', 'images:write'] });
    expect(created.key).toMatch(/^ak_[A-Za-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
    expect(created.key.startsWith(`ak_${created.prefix}_`)).toBe(true);
    const list = await request(app)
      .get('/api-keys')
      .set(...bearer(user.accessToken));
    expect(list.body.keys).toEqual([
      {
        id: created.id,
        name: 'ci',
        prefix: created.prefix,
        scopes: ['images:read', 'images:write'],
        createdAt: expect.any(String),
        lastUsedAt: null,
        expiresAt: null,
      },
    ]);
    // The secret is everything after the prefix: base64url may itself contain underscores.
    const secret = created.key.slice(`ak_${created.prefix}_`.length);
    expect(JSON.stringify(list.body)).not.toContain(secret);
    const stored = await backends.db.prisma.apiKey.findUniqueOrThrow({ where: { id: created.id } });
    expect(JSON.stringify(stored)).not.toContain(secret);
  });

  it('when a key with the scope is used, then it works in place of a Bearer token and records last use', async () => {
    const { app } = buildApp(backends);
    const user = await readyToEnrol(app);
    const { key, id } = await createKey(app, user.accessToken, { scopes: ['images:read', 'images:write', 'profile:read'] });
    const upload = await request(app)
      .post('/images')
      .set(...apiKey(key))
      .attach('image', png(), 'from-ci.png');
    const list = await request(app)
      .get('/images')
      .set(...apiKey(key));
    const me = await request(app)
      .get('/me')
      .set(...apiKey(key));
    expect(upload.status).toBe(201);
    expect(upload.body.ownerId).toBe(user.id);
    expect(list.body.total).toBe(1);
    expect(me.body.id).toBe(user.id);
    await expect.poll(async () => (await backends.db.prisma.apiKey.findUniqueOrThrow({ where: { id } })).lastUsedAt).not.toBeNull();
  });

  it('when a key lacks the scope, then 403', async () => {
    const { app } = buildApp(backends);
    const user = await readyToEnrol(app);
    const { key } = await createKey(app, user.accessToken, { scopes: ['images:read'] });
    const upload = await request(app)
      .post('/images')
      .set(...apiKey(key))
      .attach('image', png(), 'a.png');
    const me = await request(app)
      .get('/me')
      .set(...apiKey(key));
    expect(upload.status).toBe(403);
    expect(me.status).toBe(403);
  });

  it('when a key tries to manage keys, sessions, the password, two-factor or roles, then 403', async () => {
    const { app } = buildApp(backends);
    const user = await readyToEnrol(app);
    const { key } = await createKey(app, user.accessToken, { scopes: ['images:read', 'images:write', 'profile:read'] });
    const attempts = [
      request(app).post('/api-keys').send({ name: 'escalate' }),
      request(app).get('/api-keys'),
      request(app).get('/sessions'),
      request(app).patch('/me').send({ password: 'a new password 123', currentPassword: user.password }),
      request(app).delete('/me').send({ password: user.password }),
      request(app).post('/mfa/totp/setup'),
      request(app).get('/admin/users'),
      request(app).post('/logout/all'),
    ];
    for (const attempt of attempts) {
      const res = await attempt.set(...apiKey(key));
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('forbidden');
    }
  });

  it('when a key is revoked, unknown, malformed or expired, then 401', async () => {
    const clock = new ManualClock();
    const { app } = buildApp(backends, { clock });
    const user = await readyToEnrol(app);
    const revoked = await createKey(app, user.accessToken);
    const expiring = await createKey(app, user.accessToken, { expiresAt: new Date(clock.now() + 60_000).toISOString() });
    expect(
      (
        await request(app)
          .get('/images')
          .set(...apiKey(expiring.key))
      ).status,
    ).toBe(200);

    expect(
      (
        await request(app)
          .delete(`/api-keys/${revoked.id}`)
          .set(...bearer(user.accessToken))
      ).status,
    ).toBe(204);
    clock.advance(61_000);
    const forged = `ak_${revoked.prefix}_${'A'.repeat(43)}`;
    for (const key of [revoked.key, expiring.key, forged, 'ak_unknownunkno_' + 'B'.repeat(43), 'not-a-key']) {
      const res = await request(app)
        .get('/images')
        .set(...apiKey(key));
      expect(res.status, key).toBe(401);
    }
  });

  describe('a key verified before (kept by each instance for a minute)', () => {
    const use = (app: Parameters<typeof request>[0], key: string) =>
      request(app)
        .get('/images')
        .set(...apiKey(key));

    it('when it is revoked on one instance, then every instance refuses it at the next request', async () => {
      const config = testConfig();
      const one = buildApp(backends, { config }).app;
      // Instances share revocations through Redis; the embedded store is one instance's own.
      const two = usingRedis ? buildApp(backends, { config }).app : one;
      const user = await readyToEnrol(one);
      const { key, id } = await createKey(one, user.accessToken);
      const before = [(await use(one, key)).status, (await use(two, key)).status];

      await request(one)
        .delete(`/api-keys/${id}`)
        .set(...bearer(user.accessToken))
        .expect(204);

      expect(before).toEqual([200, 200]);
      expect([(await use(one, key)).status, (await use(two, key)).status]).toEqual([401, 401]);
    });

    it('when its owner is disabled or deletes the account, then it is refused at the next request; a logout everywhere leaves it working', async () => {
      const { app, deps } = buildApp(backends);
      const name = uniqueName('admin');
      await createAdmin(deps, { email: `${name}@example.com`, username: name, password: 'admin password 123' });
      const admin = await login(app, { username: name, password: 'admin password 123' });
      const [disabled, leaving] = [await readyToEnrol(app), await readyToEnrol(app)];
      const [disabledKey, leavingKey] = [(await createKey(app, disabled.accessToken)).key, (await createKey(app, leaving.accessToken)).key];
      const warm = [(await use(app, disabledKey)).status, (await use(app, leavingKey)).status];

      await request(app)
        .post('/logout/all')
        .set(...bearer(leaving.accessToken))
        .expect(204);
      const afterLogout = (await use(app, leavingKey)).status;
      await request(app)
        .post(`/admin/users/${disabled.id}/disable`)
        .set(...bearer(admin.accessToken))
        .expect(200);
      const fresh = await login(app, leaving);
      await request(app)
        .delete('/me')
        .set(...bearer(fresh.accessToken))
        .send({ password: leaving.password })
        .expect(204);

      expect(warm).toEqual([200, 200]);
      expect(afterLogout).toBe(200);
      expect((await use(app, disabledKey)).status).toBe(401);
      expect((await use(app, leavingKey)).status).toBe(401);
    });
  });

  it('when expiresAt is in the past, a scope is unknown or a field is extra, then 400', async () => {
    const { app } = buildApp(backends);
    const user = await readyToEnrol(app);
    const bodies = [{ name: 'old', expiresAt: '2001-01-01T00:00:00Z' }, { name: 'bad', scopes: ['admin'] }, { name: 'extra', owner: 'someone' }, { name: '' }];
    for (const body of bodies) {
      expect(
        (
          await request(app)
            .post('/api-keys')
            .set(...bearer(user.accessToken))
            .send(body)
        ).status,
        JSON.stringify(body),
      ).toBe(400);
    }
  });

  it("when a user revokes another user's key, then 404 and the key keeps working", async () => {
    const { app } = buildApp(backends);
    const owner = await readyToEnrol(app);
    const other = await readyToEnrol(app);
    const { key, id } = await createKey(app, owner.accessToken);
    expect(
      (
        await request(app)
          .delete(`/api-keys/${id}`)
          .set(...bearer(other.accessToken))
      ).status,
    ).toBe(404);
    expect(
      (
        await request(app)
          .get('/images')
          .set(...apiKey(key))
      ).status,
    ).toBe(200);
  });

  it('when a disabled user’s key is used, then 401', async () => {
    const { app } = buildApp(backends);
    const user = await readyToEnrol(app);
    const { key } = await createKey(app, user.accessToken);
    await backends.db.prisma.user.update({ where: { id: user.id }, data: { disabledAt: new Date() } });
    expect(
      (
        await request(app)
          .get('/images')
          .set(...apiKey(key))
      ).status,
    ).toBe(401);
  });

  it('when two keys of one user are used, then they share one budget, apart from the user’s own', async () => {
    const base = testConfig();
    const rateLimit: RateLimitSettings = { ...base.rateLimit, budgets: { ...base.rateLimit.budgets, images: { ...base.rateLimit.budgets.images, limit: 2 } } };
    const store = freshStore(backends);
    const { app } = buildApp(backends, { config: testConfig({ rateLimit }), store });
    const user = await readyToEnrol(app);
    const first = await createKey(app, user.accessToken);
    const second = await createKey(app, user.accessToken);
    const statuses = [];
    for (let i = 0; i < 3; i++)
      statuses.push(
        (
          await request(app)
            .get('/images')
            .set(...apiKey(first.key))
        ).status,
      );
    const otherKey = (
      await request(app)
        .get('/images')
        .set(...apiKey(second.key))
    ).status;
    const bearerCall = (
      await request(app)
        .get('/images')
        .set(...bearer(user.accessToken))
    ).status;
    // Minting another key must not buy another budget.
    expect(statuses).toEqual([200, 200, 429]);
    expect(otherKey).toBe(429);
    expect(bearerCall).toBe(200);
  });
});
