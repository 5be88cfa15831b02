import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { readOutbox } from '../src/features/email/transport.js';
import { bearer, createAdmin, registerAndLogin, uniqueName } from './support/accounts.js';
import { png } from './support/images.js';
import { type Backends, buildApp, openBackends } from './support/test-app.js';

// A clock years away from the machine's: a timestamp taken from anywhere else (the database's now(), Date.now())
// cannot match it by accident.
const AT = Date.UTC(2031, 4, 6, 7, 8, 9, 123);

describe('row and message timestamps come from the injected clock', () => {
  let backends: Backends;
  beforeAll(async () => {
    backends = await openBackends();
  });
  afterAll(async () => {
    await backends.close();
  });

  it('when an administrator is created at startup (ensureAdmin), then its created, updated and verified times are the clock', async () => {
    const { deps } = buildApp(backends, { clock: new ManualClock(AT) });
    const username = uniqueName('admin');
    const { user } = await createAdmin(deps, { email: `${username}@example.com`, username, password: 'admin password 123' });
    const row = await backends.db.prisma.user.findUniqueOrThrow({ where: { id: user.id } });
    expect([row.createdAt.getTime(), row.updatedAt.getTime(), row.emailVerifiedAt?.getTime()]).toEqual([AT, AT, AT]);
    expect(user.createdAt).toBe(new Date(AT).toISOString());
  });

  it('when an image is uploaded, then its createdAt is the clock', async () => {
    const { app } = buildApp(backends, { clock: new ManualClock(AT) });
    const owner = await registerAndLogin(app);
    const res = await request(app)
      .post('/images')
      .set(...bearer(owner.accessToken))
      .attach('image', png(), 'a.png');
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.createdAt).toBe(new Date(AT).toISOString());
    const row = await backends.db.prisma.image.findUniqueOrThrow({ where: { id: res.body.id } });
    expect(row.createdAt.getTime()).toBe(AT);
  });

  it('when mail is queued and written to the outbox, then the queued row and the outbox entry carry the clock', async () => {
    const { app, deps } = buildApp(backends, { clock: new ManualClock(AT) });
    const account = await registerAndLogin(app);
    await expect
      .poll(async () => (await readOutbox(deps.config.email.outboxDir)).filter((mail) => mail.to === account.email).length, { timeout: 10_000 })
      .toBeGreaterThan(0);
    const written = (await readOutbox(deps.config.email.outboxDir)).filter((mail) => mail.to === account.email);
    expect(written.map((mail) => mail.createdAt)).toEqual(written.map(() => new Date(AT).toISOString()));
    const queued = await backends.db.prisma.outboundEmail.findMany({ where: { recipient: account.email } });
    expect(queued.length).toBeGreaterThan(0);
    expect(queued.map((row) => row.createdAt.getTime())).toEqual(queued.map(() => AT));
  });
});
