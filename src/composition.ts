// Builds the object graph once per app, in layers: core pieces, then the credential kernel, then the features.
import type { Clock } from './core/clock.js';
import { Cache } from './core/cache.js';
import type { Config } from './core/config.js';
import type { Database } from './core/db.js';
import { deriveKey } from './core/derived-keys.js';
import { createFailureLockout } from './core/failure-lockout.js';
import type { Logger } from './core/logger.js';
import { Metrics } from './core/metrics.js';
import type { PasswordHashPool } from './core/password-hash-pool.js';
import type { SharedStore } from './core/shared-store.js';
import { authenticators } from './kernel/authenticate/authenticate.js';
import { enrolmentGuards } from './kernel/authenticate/enrolment-guards.js';
import { OrgAccess } from './kernel/authenticate/org-access.js';
import { SignInFlow } from './kernel/authenticate/sign-in.js';
import { EmailTokens } from './kernel/challenges/email-tokens.js';
import { createChallengeStore } from './kernel/challenges/webauthn-challenges.js';
import { SecurityEventBus, SignInRecorder } from './kernel/events/security-events.js';
import type { SigningKeys } from './kernel/keys/key-ring.js';
import { type PurposeKeys, VersionedBox, VersionedHmac } from './kernel/keys/purpose-keys.js';
import { PasswordPolicy } from './kernel/passwords/password-policy.js';
import { PasswordProof } from './kernel/passwords/password-proof.js';
import { PasswordHasher } from './kernel/passwords/passwords.js';
import { createRevocationStore } from './kernel/revocation/revocation-store.js';
import { PrismaRevocationLedger } from './kernel/revocation/revocation-ledger.js';
import { Sessions } from './kernel/sessions/sessions.js';
import { DEVICE_FAILURES_MAX, LoginThrottle, TrustedDevices } from './kernel/throttle/login-throttle.js';
import { createRateLimiters } from './kernel/throttle/rate-limiter.js';
import { AccessTokens, MfaTokens } from './kernel/tokens/tokens.js';
import { DpopProofs } from './kernel/tokens/dpop.js';
import { ApiKeyService } from './kernel/verifiers/api-key-service.js';
import { MFA_LOCKOUT, MfaService } from './kernel/verifiers/mfa-service.js';
import { PasskeyService } from './kernel/verifiers/passkey-service.js';
import { AdminService } from './features/admin/admin-service.js';
import { AuditLog } from './features/audit/audit-log.js';
import { EmailService } from './features/email/email-service.js';
import { type MailQueue, openMailQueue } from './features/email/mail-queue.js';
import { subscribeNotices } from './features/email/notices.js';
import { Federation } from './features/providers/federation.js';
import { ProviderClients } from './features/providers/provider-clients.js';
import { ProviderDirectory } from './features/providers/provider-directory.js';
import { MailTemplates } from './features/email/templates.js';
import { ImageService } from './features/images/image-service.js';
import { type ImageStorage, LocalDiskStorage } from './features/images/image-storage.js';
import { ImageUrlSigner } from './features/images/signed-urls.js';
import { Registration } from './features/sign-in/registration.js';
import { OAuthInteractions } from './features/oauth-provider/interactions.js';
import { OAuthClients } from './features/oauth-provider/oauth-clients.js';
import { OAuthConsents } from './features/oauth-provider/consents.js';
import { createOAuthStateStore } from './features/oauth-provider/oauth-state-store.js';
import { OpenIdProvider } from './features/oauth-provider/oidc-provider.js';
import { SessionBridge } from './features/oauth-provider/session-bridge.js';
import { UserService } from './features/users/user-service.js';
import { UserImport } from './features/user-import/user-import.js';
import { DataExport } from './features/data-export/data-export.js';
import { Invitations } from './features/organizations/invitations.js';
import { Members } from './features/organizations/members.js';
import { Organizations } from './features/organizations/organizations.js';
import { DestinationPolicy } from './features/webhooks/destination-policy.js';
import { Webhooks } from './features/webhooks/webhooks.js';

/**
 * What the refresh-successor and device-cookie keys derive from: JWT_SECRET with ES256 (where it is private to this
 * service), KEY_ENCRYPTION_KEY with HS256 (where JWT_SECRET is shared with every service that verifies tokens).
 */
export function localDerivationSecret(config: { accessTokenAlgorithm: 'ES256' | 'HS256'; jwtSecret: string; keyEncryptionKey?: string }): string {
  if (config.accessTokenAlgorithm !== 'HS256') return config.jwtSecret;
  if (!config.keyEncryptionKey)
    throw new Error('HS256 needs KEY_ENCRYPTION_KEY: the keys of this service must not derive from the JWT_SECRET every verifier holds');
  return config.keyEncryptionKey;
}

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

/** Core pieces every layer above uses: counters, the budgets, the cache and the outbox. */
function composeCore(deps: AppDeps) {
  const { config, store, clock, logger, db, purposeKeys } = deps;
  const metrics = deps.metrics ?? new Metrics();
  metrics.watchPasswordPool(deps.passwordPool);
  const rateLimiters = createRateLimiters(config.rateLimit, store, logger, { validate: config.env !== 'production', clock });
  const mail =
    deps.mail ?? openMailQueue({ ...config.email, development: config.env === 'development' }, { prisma: db.prisma, purposeKeys, clock, logger, metrics });
  return { metrics, rateLimiters, mail, cache: new Cache(store, clock, logger) };
}

/** The credential kernel: how a caller is proven, with no feature in sight. */
function composeKernel(deps: AppDeps, core: ReturnType<typeof composeCore>) {
  const { config, db, store, clock, logger, passwordPool, signingKeys, purposeKeys } = deps;
  const { metrics, rateLimiters } = core;
  // The secret this service's own keys derive from: never the HS256 JWT_SECRET, which every token verifier holds.
  const ownSecret = localDerivationSecret(config);
  const events = new SecurityEventBus(logger);
  const signIns = new SignInRecorder(events, metrics);
  const tokens = new AccessTokens(
    {
      keys: signingKeys,
      issuer: config.jwtIssuer,
      audience: config.jwtAudience,
      accessTtlS: config.accessTokenTtlS,
      clockToleranceS: config.jwtClockToleranceS,
    },
    clock,
  );
  const revocations = createRevocationStore(store, clock, new PrismaRevocationLedger(db.prisma));
  const passwords = new PasswordHasher(passwordPool, config.bcryptCost, new PasswordPolicy(passwordPool, config.passwordPolicy, logger), {
    legacyHashes: config.passwordLegacyHashes,
  });
  const orgAccess = new OrgAccess(db.prisma);
  const sessions = new Sessions({
    orgs: orgAccess,
    prisma: db.prisma,
    clock,
    tokens,
    revocations,
    settings: config,
    successorKey: deriveKey(ownSecret, 'authkit refresh successors v1'),
    events,
    metrics,
  });
  const devices = new TrustedDevices(deriveKey(ownSecret, 'authkit device cookies v1'));
  const loginThrottle = new LoginThrottle(
    createFailureLockout(store, clock, { name: 'login', ...config.loginLockout }),
    createFailureLockout(store, clock, { name: 'login-device', maxFailures: DEVICE_FAILURES_MAX, lockMs: config.loginLockout.lockMs }),
    devices,
    config.rateLimit.failOpen,
  );
  const mfa = new MfaService({
    prisma: db.prisma,
    box: new VersionedBox(purposeKeys, 'totp'),
    recoveryHash: new VersionedHmac(purposeKeys, 'recovery-codes'),
    lockout: createFailureLockout(store, clock, MFA_LOCKOUT),
    passwords,
    clock,
    issuer: config.jwtIssuer,
    events,
  });
  const passkeys = new PasskeyService({ prisma: db.prisma, challenges: createChallengeStore(store, clock), settings: config.webauthn, clock, logger, events });
  const apiKeys = new ApiKeyService(db.prisma, clock, logger, events, orgAccess, revocations);
  const proof = new PasswordProof(passwords, loginThrottle, signIns);
  const dpop = new DpopProofs({ clock, spendOnce: (id, ttlMs) => revocations.spendOnce(id, ttlMs), publicUrl: config.publicUrl });
  return {
    orgAccess,
    events,
    signIns,
    tokens,
    revocations,
    passwords,
    proof,
    sessions,
    devices,
    loginThrottle,
    mfa,
    mfaTokens: new MfaTokens(purposeKeys, config.jwtIssuer, clock),
    passkeys,
    apiKeys,
    emailTokens: new EmailTokens(db.prisma, new VersionedHmac(purposeKeys, 'email-tokens'), clock),
    enrolment: enrolmentGuards(db.prisma),
    // Forged or unknown tokens and keys spend the credentials budget.
    dpop,
    authn: authenticators({ tokens, revocations, apiKeys, dpop, failedCredentials: rateLimiters.limit('credentials') }),
  };
}

/** The features, each from the kernel and the dependencies it names; notices and webhooks subscribe to events. */
function composeFeatures(deps: AppDeps, core: ReturnType<typeof composeCore>, kernel: ReturnType<typeof composeKernel>) {
  const { config, db, store, clock, logger, purposeKeys } = deps;
  const { metrics, mail } = core;
  const { events, passwords, sessions } = kernel;
  const audit = new AuditLog(db.prisma, clock, metrics, logger);
  events.subscribe((event, context) => audit.record(event, context));
  const webhooks = new Webhooks({
    prisma: db.prisma,
    box: new VersionedBox(purposeKeys, 'webhook-signing'),
    clock,
    metrics,
    logger,
    requireHttps: config.env === 'production',
    destinations: new DestinationPolicy(config.webhookInternalAllowlist),
  });
  audit.onEvent(webhooks.enqueue);
  const email = new EmailService({
    prisma: db.prisma,
    queue: mail,
    templates: new MailTemplates({ product: config.email.productName, baseUrl: config.email.baseUrl }),
    tokens: kernel.emailTokens,
    passwords,
    sessions,
    // The counter locks on the message after the last allowed one.
    perAddress: createFailureLockout(store, clock, {
      name: 'mail-address',
      maxFailures: config.email.perAddress.max + 1,
      lockMs: config.email.perAddress.windowMs,
    }),
    settings: config.email,
    clock,
    logger,
    events,
    apiKeys: kernel.apiKeys,
  });
  subscribeNotices(events, email);
  const signIn = new SignInFlow({
    prisma: db.prisma,
    passwords,
    proof: kernel.proof,
    sessions,
    revocations: kernel.revocations,
    mfa: kernel.mfa,
    mfaTokens: kernel.mfaTokens,
    clock,
    logger,
    passkeys: kernel.passkeys,
    requireEmailVerification: config.email.requireVerification,
    signIns: kernel.signIns,
    devices: kernel.devices,
    emailCodes: email,
  });
  const users = new UserService({ prisma: db.prisma, passwords, proof: kernel.proof, sessions, clock, events, mail: email, apiKeys: kernel.apiKeys });
  const signer = new ImageUrlSigner(purposeKeys, clock, config.signedUrlTtlS);
  const images = new ImageService(
    db.prisma,
    deps.imageStorage ?? new LocalDiskStorage(config.uploadDir),
    signer,
    clock,
    logger,
    {
      spoolDir: config.uploadDir,
      maxPixels: config.imageMaxPixels,
      stripMetadata: config.imageStripMetadata,
      quotaBytesPerUser: config.imageQuotaBytesPerUser,
    },
    kernel.orgAccess,
  );
  users.onAccountDeleted((userId) => images.prepareOwnerRemoval(userId));
  const directory = new ProviderDirectory({
    prisma: db.prisma,
    clock,
    box: new VersionedBox(purposeKeys, 'identity-providers'),
    fromEnvironment: config.providers,
  });
  const federation = new Federation({
    prisma: db.prisma,
    directory,
    clients: new ProviderClients(clock, logger, { timeoutMs: config.authProviderTimeoutMs, allowLoopbackHttp: config.env !== 'production' }),
    signIn,
    passwords,
    events,
    store,
    clock,
    logger,
    siteUrl: config.email.baseUrl.replace(/\/+$/, ''),
    redirectUrls: config.authRedirectUrls,
  });
  const orgDeps = { prisma: db.prisma, clock, sessions, events };
  const organizations = new Organizations({ ...orgDeps, settings: { creation: config.orgCreation, maxPerUser: config.orgMaxPerUser } });
  users.beforeAccountDeleted((userId, client) => organizations.releaseAccount(userId, client));
  return {
    organizations,
    members: new Members(orgDeps),
    invitations: new Invitations({
      ...orgDeps,
      metrics,
      send: (message) => email.sendInvitation(message),
      siteUrl: config.email.baseUrl.replace(/\/+$/, ''),
      settings: { ttlS: config.orgInvitationTtlS, maxMembers: config.orgMaxMembers, maxPerUser: config.orgMaxPerUser },
    }),
    ...composeOpenId(deps, kernel),
    directory,
    federation,
    audit,
    webhooks,
    email,
    signIn,
    users,
    signer,
    images,
    registration: new Registration({ prisma: db.prisma, passwords, clock, events, mail: email }),
    userImport: new UserImport({ prisma: db.prisma, passwords, totpBox: new VersionedBox(purposeKeys, 'totp'), clock }),
    dataExport: new DataExport(db.prisma, clock),
    admin: new AdminService({ prisma: db.prisma, sessions, revocations: kernel.revocations, clock, events, rateLimiters: core.rateLimiters }),
  };
}

/**
 * The OpenID provider (OAUTH_PROVIDER, on by default with ES256): its client registry always (so administrators can
 * prepare clients), the provider itself only when it is on. Its sessions stand on ours and end with them.
 */
function composeOpenId(deps: AppDeps, kernel: ReturnType<typeof composeKernel>) {
  const { config, db, store, clock, logger, signingKeys } = deps;
  const ownSecret = localDerivationSecret(config);
  const state = createOAuthStateStore(store, clock);
  const bridge = new SessionBridge({ state, prisma: db.prisma, clock, logger });
  kernel.sessions.onEnded((sessionIds) => bridge.sessionsEnded(sessionIds));
  let openId: OpenIdProvider | undefined;
  const consents = new OAuthConsents(db.prisma, clock);
  const oauthClients = new OAuthClients({ prisma: db.prisma, clock, check: (metadata) => openId?.validate(metadata) ?? Promise.resolve() });
  if (config.oauthProvider && signingKeys.algorithm === 'ES256') {
    openId = new OpenIdProvider({
      settings: {
        issuer: config.publicUrl ?? config.email.baseUrl,
        accessTokenTtlS: config.accessTokenTtlS,
        sessionTtlS: config.sessionTtlS,
        codeTtlS: config.oauthCodeTtlS,
        idTokenTtlS: config.oauthIdTokenTtlS,
        refreshReuseIntervalS: config.refreshReuseIntervalS,
        clockToleranceS: config.jwtClockToleranceS,
        resources: config.oauthResources,
        registrationToken: config.oauthRegistrationToken,
        allowLoopback: config.env !== 'production',
      },
      signingKeys,
      clients: oauthClients,
      state,
      bridge,
      sessions: kernel.sessions,
      prisma: db.prisma,
      clock,
      logger,
      cookieKey: deriveKey(ownSecret, 'authkit oidc cookies v1').toString('base64url'),
      consents,
      orgs: kernel.orgAccess,
    });
  }
  return {
    oauthClients,
    openIdSessions: bridge,
    openId,
    consents,
    oauthInteractions:
      openId && new OAuthInteractions(openId, state, consents, clock, config.jwtClockToleranceS, deriveKey(ownSecret, 'authkit oauth answers v1')),
  };
}

/** The whole graph: what createApp routes to, and what main.ts drives on timers and stops (webhooks, audit writes). */
export function compose(deps: AppDeps) {
  const core = composeCore(deps);
  const kernel = composeKernel(deps, core);
  return { ...core, ...kernel, ...composeFeatures(deps, core, kernel) };
}

export type Composition = ReturnType<typeof compose>;
