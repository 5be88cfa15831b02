import request from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { bearer, jwtSegment, registerAndLogin } from './support/accounts.js';
import { buildApp, testConfig, useBackends } from './support/test-app.js';

interface Operation {
  method: 'get' | 'post' | 'patch' | 'put' | 'delete';
  path: string;
  bearerOnly: boolean;
  secured: boolean;
  jsonBody: boolean;
}

const SOME_ID = '00000000-0000-4000-8000-000000000000';

/**
 * Sends hostile input to every operation the OpenAPI document lists, so a new route cannot forget the rules:
 * malformed JSON, wrong types and oversize bodies are 4xx, forged or expired tokens 401, and nothing is ever 5xx.
 */
describe('bad input, swept over every documented operation', () => {
  const backends = useBackends();
  let operations: Operation[];
  const clock = new ManualClock();
  const config = testConfig({ bodyLimit: '2kb' });

  beforeAll(async () => {
    const { app } = buildApp(backends, { config, clock });
    const doc = (await request(app).get('/openapi.json')).body as {
      paths: Record<string, Record<string, { security?: Array<Record<string, unknown>>; requestBody?: { content: Record<string, unknown> } }>>;
    };
    operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => {
        const schemes = (operation.security ?? []).flatMap((entry) => Object.keys(entry));
        return {
          method: method as Operation['method'],
          path: path.replace(/\{[^}]+\}/g, SOME_ID),
          secured: schemes.length > 0,
          bearerOnly: schemes.length > 0 && !schemes.includes('apiKey'),
          jsonBody: operation.requestBody?.content['application/json'] !== undefined,
        };
      }),
    );
  });

  const call = (app: Parameters<typeof request>[0], op: Operation) => request(app)[op.method](op.path);

  function expectClientError(res: request.Response, op: Operation, what: string) {
    const label = `${op.method.toUpperCase()} ${op.path} with ${what}`;
    expect(res.status, label).toBeGreaterThanOrEqual(400);
    expect(res.status, label).toBeLessThan(500);
    expect(res.body.error, label).toEqual(expect.objectContaining({ code: expect.any(String), message: expect.any(String), requestId: expect.any(String) }));
  }

  it('when the document is read, then it lists the operations this sweep covers', () => {
    expect(operations.filter((op) => op.secured).length).toBeGreaterThan(20);
    expect(operations.filter((op) => op.jsonBody).length).toBeGreaterThan(10);
  });

  it('when a secured operation gets no token, a forged one, an expired one or a refresh token, then 401', async () => {
    const { app } = buildApp(backends, { config, clock });
    const user = await registerAndLogin(app);
    const [, payload] = user.accessToken.split('.') as [string, string];
    const forged = `${jwtSegment({ alg: 'none', typ: 'JWT' })}.${payload}.`;
    const { app: later } = buildApp(backends, { config, clock: new ManualClock(clock.now() + 3_600_000) });
    for (const op of operations.filter((candidate) => candidate.secured)) {
      for (const [what, res] of [
        ['no token', await call(app, op)],
        ['an alg-none token', await call(app, op).set(...bearer(forged))],
        ['a refresh token', await call(app, op).set(...bearer(user.refreshToken))],
        ['an expired token', await call(later, op).set(...bearer(user.accessToken))],
      ] as const) {
        expectClientError(res, op, what);
        expect(res.status, `${op.method} ${op.path} with ${what}`).toBe(401);
      }
    }
  });

  it('when a JSON operation gets malformed JSON, a wrong type or an oversize body, then 400, 400 and 413', async () => {
    const { app } = buildApp(backends, { config, clock });
    const user = await registerAndLogin(app);
    for (const op of operations.filter((candidate) => candidate.jsonBody)) {
      const authed = () => (op.secured ? call(app, op).set(...bearer(user.accessToken)) : call(app, op));
      const malformed = await authed().set('Content-Type', 'application/json').send('{"unterminated": ');
      const wrongType = await authed().set('Content-Type', 'application/json').send('"just a string"');
      const oversize = await authed()
        .set('Content-Type', 'application/json')
        .send(JSON.stringify({ filler: 'x'.repeat(4_000) }));
      const notJson = await authed().set('Content-Type', 'text/plain').send('hello');
      expectClientError(malformed, op, 'malformed JSON');
      expect(malformed.body.error.code).toBe('invalid_json');
      expectClientError(wrongType, op, 'a JSON string body');
      expectClientError(oversize, op, 'an oversize body');
      expect(oversize.status, `${op.method} ${op.path}`).toBe(413);
      expectClientError(notJson, op, 'a text/plain body');
    }
  });

  it('when any operation gets junk in its path, query and headers, then it never answers 5xx', async () => {
    const { app } = buildApp(backends, { config, clock });
    const user = await registerAndLogin(app);
    for (const op of operations) {
      const junkPath = op.path.replace(SOME_ID, '%E0%A4%A');
      const send = (path: string) => {
        const agent = request(app);
        return agent[op.method](path).set(...bearer(user.accessToken));
      };
      const responses = [
        await send(`${op.path}?page=-1&pageSize=abc&scope=everything&extra[]=1`),
        await send(junkPath),
        await call(app, op).set('Authorization', 'Bearer ' + 'A'.repeat(5_000)),
        await call(app, op).set('X-API-Key', 'ak_' + '%'.repeat(60)),
      ];
      for (const res of responses) expect(res.status, `${op.method} ${op.path}`).toBeLessThan(500);
    }
  });
});
