import { Writable } from 'node:stream';
import bcrypt from 'bcryptjs';
import request from 'supertest';
import { describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../src/core/config.js';
import { createLogger } from '../src/core/logger.js';
import { PasswordHashPool } from '../src/core/password-hash-pool.js';
import { PasswordHasher } from '../src/kernel/passwords/passwords.js';
import { bearer, registerAndLogin, uniqueName } from './support/accounts.js';
import { buildApp, testConfig, testPasswordPool, useBackends } from './support/test-app.js';

describe('password hashing', () => {
  it('when nothing is configured, then bcrypt cost 12 is used, and below 10 is refused outside tests', async () => {
    const config = loadConfig({});
    const hash = await new PasswordHasher(testPasswordPool(), config.bcryptCost).hash('some password');
    expect(config.bcryptCost).toBe(12);
    expect(bcrypt.getRounds(hash)).toBe(12);
    expect(() => loadConfig({ BCRYPT_COST: '8' })).toThrow(/BCRYPT_COST/);
  });

  it('when passwords are hashed and compared, then a worker thread does it and the main thread never runs bcrypt', async () => {
    const onMainThread = [vi.spyOn(bcrypt, 'hash'), vi.spyOn(bcrypt, 'hashSync'), vi.spyOn(bcrypt, 'compare'), vi.spyOn(bcrypt, 'compareSync')];
    const pool = new PasswordHashPool({ threads: 1, queueMax: 4 });
    try {
      const hash = await pool.hash('some password', 4);
      const right = await pool.compare('some password', hash);
      const wrong = await pool.compare('other password', hash);

      expect(onMainThread.map((spy) => spy.mock.calls.length)).toEqual([0, 0, 0, 0]);
      expect([right, wrong]).toEqual([true, false]);
      expect(pool.stats()).toMatchObject({ threads: 1, busy: 0, queued: 0, completed: 3 });
      expect(bcrypt.compareSync('some password', hash)).toBe(true);
    } finally {
      onMainThread.forEach((spy) => spy.mockRestore());
      await pool.close();
    }
  });

  it('when every thread is busy and the queue is full, then the next task is refused at once with 503 and Retry-After', async () => {
    const pool = new PasswordHashPool({ threads: 1, queueMax: 1 });
    try {
      const running = pool.hash('first', 4);
      const queued = pool.hash('second', 4);
      const refused = pool.hash('third', 4);

      await expect(refused).rejects.toMatchObject({
        code: 'service_unavailable',
        status: 503,
        headers: { 'Retry-After': expect.stringMatching(/^[1-9]\d*$/) },
      });
      expect(pool.stats()).toMatchObject({ busy: 1, queued: 1, rejected: 1 });
      await expect(Promise.all([running, queued])).resolves.toHaveLength(2);
    } finally {
      await pool.close();
    }
  });

  it('when a thread has had no work for its idle timeout, then it stops, and the next task starts one again', async () => {
    const pool = new PasswordHashPool({ threads: 1, queueMax: 1, idleTimeoutMs: 20 });
    try {
      await pool.hash('first', 4);
      expect(pool.stats().started).toBe(1);

      await vi.waitFor(() => expect(pool.stats().started).toBe(0), { timeout: 5_000 });
      const again = await pool.hash('second', 4);

      expect(bcrypt.getRounds(again)).toBe(4);
      expect(pool.stats()).toMatchObject({ started: 1, completed: 2 });
    } finally {
      await pool.close();
    }
  });

  it('when an unknown user logs in, then the password is compared in the pool with a hash of the configured cost', async () => {
    const pool = new PasswordHashPool({ threads: 1, queueMax: 1 });
    const compare = vi.spyOn(pool, 'compare');
    try {
      const hasher = new PasswordHasher(pool, 11);

      await expect(hasher.verifyAgainstNobody('a guess')).resolves.toBe(false);

      const [password, dummy] = compare.mock.calls[0] ?? [];
      expect(password).toBe('a guess');
      expect(dummy).toMatch(/^\$2b\$11\$[./A-Za-z0-9]{53}$/);
      expect(bcrypt.getRounds(dummy ?? '')).toBe(11);
    } finally {
      await pool.close();
    }
  });

  it('when the pool closes, then accepted tasks finish, new ones are refused, and the threads stop', async () => {
    const pool = new PasswordHashPool({ threads: 2, queueMax: 4 });
    const accepted = [pool.hash('one', 4), pool.hash('two', 4), pool.hash('three', 4)];

    const closed = pool.close();
    const afterClose = pool.compare('one', '$2b$04$invalidinvalidinvalidinv');

    await expect(afterClose).rejects.toMatchObject({ code: 'service_unavailable' });
    const hashes = await Promise.all(accepted);
    await closed;
    expect(hashes.every((hash) => bcrypt.getRounds(hash) === 4)).toBe(true);
    expect(pool.stats()).toMatchObject({ busy: 0, queued: 0, completed: 3 });
  });
});

/** A logger whose lines land in `lines`. */
function capturedLogs(level: string) {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, logger: createLogger({ level, pretty: false }, sink) };
}

describe('logs', () => {
  const backends = useBackends();

  it('when a request ends, then one line says who asked for what and how it went, without the query string', async () => {
    const { lines, logger } = capturedLogs('info');
    const { app } = buildApp(backends, { config: testConfig(), logger });
    const account = await registerAndLogin(app);
    lines.length = 0;

    await request(app)
      .get('/images?page=1&pageSize=7')
      .set(...bearer(account.accessToken))
      .set('X-Request-Id', 'req-42');

    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({
      level: 30,
      msg: 'request completed',
      req: { id: 'req-42', method: 'GET', path: '/images', userId: account.id },
      res: { statusCode: 200 },
      responseTime: expect.any(Number),
    });
    expect(lines[0]).not.toContain('pageSize');
  });

  it('when every hashing thread is busy and its queue is full, then a login gets 503 with Retry-After at once', async () => {
    const pool = new PasswordHashPool({ threads: 1, queueMax: 0 });
    try {
      const { app } = buildApp(backends, { config: testConfig(), passwordPool: pool });
      const occupying = pool.hash('keeps the only thread busy', 12);

      const res = await request(app).post('/login').send({ username: uniqueName(), password: 'whatever it is' });
      await occupying;

      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('service_unavailable');
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      await pool.close();
    }
  });

  it('when users register, log in, refresh and call with tokens, then no password or token reaches the log', async () => {
    const { lines, logger } = capturedLogs('trace');
    const { app } = buildApp(backends, { config: testConfig(), logger });
    const username = uniqueName();
    const password = 'Sup3r-Secret-Passphrase';
    await request(app)
      .post('/register')
      .send({ username, email: `${username}@example.com`, password });
    const login = await request(app).post('/login').set('Cookie', 'session=cookie-secret').send({ username, password });
    const refresh = await request(app).post('/refresh').send({ refresh_token: login.body.refresh_token });
    await request(app)
      .get('/me')
      .set(...bearer(refresh.body.access_token));
    await request(app).post('/login').send({ username, password: 'Wrong-Passphrase-Attempt' });

    const log = lines.join('');
    expect(lines.length).toBeGreaterThanOrEqual(5);
    for (const secret of [
      password,
      'Wrong-Passphrase-Attempt',
      login.body.access_token,
      login.body.refresh_token,
      refresh.body.access_token,
      'cookie-secret',
    ]) {
      expect(log).not.toContain(secret);
    }
  });
});
