// Opens the database: PostgreSQL through the pg adapter, or embedded PGlite under the data directory.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { PrismaClient } from '../generated/prisma/client.js';
import { lockDataDir } from './db/data-dir-lock.js';
import { applyMigrations, hasPendingMigrations } from './db/schema-engine.js';

export type Prisma = PrismaClient;

const EMBEDDED_POSTGRES_SETTINGS = 'shared_buffers=4MB';

/** Whether a Prisma error is a unique-constraint violation (P2002). */
export function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && err.code === 'P2002';
}

/** Prisma's codes for a database it cannot reach, that timed out, or whose pool is exhausted. */
const PRISMA_UNAVAILABLE = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);
/** How Prisma's driver adapters describe the same (in `meta.driverAdapterError.cause.kind`). */
const ADAPTER_UNAVAILABLE = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);
/**
 * PostgreSQL's SQLSTATEs for a statement cancelled by statement_timeout, a server shutting down or starting, too many
 * connections, and the connection exceptions (class 08), which is how a pooler such as PgBouncer reports a server it
 * cannot reach (`08P01`: "server login has been failing", "no server connection available").
 */
const POSTGRES_UNAVAILABLE = new Set(['57014', '57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08004', '08006', '08P01']);
const UNAVAILABLE_MESSAGES = [
  /^Connection terminated/,
  /^Query read timeout$/,
  /timeout exceeded when trying to connect/,
  // Closed by this process (a stop in progress): another instance can serve the retry.
  /^PGlite is closed$/,
  /^Cannot use a pool after calling end on the pool$/,
];

/**
 * Whether a failure means "the database cannot answer now" (a 503 the client may retry), not a bug. Such a failure
 * leaves a write's outcome unknown: it may have committed before its reply was lost.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (let current = err, depth = 0; typeof current === 'object' && current !== null && depth < 4; depth++) {
    const { code, message, meta } = current as {
      code?: unknown;
      message?: unknown;
      meta?: { driverAdapterError?: { cause?: { kind?: unknown; originalCode?: unknown } } };
    };
    const adapterCause = meta?.driverAdapterError?.cause;
    if (typeof code === 'string' && (PRISMA_UNAVAILABLE.has(code) || POSTGRES_UNAVAILABLE.has(code) || /^E(CONNREFUSED|CONNRESET|TIMEDOUT|PIPE)$/.test(code)))
      return true;
    if (typeof adapterCause?.kind === 'string' && ADAPTER_UNAVAILABLE.has(adapterCause.kind)) return true;
    if (typeof adapterCause?.originalCode === 'string' && POSTGRES_UNAVAILABLE.has(adapterCause.originalCode)) return true;
    if (typeof message === 'string' && UNAVAILABLE_MESSAGES.some((pattern) => pattern.test(message))) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

export interface Database {
  readonly prisma: PrismaClient;
  readonly kind: 'postgres' | 'pglite';
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** A postgres:// URL; without it the database is embedded. */
  url?: string;
  /** Where embedded PGlite keeps its files; in memory when absent. */
  dataDir?: string;
  /** Apply pending migrations before returning. */
  migrate: boolean;
  /** Embedded only: start from this PGlite data directory dump instead of an empty cluster. */
  loadDataDir?: Blob;
  /** Milliseconds a pool connection may take to open; keeps /ready from hanging on a dead server. */
  connectTimeoutMs?: number;
  /**
   * Longest a statement may run (PostgreSQL's statement_timeout) and a query may wait for its answer (client side,
   * for a server that has stopped answering at all). Unbounded when absent, as for migrations run by hand.
   */
  queryTimeoutMs?: number;
  /** Told whether the server refused the statement limits as connection settings (a pooler in transaction mode). */
  onPooler?: (refusedSettings: boolean) => void;
}

/**
 * Whether the server accepts these settings as connection parameters. A pooler in transaction mode answers
 * `unsupported startup parameter`; any other failure (the server is down) is left to the first query to report.
 */
async function acceptsStartupSettings(url: string, settings: Record<string, number>, connectTimeoutMs: number): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: connectTimeoutMs, ...settings });
  client.on('error', () => {});
  try {
    await client.connect();
    return true;
  } catch (err) {
    return !/unsupported startup parameter/i.test((err as Error).message);
  } finally {
    await client.end().catch(() => {});
  }
}

export interface OpenedDatabase extends Database {
  appliedMigrations: string[];
}

function wrap(prisma: PrismaClient, kind: Database['kind'], closeDriver: () => Promise<void>, probe?: pg.Pool): Database {
  return {
    prisma,
    kind,
    async ping() {
      if (probe) await probe.query('SELECT 1');
      else await prisma.$queryRaw`SELECT 1`;
    },
    async close() {
      await prisma.$disconnect();
      await closeDriver();
    },
  };
}

/** Opens (and optionally migrates) the database the options describe. */
export async function openDatabase(options: DatabaseOptions): Promise<OpenedDatabase> {
  let adapter: SqlMigrationAwareDriverAdapterFactory;
  let closeDriver: () => Promise<void>;
  let kind: Database['kind'];
  let probe: pg.Pool | undefined;
  if (options.url) {
    // Our own pool, so closing the database really closes every connection (migrations included).
    const timeout = options.queryTimeoutMs;
    const serverLimits: Record<string, number> = timeout === undefined ? {} : { statement_timeout: timeout, idle_in_transaction_session_timeout: timeout * 5 };
    // A pooler in transaction mode (PgBouncer, most managed offerings' own) refuses settings sent at connection start:
    // then the limit is the client's alone (and the server's own, if the operator sets one on the role).
    const limitsAccepted = timeout !== undefined && (await acceptsStartupSettings(options.url, serverLimits, options.connectTimeoutMs ?? 5_000));
    options.onPooler?.(timeout !== undefined && !limitsAccepted);
    const pool = new pg.Pool({
      connectionString: options.url,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
      ...(limitsAccepted && serverLimits),
      ...(timeout !== undefined && {
        // A little later than the server's own limit, so a slow statement is reported by the server as a timeout and
        // only a silent server is cut off here.
        query_timeout: timeout + 250,
      }),
    });
    pool.on('error', () => {}); // an idle client dropped by the server; the next query reconnects
    // Readiness asks whether the server answers, not whether a connection is free: its own one-connection pool
    // never waits behind requests that hold every connection of the main one.
    probe = new pg.Pool({ connectionString: options.url, max: 1, connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000, query_timeout: 5_000 });
    probe.on('error', () => {});
    adapter = new PrismaPg(pool);
    closeDriver = async () => {
      await Promise.all([pool.end(), probe?.end()]);
    };
    kind = 'postgres';
  } else {
    let pgliteDir: string | undefined;
    let unlock = () => Promise.resolve();
    if (options.dataDir) {
      pgliteDir = path.resolve(options.dataDir, 'pgdata');
      await mkdir(pgliteDir, { recursive: true });
      unlock = await lockDataDir(options.dataDir);
    }
    // PostgreSQL's default 128 MB of shared buffers is most of an embedded server's memory, and a single-instance
    // service reads a small, hot working set (the OS caches its files as well): 4 MB keeps the process small.
    const pglite = await PGlite.create(pgliteDir, {
      loadDataDir: options.loadDataDir,
      postgresqlconf: EMBEDDED_POSTGRES_SETTINGS,
      // initdb, on a first start, runs a PostgreSQL of its own: with the same 4 MB of buffers, not the default 128.
      initDbStartParams: ['-c', EMBEDDED_POSTGRES_SETTINGS],
    }).catch(async (err: unknown) => {
      await unlock();
      throw err;
    });
    adapter = new PrismaPGlite(pglite);
    closeDriver = async () => {
      if (!pglite.closed) await pglite.close();
      await unlock();
    };
    kind = 'pglite';
  }
  const prisma = new PrismaClient({ adapter });
  const pending =
    options.migrate &&
    (await hasPendingMigrations(() =>
      prisma.$queryRawUnsafe('SELECT migration_name, checksum FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL'),
    ));
  const appliedMigrations = pending ? await applyMigrations(adapter) : [];
  const database = wrap(prisma, kind, closeDriver, probe);
  // The first query loads Prisma's query compiler (about a second): pay that here, not in the first request,
  // and fail at startup rather than later if the database cannot be reached.
  await prisma.$queryRaw`SELECT 1`;
  return { ...database, appliedMigrations };
}
