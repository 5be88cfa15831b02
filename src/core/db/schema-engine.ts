// Prisma's migration engine, run as WebAssembly so migrations need no native binary or download.
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as engineBindings from '@prisma/schema-engine-wasm/schema_engine_bg';
import type { MigrationList, SchemaEngine } from '@prisma/schema-engine-wasm/schema_engine_bg';
import {
  bindMigrationAwareSqlAdapterFactory,
  DriverAdapterError,
  type SqlDriverAdapter,
  type SqlMigrationAwareDriverAdapterFactory,
} from '@prisma/driver-adapter-utils';
import type pg from 'pg';
import { PRISMA_DIR } from '../paths.js';

export const SCHEMA_PATH = path.join(PRISMA_DIR, 'schema.prisma');
export const MIGRATIONS_DIR = path.join(PRISMA_DIR, 'migrations');

const NO_FILTERS = { externalTables: [], externalEnums: [] };

// The WebAssembly global without pulling the DOM typings into a server project.
interface WasmRuntime {
  instantiate(bytes: Uint8Array, imports: Record<string, unknown>): Promise<{ instance: { exports: Record<string, unknown> } }>;
}
const wasmRuntime = (globalThis as unknown as { WebAssembly: WasmRuntime }).WebAssembly;

let wasmReady: Promise<void> | undefined;

/** Instantiates the engine's WebAssembly module once per process. */
function loadWasm(): Promise<void> {
  wasmReady ??= (async () => {
    // The package exports only its JS glue; the .wasm file sits beside it.
    const gluePath = createRequire(import.meta.url).resolve('@prisma/schema-engine-wasm');
    const wasmPath = path.join(path.dirname(gluePath), 'schema_engine_bg.wasm');
    const { instance } = await wasmRuntime.instantiate(await readFile(wasmPath), { './schema_engine_bg.js': engineBindings });
    engineBindings.__wbg_set_wasm(instance.exports);
    (instance.exports.__wbindgen_start as () => void)();
  })();
  return wasmReady;
}

/**
 * @prisma/adapter-pg runs a migration script by splitting it at every `;`, which cuts apart function bodies (and
 * comments holding one). Sent whole instead, as `prisma migrate deploy` sends it: PostgreSQL's simple query protocol
 * runs the statements in order, in one implicit transaction.
 */
function wholeScripts(adapter: SqlDriverAdapter): SqlDriverAdapter {
  const pool = (adapter as Partial<{ underlyingDriver(): unknown }>).underlyingDriver?.() as pg.Pool | undefined;
  if (adapter.adapterName !== '@prisma/adapter-pg' || pool === undefined) return adapter;
  const executeScript = async (script: string): Promise<void> => {
    try {
      await pool.query(script);
    } catch (err) {
      const { code, severity, message, detail, column, hint } = err as pg.DatabaseError;
      if (typeof code !== 'string') throw err;
      throw new DriverAdapterError({ kind: 'postgres', code, severity: severity ?? 'N/A', message, detail, column, hint });
    }
  };
  return new Proxy(adapter, { get: (target, key, receiver): unknown => (key === 'executeScript' ? executeScript : Reflect.get(target, key, receiver)) });
}

function withWholeScripts(factory: SqlMigrationAwareDriverAdapterFactory): SqlMigrationAwareDriverAdapterFactory {
  return {
    provider: factory.provider,
    adapterName: factory.adapterName,
    connect: async () => wholeScripts(await factory.connect()),
    connectToShadowDb: async () => wholeScripts(await factory.connectToShadowDb()),
  };
}

/** Opens a schema engine over a driver adapter. Call `free()` on it when done. */
export async function openSchemaEngine(adapterFactory: SqlMigrationAwareDriverAdapterFactory): Promise<SchemaEngine> {
  await loadWasm();
  const schema = await readFile(SCHEMA_PATH, 'utf8');
  return engineBindings.SchemaEngine.new(
    { datamodels: [[SCHEMA_PATH, schema]] },
    () => {},
    bindMigrationAwareSqlAdapterFactory(withWholeScripts(adapterFactory)),
  );
}

/** Reads `prisma/migrations` in the shape both this engine and `prisma migrate deploy` use. */
export async function readMigrations(dir = MIGRATIONS_DIR): Promise<MigrationList> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const names = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  const migrationDirectories = await Promise.all(
    names.map(async (name) => ({
      path: name,
      migrationFile: {
        path: 'migration.sql',
        content: { tag: 'ok' as const, value: await readFile(path.join(dir, name, 'migration.sql'), 'utf8') },
      },
    })),
  );
  const lockfile = await readFile(path.join(dir, 'migration_lock.toml'), 'utf8').catch(() => null);
  return {
    baseDir: dir,
    lockfile: { path: 'migration_lock.toml', content: lockfile },
    shadowDbInitScript: '',
    migrationDirectories,
  };
}

/**
 * Whether `prisma/migrations` holds a migration the database has not recorded as applied, with the same checksum,
 * in `_prisma_migrations`. Cheap (one query), so a start with nothing to do never loads the engine (tens of MB).
 */
export async function hasPendingMigrations(appliedRows: () => Promise<Array<{ migration_name: string; checksum: string }>>): Promise<boolean> {
  const local = await readMigrations();
  let applied;
  try {
    applied = await appliedRows();
  } catch {
    return true; // no bookkeeping table yet: a new database
  }
  const recorded = new Map(applied.map((row) => [row.migration_name, row.checksum]));
  return local.migrationDirectories.some(({ path: name, migrationFile }) => {
    const sql = migrationFile.content.tag === 'ok' ? migrationFile.content.value : '';
    return recorded.get(name) !== createHash('sha256').update(sql).digest('hex');
  });
}

/** Applies every pending migration (of `dir`, prisma/migrations unless told) and returns the names it applied. */
export async function applyMigrations(adapterFactory: SqlMigrationAwareDriverAdapterFactory, dir = MIGRATIONS_DIR): Promise<string[]> {
  const engine = await openSchemaEngine(adapterFactory);
  try {
    const result = await engine.applyMigrations({ migrationsList: await readMigrations(dir), filters: NO_FILTERS });
    return result.appliedMigrationNames;
  } finally {
    engine.free();
  }
}

/**
 * The SQL that would bring the migrations up to `schema.prisma` (or the schema text given); empty when they agree.
 * Needs an adapter with a shadow database (PGlite makes an in-memory one).
 */
export async function diffSchemaFromMigrations(adapterFactory: SqlMigrationAwareDriverAdapterFactory, schema?: string): Promise<string> {
  const engine = await openSchemaEngine(adapterFactory);
  try {
    const migrations = await readMigrations();
    const from = migrations.migrationDirectories.length > 0 ? { tag: 'migrations' as const, ...migrations } : { tag: 'empty' as const };
    schema ??= await readFile(SCHEMA_PATH, 'utf8');
    const result = await engine.diff({
      from,
      to: { tag: 'schemaDatamodel', files: [{ path: SCHEMA_PATH, content: schema }] },
      script: true,
      exitCode: true,
      filters: NO_FILTERS,
    });
    return result.exitCode === 2 ? (result.stdout ?? '') : '';
  } finally {
    engine.free();
  }
}
