// Builds the Express application from its dependencies; nothing here reads the environment or opens connections.
import { orgRoutes } from './features/organizations/org-routes.js';
import { invitationRoutes } from './features/organizations/invitation-routes.js';
import path from 'node:path';
import express, { type Express } from 'express';
import { errorHandler, methodNotAllowedRouter, notFoundHandler, NUL_CHARACTER_MESSAGE } from './core/error-handler.js';
import { hasBody } from './core/http/api-router.js';
import { buildOpenApiDocument, createRegistry, docsRouter } from './core/http/openapi.js';
import { requestLogger } from './core/http/request-context.js';
import { corsAllowlist, forwardedForCheck, noStore, securityHeaders, thisMachineOnly } from './core/http/security.js';
import { PUBLIC_DIR } from './core/paths.js';
import { inlineScriptHashes, vendorRouter } from './core/http/vendor.js';
import { responseConformance } from './core/http/response-conformance.js';
import { metricsHandler } from './core/metrics.js';
import { type AppDeps, compose, type Composition } from './composition.js';
import { requireRecentAuthentication } from './kernel/authenticate/authenticate.js';
import { requireSecondFactor } from './kernel/authenticate/guards.js';
import { adminRoutes } from './features/admin/admin-routes.js';
import { setupRoutes } from './features/admin/setup-routes.js';
import { providerRoutes } from './features/providers/provider-routes.js';
import { apiKeyRoutes } from './features/api-keys/api-key-routes.js';
import { auditRoutes } from './features/audit/audit-routes.js';
import { devOutboxRoutes, emailRoutes } from './features/email/email-routes.js';
import { expensiveRoutes } from './features/expensive/expensive-routes.js';
import { healthRoutes } from './features/health/health-routes.js';
import { imageRoutes } from './features/images/image-routes.js';
import { mfaRoutes } from './features/mfa/mfa-routes.js';
import { passkeyRoutes } from './features/passkeys/passkey-routes.js';
import { sessionRoutes } from './features/sessions/session-routes.js';
import { legacyAliasRoutes } from './features/sign-in/legacy-alias-routes.js';
import { authRoutes } from './features/sign-in/sign-in-routes.js';
import { signingKeyRoutes } from './features/signing-keys/signing-key-routes.js';
import { meRoutes } from './features/users/me-routes.js';
import { webhookRoutes } from './features/webhooks/webhook-routes.js';
import { importRoutes } from './features/user-import/import-routes.js';
import { exportRoutes } from './features/data-export/export-routes.js';
import { isProviderPath } from './features/oauth-provider/oidc-provider.js';
import { errorPage } from './features/oauth-provider/provider-pages.js';
import { DpopProofs } from './kernel/tokens/dpop.js';
import { oauthRoutes } from './features/oauth-provider/oauth-routes.js';

export type { AppConfig, AppDeps } from './composition.js';

export const VERSION = '0.1.0';

/**
 * A JSON body's reviver: no text we keep may hold U+0000 (PostgreSQL refuses it in text and JSONB), so a body with one,
 * in a value or a key, is refused as a whole with 400 text_nul_character before any route sees it.
 */
function refuseNulCharacters(key: string, value: unknown): unknown {
  if (key.includes('\u0000') || (typeof value === 'string' && value.includes('\u0000'))) throw new SyntaxError(NUL_CHARACTER_MESSAGE);
  return value;
}

/**
 * The HTTP pipeline over an object graph: `graph` is built from `deps` unless given (main.ts builds it first, so it
 * can drive the graph's webhooks and audit writes on timers and stop them).
 */
export function createApp(deps: AppDeps, graph: Composition = compose(deps)): Express {
  const { config, logger } = deps;
  const { metrics, rateLimiters } = graph;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  app.set('query parser', 'simple');
  // Every API answer is no-store, so an ETag would be a hash per response that no cache ever uses.
  app.set('etag', false);

  if (deps.onResponseViolation) app.use(responseConformance(deps.onResponseViolation));
  app.use(requestLogger(logger), metrics.requests());
  if (config.trustProxy !== false) app.use(forwardedForCheck());
  app.use(securityHeaders({ production: config.env === 'production', inlineScriptHashes: inlineScriptHashes(path.join(PUBLIC_DIR, 'index.html')) }));
  app.use(corsAllowlist(config.corsOrigins));
  app.use(noStore());
  // The OpenID provider reads its own request bodies (forms and JSON), so it comes before the JSON parser.
  const openId = graph.openId;
  const oauthLimit = rateLimiters.limit('oauth');
  if (openId)
    app.use((req, res, next) => {
      if (!isProviderPath(req.path)) return next();
      if (graph.oauthInteractions && !graph.oauthInteractions.mayResume(req)) {
        res
          .status(400)
          .type('html')
          .send(errorPage({ error: 'invalid_request', error_description: 'this sign-in was answered in another browser' }));
        return;
      }
      // The discovery document is the same for everyone and names PUBLIC_URL alone: caches may keep it a while.
      if (req.path === '/.well-known/openid-configuration' && config.publicUrl) res.set('Cache-Control', 'public, max-age=300');
      void oauthLimit(req, res, (err?: unknown) => (err === undefined ? openId.handle(req, res) : next(err)));
    });
  const parseJson = express.json({ limit: config.bodyLimit, reviver: refuseNulCharacters });
  app.use((req, res, next) => (hasBody(req) ? parseJson(req, res, next) : next()));

  // A DPoP proof without an access token (a sign-in, a refresh): checked here, and the tokens issued are bound to its key.
  app.use(async (req, _res, next) => {
    const proof = DpopProofs.header(req);
    if (proof !== undefined && req.headers.authorization === undefined) req.dpopJkt = await graph.dpop.verify(req, proof);
    next();
  });

  const registry = createRegistry();
  const authn = graph.authn;
  const publicLimit = rateLimiters.limit('auth');
  const userLimit = rateLimiters.limit('account');
  const settingsLimit = rateLimiters.limit('api-keys');
  // Reading one's own account and settings: apart from the changes those screens offer (see config.ts, READS_PER_SCREEN).
  const readLimit = rateLimiters.limit('reads');
  // A WebAuthn finish answers a single-use challenge its metered options call minted: only a refused one costs budget.
  const finishLimit = rateLimiters.refusals('credentials');
  const recentSignIn = requireRecentAuthentication(config.reauthMaxAgeS, deps.clock);
  const adminGuards = config.adminRequireMfa ? [requireSecondFactor()] : [];
  const admin = { authn, userLimit, adminGuards };

  const errors = errorHandler(logger, metrics);
  // PUBLIC_URL is https: the cookies of browser flows (a provider sign-in, an app's sign-in here) are Secure.
  const secureSite = config.email.baseUrl.startsWith('https:');
  // With METRICS_TOKEN, Prometheus may scrape the public port too (main.ts serves the metrics port either way).
  if (config.metrics.token) app.get('/metrics', metricsHandler(metrics, config.metrics.token));
  app.use(healthRoutes(registry, deps).router);
  const auth = authRoutes(registry, {
    registration: graph.registration,
    signIn: graph.signIn,
    sessions: graph.sessions,
    authn,
    publicLimit,
    userLimit,
    passwordRules: config.passwordPolicy,
  }).router;
  const me = meRoutes(registry, { users: graph.users, authn, userLimit, readLimit }).router;
  const sessions = sessionRoutes(registry, { sessions: graph.sessions, authn, readLimit, refreshLimit: rateLimiters.limit('refresh') }).router;
  // The busiest routes' refusals (401, 429) are answered right here, not after a walk past every later router.
  app.use(auth, me, sessions, errors);
  // Older clients call the same API under /auth.
  app.use(
    '/auth',
    legacyAliasRoutes(registry, { registration: graph.registration, users: graph.users, authn, publicLimit, readLimit }).router,
    auth,
    me,
    sessions,
  );
  app.use(adminRoutes(registry, { ...admin, admin: graph.admin }).router);
  const dataExport = exportRoutes(registry, { ...admin, exports: graph.dataExport, events: graph.events, clock: deps.clock });
  app.use(
    importRoutes(registry, { ...admin, userImport: graph.userImport, events: graph.events, maxBytes: config.userImportMaxMb * 1024 * 1024 }).router,
    dataExport.admin.router,
    dataExport.me.router,
  );
  app.use(auditRoutes(registry, { ...admin, readLimit, audit: graph.audit, orgAccess: graph.orgAccess }).router);
  app.use(webhookRoutes(registry, { ...admin, webhooks: graph.webhooks }).router);
  app.use(
    signingKeyRoutes(registry, {
      ...admin,
      signingKeys: deps.signingKeys,
      purposeKeys: deps.purposeKeys,
      issuer: config.jwtIssuer,
      publicUrl: config.publicUrl,
    }).router,
  );
  app.use(mfaRoutes(registry, { mfa: graph.mfa, authn, limit: settingsLimit, readLimit, recentSignIn, enrolment: graph.enrolment }).router);
  app.use(
    emailRoutes(registry, {
      email: graph.email,
      signIn: graph.signIn,
      authn,
      publicLimit,
      emailLimit: rateLimiters.limit('email'),
      linkLimit: rateLimiters.limit('links'),
      userLimit,
    }).router,
  );
  if (deps.setupToken)
    app.use(setupRoutes(registry, { prisma: deps.db.prisma, passwords: graph.passwords, clock: deps.clock, setupToken: deps.setupToken, publicLimit }).router);
  // The outbox holds every reset link and code: readable from this machine only, never through a proxy.
  if (config.env === 'development') app.use('/dev', thisMachineOnly());
  if (config.env === 'development') app.use(devOutboxRoutes(registry, config.email.outboxDir).router);
  app.use(
    passkeyRoutes(registry, {
      passkeys: graph.passkeys,
      signIn: graph.signIn,
      authn,
      publicLimit,
      limit: settingsLimit,
      readLimit,
      userLimit,
      finishLimit,
      recentSignIn,
      enrolment: graph.enrolment,
    }).router,
  );
  app.use(
    providerRoutes(registry, {
      federation: graph.federation,
      directory: graph.directory,
      authn,
      publicLimit,
      readLimit,
      settingsLimit,
      recentSignIn,
      enrolment: graph.enrolment,
      admin,
      secureSite,
    }).router,
  );
  if (graph.oauthInteractions)
    app.use(
      oauthRoutes(registry, {
        interactions: graph.oauthInteractions,
        clients: graph.oauthClients,
        consents: graph.consents,
        authn,
        publicLimit,
        userLimit,
        readLimit,
        admin,
        secureSite,
      }).router,
    );
  app.use(
    orgRoutes(registry, {
      organizations: graph.organizations,
      members: graph.members,
      sessions: graph.sessions,
      orgAccess: graph.orgAccess,
      authn,
      readLimit,
      userLimit,
      recentSignIn,
    }).router,
    invitationRoutes(registry, {
      invitations: graph.invitations,
      organizations: graph.organizations,
      orgAccess: graph.orgAccess,
      authn,
      readLimit,
      userLimit,
      admin,
    }).router,
  );
  app.use(
    apiKeyRoutes(registry, {
      apiKeys: graph.apiKeys,
      authn,
      limit: settingsLimit,
      readLimit,
      recentSignIn,
      enrolment: graph.enrolment,
      orgAccess: graph.orgAccess,
    }).router,
  );
  app.use(
    imageRoutes(registry, {
      images: graph.images,
      metrics,
      signer: graph.signer,
      maxUploadBytes: config.maxUploadBytes,
      maxPixels: config.imageMaxPixels,
      authn,
      orgAccess: graph.orgAccess,
      imagesLimit: rateLimiters.limit('images'),
      signedUrlLimit: rateLimiters.limit('signed-urls'),
    }).router,
  );
  app.use(
    expensiveRoutes(registry, {
      authn,
      userLimit,
      prisma: deps.db.prisma,
      metrics,
      cache: graph.cache,
      clock: deps.clock,
      ttlS: config.cacheTtlS,
      delayMs: config.expensiveDelayMs,
    }).router,
  );

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
