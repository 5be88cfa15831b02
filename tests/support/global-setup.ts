// Migrates one template database per run (real PostgreSQL or PGlite) that every test file copies.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import { Redis } from 'ioredis';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import type { TestProject } from 'vitest/node';
import { applyMigrations } from '../../src/core/db/schema-engine.js';
import { databaseUrlFor } from './database-url.js';

declare module 'vitest' {
  export interface ProvidedContext {
    runId: string;
    /** Real PostgreSQL: the template database each test file clones. */
    templateDatabase?: string;
    /** Embedded: a PGlite data directory dump each test file loads. */
    pgliteDump?: string;
  }
}

async function withAdminClient<T>(baseUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: baseUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export default async function setup(project: TestProject) {
  const runId = randomBytes(4).toString('hex');
  project.provide('runId', runId);
  const baseUrl = process.env.DATABASE_URL;
  const redisUrl = process.env.REDIS_URL;
  let tmpDir: string | undefined;

  if (baseUrl) {
    const template = `authkit_test_${runId}_template`;
    await withAdminClient(baseUrl, (client) => client.query(`CREATE DATABASE "${template}"`));
    const pool = new pg.Pool({ connectionString: databaseUrlFor(baseUrl, template) });
    await applyMigrations(new PrismaPg(pool));
    // A template with open connections cannot be cloned.
    await pool.end();
    project.provide('templateDatabase', template);
  } else {
    const pglite = await PGlite.create();
    await applyMigrations(new PrismaPGlite(pglite));
    const dump = await pglite.dumpDataDir('none');
    await pglite.close();
    tmpDir = await mkdtemp(path.join(os.tmpdir(), 'authkit-test-'));
    const file = path.join(tmpDir, 'template.tar');
    await writeFile(file, Buffer.from(await dump.arrayBuffer()));
    project.provide('pgliteDump', file);
  }

  return async () => {
    if (baseUrl) {
      await withAdminClient(baseUrl, async (client) => {
        const { rows } = await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [`authkit_test_${runId}_%`]);
        for (const { datname } of rows) await client.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
      });
    }
    if (redisUrl) {
      const redis = new Redis(redisUrl);
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `authkit-test:${runId}:*`, 'COUNT', 500);
        if (keys.length > 0) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
      redis.disconnect();
    }
    if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
    await rm(path.join(os.tmpdir(), `authkit-test-run-${runId}`), { recursive: true, force: true });
  };
}
