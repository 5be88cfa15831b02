import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { bearer, register, registerAndLogin, uniqueName } from './support/accounts.js';
import { buildApp, useBackends } from './support/test-app.js';

describe('registration and login', () => {
  const backends = useBackends();
  const userCount = () => backends.db.prisma.user.count();

  describe('POST /register', () => {
    it('when the fields are valid, then 201 with the public user and the user role, never the hash', async () => {
      const { app } = buildApp(backends);
      const username = uniqueName('Ada');
      const res = await request(app)
        .post('/register')
        .send({ username, email: `${username}@Example.COM`, password: 'long enough pw' });
      expect(res.status).toBe(201);
      expect(res.body).toEqual({
        id: expect.any(String),
        username,
        email: `${username.toLowerCase()}@example.com`,
        emailVerified: false,
        roles: ['user'],
        createdAt: expect.any(String),
      });
      expect(JSON.stringify(res.body)).not.toMatch(/\$2[aby]\$/);
    });

    it('when the username is taken in any letter case, then 409 already_registered; a taken email answers as a new one (see account-takeover.test.ts)', async () => {
      const { app } = buildApp(backends);
      const first = await register(app);
      const sameName = await request(app)
        .post('/register')
        .send({ username: first.username.toUpperCase(), email: `${uniqueName()}@example.com`, password: 'long enough pw' });
      const sameEmail = await request(app).post('/register').send({ username: uniqueName(), email: first.email.toUpperCase(), password: 'long enough pw' });
      expect(sameName.status).toBe(409);
      expect(sameName.body.error.code).toBe('already_registered');
      expect(sameEmail.status).toBe(201);
      expect(sameEmail.body.id).not.toBe(first.id);
    });

    it('when the password is over 72 bytes, then 400, and at exactly 72 bytes it is accepted', async () => {
      const { app } = buildApp(backends);
      const before = await userCount();
      // 36 two-byte characters: 72 bytes. One more makes 74 bytes in only 37 characters. (Shuffled: a run of one
      // letter would be refused as guessable.)
      const twoByteLetters = 'êðìĐĂùõĔóàğĀċèÿëĖöěĘčòĒþýđĞČĈñáĉėĜćîç';
      const tooLong = await request(app)
        .post('/register')
        .send({ username: uniqueName(), email: `${uniqueName()}@example.com`, password: twoByteLetters });
      expect(tooLong.status).toBe(400);
      expect(tooLong.body.error.details[0].path).toBe('password');
      expect(await userCount()).toBe(before);
      const account = await register(app, { password: twoByteLetters.slice(0, 36) });
      const login = await request(app)
        .post('/login')
        .send({ username: account.username, password: twoByteLetters.slice(0, 36) });
      expect(login.status).toBe(200);
    });

    it('when a 72-byte password plus a suffix is offered at login or to confirm a deletion, then 400, never a match', async () => {
      const { app } = buildApp(backends);
      const password = randomBytes(54).toString('base64url');
      const account = await registerAndLogin(app, { password });

      const login = await request(app)
        .post('/login')
        .send({ username: account.username, password: `${password}-anything` });
      const deletion = await request(app)
        .delete('/me')
        .set(...bearer(account.accessToken))
        .send({ password: `${password}-anything` });
      const stillThere = await request(app)
        .get('/me')
        .set(...bearer(account.accessToken));

      expect([login.status, deletion.status]).toEqual([400, 400]);
      expect(login.body.error.details[0]).toMatchObject({ path: 'password', message: expect.stringContaining('72 bytes') });
      expect(stillThere.status).toBe(200);
    });

    it.each([
      ['a missing field', { username: 'someone_new', password: 'long enough pw' }],
      ['an extra field', { username: 'someone_new', email: 'new@example.com', password: 'long enough pw', roles: ['admin'] }],
      ['a wrong type', { username: 12345, email: 'new@example.com', password: 'long enough pw' }],
      ['an empty password', { username: 'someone_new', email: 'new@example.com', password: '' }],
      ['a bad username', { username: 'no spaces!', email: 'new@example.com', password: 'long enough pw' }],
      ['a bad email', { username: 'someone_new', email: 'not-an-email', password: 'long enough pw' }],
      ['an array body', [1, 2, 3]],
    ])('when the body has %s, then 400 validation_failed and no row is written', async (_case, body) => {
      const { app } = buildApp(backends);
      const before = await userCount();
      const res = await request(app).post('/register').send(body);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
      expect(await userCount()).toBe(before);
    });

    it('when the body is not JSON, then 415 unsupported_media_type', async () => {
      const { app } = buildApp(backends);
      const res = await request(app).post('/register').type('form').send('username=x&email=y&password=z');
      expect(res.status).toBe(415);
      expect(res.body.error.code).toBe('unsupported_media_type');
    });
  });

  describe('POST /login', () => {
    it('when the password is right, then a Bearer pair with expires_in and the user', async () => {
      const { app } = buildApp(backends);
      const account = await register(app);
      const res = await request(app).post('/login').send({ username: account.username, password: account.password });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        access_token: expect.stringMatching(/^ey/),
        token_type: 'Bearer',
        expires_in: 900,
        refresh_token: expect.stringMatching(/^rt_[A-Za-z0-9_-]{43}$/),
        user: expect.objectContaining({ id: account.id, username: account.username }),
      });
    });

    it('when identified by email, in the email or the username field, then it logs in', async () => {
      const { app } = buildApp(backends);
      const account = await register(app);
      const byEmail = await request(app).post('/login').send({ email: account.email.toUpperCase(), password: account.password });
      const emailInUsername = await request(app).post('/login').send({ username: account.email, password: account.password });
      expect(byEmail.status).toBe(200);
      expect(emailInUsername.status).toBe(200);
    });

    it('when the user is unknown or the password wrong, then the same 401 invalid_credentials and the same body', async () => {
      const { app } = buildApp(backends);
      const account = await register(app);
      const wrongPassword = await request(app).post('/login').send({ username: account.username, password: 'not the password' });
      const unknownUser = await request(app)
        .post('/login')
        .send({ username: uniqueName('ghost'), password: 'not the password' });
      const strip = (body: { error: { requestId?: string } }) => ({ ...body, error: { ...body.error, requestId: undefined } });
      expect(wrongPassword.status).toBe(401);
      expect(unknownUser.status).toBe(401);
      expect(wrongPassword.body.error.code).toBe('invalid_credentials');
      expect(strip(unknownUser.body)).toEqual(strip(wrongPassword.body));
      expect(Object.keys(unknownUser.headers).sort()).toEqual(Object.keys(wrongPassword.headers).sort());
    });

    it('when both or neither of username and email are given, then 400', async () => {
      const { app } = buildApp(backends);
      const both = await request(app).post('/login').send({ username: 'a', email: 'a@example.com', password: 'x' });
      const neither = await request(app).post('/login').send({ password: 'x' });
      expect(both.status).toBe(400);
      expect(neither.status).toBe(400);
    });

    it('when the account is disabled, then 401 with the same answer as a wrong password', async () => {
      const { app } = buildApp(backends);
      const account = await register(app);
      await backends.db.prisma.user.update({ where: { id: account.id }, data: { disabledAt: new Date() } });
      const res = await request(app).post('/login').send({ username: account.username, password: account.password });
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('invalid_credentials');
    });
  });

  describe('legacy /auth paths', () => {
    it('when an old client uses /auth/signup, /auth/login, /auth/user and /auth/ping, then they behave as the canonical routes', async () => {
      const { app } = buildApp(backends);
      const username = uniqueName();
      const signup = await request(app)
        .post('/auth/signup')
        .send({ username, email: `${username}@example.com`, password: 'long enough pw' });
      const login = await request(app).post('/auth/login').send({ username, password: 'long enough pw' });
      const user = await request(app).get('/auth/user').set('Authorization', `Bearer ${login.body.access_token}`);
      const me = await request(app).get('/auth/me').set('Authorization', `Bearer ${login.body.access_token}`);
      const ping = await request(app).get('/auth/ping');
      expect(signup.status).toBe(201);
      expect(login.status).toBe(200);
      // The deprecated alias keeps the shape older clients know; GET /me also says whether the account has a password.
      expect(user.body).toEqual(signup.body);
      expect(me.body).toEqual({ ...signup.body, hasPassword: true });
      expect(ping.body).toEqual({ status: 'ok' });
    });
  });

  it('when a logged-in user calls /protected, then 200 with a message and the user', async () => {
    const { app } = buildApp(backends);
    const account = await registerAndLogin(app);
    const res = await request(app).get('/protected').set('Authorization', `Bearer ${account.accessToken}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ message: expect.stringContaining(account.username), user: expect.objectContaining({ id: account.id }) });
  });
});
