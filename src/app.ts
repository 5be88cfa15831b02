// Builds the Express application from its dependencies; nothing here reads the environment or opens connections.
import path from 'node:path';
import express, { type Express } from 'express';
import { Cache } from './core/cache.js';
import type { Clock } from './core/clock.js';
import type { Config } from './core/config.js';
import type { Database } from './core/db.js';
import { errorHandler, methodNotAllowedRouter, notFoundHandler } from './core/error-handler.js';
import { hasBody } from './core/http/api-router.js';
import { buildOpenApiDocument, createRegistry, docsRouter } from './core/http/openapi.js';
import { requestLogger } from './core/http/request-context.js';
import { corsAllowlist, forwardedForCheck, noStore, securityHeaders, thisMachineOnly } from './core/http/security.js';
import type { Logger } from './core/logger.js';
import type { PasswordHashPool } from './core/password-hash-pool.js';
import { PUBLIC_DIR } from './core/paths.js';
import { inlineScriptHashes, vendorRouter } from './core/http/vendor.js';
import { responseConformance } from './core/http/response-conformance.js';
import type { SharedStore } from './core/shared-store.js';
import { createAccounts } from './features/accounts.js';
import { adminRoutes } from './features/admin/admin-routes.js';
import { apiKeyRoutes } from './features/api-keys/api-key-routes.js';
import { authRoutes } from './features/auth/auth-routes.js';
import { requireRecentAuthentication } from './features/auth/authenticate.js';
import { legacyAliasRoutes } from './features/auth/legacy-alias-routes.js';
import { expensiveRoutes } from './features/expensive/expensive-routes.js';
import { healthRoutes } from './features/health/health-routes.js';
import { imageRoutes } from './features/images/image-routes.js';
import { ImageService } from './features/images/image-service.js';
import { type ImageStorage, LocalDiskStorage } from './features/images/image-storage.js';
import { ImageUrlSigner } from './features/images/signed-urls.js';
import { mfaRoutes, requireSecondFactor } from './features/mfa/mfa-routes.js';
import { createRateLimiters } from './features/rate-limit/rate-limiter.js';
import { sessionRoutes } from './features/sessions/session-routes.js';
import { passkeyRoutes } from './features/passkeys/passkey-routes.js';
import { meRoutes } from './features/users/me-routes.js';
import type { SigningKeys } from './features/keys/key-ring.js';
import type { PurposeKeys } from './features/keys/purpose-keys.js';
import { signingKeyRoutes } from './features/keys/signing-key-routes.js';
import { type MailQueue, openMailQueue } from './features/email/mail-queue.js';
import { devOutboxRoutes, emailRoutes } from './features/email/email-routes.js';
import { Metrics, metricsHandler } from './core/metrics.js';
import { auditRoutes } from './features/audit/audit-routes.js';
import { webhookRoutes } from './features/webhooks/webhook-routes.js';
import { setupRoutes } from './features/setup/setup-routes.js';
import type { Webhooks } from './features/webhooks/webhooks.js';
import type { AuditLog } from './features/audit/audit-log.js';

export const VERSION = '0.1.0';

/** Settings with the JWT secret resolved (from the environment or the data directory). */
export type AppConfig = Config & { jwtSecret: string };

export interface AppDeps {
  config: AppConfig;
  db: Database;
  /** Redis, or the in-process store when the service runs as a single instance. */
  store: SharedStore;
  clock: Clock;
  logger: Logger;
  /** The worker threads that run bcrypt; the caller owns it and closes it after the server. */
  passwordPool: PasswordHashPool;
  /** What signs and checks access tokens: the key ring (ES256) or JWT_SECRET (HS256); see openKeys. */
  signingKeys: SigningKeys;
  /** The keys of every other purpose (TOTP secrets, recovery codes, MFA tokens, image links). */
  purposeKeys: PurposeKeys;
  /** Tests: told of every response a documented route gives that its document does not describe. */
  onResponseViolation?: (message: string) => void;
  /** Counters and histograms; main.ts serves them on METRICS_PORT. A registry of the app's own unless given. */
  metrics?: Metrics;
  /** The mail queue (main.ts works it on a timer too); one over config.email unless given. */
  mail?: MailQueue;
  /** An embedded server with no administrator yet: the token `npm run admin:create` hands over (see setup-routes). */
  setupToken?: { value: string; spend(): Promise<void> };
  /** Where image bytes go (main.ts passes openImageStorage(config): S3 with STORAGE=s3); local disk under UPLOAD_DIR unless given. */
  imageStorage?: ImageStorage;
}

/** What the app does beside requests, for main.ts to drive on timers and to stop: webhook deliveries, audit writes. */
export interface AppWorkers {
  webhooks: Webhooks;
  events: AuditLog;
}

export function appWorkers(app: Express): AppWorkers {
  return app.locals.workers as AppWorkers;
}

export function createApp(deps: AppDeps): Express {
  const { config, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  app.set('query parser', 'simple');
  // Every API answer is no-store, so an ETag would be a hash per response that no cache ever uses.
  app.set('etag', false);

  const metrics = deps.metrics ?? new Metrics();
  metrics.watchPasswordPool(deps.passwordPool);
  if (deps.onResponseViolation) app.use(responseConformance(deps.onResponseViolation));
  app.use(requestLogger(logger), metrics.requests());
  if (config.trustProxy !== false) app.use(forwardedForCheck());
  app.use(securityHeaders({ production: config.env === 'production', inlineScriptHashes: inlineScriptHashes(path.join(PUBLIC_DIR, 'index.html')) }));
  app.use(corsAllowlist(config.corsOrigins));
  app.use(noStore());
  const parseJson = express.json({ limit: config.bodyLimit });
  app.use((req, res, next) => (hasBody(req) ? parseJson(req, res, next) : next()));

  const registry = createRegistry();
  const rateLimiters = createRateLimiters(config.rateLimit, deps.store, logger, { validate: config.env !== 'production', clock: deps.clock });
  const mail =
    deps.mail ??
    openMailQueue(
      { ...config.email, development: config.env === 'development' },
      { prisma: deps.db.prisma, purposeKeys: deps.purposeKeys, clock: deps.clock, logger, metrics },
    );
  const accounts = createAccounts({ ...deps, mail, metrics }, { failedCredentials: rateLimiters.limit('credentials') });
  const publicLimit = rateLimiters.limit('auth');
  const refreshLimit = rateLimiters.limit('refresh');
  const authenticated = { authn: accounts.authn, userLimit: rateLimiters.limit('account') };
  const cache = new Cache(deps.store, deps.clock, logger);

  const errors = errorHandler(logger, metrics);
  // With METRICS_TOKEN, Prometheus may scrape the public port too (main.ts serves the metrics port either way).
  if (config.metrics.token) app.get('/metrics', metricsHandler(metrics, config.metrics.token));
  app.use(healthRoutes(registry, deps).router);
  const auth = authRoutes(registry, { ...accounts, ...authenticated, publicLimit, refreshLimit }).router;
  const me = meRoutes(registry, { ...accounts, ...authenticated }).router;
  const sessions = sessionRoutes(registry, { ...accounts, ...authenticated }).router;
  // The busiest routes' refusals (401, 429) are answered right here, not after a walk past every later router.
  app.use(auth, me, sessions, errors);
  // Older clients call the same API under /auth.
  app.use('/auth', legacyAliasRoutes(registry, { ...accounts, ...authenticated, publicLimit }).router, auth, me, sessions);
  const adminGuards = config.adminRequireMfa ? [requireSecondFactor()] : [];
  app.use(adminRoutes(registry, { ...accounts, ...authenticated, rateLimiters, adminGuards }).router);
  app.use(auditRoutes(registry, { ...accounts, ...authenticated, adminGuards }).router);
  app.use(webhookRoutes(registry, { ...accounts, ...authenticated, adminGuards }).router);
  app.use(
    signingKeyRoutes(registry, {
      ...authenticated,
      adminGuards,
      signingKeys: deps.signingKeys,
      purposeKeys: deps.purposeKeys,
      issuer: config.jwtIssuer,
      publicUrl: config.publicUrl,
    }).router,
  );
  const recentSignIn = requireRecentAuthentication(config.reauthMaxAgeS, deps.clock);
  app.use(
    mfaRoutes(registry, {
      mfa: accounts.mfa,
      email: accounts.email,
      events: accounts.events,
      authn: accounts.authn,
      limit: rateLimiters.limit('api-keys'),
      recentSignIn,
      enrolment: accounts.enrolment,
    }).router,
  );
  app.use(emailRoutes(registry, { ...accounts, publicLimit, emailLimit: rateLimiters.limit('email'), userLimit: authenticated.userLimit }).router);
  if (deps.setupToken)
    app.use(
      setupRoutes(registry, { prisma: deps.db.prisma, passwords: accounts.passwords, clock: deps.clock, setupToken: deps.setupToken, publicLimit }).router,
    );
  // The outbox holds every reset link and code: readable from this machine only, never through a proxy.
  if (config.env === 'development') app.use('/dev', thisMachineOnly());
  if (config.env === 'development') app.use(devOutboxRoutes(registry, config.email.outboxDir).router);
  app.use(passkeyRoutes(registry, { ...accounts, ...authenticated, publicLimit, limit: rateLimiters.limit('api-keys'), recentSignIn }).router);
  app.use(
    apiKeyRoutes(registry, {
      apiKeys: accounts.apiKeys,
      email: accounts.email,
      events: accounts.events,
      authn: accounts.authn,
      limit: rateLimiters.limit('api-keys'),
      recentSignIn,
      enrolment: accounts.enrolment,
    }).router,
  );
  const signer = new ImageUrlSigner(deps.purposeKeys, deps.clock, config.signedUrlTtlS);
  const images = new ImageService(deps.db.prisma, deps.imageStorage ?? new LocalDiskStorage(config.uploadDir), signer, deps.clock, logger, {
    spoolDir: config.uploadDir,
    maxPixels: config.imageMaxPixels,
    stripMetadata: config.imageStripMetadata,
    quotaBytesPerUser: config.imageQuotaBytesPerUser,
  });
  accounts.users.onAccountDeleted((userId) => images.prepareOwnerRemoval(userId));
  app.use(
    imageRoutes(registry, {
      images,
      metrics,
      signer,
      maxUploadBytes: config.maxUploadBytes,
      maxPixels: config.imageMaxPixels,
      authn: accounts.authn,
      imagesLimit: rateLimiters.limit('images'),
      signedUrlLimit: rateLimiters.limit('signed-urls'),
    }).router,
  );
  app.use(
    expensiveRoutes(registry, {
      ...authenticated,
      prisma: deps.db.prisma,
      metrics,
      cache,
      clock: deps.clock,
      ttlS: config.cacheTtlS,
      delayMs: config.expensiveDelayMs,
    }).router,
  );

  const workers: AppWorkers = { webhooks: accounts.webhooks, events: accounts.events };
  app.locals.workers = workers;

  const openApiDocument = buildOpenApiDocument(registry, VERSION);
  app.locals.openApiDocument = openApiDocument;
  app.use(docsRouter(openApiDocument));
  // Last, so API requests never wait on a file-system lookup; it sets its own Cache-Control.
  app.use(express.static(PUBLIC_DIR, { index: 'index.html', maxAge: '5m' }), vendorRouter());
  app.use(methodNotAllowedRouter(registry));
  // The routers served again under /auth (see above) answer 405 there too.
  app.use('/auth', methodNotAllowedRouter(registry, ['auth', 'me', 'sessions']));
  app.use(notFoundHandler());
  app.use(errors);
  return app;
}
