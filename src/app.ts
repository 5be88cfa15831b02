// Builds the Express application from its dependencies; nothing here reads the environment or opens connections.
import express, { type Express } from 'express';
import type { Clock } from './core/clock.js';
import type { Config } from './core/config.js';
import type { Database } from './core/db.js';
import { errorHandler, notFoundHandler } from './core/error-handler.js';
import { buildOpenApiDocument, createRegistry, docsRouter } from './core/http/openapi.js';
import { requestLogger } from './core/http/request-context.js';
import { corsAllowlist, noStore, securityHeaders } from './core/http/security.js';
import type { Logger } from './core/logger.js';
import { PUBLIC_DIR } from './core/paths.js';
import type { SharedStore } from './core/shared-store.js';
import { healthRoutes } from './features/health/health-routes.js';

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
}

export function createApp(deps: AppDeps): Express {
  const { config, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  app.set('query parser', 'simple');

  app.use(requestLogger(logger));
  app.use(securityHeaders({ production: config.env === 'production' }));
  app.use(corsAllowlist(config.corsOrigins));
  app.use(express.static(PUBLIC_DIR, { index: 'index.html', maxAge: '5m' }));
  app.use(noStore());
  app.use(express.json({ limit: config.bodyLimit }));

  const registry = createRegistry();
  app.use(healthRoutes(registry, deps).router);

  app.use(docsRouter(buildOpenApiDocument(registry, VERSION)));
  app.use(notFoundHandler());
  app.use(errorHandler(logger));
  return app;
}
