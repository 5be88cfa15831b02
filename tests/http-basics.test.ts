import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { boundPort, closeGracefully, listen } from '../src/core/http/server.js';
import { buildApp, testConfig, useBackends } from './support/test-app.js';

describe('HTTP basics', () => {
  const backends = useBackends();

  it('when the body is malformed JSON, then 400 invalid_json in the error shape', async () => {
    const { app } = buildApp(backends);
    const res = await request(app).post('/anything').set('Content-Type', 'application/json').send('{"broken":');
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: { code: 'invalid_json', reason: 'invalid_json', message: expect.any(String), requestId: expect.any(String) } });
  });

  it('when the route does not exist, then 404 not_found', async () => {
    const { app } = buildApp(backends);
    const res = await request(app).get('/no/such/route');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
  });

  it('when the body is over the limit, then 413 payload_too_large', async () => {
    const { app } = buildApp(backends, { config: testConfig({ bodyLimit: '1kb' }) });
    const res = await request(app)
      .post('/anything')
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ filler: 'x'.repeat(2_000) }));
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('payload_too_large');
  });

  it.each([
    ['oversized headers', `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'headers_too_large'],
    ['a broken request line', 'NOT A REQUEST\r\n\r\n', 400, 'validation_failed'],
  ])('when Node itself refuses %s, then the answer is the one JSON error shape', async (_case, raw, status, code) => {
    const server = await listen(buildApp(backends).app, 0, '127.0.0.1');
    try {
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(boundPort(server), '127.0.0.1', () => socket.end(raw));
        let text = '';
        socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
      const [head = '', body = ''] = answer.split('\r\n\r\n');

      expect(head).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
      expect(head).toContain('Content-Type: application/json');
      expect(JSON.parse(body)).toEqual({ error: { code, reason: expect.any(String), message: expect.any(String), requestId: expect.any(String) } });
    } finally {
      await closeGracefully(server, 1_000);
    }
  });

  it('when the client sends a sane X-Request-Id, then it is echoed and used in errors', async () => {
    const { app } = buildApp(backends);
    const res = await request(app).get('/missing').set('X-Request-Id', 'trace-123');
    expect(res.headers['x-request-id']).toBe('trace-123');
    expect(res.body.error.requestId).toBe('trace-123');
  });

  it('when the client sends a hostile X-Request-Id, then a fresh id replaces it', async () => {
    const { app } = buildApp(backends);
    const res = await request(app).get('/health').set('X-Request-Id', '<script>alert(1)</script>'.repeat(10));
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('when any API route answers, then it carries helmet headers and Cache-Control: no-store', async () => {
    const { app } = buildApp(backends);
    const res = await request(app).get('/health');
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    expect(res.headers['x-powered-by']).toBeUndefined();
  });

  it('when the page loads the strength estimator, then its modules come from the installed packages, and only the import map may run inline', async () => {
    const { app } = buildApp(backends);
    const page = await request(app).get('/');
    const importMap = /<script type="importmap">([\s\S]*?)<\/script>/.exec(page.text)?.[1] ?? '';
    const hash = createHash('sha256').update(importMap).digest('base64');
    const scriptSrc = /script-src ([^;]+)/.exec(String(page.headers['content-security-policy']))?.[1];
    expect(scriptSrc).toBe(`'self' 'sha256-${hash}'`);
    for (const url of Object.values((JSON.parse(importMap) as { imports: Record<string, string> }).imports)) {
      const res = await request(app).get(url);
      expect(res.status, url).toBe(200);
      expect(res.headers['content-type'], url).toMatch(/javascript/);
    }
    const notAModule = await request(app).get('/vendor/zxcvbn-core/index.d.ts');
    expect(notAModule.status).toBe(404);
    expect(notAModule.body.error.code).toBe('not_found');
  });

  it('when a known path is called with a method it does not answer, then 405 with Allow; an unknown path stays 404', async () => {
    const { app } = buildApp(backends);
    const cases: Array<[string, string, string]> = [
      ['get', '/login', 'POST'],
      ['put', '/me', 'DELETE, GET, HEAD, PATCH'],
      ['post', '/images/6f1c1f9e-5d6a-4c1e-9a41-0a4c2b1d3e5f', 'DELETE, GET, HEAD'],
      ['delete', '/.well-known/jwks.json', 'GET, HEAD'],
      // The same routers served again under /auth for older clients.
      ['get', '/auth/login', 'POST'],
      ['put', '/auth/me', 'DELETE, GET, HEAD, PATCH'],
    ];
    for (const [method, path, allow] of cases) {
      const res = await request(app)[method as 'get'](path);
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.allow, `${method} ${path}`).toBe(allow);
      expect(res.body.error.code).toBe('method_not_allowed');
    }
    for (const path of ['/no-such-thing', '/auth/no-such-thing', '/auth/admin/users']) {
      expect((await request(app).put(path)).status, path).toBe(404);
    }
  });

  it('when an origin is on the CORS allowlist, then it is allowed, and others are not', async () => {
    const { app } = buildApp(backends, { config: testConfig({ corsOrigins: ['https://app.example'] }) });
    const allowed = await request(app).options('/health').set('Origin', 'https://app.example').set('Access-Control-Request-Method', 'GET');
    const refused = await request(app).options('/health').set('Origin', 'https://evil.example').set('Access-Control-Request-Method', 'GET');
    expect(allowed.headers['access-control-allow-origin']).toBe('https://app.example');
    expect(refused.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('when the docs are requested, then the OpenAPI document and a locally served Swagger UI answer', async () => {
    const { app } = buildApp(backends);
    const doc = await request(app).get('/openapi.json');
    const page = await request(app).get('/docs');
    const bundle = await request(app).get('/docs/assets/swagger-ui-bundle.js');
    expect(doc.body.openapi).toBe('3.1.0');
    expect(page.text).toContain('/docs/assets/swagger-ui-bundle.js');
    expect(page.text).not.toMatch(/https?:\/\//);
    expect(bundle.status).toBe(200);
  });
});
