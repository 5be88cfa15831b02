// docker-compose.yml checked as far as a machine without a Docker engine can: its shape, and that the environment it
// gives the migration and the replicas is one the server accepts in production (the migration once lacked secrets).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../src/core/config.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const text = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');

interface Service {
  image?: string;
  build?: unknown;
  environment?: Record<string, string>;
  depends_on?: Record<string, unknown> | string[];
  volumes?: string[];
}
const compose = parse(text) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const services = compose.services;

/** `${NAME:?msg}` and `${NAME:-default}` as compose fills them from `.env`: required ones get `given`. */
function interpolate(value: string, given: Record<string, string>): string {
  return value.replace(
    /\$\{(\w+)(?::([?-])([^}]*))?\}/g,
    (_all, name: string, kind?: string, rest?: string) => given[name] ?? (kind === '-' ? (rest ?? '') : ''),
  );
}

describe('docker-compose.yml', () => {
  it('when compose reads it, then every dependency and named volume exists', () => {
    for (const [name, service] of Object.entries(services)) {
      const needs = Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {});
      for (const need of needs) expect(services, `${name} depends on ${need}`).toHaveProperty(need);
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0]!;
        if (!source.startsWith('.') && !source.startsWith('/')) expect(compose.volumes ?? {}, `${name} mounts ${source}`).toHaveProperty(source);
      }
    }
  });

  it('when every image is named, then each is pinned to a release and none is a withdrawn MinIO image', () => {
    const images = Object.values(services).flatMap((service) => (service.image ? [service.image] : []));
    expect(images.length).toBeGreaterThan(0);
    for (const image of images) {
      expect(image, image).toMatch(/^[\w./-]+:[\w.-]+$/);
      expect(image).not.toMatch(/:latest$/);
      expect(image).not.toMatch(/^minio\//);
    }
  });

  it('when .env holds the two secrets the example names, then the migration and the replicas get a production config the server accepts', () => {
    const example = readFileSync(path.join(ROOT, 'deploy.env.example'), 'utf8');
    const required = [...text.matchAll(/\$\{(\w+):\?/g)].map((match) => match[1]!);
    expect(new Set(required)).toEqual(new Set(['JWT_SECRET', 'KEY_ENCRYPTION_KEY']));
    for (const name of required) expect(example).toMatch(new RegExp(`^${name}=`, 'm'));

    const dotEnv = { JWT_SECRET: 'k3Jx9vQz2Lw8Rt5Yp1Nc7Hb4Fd6Gs0Ma', KEY_ENCRYPTION_KEY: 'Vq8nR2wLz5Tx1Kb7Hc4Md9Pf3Gs6Jy0Ae' };
    for (const name of ['migrate', 'api']) {
      const environment = Object.fromEntries(
        Object.entries(services[name]?.environment ?? {}).map(([key, value]) => [key, interpolate(String(value), dotEnv)]),
      );
      expect(() => loadConfig(environment), name).not.toThrow();
      // Every address it names is a service of this file.
      for (const key of ['DATABASE_URL', 'REDIS_URL', 'S3_ENDPOINT', 'SMTP_URL']) {
        expect(services, `${name} ${key}`).toHaveProperty(new URL(environment[key]!).hostname);
      }
    }
    expect(services.migrate?.environment).toEqual(services.api?.environment);
  });

  it('when nginx proxies to the replicas, then it names the api service on the port the server listens on', () => {
    const nginx = readFileSync(path.join(ROOT, 'scripts/deploy/nginx-compose.conf'), 'utf8');
    expect(nginx).toMatch(/server api:3000 resolve;/);
    expect(loadConfig({}).port).toBe(3000);
  });
});
