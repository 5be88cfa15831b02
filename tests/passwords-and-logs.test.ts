import { Writable } from 'node:stream';
import bcrypt from 'bcryptjs';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/core/config.js';
import { createLogger } from '../src/core/logger.js';
import { PasswordHasher } from '../src/features/auth/passwords.js';
import { bearer, uniqueName } from './support/accounts.js';
import { type Backends, buildApp, openBackends, testConfig } from './support/test-app.js';

describe('password hashing', () => {
  it('when nothing is configured, then bcrypt cost 12 is used, and below 10 is refused outside tests', async () => {
    const config = loadConfig({});
    const hash = await new PasswordHasher(config.bcryptCost).hash('some password');
    expect(config.bcryptCost).toBe(12);
    expect(bcrypt.getRounds(hash)).toBe(12);
    expect(() => loadConfig({ BCRYPT_COST: '8' })).toThrow(/BCRYPT_COST/);
  });

  it('when a cost-12 hash is running, then the event loop keeps turning', async () => {
    const hasher = new PasswordHasher(12);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    await hasher.hash('some password');
    clearInterval(ticker);
    // A blocking hash of ~250 ms would let the 5 ms timer fire at most once.
    expect(ticks).toBeGreaterThan(5);
  });
});

describe('logs', () => {
  let backends: Backends;
  beforeAll(async () => {
    backends = await openBackends();
  });
  afterAll(async () => {
    await backends.close();
  });

  it('when users register, log in, refresh and call with tokens, then no password or token reaches the log', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({ level: 'trace', pretty: false }, sink);
    const { app } = buildApp(backends, { config: testConfig(), logger });
    const username = uniqueName();
    const password = 'Sup3r-Secret-Passphrase';
    await request(app).post('/register').send({ username, email: `${username}@example.com`, password });
    const login = await request(app).post('/login').set('Cookie', 'session=cookie-secret').send({ username, password });
    const refresh = await request(app).post('/refresh').send({ refresh_token: login.body.refresh_token });
    await request(app).get('/me').set(...bearer(refresh.body.access_token));
    await request(app).post('/login').send({ username, password: 'Wrong-Passphrase-Attempt' });

    const log = lines.join('');
    expect(lines.length).toBeGreaterThanOrEqual(5);
    for (const secret of [password, 'Wrong-Passphrase-Attempt', login.body.access_token, login.body.refresh_token, refresh.body.access_token, 'cookie-secret']) {
      expect(log).not.toContain(secret);
    }
  });
});
