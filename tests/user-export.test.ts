// Taking data out: an administrator's NDJSON export of every account (no secrets, re-importable elsewhere), and a
// person's own data (GET /me/export), which never holds anyone else's.
import type { Express } from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { bearer, createAdmin, login, registerAndLogin, uniqueName } from './support/accounts.js';
import { png } from './support/images.js';
import { type Backends, buildApp, builtWith, useBackends, withOwnBackends } from './support/test-app.js';

async function appWithAdmin(backends: Backends) {
  const { app, deps } = buildApp(backends);
  const username = uniqueName('admin');
  const password = 'admin password 123';
  await createAdmin(deps, { email: `${username}@example.com`, username, password });
  return { app, token: (await login(app, { username, password })).accessToken };
}

/** NDJSON as supertest leaves it: the raw text, one JSON object a line. */
function lines(res: request.Response): Array<Record<string, unknown>> {
  return res.text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function uploadImage(app: Express, token: string): Promise<string> {
  const res = await request(app)
    .post('/images')
    .set(...bearer(token))
    .attach('image', png(4, 4), { filename: 'photo.png', contentType: 'image/png' });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id as string;
}

describe('GET /admin/users/export', () => {
  const backends = useBackends();

  it('when an administrator exports, then every account comes as one NDJSON line in the import’s shape, with no secret of any kind', async () => {
    const { app, token } = await appWithAdmin(backends);
    const people = [await registerAndLogin(app), await registerAndLogin(app)];
    const imported = `${uniqueName('imp')}@example.com`;
    await request(app)
      .post('/admin/users/import')
      .set(...bearer(token))
      .set('Content-Type', 'application/x-ndjson')
      .send(
        JSON.stringify({
          email: imported,
          passwordHash: '$2b$04$EfHO4x1GapsPf.zLkQXGOOXG3DChjzZi2AX5iN0oKGYgXHfbGIpGy',
          totpSecret: 'JBSWY3DPEHPK3PXPJBSWY3DP',
          roles: ['admin'],
        }),
      );

    const res = await request(app)
      .get('/admin/users/export')
      .set(...bearer(token));

    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="users-\d{4}-\d\d-\d\d\.ndjson"$/);
    const records = lines(res);
    const total = await builtWith(app).db.prisma.user.count();
    expect(records).toHaveLength(total);
    for (const record of records) expect(Object.keys(record).sort()).toEqual(['createdAt', 'email', 'emailVerified', 'roles', 'username']);
    expect(records).toContainEqual(expect.objectContaining({ email: people[0]?.email, username: people[0]?.username, roles: ['user'], emailVerified: false }));
    expect(records).toContainEqual(expect.objectContaining({ email: imported, roles: ['admin'] }));
    expect(res.text).not.toMatch(/\$2[aby]\$|JBSWY3DP|passwordHash|totpSecret/);
  });

  it('when the export is imported into another server, then the same people exist there with the same names, roles and dates', async () => {
    const { app, token } = await appWithAdmin(backends);
    await registerAndLogin(app);
    const exported = await request(app)
      .get('/admin/users/export')
      .set(...bearer(token));
    const records = lines(exported);

    await withOwnBackends(async (other) => {
      const there = await appWithAdmin(other);
      const res = await request(there.app)
        .post('/admin/users/import')
        .set(...bearer(there.token))
        .set('Content-Type', 'application/x-ndjson')
        .send(exported.text);

      expect(res.body).toMatchObject({ records: records.length, created: records.length, rejectedCount: 0 });
      const back = lines(
        await request(there.app)
          .get('/admin/users/export')
          .set(...bearer(there.token)),
      );
      for (const record of records) expect(back).toContainEqual(record);
    });
  });

  it('when someone other than an administrator asks, then 401 or 403 and no account is listed', async () => {
    const { app } = await appWithAdmin(backends);
    const user = await registerAndLogin(app);

    const anonymous = await request(app).get('/admin/users/export');
    const notAdmin = await request(app)
      .get('/admin/users/export')
      .set(...bearer(user.accessToken));

    expect([anonymous.status, notAdmin.status]).toEqual([401, 403]);
    expect(notAdmin.text).not.toContain(user.email);
  });
});

describe('GET /me/export', () => {
  const backends = useBackends();

  it('when a person downloads their data, then it holds their profile, sessions, security events and images, and nothing of anyone else', async () => {
    const { app } = buildApp(backends);
    const me = await registerAndLogin(app);
    await login(app, me);
    const other = await registerAndLogin(app);
    const mine = await uploadImage(app, me.accessToken);
    const theirs = await uploadImage(app, other.accessToken);
    await request(app).post('/login').send({ username: me.username, password: 'not my password' });
    await builtWith(app).graph.audit.settled();

    const res = await request(app)
      .get('/me/export')
      .set(...bearer(me.accessToken));

    expect(res.status).toBe(200);
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="my-data-\d{4}-\d\d-\d\d\.json"$/);
    expect(res.body.profile).toMatchObject({ id: me.id, username: me.username, email: me.email, hasPassword: true, twoFactorEnabled: false });
    expect(res.body.sessions).toHaveLength(2);
    expect(res.body.images).toEqual([expect.objectContaining({ id: mine, name: 'photo.png', mimeType: 'image/png' })]);
    const types = (res.body.securityEvents as Array<{ type: string }>).map((event) => event.type);
    expect(types).toEqual(expect.arrayContaining(['user.registered', 'session.signed_in', 'session.sign_in_failed']));
    const text = JSON.stringify(res.body);
    for (const foreign of [other.id, other.email, other.username, theirs]) expect(text).not.toContain(foreign);
    const stored = await builtWith(app).db.prisma.user.findUniqueOrThrow({ where: { id: me.id } });
    expect(text).not.toContain(stored.passwordHash);
    expect(text).not.toMatch(/passwordHash|secretEnc|tokenHash|refresh_token/);
  });

  it('when the two people each download theirs, then each sees only their own sessions and images', async () => {
    const { app } = buildApp(backends);
    const a = await registerAndLogin(app);
    const b = await registerAndLogin(app);
    await uploadImage(app, b.accessToken);

    const [exportA, exportB] = await Promise.all(
      [a, b].map((person) =>
        request(app)
          .get('/me/export')
          .set(...bearer(person.accessToken)),
      ),
    );

    expect(exportA?.body.profile.id).toBe(a.id);
    expect(exportB?.body.profile.id).toBe(b.id);
    expect(exportA?.body.images).toEqual([]);
    expect(exportB?.body.images).toHaveLength(1);
    const sessionIdsA = (exportA?.body.sessions as Array<{ id: string }>).map((session) => session.id);
    const sessionIdsB = (exportB?.body.sessions as Array<{ id: string }>).map((session) => session.id);
    expect(sessionIdsA.filter((id) => sessionIdsB.includes(id))).toEqual([]);
  });

  it('when there is no token, a forged one, or an API key, then 401, 401 and 403 in the error shape', async () => {
    const { app } = buildApp(backends);
    const me = await registerAndLogin(app);
    await builtWith(app).db.prisma.user.update({ where: { id: me.id }, data: { emailVerifiedAt: new Date() } });
    const key = await request(app)
      .post('/api-keys')
      .set(...bearer(me.accessToken))
      .send({ name: 'export', scopes: ['profile:read'] });

    const answers = [
      await request(app).get('/me/export'),
      await request(app)
        .get('/me/export')
        .set(...bearer(`${me.accessToken.slice(0, -4)}AAAA`)),
      await request(app).get('/me/export').set('X-API-Key', String(key.body.key)),
    ];

    expect(answers.map((res) => res.status)).toEqual([401, 401, 403]);
    for (const res of answers) expect(res.body.error).toEqual(expect.objectContaining({ code: expect.any(String), requestId: expect.any(String) }));
  });
});
