import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { afterAll, describe, expect, it } from 'vitest';
import { SCHEMA_PATH, diffSchemaFromMigrations, readMigrations } from '../src/core/db/schema-engine.js';
import { databaseUrlFor } from './support/database-url.js';
import { openBackends } from './support/test-app.js';

// A drift check boots PGlite twice (a database and the engine's shadow copy) and replays every migration: slow,
// especially beside other workers. So the file runs one, against schema.prisma plus a model no migration creates.
const DRIFT_TIMEOUT_MS = 90_000;
/** What the drift check reports for the probe model alone: with it removed, nothing may be left. */
const PROBE_SQL = /-- CreateTable\nCREATE TABLE "DriftProbe" \(\n {4}"id" INTEGER NOT NULL,\n\n {4}CONSTRAINT "DriftProbe_pkey" PRIMARY KEY \("id"\)\n\);\n*/;

describe('migrations', () => {
  let pglite: PGlite | undefined;
  let probeDrift: Promise<string> | undefined;
  afterAll(async () => {
    await probeDrift?.catch(() => undefined);
    if (pglite && !pglite.closed) await pglite.close();
  });

  /** The drift check's SQL for schema.prisma with a `DriftProbe` model added, computed once for the file. */
  function driftWithProbe(): Promise<string> {
    probeDrift ??= (async () => {
      pglite = await PGlite.create();
      const schema = await readFile(SCHEMA_PATH, 'utf8');
      return diffSchemaFromMigrations(new PrismaPGlite(pglite), `${schema}\nmodel DriftProbe {\n  id Int @id\n}\n`);
    })();
    return probeDrift;
  }

  it(
    'when schema.prisma is compared with prisma/migrations, then they agree (the only drift is the probe model)',
    async () => {
      const drift = await driftWithProbe();
      expect(drift).toMatch(PROBE_SQL);
      expect(drift.replace(PROBE_SQL, '').trim()).toBe('');
    },
    DRIFT_TIMEOUT_MS,
  );

  it(
    'when the schema gains a model no migration creates, then the drift check reports its SQL',
    async () => {
      const drift = await driftWithProbe();
      expect(drift).toContain('CREATE TABLE "DriftProbe"');
    },
    DRIFT_TIMEOUT_MS,
  );

  it('when a database is migrated, then every migration is recorded as prisma migrate deploy records it', async () => {
    const backends = await openBackends();
    try {
      const rows = await backends.db.prisma.$queryRaw<Array<{ migration_name: string; finished_at: Date | null; checksum: string }>>`
        SELECT migration_name, finished_at, checksum FROM _prisma_migrations ORDER BY migration_name`;
      const onDisk = (await readMigrations()).migrationDirectories.map((dir) => dir.path);
      expect(rows.map((row) => row.migration_name)).toEqual(onDisk);
      for (const row of rows) {
        expect(row.finished_at).not.toBeNull();
        expect(row.checksum).toMatch(/^[0-9a-f]{64}$/);
      }
    } finally {
      await backends.close();
    }
  });

  describe.runIf(process.env.DATABASE_URL)('npm run db:migrate', () => {
    const baseUrl = process.env.DATABASE_URL ?? '';
    const migrate = (url: string) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/db-migrate.ts'], {
        cwd: path.resolve(import.meta.dirname, '..'),
        env: { ...process.env, DATABASE_URL: url, DEBUG: '' },
      }).then(
        ({ stdout }) => ({ code: 0, stdout, stderr: '' }),
        (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
      );

    it('when the database does not exist, then it is created and migrated; when it cannot be reached, then one line says why', async () => {
      const name = `authkit_migrate_${randomBytes(4).toString('hex')}`;
      try {
        const created = await migrate(databaseUrlFor(baseUrl, name));
        expect(created.code).toBe(0);
        expect(created.stdout).toContain(`created database ${name}`);
        expect(created.stdout).toMatch(/applied to DATABASE_URL:\n {2}\d+_init/);
      } finally {
        const admin = new pg.Client({ connectionString: baseUrl });
        await admin.connect();
        await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        await admin.end();
      }
      const unreachable = new URL(baseUrl);
      unreachable.port = '1';
      const failed = await migrate(unreachable.toString());
      expect(failed.code).toBe(1);
      expect(failed.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^db:migrate failed: connect ECONNREFUSED/)]);
    }, 60_000);
  });
});
