// The process entry point: reads the environment, opens connections, listens, and shuts down on signals.
import dotenv from 'dotenv';
import express from 'express';
import { createApp } from './app.js';
import { compose } from './composition.js';
import { Metrics, metricsHandler } from './core/metrics.js';
import { pruneAuditEvents } from './features/audit/audit-log.js';
import { pruneWebhookDeliveries } from './features/webhooks/webhooks.js';
import { systemClock } from './core/clock.js';
import { type Config, ConfigError, loadConfig } from './core/config.js';
import { type Database, openDatabase } from './core/db.js';
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SETUP_TOKEN_FILE } from './features/admin/setup-routes.js';
import { DataDirInUseError } from './core/db/data-dir-lock.js';
import { inFlightHandlers } from './core/http/in-flight.js';
import { boundPort, closeGracefully, listen } from './core/http/server.js';
import { createLogger } from './core/logger.js';
import { PasswordHashPool } from './core/password-hash-pool.js';
import { connectRedis, type RedisClient } from './core/redis.js';
import { resolveSecrets } from './core/secrets.js';
import { KEY_RING_REFRESH_MS, KeyRing, KeyRingError } from './kernel/keys/key-ring.js';
import { openKeys } from './kernel/keys/purpose-keys.js';
import { ensureAdmin } from './features/admin/admin-service.js';
import { ADMIN_ROLE } from './kernel/identity/roles.js';
import { PrismaRevocationLedger } from './kernel/revocation/revocation-ledger.js';
import { pruneEndedSessions } from './kernel/sessions/sessions.js';
import { sweepImageOrphans } from './features/images/image-service.js';
import { openImageStorage } from './features/images/image-storage.js';
import { every } from './core/periodic.js';
import { openMailQueue } from './features/email/mail-queue.js';
import { pruneEmailTokens } from './kernel/challenges/email-tokens.js';
import { inProcessStore, redisStore } from './core/shared-store.js';

dotenv.config({ quiet: true });

function readConfig(): Config {
  try {
    return loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    process.exit(1);
  }
}

const config = readConfig();

/** How often ended sessions are deleted and image orphans swept (the first time a minute or so after start). */
const HOUSEKEEPING_EVERY_MS = 60 * 60 * 1000;
/** How often each instance looks for queued mail that is due (a retry, or another instance's that died). */
const MAIL_EVERY_MS = 10_000;
const DAY_MS = 24 * 60 * 60 * 1000;
/** Stored bytes and rows younger than this are never orphans: an upload may still be between its two writes. */
const ORPHAN_GRACE_MS = 60 * 60 * 1000;

/** Hashing threads yield to the event loop when the cores are busy (see PasswordHashPoolOptions.nice). */
const PASSWORD_THREAD_NICE = 10;
/** After the shutdown timeout cuts connections, how long their handlers may still use the database and the pool. */
const HANDLER_GRACE_MS = 10_000;

const logger = createLogger({ level: config.logLevel, pretty: config.logFormat === 'pretty' });

async function start() {
  const db = await openDatabase({
    url: config.databaseUrl,
    dataDir: config.dataDir,
    migrate: config.migrateOnStart,
    connectTimeoutMs: config.databaseTimeoutMs,
    queryTimeoutMs: config.databaseTimeoutMs,
    onPooler: (refused) => {
      if (refused)
        logger.info(
          'the database refused statement_timeout as a connection setting (a pooler in transaction mode): statements are bounded by this client; set statement_timeout on the role for the server to stop them too',
        );
    },
  });
  if (db.appliedMigrations.length > 0) logger.info({ migrations: db.appliedMigrations }, 'applied database migrations');
  if (db.kind === 'pglite') logger.info({ dataDir: config.dataDir }, 'using embedded PostgreSQL (PGlite); set DATABASE_URL for a real server');
  // After the database: an embedded data directory is locked by then, so no second process writes secrets.json.
  const { jwtSecret, keyEncryptionKey } = await resolveSecrets(config, logger);
  const { signingKeys, purposeKeys } = await openKeys(
    { algorithm: config.accessTokenAlgorithm, jwtSecret, keyEncryptionKey, accessTtlS: config.accessTokenTtlS, clockToleranceS: config.jwtClockToleranceS },
    db.prisma,
    systemClock,
  );

  let redis: RedisClient | undefined;
  if (config.redis) {
    redis = await connectRedis(config.redis, { commandTimeoutMs: config.redisCommandTimeoutMs }, logger);
    if (config.redis.kind !== 'url') logger.info({ redis: config.redis.kind }, `Redis through ${config.redis.kind === 'sentinel' ? 'Sentinel' : 'a cluster'}`);
  } else {
    logger.warn('REDIS_URL is not set: rate limits, the token blocklist and the cache live in this process. Run a single instance only.');
  }
  const store = redis ? redisStore(redis, config.redisKeyPrefix) : inProcessStore;

  const passwordPool = new PasswordHashPool({ ...config.passwordHashPool, nice: PASSWORD_THREAD_NICE });
  const imageStorage = await openImageStorage(config);
  const metrics = new Metrics();
  metrics.collectProcessMetrics();
  const mail = openMailQueue(
    { ...config.email, development: config.env === 'development' },
    { prisma: db.prisma, purposeKeys, clock: systemClock, logger, metrics },
  );
  if (!config.email.smtpUrl && config.env === 'production') {
    logger.warn(
      { outbox: config.email.outboxDir },
      'SMTP_URL is not set: mail (verification, password reset, sign-in codes, notices) is written to the outbox directory, not sent',
    );
  }
  const deps = {
    config: { ...config, jwtSecret, keyEncryptionKey },
    db,
    store,
    clock: systemClock,
    logger,
    passwordPool,
    imageStorage,
    signingKeys,
    purposeKeys,
    mail,
    metrics,
  };
  if (config.bootstrapAdmin) {
    const { created, user } = await ensureAdmin(db.prisma, (password) => passwordPool.hash(password, config.bcryptCost), config.bootstrapAdmin, systemClock);
    if (created) logger.info({ email: user.email }, 'created the administrator from ADMIN_EMAIL');
    else if (user.roles.includes(ADMIN_ROLE)) logger.info({ email: user.email }, 'ADMIN_EMAIL holds the admin role');
    else {
      logger.warn(
        { email: user.email },
        'ADMIN_EMAIL belongs to an existing account that is not an administrator: it was NOT promoted (anyone may have registered that address). Grant the role through the admin API, or choose another ADMIN_EMAIL.',
      );
    }
  }
  const setupToken = await openSetupToken(db, config.dataDir);
  const appDeps = { ...deps, setupToken };
  const graph = compose(appDeps);
  const app = createApp(appDeps, graph);
  const { webhooks, audit: events, email, openIdSessions } = graph;
  const housekeeping = [
    every(
      'refresh and rotate keys',
      KEY_RING_REFRESH_MS,
      async () => {
        await purposeKeys.reload();
        if (!(signingKeys instanceof KeyRing)) return;
        const { rotated, pruned } = await signingKeys.maintain(config.signingKeyRotationDays * DAY_MS);
        if (rotated) logger.info({ kid: rotated.kid, activatesAt: rotated.activatesAt }, 'rotated the signing key on schedule');
        if (pruned > 0) logger.info({ pruned }, 'deleted signing keys whose tokens have all expired');
      },
      logger,
    ),
    // Messages are sent as soon as they are queued; this pass retries those that failed and picks up other instances' work.
    every('deliver queued mail', MAIL_EVERY_MS, () => mail.deliverDue(), logger, 1_000),
    every('deliver queued webhooks', MAIL_EVERY_MS, () => webhooks.deliverDue(), logger, 2_000),
    every(
      'prune the audit log and finished webhook deliveries',
      HOUSEKEEPING_EVERY_MS,
      async () => ({
        audit: await pruneAuditEvents(db.prisma, systemClock, config.auditRetentionDays),
        webhooks: await pruneWebhookDeliveries(db.prisma, systemClock),
      }),
      logger,
      150_000,
    ),
    every(
      'prune sent mail and spent email tokens',
      HOUSEKEEPING_EVERY_MS,
      async () => ({ mail: await mail.prune(), tokens: await pruneEmailTokens(db.prisma, systemClock) }),
      logger,
      120_000,
    ),
    every('prune ended sessions', HOUSEKEEPING_EVERY_MS, () => pruneEndedSessions(db.prisma, systemClock), logger, 60_000),
    every('prune lapsed revocation records', HOUSEKEEPING_EVERY_MS, () => new PrismaRevocationLedger(db.prisma).prune(systemClock.now()), logger, 75_000),
    every(
      'sweep image orphans',
      HOUSEKEEPING_EVERY_MS,
      () => sweepImageOrphans({ prisma: db.prisma, storage: imageStorage, logger }, systemClock.now(), ORPHAN_GRACE_MS),
      logger,
      90_000,
    ),
  ];
  // Every revocation still in force is in the store before the first request: after a restart of an embedded server
  // (whose store is its memory), or of a Redis that kept nothing.
  await graph.revocations.restored();
  const server = await listen(app, config.port, config.host);
  logger.info({ port: boundPort(server) }, `listening on http://localhost:${boundPort(server)}`);
  // Prometheus scrapes a port of its own, off the public one (METRICS_PORT=0: none; METRICS_TOKEN: the public port too).
  const metricsServer =
    config.metrics.port === 0
      ? undefined
      : await listen(express().get('/metrics', metricsHandler(metrics)), config.metrics.port, config.metrics.host).catch((err: unknown) => {
          // A second instance on one machine meets the first one's metrics port: say what to do, not a stack trace.
          if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
            throw new StartupError(
              `METRICS_PORT ${config.metrics.port} is in use (another instance on this machine?): give each instance its own METRICS_PORT, or 0 for none`,
            );
          }
          throw err;
        });
  if (metricsServer) logger.info({ port: boundPort(metricsServer), host: config.metrics.host }, 'metrics on /metrics');

  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    const drained = await closeGracefully(server, config.shutdownTimeoutMs);
    if (!drained) logger.warn({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timeout: cut the remaining connections');
    // A cut connection's handler still runs: the database, Redis and the hash pool stay open until it is done.
    const unfinished = await inFlightHandlers(app).settle(HANDLER_GRACE_MS);
    if (unfinished > 0) logger.warn({ unfinished }, 'handlers still running after the grace period; closing under them');
    await Promise.all(housekeeping.map((stop) => stop()));
    metricsServer?.close();
    // Notices started by the last requests reach the queue before it and the database close.
    await email.settled();
    // So do the back-channel logouts of sessions the last requests ended.
    await Promise.all([mail.close(), webhooks.close(), events.settled(), openIdSessions.background.settled()]);
    await Promise.allSettled([db.close(), redis?.quit(), passwordPool.close()]);
    logger.info('stopped');
    logger.flush();
    process.exit(0);
  };
  process.on('SIGTERM', (signal) => void stop(signal));
  process.on('SIGINT', (signal) => void stop(signal));
}

/**
 * An embedded server with no administrator writes a one-time token to DATA_DIR/setup-token (mode 600), with which
 * `npm run admin:create` asks the running server to create the first one (it cannot open the database the server
 * holds). With a real database the command opens it itself, so no token is needed.
 */
async function openSetupToken(db: Database, dataDir: string): Promise<{ value: string; spend(): Promise<void> } | undefined> {
  const file = path.join(dataDir, SETUP_TOKEN_FILE);
  if (db.kind !== 'pglite' || (await db.prisma.userRole.count({ where: { roleName: ADMIN_ROLE } })) > 0) {
    await rm(file, { force: true });
    return undefined;
  }
  const value = randomBytes(32).toString('base64url');
  await writeFile(file, value, { mode: 0o600 });
  logger.info('no administrator yet: `npm run admin:create -- --email you@example.com --password …` creates one, also while this server runs');
  return { value, spend: () => rm(file, { force: true }) };
}

/** A reason not to start that one sentence explains (no stack trace). */
class StartupError extends Error {}

start().catch((err: unknown) => {
  if (err instanceof DataDirInUseError || err instanceof KeyRingError || err instanceof StartupError) logger.fatal(err.message);
  else logger.fatal({ err }, 'failed to start');
  logger.flush();
  process.exit(1);
});
