import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { Webhook } from 'standardwebhooks';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { AppConfig } from '../src/app.js';
import { ManualClock } from '../src/core/clock.js';
import { retryDelayMs } from '../src/core/work-queue.js';
import { SECURITY_EVENT_TYPES } from '../src/kernel/events/security-events.js';
import type { AppDeps } from '../src/composition.js';
import { readOutbox } from '../src/features/email/transport.js';
import { codeAt, STEP_SECONDS } from '../src/kernel/verifiers/totp.js';
import { bearer, createAdmin, emailedCodeStepUp, login, proveAddress, register, registerAndLogin, uniqueName } from './support/accounts.js';
import { SoftAuthenticator } from './support/authenticator.js';
import { png } from './support/images.js';
import { buildApp, freshStore, testConfig, useBackends, builtWith } from './support/test-app.js';

const METRICS_TOKEN = 'metrics-token-for-the-tests-0123456789';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus's text format, line by line; a line that does not parse fails the test. */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    expect(match, `not Prometheus text: ${line}`).not.toBeNull();
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match?.[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[key as string] = value as string;
    samples.push({ name: match?.[1] ?? '', labels, value: Number(match?.[3]) });
  }
  return samples;
}

function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
    .reduce((sum, sample) => sum + sample.value, 0);
}

/** Events whose cause is a sign-in at an outside provider (checked in tests/federation.test.ts, against a real one). */
const NEEDS_A_PROVIDER = new Set<string>(['identity.linked', 'identity.unlinked']);

describe('operating it', () => {
  const backends = useBackends();

  function setup(overrides: Partial<AppConfig> = {}) {
    const clock = new ManualClock();
    const base = testConfig();
    const config = testConfig({ metrics: { ...base.metrics, token: METRICS_TOKEN }, ...overrides });
    const built = buildApp(backends, { config, clock, store: freshStore(backends) });
    return { ...built, clock, config };
  }

  async function admin(app: Express, deps: AppDeps) {
    const username = uniqueName('ops_admin');
    await createAdmin(deps, { email: `${username}@example.com`, username, password: 'admin password 123' });
    return { username, ...(await login(app, { username, password: 'admin password 123' })) };
  }

  describe('metrics', () => {
    it('when a scripted session runs, then each family moves as it should, the text parses, and no label is unbounded', async () => {
      const limited = testConfig();
      const { app, clock, config } = setup({
        refreshReuseIntervalS: 10,
        rateLimit: { ...limited.rateLimit, budgets: { ...limited.rateLimit.budgets, reads: { limit: 1, windowMs: 60_000, keyBy: 'principal' } } },
      });
      const scrape = async () =>
        parseExposition(
          (
            await request(app)
              .get('/metrics')
              .set(...bearer(METRICS_TOKEN))
          ).text,
        );
      const before = await scrape();

      const user = await registerAndLogin(app);
      await request(app).post('/login').send({ username: user.username, password: 'not the password' });
      await request(app)
        .post('/login')
        .send({ username: uniqueName('ghost'), password: 'whatever it is' });
      const rotated = await request(app).post('/refresh').send({ refresh_token: user.refreshToken });
      await request(app).post('/refresh').send({ refresh_token: user.refreshToken });
      clock.advance((config.refreshReuseIntervalS + 1) * 1000);
      await request(app).post('/refresh').send({ refresh_token: user.refreshToken });
      const again = await login(app, user);
      await request(app)
        .get('/api-keys')
        .set(...bearer(again.accessToken));
      await request(app)
        .get('/api-keys')
        .set(...bearer(again.accessToken));
      await request(app)
        .get('/expensive')
        .set(...bearer(again.accessToken));
      await request(app)
        .get('/expensive')
        .set(...bearer(again.accessToken));
      const uploaded = await request(app)
        .post('/images')
        .set(...bearer(again.accessToken))
        .attach('image', png(4, 4), 'tiny.png');
      await request(app)
        .get(`/images/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`)
        .set(...bearer(again.accessToken));
      const after = await scrape();
      const moved = (name: string, labels: Record<string, string> = {}) => valueOf(after, name, labels) - valueOf(before, name, labels);

      expect(rotated.status).toBe(200);
      expect(moved('authkit_logins_total', { method: 'password', outcome: 'success' })).toBe(2);
      expect(moved('authkit_logins_total', { method: 'password', outcome: 'wrong_password' })).toBe(1);
      expect(moved('authkit_logins_total', { method: 'password', outcome: 'unknown_user' })).toBe(1);
      expect(moved('authkit_refreshes_total', { outcome: 'rotated' })).toBe(1);
      expect(moved('authkit_refreshes_total', { outcome: 'grace_replay' })).toBe(1);
      expect(moved('authkit_refreshes_total', { outcome: 'theft_detected' })).toBe(1);
      expect(moved('authkit_rate_limited_total', { budget: 'reads' })).toBe(1);
      expect(moved('authkit_cache_requests_total', { result: 'miss' })).toBe(1);
      expect(moved('authkit_cache_requests_total', { result: 'hit' })).toBe(1);
      expect(moved('authkit_uploads_total')).toBe(1);
      // Bytes stored: the upload as re-encoded without its metadata.
      expect(moved('authkit_upload_bytes_total')).toBe(uploaded.body.size);
      expect(moved('authkit_http_requests_total', { method: 'POST', route: '/login', status: '401' })).toBe(2);
      expect(moved('authkit_http_requests_total', { method: 'GET', route: '/images/{id}', status: '404' })).toBe(1);
      expect(moved('authkit_http_request_duration_seconds_count', { route: '/refresh' })).toBe(3);
      expect(moved('authkit_password_hash_wait_seconds_count')).toBeGreaterThan(0);
      expect(after.some((sample) => sample.name === 'authkit_password_hash_queue_depth')).toBe(true);
      // Bounded: no label value is an id, an address, an email or a raw path.
      for (const sample of after) {
        for (const value of Object.values(sample.labels)) {
          expect(value, `${sample.name} ${JSON.stringify(sample.labels)}`).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-|@|^\d+\.\d+\.\d+\.\d+$|::/);
        }
      }
      const routes = new Set(after.filter((sample) => sample.name === 'authkit_http_requests_total').map((sample) => sample.labels.route));
      expect([...routes].every((route) => route === 'unmatched' || route === 'other' || route?.startsWith('/'))).toBe(true);
    });

    it('when PostgreSQL or Redis fails under a request, then the store failure is counted', async () => {
      const { app, deps } = setup();
      const metrics = deps.metrics;
      if (!metrics) throw new Error('the test app has metrics');
      const { AppError } = await import('../src/core/errors.js');
      const { errorHandler } = await import('../src/core/error-handler.js');
      const express = (await import('express')).default;
      const failing = express();
      failing.get('/db', () => {
        throw Object.assign(new Error("Can't reach database server"), { code: 'P1001' });
      });
      failing.get('/redis', () => {
        throw new AppError('service_unavailable', 'store down', { cause: new Error('Command timed out') });
      });
      failing.use(errorHandler(deps.logger, metrics));

      await request(failing).get('/db');
      await request(failing).get('/redis');
      const samples = parseExposition(
        (
          await request(app)
            .get('/metrics')
            .set(...bearer(METRICS_TOKEN))
        ).text,
      );

      expect(valueOf(samples, 'authkit_store_failures_total', { store: 'postgres', kind: 'error' })).toBe(1);
      expect(valueOf(samples, 'authkit_store_failures_total', { store: 'redis', kind: 'timeout' })).toBe(1);
    });

    it('when /metrics is asked for without the token, or with a wrong one, then 401 in the one error shape', async () => {
      const { app } = setup();

      const none = await request(app).get('/metrics');
      const wrong = await request(app)
        .get('/metrics')
        .set(...bearer('not-the-token'));

      expect(none.status).toBe(401);
      expect(wrong.status).toBe(401);
      expect(wrong.body.error.code).toBe('unauthorized');
    });

    it('when no METRICS_TOKEN is set, then the public port has no /metrics', async () => {
      const { app } = buildApp(backends, { config: testConfig() });

      expect((await request(app).get('/metrics')).status).toBe(404);
    });
  });

  describe('the audit log', () => {
    it('when every kind of security event happens, then each is written once with its context, and readable by the user and the admin', async () => {
      const { app, deps, clock } = setup();
      const events = builtWith(app).graph.audit;
      const { accessToken: adminToken } = await admin(app, deps);
      const user = await registerAndLogin(app);
      const agent = { 'User-Agent': 'AuditTest/1.0', 'X-Request-Id': 'audit-test-request' };

      // Sign-ins, failures, refresh theft, sign-outs.
      await request(app).post('/login').set(agent).send({ username: user.username, password: 'not the password' });
      const second = await login(app, user);
      await request(app).post('/refresh').send({ refresh_token: second.refreshToken });
      clock.advance(11_000);
      await request(app).post('/refresh').send({ refresh_token: second.refreshToken });
      await request(app)
        .post('/logout')
        .set(...bearer(user.accessToken));
      const signedInAgain = await login(app, user);
      // Keys, passkeys, two-factor with a recovery code: the address proven, and a second proof in the session.
      await proveAddress(app, user);
      const third = { ...signedInAgain, accessToken: await emailedCodeStepUp(app, user, signedInAgain.accessToken) };
      const key = await request(app)
        .post('/api-keys')
        .set(...bearer(third.accessToken))
        .send({ name: 'audited' });
      await request(app)
        .delete(`/api-keys/${key.body.id}`)
        .set(...bearer(third.accessToken));
      const authenticator = new SoftAuthenticator({ origin: 'http://localhost:3000' });
      const options = await request(app)
        .post('/passkeys/register/options')
        .set(...bearer(third.accessToken));
      const passkey = await request(app)
        .post('/passkeys/register')
        .set(...bearer(third.accessToken))
        .send({ response: authenticator.create(options.body) });
      await request(app)
        .delete(`/passkeys/${passkey.body.id}`)
        .set(...bearer(third.accessToken));
      const setupMfa = await request(app)
        .post('/mfa/totp/setup')
        .set(...bearer(third.accessToken));
      const enabled = await request(app)
        .post('/mfa/totp/enable')
        .set(...bearer(third.accessToken))
        .send({ code: codeAt(setupMfa.body.secret as string, clock.now()) });
      const first = await request(app).post('/login').send({ username: user.username, password: user.password });
      await request(app).post('/login/mfa').send({ mfa_token: first.body.mfa_token, code: enabled.body.recoveryCodes[0] });
      clock.advance(STEP_SECONDS * 1000);
      await request(app)
        .post('/mfa/totp/disable')
        .set(...bearer(third.accessToken))
        .send({ password: user.password, code: codeAt(setupMfa.body.secret as string, clock.now()) });
      // Password and email, through the outbox.
      await request(app)
        .patch('/me')
        .set(...bearer(third.accessToken))
        .send({ password: 'a second passphrase', currentPassword: user.password });
      await request(app).post('/password/forgot').send({ email: user.email });
      const resetLink = async () => {
        const mail = (await readOutbox(deps.config.email.outboxDir)).find((entry) => entry.to === user.email && entry.text.includes('#reset-password='));
        return /#reset-password=([\w-]+)/.exec(mail?.text ?? '')?.[1];
      };
      await expect.poll(resetLink).toBeDefined();
      await request(app)
        .post('/password/reset')
        .send({ token: await resetLink(), password: 'a third passphrase' });
      const fourth = await login(app, { username: user.username, password: 'a third passphrase' });
      const newEmail = `${uniqueName('moved')}@example.com`;
      await request(app)
        .patch('/me')
        .set(...bearer(fourth.accessToken))
        .send({ email: newEmail, currentPassword: 'a third passphrase' });
      const verifyLink = async () =>
        /#verify-email=([\w-]+)/.exec((await readOutbox(deps.config.email.outboxDir)).find((entry) => entry.to === newEmail)?.text ?? '')?.[1];
      await expect.poll(verifyLink).toBeDefined();
      await request(app)
        .post('/email/verify')
        .send({ token: await verifyLink() });
      // What administrators do.
      await request(app)
        .patch(`/admin/users/${user.id}/roles`)
        .set(...bearer(adminToken))
        .send({ roles: ['user', 'admin'] });
      await request(app)
        .patch(`/admin/users/${user.id}/roles`)
        .set(...bearer(adminToken))
        .send({ roles: ['user'] });
      await request(app)
        .post(`/admin/users/${user.id}/disable`)
        .set(...bearer(adminToken));
      await request(app)
        .post(`/admin/users/${user.id}/enable`)
        .set(...bearer(adminToken));
      await request(app)
        .delete(`/admin/rate-limits/${encodeURIComponent(`user:${user.id}`)}`)
        .set(...bearer(adminToken));
      clock.advance(1_000); // past the instant the disabling voided every token
      const fifth = await login(app, { username: user.username, password: 'a third passphrase' });
      // Data in and out: the person downloads theirs; an administrator imports one user and exports them all.
      await request(app)
        .get('/me/export')
        .set(...bearer(fifth.accessToken));
      await request(app)
        .post('/admin/users/import')
        .set(...bearer(adminToken))
        .set('Content-Type', 'application/x-ndjson')
        .send(`${JSON.stringify({ email: `${uniqueName('imported')}@example.com` })}\n`);
      await request(app)
        .get('/admin/users/export')
        .set(...bearer(adminToken));
      await request(app)
        .post('/logout/all')
        .set(...bearer(fifth.accessToken));
      const doomed = await registerAndLogin(app);
      await request(app)
        .delete('/me')
        .set(...bearer(doomed.accessToken))
        .send({ password: doomed.password });
      await events.settled();

      const audit = await request(app)
        .get('/admin/audit')
        .query({ pageSize: 100, userId: user.id })
        .set(...bearer(adminToken));
      const doomedAudit = await request(app)
        .get('/admin/audit')
        .query({ userId: doomed.id, type: 'account.deleted' })
        .set(...bearer(adminToken));
      const resetAudit = await request(app)
        .get('/admin/audit')
        .query({ type: 'rate_limit.reset,users.imported,users.exported', pageSize: 100 })
        .set(...bearer(adminToken));
      const seen = new Set(
        [...(audit.body.events as Array<{ type: string }>), ...doomedAudit.body.events, ...resetAudit.body.events].map((event: { type: string }) => event.type),
      );
      clock.advance(1_000);
      const sixth = await login(app, { username: user.username, password: 'a third passphrase' });
      const own = await request(app)
        .get('/me/security-events')
        .query({ pageSize: 5 })
        .set(...bearer(sixth.accessToken));

      expect(audit.status).toBe(200);
      // Linking needs an outside provider's round trip: tests/federation.test.ts checks those two in the audit log.
      // An organization's own events are checked in its audit log: tests/organizations.test.ts.
      expect(SECURITY_EVENT_TYPES.filter((type) => !seen.has(type) && !NEEDS_A_PROVIDER.has(type) && !type.startsWith('org.'))).toEqual([]);
      const failed = (audit.body.events as Array<{ type: string; ip: string; userAgent: string; requestId: string; details: unknown }>).find(
        (event) => event.type === 'session.sign_in_failed',
      );
      expect(failed).toMatchObject({ userAgent: 'AuditTest/1.0', requestId: 'audit-test-request', details: { method: 'password', reason: 'wrong_password' } });
      expect(failed?.ip).toMatch(/127\.0\.0\.1/);
      expect(JSON.stringify(audit.body)).not.toMatch(/passphrase|not the password|whsec_|ak_[A-Za-z0-9]{12}_/);
      expect(own.body).toMatchObject({ page: 1, pageSize: 5 });
      expect(own.body.events).toHaveLength(5);
      expect(own.body.total).toBeGreaterThan(20);
      const times = (own.body.events as Array<{ createdAt: string }>).map((event) => event.createdAt);
      expect([...times].sort().reverse()).toEqual(times);
    });

    it('when the admin filters by type and time, then only those events come back; a user never reads the admin log', async () => {
      const { app, deps, clock } = setup();
      const { accessToken: adminToken } = await admin(app, deps);
      const user = await registerAndLogin(app);
      const middle = new Date(clock.now() + 1).toISOString();
      clock.advance(1_000);
      await request(app)
        .post('/logout')
        .set(...bearer(user.accessToken));
      await builtWith(app).graph.audit.settled();

      const since = await request(app)
        .get('/admin/audit')
        .query({ userId: user.id, from: middle })
        .set(...bearer(adminToken));
      const registered = await request(app)
        .get('/admin/audit')
        .query({ userId: user.id, type: 'user.registered' })
        .set(...bearer(adminToken));
      const badType = await request(app)
        .get('/admin/audit')
        .query({ type: 'no.such.event' })
        .set(...bearer(adminToken));
      const asUser = await request(app)
        .get('/admin/audit')
        .set(...bearer((await login(app, user)).accessToken));

      expect((since.body.events as Array<{ type: string }>).map((event) => event.type)).toEqual(['session.signed_out']);
      expect((registered.body.events as Array<{ type: string }>).map((event) => event.type)).toEqual(['user.registered']);
      expect(badType.status).toBe(400);
      expect(asUser.status).toBe(403);
    });

    it('when the audit log cannot be written, then the request still succeeds and the failure is counted', async () => {
      const { app, deps } = setup();
      const metrics = deps.metrics;
      if (!metrics) throw new Error('the test app has metrics');
      await backends.db.prisma.$executeRawUnsafe("ALTER TABLE audit_events ADD CONSTRAINT audit_test_refuses CHECK (type <> 'user.registered') NOT VALID");
      try {
        const account = await register(app);
        await builtWith(app).graph.audit.settled();
        expect(account.id).toEqual(expect.any(String));
        expect((await metrics.auditWriteFailures.get()).values[0]?.value).toBe(1);
      } finally {
        await backends.db.prisma.$executeRawUnsafe('ALTER TABLE audit_events DROP CONSTRAINT audit_test_refuses');
      }
    });

    it('when someone updates an event, then the database refuses it: the log is append-only', async () => {
      const { app } = setup();
      const account = await register(app);
      await builtWith(app).graph.audit.settled();

      const update = backends.db.prisma.$executeRawUnsafe(`UPDATE audit_events SET type = 'tampered' WHERE target_id = '${account.id}'`);

      await expect(update).rejects.toThrow(/append-only: UPDATE is refused/);
      expect(await backends.db.prisma.auditEvent.count({ where: { targetId: account.id, type: 'tampered' } })).toBe(0);
      expect(await backends.db.prisma.auditEvent.count({ where: { targetId: account.id, type: 'user.registered' } })).toBe(1);
    });
  });

  describe('webhooks', () => {
    it('when an endpoint answers 500 once, then the same delivery is retried, signed as Standard Webhooks says, and the admin sees both attempts', async () => {
      // The receiver is on loopback, which webhooks reach only when the operator allows it.
      const { app, deps, clock } = setup({ webhookInternalAllowlist: ['127.0.0.1/32'] });
      const received: Array<{ id: string; body: string; verified: boolean }> = [];
      let secret = '';
      const receiver = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          let verified: boolean;
          try {
            new Webhook(secret).verify(body, req.headers as Record<string, string>);
            verified = true;
          } catch {
            verified = false;
          }
          received.push({ id: String(req.headers['webhook-id']), body, verified });
          res.statusCode = received.length === 1 ? 500 : 204;
          res.end();
        });
      });
      receiver.listen(0, '127.0.0.1');
      await once(receiver, 'listening');
      try {
        const { accessToken: adminToken } = await admin(app, deps);
        const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
        const created = await request(app)
          .post('/admin/webhooks')
          .set(...bearer(adminToken))
          .send({ url, eventTypes: ['user.registered'] });
        secret = created.body.secret as string;

        const account = await register(app);
        await builtWith(app).graph.audit.settled();
        await expect.poll(() => received.length).toBe(1);
        await builtWith(app).graph.webhooks.settled();
        clock.advance(retryDelayMs(1));
        await builtWith(app).graph.webhooks.deliverDue();
        const deliveries = await request(app)
          .get(`/admin/webhooks/${created.body.id}/deliveries`)
          .set(...bearer(adminToken));
        const list = await request(app)
          .get('/admin/webhooks')
          .set(...bearer(adminToken));

        expect(created.status).toBe(201);
        expect(secret).toMatch(/^whsec_/);
        expect(received).toHaveLength(2);
        expect(received.every((delivery) => delivery.verified)).toBe(true);
        expect(received[1]?.id).toBe(received[0]?.id);
        expect(JSON.parse(received[1]?.body ?? '{}')).toMatchObject({ type: 'user.registered', data: { targetId: account.id } });
        expect(deliveries.body.deliveries).toEqual([
          expect.objectContaining({ attempts: 2, lastStatus: 204, lastError: null, deliveredAt: expect.any(String) }),
        ]);
        expect(JSON.stringify(list.body)).not.toContain('whsec_');
      } finally {
        receiver.close();
      }
    });

    it('when a signature is checked with another secret, or the body is changed, then it does not verify', () => {
      const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
      const body = JSON.stringify({ type: 'user.registered' });
      // The same signing the service uses, checked by the reference implementation.
      return import('../src/features/webhooks/webhooks.js').then(({ signatureHeaders }) => {
        const headers = signatureHeaders(secret, 'msg_1', Math.floor(Date.now() / 1000), body);
        expect(() => new Webhook(secret).verify(body, headers)).not.toThrow();
        expect(() => new Webhook(`whsec_${Buffer.alloc(32, 8).toString('base64')}`).verify(body, headers)).toThrow();
        expect(() => new Webhook(secret).verify(`${body} `, headers)).toThrow();
      });
    });

    it('when an admin registers an endpoint with a bad URL or an unknown event type, then 400 and nothing is stored', async () => {
      const { app, deps } = setup();
      const { accessToken: adminToken } = await admin(app, deps);
      const before = await backends.db.prisma.webhookEndpoint.count();

      const badUrl = await request(app)
        .post('/admin/webhooks')
        .set(...bearer(adminToken))
        .send({ url: 'ftp://example.com', eventTypes: ['user.registered'] });
      const badType = await request(app)
        .post('/admin/webhooks')
        .set(...bearer(adminToken))
        .send({ url: 'https://example.com/hook', eventTypes: ['nope'] });
      const none = await request(app)
        .post('/admin/webhooks')
        .set(...bearer(adminToken))
        .send({ url: 'https://example.com/hook', eventTypes: [] });

      expect([badUrl.status, badType.status, none.status]).toEqual([400, 400, 400]);
      expect(await backends.db.prisma.webhookEndpoint.count()).toBe(before);
    });
  });
});
