// Builds apps for tests over real PostgreSQL/Redis (when DATABASE_URL/REDIS_URL are set) or the embedded defaults.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, inject } from 'vitest';
import { type AppConfig, createApp } from '../../src/app.js';
import { compose, type Composition } from '../../src/composition.js';
import { type Clock, ManualClock, systemClock } from '../../src/core/clock.js';
import { loadConfig } from '../../src/core/config.js';
import { type Database, openDatabase } from '../../src/core/db.js';
import { createLogger, type Logger } from '../../src/core/logger.js';
import { PasswordHashPool } from '../../src/core/password-hash-pool.js';
import { connectRedis, type Redis } from '../../src/core/redis.js';
import { inProcessStore, redisStore, type SharedStore } from '../../src/core/shared-store.js';
import { type KeyRing, keyBox, openSigningKeys, SharedSecretKey, type SigningKeys } from '../../src/kernel/keys/key-ring.js';
import { PurposeKeys } from '../../src/kernel/keys/purpose-keys.js';
import { openMailQueue } from '../../src/features/email/mail-queue.js';
import { Metrics } from '../../src/core/metrics.js';
import { databaseUrlFor } from './database-url.js';
import { TcpProxy } from './tcp-proxy.js';

export const usingRealServices = process.env.DATABASE_URL !== undefined && process.env.REDIS_URL !== undefined;
export const usingRedis = process.env.REDIS_URL !== undefined;

export const silentLogger: Logger = createLogger({ level: 'silent', pretty: false });

export interface Backends {
  db: Database;
  /** The database's URL when it is a PostgreSQL server (for tests that route a second connection through a proxy). */
  url?: string;
  /** Apps built over the same backends share Redis; each app gets its own in-process store otherwise. */
  redis?: Redis;
  redisPrefix: string;
  /** The database's ES256 key ring (apps over the same backends share it, as instances share the table). */
  signingKeys: KeyRing;
  /** The database's purpose keys, generation 1 derived from `jwtSecret`. */
  purposeKeys: PurposeKeys;
  /** The JWT secret the first purpose keys were derived from. */
  jwtSecret: string;
  /** The key-encryption key that ring was sealed under. */
  keyEncryptionKey: string;
  close(): Promise<void>;
}

let databaseCounter = 0;

/** A scratch directory for this test run, removed by the global teardown. */
export function testRunDir(): string {
  return path.join(os.tmpdir(), `authkit-test-run-${inject('runId')}`);
}
const TEMPLATE_CLONE_LOCK = 7_311_942;

/** A database of its own (cloned from the migrated template) and, with REDIS_URL, a key prefix of its own. */
export async function openBackends(): Promise<Backends> {
  const runId = inject('runId');
  const unique = `${process.pid}_${++databaseCounter}_${randomBytes(3).toString('hex')}`;
  let db: Database;
  let url: string | undefined;
  const baseUrl = process.env.DATABASE_URL;
  if (baseUrl) {
    const name = `authkit_test_${runId}_${unique}`;
    const admin = new pg.Client({ connectionString: baseUrl });
    await admin.connect();
    try {
      // PostgreSQL refuses two clones of one template at the same moment: take turns across workers.
      await admin.query('SELECT pg_advisory_lock($1)', [TEMPLATE_CLONE_LOCK]);
      await admin.query(`CREATE DATABASE "${name}" TEMPLATE "${inject('templateDatabase')}"`);
    } finally {
      await admin.end();
    }
    url = databaseUrlFor(baseUrl, name);
    db = await openDatabase({ url, migrate: false });
  } else {
    const dump = await readFile(inject('pgliteDump') as string);
    db = await openDatabase({ loadDataDir: new Blob([dump]), migrate: false });
  }
  const redis = process.env.REDIS_URL ? await connectRedis(process.env.REDIS_URL, {}, silentLogger) : undefined;
  // Every app a file builds on this one connection listens for its loss (its revocation store restores after one).
  redis?.setMaxListeners(0);
  const keyEncryptionKey = randomBytes(32).toString('base64url');
  const jwtSecret = randomBytes(32).toString('base64url');
  return {
    db,
    url,
    redis,
    keyEncryptionKey,
    signingKeys: await openTestKeyRing(db, keyEncryptionKey, systemClock),
    purposeKeys: await PurposeKeys.open(db.prisma, keyBox(keyEncryptionKey), systemClock, jwtSecret),
    jwtSecret,
    redisPrefix: `authkit-test:${runId}:${unique}:`,
    async close() {
      await db.close();
      redis?.disconnect();
    },
  };
}

/**
 * The preamble every integration file shares: backends of the enclosing file or `describe` block's own, opened before
 * its first test and closed after its last. Returns a live view of them, usable as `Backends` inside hooks and tests
 * (not while the file is being collected).
 */
export function useBackends(): Backends {
  let current: Backends | undefined;
  beforeAll(async () => {
    current = await openBackends();
  });
  afterAll(async () => {
    await current?.close();
    current = undefined;
  });
  return new Proxy({} as Backends, {
    get(_target, key) {
      if (!current) throw new Error('useBackends(): the backends are open only inside hooks and tests');
      return Reflect.get(current, key) as unknown;
    },
  });
}

/** Runs `use` over backends of its own (a database nobody else writes), closed afterwards whatever happens. */
export async function withOwnBackends<T>(use: (backends: Backends) => Promise<T>): Promise<T> {
  const own = await openBackends();
  try {
    return await use(own);
  } finally {
    await own.close();
  }
}

/** An ES256 key ring over `db`, as an instance opens it at start (the test config's token lifetimes). */
export async function openTestKeyRing(db: Database, keyEncryptionKey: string, clock: Clock): Promise<KeyRing> {
  const { accessTokenTtlS, jwtClockToleranceS } = testConfig();
  const ring = await openSigningKeys(
    { algorithm: 'ES256', jwtSecret: '', keyEncryptionKey, accessTtlS: accessTokenTtlS, clockToleranceS: jwtClockToleranceS },
    db.prisma,
    clock,
  );
  return ring as KeyRing;
}

/**
 * A Redis store under a prefix of its own (fresh budgets, locks and cache keys), over `redis` or the backends'
 * connection; undefined without Redis, which gives each app its own in-process store. Two apps given the same one
 * play two instances sharing Redis.
 */
export function freshStore(backends: Backends, redis = backends.redis): SharedStore | undefined {
  return redis ? redisStore(redis, `${backends.redisPrefix}${randomBytes(4).toString('hex')}:`) : undefined;
}

/** A Redis connection through a proxy the test can cut (`proxy.stop()`) and restore (`proxy.start()`). */
export async function redisThroughProxy(): Promise<{ proxy: TcpProxy; redis: Redis; close: () => Promise<void> }> {
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('needs REDIS_URL');
  const proxy = TcpProxy.forUrl(url, 6379);
  await proxy.start();
  const redis = await connectRedis(proxy.rewrite(url), {}, silentLogger);
  return {
    proxy,
    redis,
    close: async () => {
      redis.disconnect();
      await proxy.stop();
    },
  };
}

export function testConfig(overrides: Partial<AppConfig> = {}): AppConfig {
  // Generous budgets: tests of the limiter set their own; every other test talks to the app from one address.
  const base = loadConfig({ NODE_ENV: 'test', BCRYPT_COST: '4', RATE_LIMIT_MAX: '100000', EXPENSIVE_DELAY_MS: '200' });
  const unique = randomBytes(4).toString('hex');
  const uploadDir = path.join(testRunDir(), `uploads-${unique}`);
  const email = { ...base.email, outboxDir: path.join(testRunDir(), `outbox-${unique}`) };
  return { ...base, uploadDir, email, jwtSecret: randomBytes(48).toString('base64url'), keyEncryptionKey: randomBytes(32).toString('base64url'), ...overrides };
}

export interface TestAppOptions {
  config?: AppConfig;
  clock?: Clock;
  logger?: Logger;
  store?: SharedStore;
  passwordPool?: PasswordHashPool;
  signingKeys?: SigningKeys;
  purposeKeys?: PurposeKeys;
  /** An embedded server's first-administrator token (see src/features/setup/setup-routes.ts). */
  setupToken?: { value: string; spend(): Promise<void> };
}

let sharedPasswordPool: PasswordHashPool | undefined;
/**
 * Test files share a worker process (vitest.config.ts: isolate false), so its threads, once their password-strength
 * dictionaries are loaded (seconds on a busy machine), stay warm for the next file instead of stopping after 30 s.
 */
const TEST_POOL_IDLE_MS = 10 * 60_000;

/** One password-hash pool per test worker: its threads start on first use and never keep the process alive when idle. */
export function testPasswordPool(): PasswordHashPool {
  sharedPasswordPool ??= new PasswordHashPool({ threads: 2, queueMax: 1_000, idleTimeoutMs: TEST_POOL_IDLE_MS });
  return sharedPasswordPool;
}

const responseViolations: string[] = [];

/** Responses that differed from the API document since the last call (see tests/support/setup.ts). */
export function takeResponseViolations(): string[] {
  return responseViolations.splice(0);
}

const builtApps = new WeakMap<object, { db: Database; config: AppConfig; graph: Composition }>();

/** The database and settings an app from `buildApp` was built with (for helpers that only hold the app). */
export function builtWith(app: object): { db: Database; config: AppConfig; graph: Composition } {
  const built = builtApps.get(app);
  if (!built) throw new Error('not an app from buildApp');
  return built;
}

/** One app instance over the given backends. Build two with the same config to play two instances. */
export function buildApp(backends: Backends, options: TestAppOptions = {}) {
  const config = options.config ?? testConfig();
  const clock = options.clock ?? new ManualClock();
  const store = options.store ?? (backends.redis ? redisStore(backends.redis, backends.redisPrefix) : inProcessStore);
  const signingKeys = options.signingKeys ?? (config.accessTokenAlgorithm === 'HS256' ? new SharedSecretKey(config.jwtSecret) : backends.signingKeys);
  const logger = options.logger ?? silentLogger;
  const purposeKeys = options.purposeKeys ?? backends.purposeKeys;
  const mail = openMailQueue({ ...config.email, development: false }, { prisma: backends.db.prisma, purposeKeys, clock, logger });
  const deps = {
    config,
    db: backends.db,
    store,
    clock,
    logger,
    passwordPool: options.passwordPool ?? testPasswordPool(),
    signingKeys,
    purposeKeys,
    mail,
    metrics: new Metrics(),
    onResponseViolation: (message: string) => responseViolations.push(message),
    setupToken: options.setupToken,
  };
  const graph = compose(deps);
  const app = createApp(deps, graph);
  builtApps.set(app, { db: backends.db, config, graph });
  return { app, deps };
}
