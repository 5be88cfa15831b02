import type { Express } from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { toOpenApiPath } from '../src/core/http/api-router.js';
import { buildApp, useBackends } from './support/test-app.js';

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/** Every (method, path) Express would route, read from the routers themselves rather than from our registry. */
function mountedRoutes(app: Express): Array<{ method: string; path: string }> {
  const found: Array<{ method: string; path: string }> = [];
  const walk = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const method of Object.keys(layer.route.methods)) found.push({ method, path: layer.route.path });
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack);
  return found;
}

describe('OpenAPI document', () => {
  const backends = useBackends();

  it('when the app is built, then every mounted route appears in /openapi.json', async () => {
    const { app } = buildApp(backends);
    const doc = (await request(app).get('/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([path, operations]) => Object.keys(operations).map((method) => ({ method, path })));
    const served = ['/openapi.json', '/docs', '/docs/init.js'];

    // `_all`: the 405 answers for known paths, built from this very document.
    const routes = mountedRoutes(app).filter((route) => !served.includes(route.path) && route.method !== '_all');
    expect(routes.length).toBeGreaterThan(1);
    const missing = routes.filter((route) => !documented.some((doc) => doc.method === route.method && doc.path.endsWith(toOpenApiPath(route.path))));
    expect(missing).toEqual([]);
  });

  it('when a route declares schemas, then its document lists the request body and error responses', async () => {
    const { app } = buildApp(backends);
    const doc = (await request(app).get('/openapi.json')).body;
    expect(doc.paths['/ready'].get.responses['503'].content['application/json'].schema.$ref).toBe('#/components/schemas/Error');
  });

  it('when the document is read by tools, then every operation has a unique operationId and says its security, even when public', async () => {
    const { app } = buildApp(backends);
    const doc = (await request(app).get('/openapi.json')).body as {
      servers: unknown[];
      info: { license?: { name: string } };
      paths: Record<string, Record<string, { operationId?: string; security?: unknown[] }>>;
    };
    const operations = Object.values(doc.paths).flatMap((ops) => Object.values(ops));
    const ids = operations.map((operation) => operation.operationId);
    expect(ids.every((id) => typeof id === 'string' && /^[a-z]+[A-Za-z0-9]*$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(operations.every((operation) => Array.isArray(operation.security))).toBe(true);
    expect(doc.paths['/health']?.get?.security).toEqual([]);
    expect(doc.paths['/images/{id}']?.get?.operationId).toBe('getImagesById');
    expect(doc.servers.length).toBeGreaterThan(0);
    expect(doc.info.license?.name).toBe('MIT');
  });
});
