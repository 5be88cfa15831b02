// Webhooks never reach this machine or a private network (server-side request forgery), unless an operator allows it.
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { AppConfig } from '../src/app.js';
import { ManualClock } from '../src/core/clock.js';
import { ConfigError, loadConfig } from '../src/core/config.js';
import { Metrics } from '../src/core/metrics.js';
import type { AppDeps } from '../src/composition.js';
import { VersionedBox } from '../src/kernel/keys/purpose-keys.js';
import { DestinationPolicy, DestinationRefused, forbiddenRange, type HostResolver } from '../src/features/webhooks/destination-policy.js';
import { pinnedLookup } from '../src/features/webhooks/pinned-post.js';
import { Webhooks } from '../src/features/webhooks/webhooks.js';
import { bearer, createAdmin, login, register, uniqueName } from './support/accounts.js';
import { buildApp, freshStore, silentLogger, testConfig, useBackends, builtWith } from './support/test-app.js';

/** An HTTP receiver that answers 204 and counts every TCP connection made to it. */
async function receiver(host = '127.0.0.1', port = 0) {
  const requests: Array<{ host: string | undefined; body: string }> = [];
  let connections = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      requests.push({ host: req.headers.host, body: Buffer.concat(chunks).toString('utf8') });
      res.statusCode = 204;
      res.end();
    });
  });
  server.on('connection', () => {
    connections += 1;
  });
  server.listen(port, host);
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    connections: () => connections,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** A resolver that gives each call the next answer (the last one forever), and counts the calls. */
function scriptedResolver(...answers: string[][]): HostResolver & { calls: number } {
  const resolve = () => {
    const answer = answers[Math.min(resolve.calls, answers.length - 1)] ?? [];
    resolve.calls += 1;
    return Promise.resolve(answer.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
  };
  resolve.calls = 0;
  return resolve;
}

const LOOPBACK_SPELLINGS = ['127.0.0.1', '127.1', '2130706433', '0x7f.1', '017700000001', '[::1]', '[::ffff:127.0.0.1]', 'localhost', '0.0.0.0'];
const INTERNAL_HOSTS = [
  '169.254.169.254',
  '10.0.0.1',
  '192.168.1.1',
  '172.16.0.1',
  '100.64.0.1',
  '[fc00::1]',
  '[fe80::1]',
  '[::ffff:10.0.0.1]',
  '224.0.0.1',
  '255.255.255.255',
  '[::]',
  '[ff02::1]',
  '[64:ff9b::a9fe:a9fe]',
];

describe('webhook destinations', () => {
  describe('the address policy', () => {
    it('when an address is loopback, private, link-local, unique-local, mapped, unspecified, multicast or reserved, then it is named; a public one is not', () => {
      const named = Object.fromEntries(
        [
          '127.0.0.1',
          '10.1.2.3',
          '172.31.255.255',
          '192.168.0.1',
          '100.127.0.1',
          '169.254.169.254',
          '0.1.2.3',
          '224.0.0.251',
          '255.255.255.255',
          '192.0.2.1',
          '240.0.0.1',
          '::1',
          '::',
          'fd00::1',
          'fe80::1',
          '::ffff:127.0.0.1',
          '::ffff:8.8.8.8',
          'ff02::1',
          '2001:db8::1',
          '64:ff9b::7f00:1',
          '2002:a00:1::1',
          '::127.0.0.1',
        ].map((address) => [address, forbiddenRange(address)]),
      );

      expect(named).toEqual({
        '127.0.0.1': 'loopback',
        '10.1.2.3': 'private',
        '172.31.255.255': 'private',
        '192.168.0.1': 'private',
        '100.127.0.1': 'shared (carrier-grade NAT)',
        '169.254.169.254': 'link-local',
        '0.1.2.3': 'unspecified',
        '224.0.0.251': 'multicast',
        '255.255.255.255': 'broadcast',
        '192.0.2.1': 'documentation',
        '240.0.0.1': 'reserved',
        '::1': 'loopback',
        '::': 'unspecified',
        'fd00::1': 'unique-local',
        'fe80::1': 'link-local',
        '::ffff:127.0.0.1': 'IPv4-mapped loopback',
        '::ffff:8.8.8.8': 'IPv4-mapped',
        'ff02::1': 'multicast',
        '2001:db8::1': 'documentation',
        '64:ff9b::7f00:1': 'NAT64 of loopback',
        '2002:a00:1::1': '6to4 of private',
        '::127.0.0.1': 'IPv4-compatible',
      });
      for (const address of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '64:ff9b::808:808'])
        expect(forbiddenRange(address), address).toBeUndefined();
    });

    it('when any one of the addresses a name resolves to is internal, then the name is refused', async () => {
      const policy = new DestinationPolicy([], scriptedResolver(['93.184.216.34', '127.0.0.1']));

      await expect(policy.check('https://hooks.example.com/')).rejects.toThrow(
        new DestinationRefused('its host name resolves to a forbidden address (loopback)'),
      );
    });

    it('when a name does not resolve, or resolves to nothing, then it is refused', async () => {
      const failing = new DestinationPolicy([], () => Promise.reject(Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' })));
      const empty = new DestinationPolicy([], scriptedResolver([]));

      await expect(failing.check('https://nowhere.example/')).rejects.toBeInstanceOf(DestinationRefused);
      await expect(empty.check('https://nowhere.example/')).rejects.toBeInstanceOf(DestinationRefused);
    });

    it('when the allowlist names a CIDR or a host, then those internal addresses pass and no others', async () => {
      const policy = new DestinationPolicy(['10.20.0.0/16', 'fd00::/8', 'hooks.internal'], scriptedResolver(['192.168.5.5']));

      await expect(policy.check('https://10.20.3.4/')).resolves.toMatchObject({ address: '10.20.3.4', family: 4 });
      await expect(policy.check('https://[::ffff:10.20.3.4]/')).resolves.toMatchObject({ address: '::ffff:a14:304' });
      await expect(policy.check('https://[fd00::5]/')).resolves.toMatchObject({ address: 'fd00::5', family: 6 });
      await expect(policy.check('https://HOOKS.internal./')).resolves.toMatchObject({ address: '192.168.5.5' });
      await expect(policy.check('https://10.21.0.1/')).rejects.toBeInstanceOf(DestinationRefused);
      await expect(policy.check('https://other.internal/')).rejects.toBeInstanceOf(DestinationRefused);
      await expect(policy.check('https://169.254.169.254/')).rejects.toBeInstanceOf(DestinationRefused);
    });

    it('when DNS answers a public address at the check and loopback afterwards, then the connection still goes to the checked address', async () => {
      const resolve = scriptedResolver(['93.184.216.34'], ['127.0.0.1']);
      const checked = await new DestinationPolicy([], resolve).check('https://rebind.example/');
      const lookup = pinnedLookup(checked.address, checked.family);
      const answers: unknown[] = [];

      lookup('rebind.example', {}, (_err, address, family) => answers.push([address, family]));
      lookup('rebind.example', { all: true }, (_err, addresses) => answers.push(addresses));

      expect(resolve.calls).toBe(1);
      expect(await resolve('rebind.example')).toEqual([{ address: '127.0.0.1', family: 4 }]);
      expect(answers).toEqual([['93.184.216.34', 4], [{ address: '93.184.216.34', family: 4 }]]);
    });

    it('when WEBHOOK_INTERNAL_ALLOWLIST has a malformed entry, then the configuration is refused; good entries load', () => {
      const load = (value: string) => loadConfig({ NODE_ENV: 'test', WEBHOOK_INTERNAL_ALLOWLIST: value });

      expect(load(' 127.0.0.1/32, 10.0.0.0/8 ,fd00::/8,::1,hooks.internal ').webhookInternalAllowlist).toEqual([
        '127.0.0.1/32',
        '10.0.0.0/8',
        'fd00::/8',
        '::1',
        'hooks.internal',
      ]);
      expect(loadConfig({ NODE_ENV: 'test' }).webhookInternalAllowlist).toEqual([]);
      for (const bad of ['10.0.0.0/33', 'fd00::/129', '10.0.0.0/8/1', 'hooks.internal/24', 'not a host', 'http://hooks.internal'])
        expect(() => load(bad), bad).toThrow(ConfigError);
    });
  });

  describe('over HTTP', () => {
    const backends = useBackends();

    function setup(overrides: Partial<AppConfig> = {}) {
      return buildApp(backends, { config: testConfig(overrides), clock: new ManualClock(), store: freshStore(backends) });
    }

    async function adminToken(app: Express, deps: AppDeps): Promise<string> {
      const username = uniqueName('hook_admin');
      await createAdmin(deps, { email: `${username}@example.com`, username, password: 'admin password 123' });
      return (await login(app, { username, password: 'admin password 123' })).accessToken;
    }

    it('when an admin registers any spelling of loopback, then 422 webhook_destination_forbidden and nothing is stored', async () => {
      const { app, deps } = setup({ env: 'production' });
      const token = await adminToken(app, deps);
      const before = await backends.db.prisma.webhookEndpoint.count();

      const answers = [];
      for (const host of LOOPBACK_SPELLINGS)
        answers.push(
          await request(app)
            .post('/admin/webhooks')
            .set(...bearer(token))
            .send({ url: `https://${host}:8443/hook`, eventTypes: ['user.registered'] }),
        );

      for (const [index, res] of answers.entries()) {
        expect([LOOPBACK_SPELLINGS[index], res.status, res.body.error?.code]).toEqual([LOOPBACK_SPELLINGS[index], 422, 'webhook_destination_forbidden']);
        expect(res.body.error).toEqual({
          code: 'webhook_destination_forbidden',
          reason: 'webhook_destination_forbidden',
          message: expect.stringMatching(/forbidden address \((IPv4-mapped )?(loopback|unspecified)\)/),
          requestId: expect.any(String),
        });
      }
      expect(await backends.db.prisma.webhookEndpoint.count()).toBe(before);
    });

    it('when an admin registers a metadata, private, unique-local, link-local, mapped, multicast or unspecified address, then 422 and nothing is stored', async () => {
      const { app, deps } = setup();
      const token = await adminToken(app, deps);
      const before = await backends.db.prisma.webhookEndpoint.count();

      const statuses = [];
      for (const host of INTERNAL_HOSTS) {
        const res = await request(app)
          .post('/admin/webhooks')
          .set(...bearer(token))
          .send({ url: `http://${host}/hook`, eventTypes: ['user.registered'] });
        statuses.push([host, res.status, res.body.error?.code]);
      }

      expect(statuses).toEqual(INTERNAL_HOSTS.map((host) => [host, 422, 'webhook_destination_forbidden']));
      expect(await backends.db.prisma.webhookEndpoint.count()).toBe(before);
    });

    it('when the allowlist permits a local receiver, then it can be registered and a delivery reaches it', async () => {
      const local = await receiver();
      try {
        const { app, deps } = setup({ webhookInternalAllowlist: ['127.0.0.1/32'] });
        const token = await adminToken(app, deps);

        const created = await request(app)
          .post('/admin/webhooks')
          .set(...bearer(token))
          .send({ url: `http://127.0.0.1:${local.port}/hook`, eventTypes: ['user.registered'] });
        const account = await register(app);
        await builtWith(app).graph.audit.settled();
        await builtWith(app).graph.webhooks.settled();
        const deliveries = await request(app)
          .get(`/admin/webhooks/${created.body.id}/deliveries`)
          .set(...bearer(token));

        expect(created.status).toBe(201);
        expect(local.requests).toHaveLength(1);
        expect(local.requests[0]?.host).toBe(`127.0.0.1:${local.port}`);
        expect(JSON.parse(local.requests[0]?.body ?? '{}')).toMatchObject({ type: 'user.registered', data: { targetId: account.id } });
        expect(deliveries.body.deliveries).toEqual([expect.objectContaining({ attempts: 1, lastStatus: 204, lastError: null })]);
      } finally {
        local.close();
      }
    });

    it('when an endpoint stops being allowed after it was registered, then its delivery fails as not allowed and nothing connects', async () => {
      const local = await receiver();
      try {
        const allowed = setup({ webhookInternalAllowlist: ['127.0.0.1/32'] });
        const token = await adminToken(allowed.app, allowed.deps);
        const created = await request(allowed.app)
          .post('/admin/webhooks')
          .set(...bearer(token))
          .send({ url: `http://127.0.0.1:${local.port}/hook`, eventTypes: ['user.registered'] });
        // The operator removes the allowlist: another instance over the same database, without it.
        const { app } = setup();

        await register(app);
        await builtWith(app).graph.audit.settled();
        await builtWith(app).graph.webhooks.settled();
        const deliveries = await request(app)
          .get(`/admin/webhooks/${created.body.id}/deliveries`)
          .set(...bearer(token));

        expect(created.status).toBe(201);
        expect(local.connections()).toBe(0);
        expect(deliveries.body.deliveries).toEqual([
          expect.objectContaining({
            attempts: 1,
            lastStatus: null,
            lastError: 'destination not allowed: it is a forbidden address (loopback)',
            deliveredAt: null,
          }),
        ]);
      } finally {
        local.close();
      }
    });

    it('when DNS answers an allowed address at the delivery check and another address afterwards, then the delivery connects only to the checked one', async () => {
      const checked = await receiver('127.0.0.1');
      const rebound = await receiver('127.0.0.2', checked.port).catch(() => undefined);
      try {
        // Registration and the delivery's own check see 127.0.0.1; any later question would get 127.0.0.2.
        const resolve = scriptedResolver(['127.0.0.1'], ['127.0.0.1'], ['127.0.0.2']);
        const clock = new ManualClock();
        const webhooks = new Webhooks({
          prisma: backends.db.prisma,
          box: new VersionedBox(backends.purposeKeys, 'webhook-signing'),
          clock,
          metrics: new Metrics(),
          logger: silentLogger,
          requireHttps: false,
          destinations: new DestinationPolicy(['127.0.0.1/32'], resolve),
        });
        const endpoint = await webhooks.create(randomUUID(), { url: `http://rebind.test:${checked.port}/hook`, eventTypes: ['password.reset'] });

        await webhooks.enqueue({ id: randomUUID(), type: 'password.reset', targetId: null, actorId: null, details: {}, createdAt: new Date(clock.now()) });
        await webhooks.settled();
        const deliveries = await webhooks.deliveries(endpoint.id);
        await webhooks.close();

        expect(resolve.calls).toBe(2);
        expect(checked.requests).toHaveLength(1);
        // The receiver is still named by its host: the Host header (and, over TLS, the server name) are the URL's.
        expect(checked.requests[0]?.host).toBe(`rebind.test:${checked.port}`);
        expect(rebound?.connections() ?? 0).toBe(0);
        expect(deliveries).toEqual([expect.objectContaining({ attempts: 1, lastStatus: 204, lastError: null })]);
      } finally {
        checked.close();
        rebound?.close();
      }
    });
  });
});
