// Every setting, named once (environment variable, bounds, default, doc), and the typed config loaded from them.
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { z } from 'zod';

const MIN_SECRET_BYTES = 32;
const MIN_BCRYPT_COST = 10;

// --- Formats ------------------------------------------------------------------------------------------------------

const booleanFlag = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((value) => value === 'true' || value === '1' || value === 'yes');

const optionalString = z
  .string()
  .trim()
  .transform((value) => (value === '' ? undefined : value))
  .optional();

const commaList = z
  .string()
  .default('')
  .transform((value) =>
    value
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== ''),
  );

const integer = (fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max).default(fallback);

/** A comma list of host:port pairs (a host name, an IPv4 address, or an IPv6 one in brackets). */
const hostPorts = commaList.transform((items, ctx): Array<{ host: string; port: number }> => {
  const pairs: Array<{ host: string; port: number }> = [];
  for (const item of items) {
    const match = /^(\[[0-9a-f:.]+\]|[^\s:[\]/]+):(\d{1,5})$/i.exec(item);
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65_535) {
      ctx.addIssue({ code: 'custom', message: `${item} is not host:port` });
      return z.NEVER;
    }
    pairs.push({ host: (match[1] as string).replace(/^\[|\]$/g, ''), port });
  }
  return pairs;
});

/** A per-group budget: 0 or unset means "the default budget" (RATE_LIMIT_MAX), so one variable tunes every group. */
const groupBudget = integer(0, 0, 1_000_000).optional();

const minutesAsMs = (fallback: number, min: number, max: number) => integer(fallback, min, max).transform((minutes) => minutes * 60_000);

const withoutTrailingSlash = (value: string) => value.replace(/\/+$/, '');

/** `false`, a hop count, or a comma list of addresses/subnets, as Express's `trust proxy` accepts. */
const trustProxy = z
  .string()
  .default('false')
  .transform((value, ctx): boolean | number | string[] => {
    const trimmed = value.trim();
    if (trimmed === '' || trimmed === 'false' || trimmed === '0') return false;
    if (/^\d+$/.test(trimmed)) return Number(trimmed);
    if (trimmed === 'true') {
      ctx.addIssue({ code: 'custom', message: 'true trusts any client to set its own IP; give a hop count or subnets' });
      return z.NEVER;
    }
    const entries = trimmed.split(',').map((item) => item.trim());
    const named = new Set(['loopback', 'linklocal', 'uniquelocal']);
    for (const entry of entries) {
      const address = entry.split('/')[0] ?? '';
      if (!named.has(entry) && isIP(address) === 0) {
        ctx.addIssue({ code: 'custom', message: `${entry} is not an address, subnet, loopback, linklocal or uniquelocal` });
        return z.NEVER;
      }
    }
    return entries;
  });

/** A WEBHOOK_INTERNAL_ALLOWLIST entry: an address, a CIDR (address/prefix) or a host name. */
export function isWebhookAllowlistEntry(entry: string): boolean {
  const [address = '', prefix, ...rest] = entry.split('/');
  const version = isIP(address);
  if (version !== 0) return rest.length === 0 && (prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128)));
  return prefix === undefined && /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i.test(entry);
}

// --- Settings -----------------------------------------------------------------------------------------------------
// Each section maps a property of the typed config (its key) to the variable it is read from. `.env.example` and
// docs/configuration.md's settings tables list the same variables (tests/config.test.ts checks).

/** One environment variable: its name, its format with bounds and default, and what it is for. */
export interface Setting<S extends z.ZodType = z.ZodType> {
  env: string;
  schema: S;
  doc: string;
}

const setting = <S extends z.ZodType>(env: string, schema: S, doc: string): Setting<S> => ({ env, schema, doc });

/** The process: where it listens, where it keeps files, what it logs, how it stops. */
const server = {
  env: setting('NODE_ENV', z.enum(['development', 'production', 'test']).default('development'), 'production refuses missing or weak secrets'),
  port: setting('PORT', integer(3000, 0, 65535), 'Port to listen on'),
  host: setting('HOST', z.string().default('0.0.0.0'), 'Interface to listen on'),
  dataDir: setting('DATA_DIR', z.string().default('./.data'), 'Embedded database, generated development secrets, outbox, uploads'),
  publicUrl: setting(
    'PUBLIC_URL',
    optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()).transform((url) => url && withoutTrailingSlash(url)),
    'Where clients reach this service: the base of emailed links and of jwks_uri; else the request origin',
  ),
  logLevel: setting('LOG_LEVEL', z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'), 'pino log level'),
  logFormat: setting('LOG_FORMAT', z.enum(['json', 'pretty']).optional(), 'json or pretty; unset: pretty in development, json otherwise'),
  corsOrigins: setting('CORS_ORIGINS', commaList, 'Browser origins allowed cross-origin'),
  trustProxy: setting('TRUST_PROXY', trustProxy, 'false, a hop count, or proxy addresses/subnets (true is refused)'),
  bodyLimit: setting(
    'BODY_LIMIT',
    z
      .string()
      .regex(/^\d+(b|kb|mb)$/i, 'a size such as 100kb')
      .default('100kb'),
    'Largest JSON body',
  ),
  shutdownTimeoutMs: setting('SHUTDOWN_TIMEOUT_MS', integer(10_000, 0, 120_000), 'Grace for in-flight requests on SIGTERM/SIGINT'),
  metrics: {
    port: setting('METRICS_PORT', integer(9464, 0, 65535), 'Port of GET /metrics apart from the public one; 0: none'),
    host: setting('METRICS_HOST', z.string().default('127.0.0.1'), 'Interface of the metrics port'),
    token: setting('METRICS_TOKEN', optionalString, 'Also serve GET /metrics on the public port to this bearer token'),
  },
  cacheTtlS: setting('CACHE_TTL_S', integer(60, 1, 86_400), 'How long /expensive results are cached'),
  expensiveDelayMs: setting('EXPENSIVE_DELAY_MS', integer(1_000, 0, 60_000), 'How long the stand-in for an expensive computation takes'),
};

/** PostgreSQL and Redis; unset, the embedded database and in-process stores. */
const stores = {
  databaseUrl: setting('DATABASE_URL', optionalString.pipe(z.url({ protocol: /^postgres(ql)?$/ }).optional()), 'PostgreSQL URL; unset: embedded PGlite'),
  migrateOnStart: setting('MIGRATE_ON_START', booleanFlag.optional(), 'Apply pending migrations at start; unset: only when embedded'),
  databaseTimeoutMs: setting('DATABASE_TIMEOUT_MS', integer(1_000, 100, 600_000), 'Longest a connection may take to open, and a statement to run, before 503'),
  redisUrl: setting('REDIS_URL', optionalString.pipe(z.url({ protocol: /^rediss?$/ }).optional()), 'Redis URL; unset: in-process stores'),
  redisSentinels: setting('REDIS_SENTINELS', hostPorts, 'Redis Sentinels (host:port,…) that name the primary; instead of REDIS_URL'),
  redisSentinelName: setting('REDIS_SENTINEL_NAME', z.string().trim().min(1).default('mymaster'), 'The primary’s name the sentinels monitor'),
  redisSentinelPassword: setting('REDIS_SENTINEL_PASSWORD', optionalString, 'Password of the sentinels themselves (requirepass in sentinel.conf)'),
  redisClusterNodes: setting('REDIS_CLUSTER_NODES', hostPorts, 'Some nodes (host:port,…) of a Redis Cluster; instead of REDIS_URL'),
  redisPassword: setting('REDIS_PASSWORD', optionalString, 'Password of the Redis servers behind sentinels or in a cluster (REDIS_URL carries its own)'),
  redisKeyPrefix: setting('REDIS_KEY_PREFIX', z.string().default('authkit:'), 'Prefix of every Redis key written'),
  redisCommandTimeoutMs: setting(
    'REDIS_COMMAND_TIMEOUT_MS',
    integer(1_000, 50, 60_000),
    'Longest a Redis command may take (a refused connection fails at once)',
  ),
};

/** Access and refresh tokens: how they are signed, by whom for whom, and how long they live. */
const tokens = {
  jwtSecret: setting('JWT_SECRET', optionalString, 'HS256 signing secret and root of derived keys; generated outside production'),
  accessTokenAlgorithm: setting('JWT_ALGORITHM', z.enum(['ES256', 'HS256']).default('ES256'), 'ES256: key-ring pairs published as a JWKS; HS256: JWT_SECRET'),
  keyEncryptionKey: setting('KEY_ENCRYPTION_KEY', optionalString, 'Seals stored keys (signing keys, purpose keys); generated outside production'),
  signingKeyRotationDays: setting('SIGNING_KEY_ROTATION_DAYS', integer(30, 0, 3_650), 'Days between automatic signing-key rotations; 0: on demand only'),
  jwtIssuer: setting('JWT_ISSUER', z.string().min(1).default('authkit'), 'iss of access tokens'),
  jwtAudience: setting('JWT_AUDIENCE', z.string().min(1).default('authkit-api'), 'aud of access tokens'),
  jwtClockToleranceS: setting('JWT_CLOCK_TOLERANCE_S', integer(5, 0, 60), 'Seconds of clock skew accepted on exp'),
  accessTokenTtlS: setting('ACCESS_TOKEN_TTL_S', integer(900, 30, 86_400), 'Access-token lifetime'),
  sessionTtlS: setting('SESSION_TTL_S', integer(7 * 86_400, 300, 365 * 86_400), 'Absolute lifetime of a login, however often it refreshes'),
  refreshReuseIntervalS: setting('REFRESH_REUSE_INTERVAL_S', integer(10, 0, 300), 'How long a rotated refresh token may be replayed before it counts as theft'),
  reauthMaxAgeS: setting('REAUTH_MAX_AGE_S', integer(300, 30, 86_400), 'How recent a sign-in must be to enrol two-factor or create an API key'),
};

/** Passwords: hashing, what a new one must be, and how many wrong ones an account takes. */
const passwords = {
  bcryptCost: setting('BCRYPT_COST', integer(12, 4, 15), 'bcrypt cost; at least 10 outside tests'),
  passwordHashPool: {
    threads: setting('PASSWORD_HASH_THREADS', integer(0, 0, 64), 'Worker threads that run bcrypt; 0: one per core'),
    queueMax: setting('PASSWORD_HASH_QUEUE_MAX', integer(0, 0, 100_000), 'Hashes that may wait for a thread before 503; 0: eight per thread'),
  },
  passwordPolicy: {
    minLength: setting('PASSWORD_MIN_LENGTH', integer(8, 8, 64), 'Shortest new password, in characters'),
    minScore: setting('PASSWORD_MIN_SCORE', integer(3, 0, 4), 'The least zxcvbn score (0 to 4) accepted'),
    breached: {
      mode: setting(
        'BREACHED_PASSWORD_CHECK',
        z.enum(['off', 'fail-open', 'fail-closed']).default('off'),
        'off, or ask the range API and on a failure let the password through (fail-open) or refuse it (fail-closed)',
      ),
      url: setting(
        'BREACHED_PASSWORD_API_URL',
        z
          .url({ protocol: /^https?$/ })
          .default('https://api.pwnedpasswords.com')
          .transform(withoutTrailingSlash),
        'The Pwned Passwords range API base (<url>/range/<first 5 hex of the SHA-1>)',
      ),
      timeoutMs: setting('BREACHED_PASSWORD_TIMEOUT_MS', integer(1_500, 100, 30_000), 'Longest the range API may take'),
    },
  },
  passwordLegacyHashes: setting(
    'PASSWORD_LEGACY_HASHES',
    booleanFlag.default(false),
    'Accept imported salted SHA-1/SHA-256/SHA-512 and MD5 hashes (import and sign-in, replaced at the first sign-in); off: refused',
  ),
  userImportMaxMb: setting('USER_IMPORT_MAX_MB', integer(64, 1, 1_024), 'Largest body POST /admin/users/import takes, in MiB (the CLI has no limit)'),
  loginLockout: {
    maxFailures: setting('LOGIN_FAILURES_MAX', integer(10, 1, 1_000), 'Wrong passwords per account before it answers 429 to browsers it has not seen'),
    lockMs: setting('LOGIN_LOCKOUT_MINUTES', minutesAsMs(15, 1, 1_440), 'How long that lasts'),
  },
};

/** Administrators. */
const admin = {
  bootstrapAdmin: {
    email: setting('ADMIN_EMAIL', optionalString.pipe(z.email().optional()), 'Administrator created at startup (with ADMIN_PASSWORD)'),
    password: setting('ADMIN_PASSWORD', optionalString, 'Its password (with ADMIN_EMAIL)'),
    username: setting('ADMIN_USERNAME', z.string().default('admin'), 'Its username'),
  },
  adminRequireMfa: setting('ADMIN_REQUIRE_MFA', booleanFlag.default(false), 'Admin routes need an access token earned with a second factor'),
};

/** Mail: how it goes out and what it says about us. */
const mail = {
  email: {
    smtpUrl: setting(
      'SMTP_URL',
      optionalString.pipe(z.url({ protocol: /^smtps?$/ }).optional()),
      'SMTP(S) server; unset: messages are written to the outbox directory',
    ),
    from: setting('MAIL_FROM', z.string().trim().min(3).max(254).default('authkit <no-reply@localhost>'), 'The sender of every message'),
    productName: setting(
      'PRODUCT_NAME',
      z.string().trim().min(1).max(64).default('authkit'),
      'The product name in every message (and the passkey RP name by default)',
    ),
    requireVerification: setting('REQUIRE_EMAIL_VERIFICATION', booleanFlag.default(false), 'Logins (of every kind) are refused until the address is confirmed'),
    perAddress: {
      max: setting('EMAIL_PER_ADDRESS_MAX', integer(3, 1, 1_000), 'Messages one address may be sent per window; more are dropped silently'),
      windowMs: setting('EMAIL_PER_ADDRESS_WINDOW_MINUTES', minutesAsMs(15, 1, 1_440), 'That window'),
    },
  },
};

/** Passkeys: who they belong to, and the pages allowed to use them. */
const passkeys = {
  webauthn: {
    rpId: setting('WEBAUTHN_RP_ID', optionalString, 'The domain passkeys are bound to; unset: the first origin host'),
    rpName: setting(
      'WEBAUTHN_RP_NAME',
      optionalString.pipe(z.string().max(64).optional()),
      'The name authenticators show beside a passkey; unset: PRODUCT_NAME',
    ),
    origins: setting('WEBAUTHN_ORIGINS', commaList, 'Exact origins a ceremony may come from; unset: PUBLIC_URL, else http://localhost:PORT'),
  },
};

/** Signing in with outside identity providers; each id in AUTH_PROVIDERS reads AUTH_PROVIDER_<ID>_* (see providerSettings). */
const federation = {
  authProviders: setting(
    'AUTH_PROVIDERS',
    commaList.pipe(z.array(z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'ids are lower-case letters, digits and dashes'))),
    'Outside identity providers enabled from the environment (google, github, microsoft, apple, or an id of your own for any OpenID Connect issuer)',
  ),
  authRedirectUrls: setting(
    'AUTH_REDIRECT_URLS',
    commaList.pipe(z.array(z.url())),
    'Where a provider sign-in may send an app back to (redirect_to must start with one); the page itself is always allowed',
  ),
  authProviderTimeoutMs: setting('AUTH_PROVIDER_TIMEOUT_MS', integer(5_000, 500, 60_000), 'How long to wait for a provider before answering 503'),
};

/** The scopes OpenID Connect itself defines; an API in OAUTH_RESOURCES defines others. */
export const STANDARD_SCOPES = ['openid', 'profile', 'email', 'offline_access', 'organization'] as const;

/** Whether a scope is one of OpenID Connect's own (STANDARD_SCOPES) rather than an API's. */
export function isStandardScope(scope: string): boolean {
  return (STANDARD_SCOPES as readonly string[]).includes(scope);
}

/** An OAUTH_RESOURCES entry: a resource server's URL (RFC 8707) and the scopes it defines, separated by spaces. */
const oauthResources = commaList.transform((entries, ctx) =>
  entries.map((entry) => {
    const [resource = '', ...scopes] = entry.split(/\s+/);
    if (!URL.canParse(resource) || new URL(resource).hash !== '')
      ctx.addIssue({ code: 'custom', message: `${resource} is not an absolute URL without a fragment` });
    for (const scope of scopes)
      if (!/^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/.test(scope) || isStandardScope(scope))
        ctx.addIssue({ code: 'custom', message: `${scope}: not a scope an API may define` });
    return { resource, scopes };
  }),
);

/** Acting as an OpenID provider and OAuth 2.1 authorization server for a team's other apps. */
const oauthProvider = {
  oauthProvider: setting(
    'OAUTH_PROVIDER',
    booleanFlag.optional(),
    'Act as an OpenID provider for other apps (needs JWT_ALGORITHM=ES256); unset: on with ES256',
  ),
  oauthResources: setting(
    'OAUTH_RESOURCES',
    oauthResources,
    'APIs access tokens may be for: comma-separated "URL scope scope…" entries (RFC 8707 resource indicators)',
  ),
  oauthRegistrationToken: setting(
    'OAUTH_REGISTRATION_TOKEN',
    optionalString,
    'Turns on dynamic client registration (RFC 7591) for callers presenting this initial access token; unset: off',
  ),
  oauthCodeTtlS: setting('OAUTH_CODE_TTL_S', integer(60, 1, 600), 'Authorization-code lifetime'),
  oauthIdTokenTtlS: setting('OAUTH_ID_TOKEN_TTL_S', integer(3600, 60, 86_400), 'ID-token lifetime'),
};

/**
 * Opening Settings reads five things at once (keys, two-factor, passkeys, sessions, recent activity), so the reads
 * budget counts screens rather than requests: RATE_LIMIT_MAX openings a minute.
 */
export const READS_PER_SCREEN = 5;

/**
 * An app's sign-in is several requests to the provider (authorize, resume, token, UserInfo), and a service may fetch
 * tokens often: the provider's budget is this many times the default one.
 */
export const OAUTH_REQUESTS_PER_BUDGET = 120;

/** Rate limits: a budget per group of routes, in one window. */
const rateLimits = {
  rateLimit: {
    max: setting('RATE_LIMIT_MAX', integer(5, 1, 1_000_000), 'The default budget of every group'),
    windowMs: setting('RATE_LIMIT_WINDOW_MS', integer(60_000, 1_000, 86_400_000), 'The window every budget counts in'),
    groups: {
      auth: setting('RATE_LIMIT_AUTH_MAX', groupBudget, 'Sign-in, registration and recovery, per IP'),
      refresh: setting('RATE_LIMIT_REFRESH_MAX', groupBudget, 'POST /refresh, per IP'),
      credentials: setting('RATE_LIMIT_CREDENTIALS_MAX', groupBudget, 'Forged or unknown bearer tokens and API keys, per IP'),
      account: setting('RATE_LIMIT_ACCOUNT_MAX', groupBudget, 'Account routes, per principal'),
      images: setting('RATE_LIMIT_IMAGES_MAX', groupBudget, 'Image routes, per principal'),
      apiKeys: setting('RATE_LIMIT_API_KEYS_MAX', groupBudget, 'Changes to settings (API keys, passkeys, two-factor), per principal'),
      email: setting('RATE_LIMIT_EMAIL_MAX', groupBudget, 'Routes that mail an address someone typed, per IP'),
      links: setting('RATE_LIMIT_LINKS_MAX', groupBudget, 'Completing an emailed link (confirm the address, reset the password), per IP'),
      reads: setting('RATE_LIMIT_READS_MAX', groupBudget, `Reads of your own account and settings, per principal; unset: ${READS_PER_SCREEN} × RATE_LIMIT_MAX`),
      oauth: setting('RATE_LIMIT_OAUTH_MAX', groupBudget, `The OpenID provider's endpoints, per IP; unset: ${OAUTH_REQUESTS_PER_BUDGET} × RATE_LIMIT_MAX`),
    },
    signedUrls: setting('SIGNED_URL_RATE_LIMIT_MAX', integer(300, 1, 1_000_000), 'Signed image URLs, per IP'),
    failOpen: setting('RATE_LIMIT_FAIL_OPEN', booleanFlag.default(false), 'Let requests through (true) or answer 503 (false) while the store is down'),
  },
};

/** Images: where they are stored and how large they may be. */
const images = {
  uploadDir: setting('UPLOAD_DIR', optionalString, 'Where image bytes are stored on disk; unset: DATA_DIR/uploads'),
  s3: {
    storage: setting('STORAGE', z.enum(['local', 's3']).default('local'), 'local (the upload directory) or s3 (a bucket)'),
    bucket: setting('S3_BUCKET', optionalString, 'The bucket (required with STORAGE=s3)'),
    region: setting('S3_REGION', z.string().trim().min(1).default('us-east-1'), 'Its region'),
    endpoint: setting('S3_ENDPOINT', optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()), 'Another S3-compatible store'),
    forcePathStyle: setting('S3_FORCE_PATH_STYLE', booleanFlag.default(false), 'Path-style addressing (host/bucket/key)'),
    presignedDownloads: setting('S3_PRESIGNED_DOWNLOADS', booleanFlag.default(false), 'Content links redirect to a presigned URL instead of streaming'),
  },
  maxUploadBytes: setting('MAX_UPLOAD_BYTES', integer(5 * 1024 * 1024, 1_024, 100 * 1024 * 1024), 'Largest image accepted'),
  // 40 megapixels: a full-size photo from any phone and most cameras, at most 160 MB once decoded (4 bytes a pixel); at
  // most sharp's own ceiling (16383 × 16383).
  imageMaxPixels: setting(
    'IMAGE_MAX_PIXELS',
    integer(40_000_000, 1, 268_402_689),
    'Most pixels an image may declare (every frame counted), refused before decoding',
  ),
  imageStripMetadata: setting(
    'IMAGE_STRIP_METADATA',
    booleanFlag.default(true),
    'Re-encode uploads without EXIF, GPS, XMP, IPTC, ICC or comments (Orientation kept)',
  ),
  imageQuotaBytesPerUser: setting('IMAGE_QUOTA_BYTES_PER_USER', integer(1024 * 1024 * 1024, 0), 'What one account images may take together; 0: no limit'),
  signedUrlTtlS: setting('SIGNED_URL_TTL_S', integer(300, 10, 86_400), 'Lifetime of signed image URLs'),
};

/** Organizations: who may create one, and how large they and a user's share of them grow. */
const organizations = {
  orgCreation: setting('ORG_CREATION', z.enum(['everyone', 'admins']).default('everyone'), 'Who may create an organization: everyone, or admins'),
  orgMaxPerUser: setting('ORG_MAX_PER_USER', integer(50, 1, 10_000), 'Organizations one user may belong to'),
  orgMaxMembers: setting('ORG_MAX_MEMBERS', integer(1000, 2, 1_000_000), 'Members plus pending invitations one organization may have'),
  orgInvitationTtlS: setting('ORG_INVITATION_TTL_S', integer(7 * 86_400, 300, 30 * 86_400), 'How long an invitation link is valid'),
};

/** The audit log and webhooks. */
const audit = {
  auditRetentionDays: setting('AUDIT_RETENTION_DAYS', integer(90, 1, 3_650), 'Days the audit log keeps an event'),
  webhookInternalAllowlist: setting(
    'WEBHOOK_INTERNAL_ALLOWLIST',
    commaList.pipe(z.array(z.string().refine(isWebhookAllowlistEntry, 'each entry must be an address, a CIDR or a host name'))),
    'Addresses, CIDRs and host names webhooks may reach although they are internal',
  ),
};

const settings = {
  ...server,
  ...stores,
  ...tokens,
  ...passwords,
  ...admin,
  ...mail,
  ...passkeys,
  ...federation,
  ...oauthProvider,
  ...organizations,
  ...rateLimits,
  ...images,
  ...audit,
};

type SettingTree = { [key: string]: Setting | SettingTree };

/** What a tree of settings parses to: the same shape, each setting replaced by its value. */
type Values<T> = { -readonly [K in keyof T]: T[K] extends Setting<infer S> ? z.output<S> : Values<T[K]> };

function isSetting(node: Setting | SettingTree): node is Setting {
  return node.schema instanceof z.ZodType;
}

function leaves(tree: SettingTree): Setting[] {
  return Object.values(tree).flatMap((node) => (isSetting(node) ? [node] : leaves(node)));
}

/** Every setting, in the order declared: for the documentation checks. */
export const SETTINGS: readonly Setting[] = leaves(settings);

/** One object schema keyed by variable name, so every problem is reported as `NAME: message`. */
const envSchema = z.object(Object.fromEntries(SETTINGS.map((entry) => [entry.env, entry.schema])));

function shape<T extends SettingTree>(tree: T, byEnv: Record<string, unknown>): Values<T> {
  return Object.fromEntries(Object.entries(tree).map(([key, node]) => [key, isSetting(node) ? byEnv[node.env] : shape(node, byEnv)])) as Values<T>;
}

// --- The typed config -----------------------------------------------------------------------------------------------
// The settings' own shape, except where a value depends on another setting: those are resolved below.

type Declared = Values<typeof settings>;

/** A budget of its own, so that exhausting one (say, images) never locks a client out of another (say, refresh). */
export type BudgetGroup = 'auth' | 'refresh' | 'credentials' | 'account' | 'images' | 'api-keys' | 'signed-urls' | 'email' | 'links' | 'reads' | 'oauth';

export interface BudgetSettings {
  limit: number;
  windowMs: number;
  /** How a client is told apart: by address (unauthenticated routes) or by the authenticated principal. */
  keyBy: 'ip' | 'principal';
}

export interface RateLimitSettings {
  budgets: Record<BudgetGroup, BudgetSettings>;
  /** Let requests through (true) or answer 503 (false) while the store cannot be reached. */
  failOpen: boolean;
  /** How long an instance answers a spent budget's refusals from memory (see SpentBudgets); not an environment setting. */
  rememberRefusalMs?: number;
}

export type PasswordPolicySettings = Declared['passwordPolicy'];
export type BreachedPasswordSettings = PasswordPolicySettings['breached'];

/** How mail goes out, and what it says about us. */
export type EmailSettings = Declared['email'] & {
  /** Where messages are written without SMTP_URL (DATA_DIR/outbox). */
  outboxDir: string;
  /** Where links in messages point (PUBLIC_URL, else http://localhost:PORT). */
  baseUrl: string;
};

/** Who passkeys belong to, and the pages allowed to use them. */
export interface WebAuthnSettings {
  /** The RP ID: the domain passkeys are bound to (the origins' host or a parent of it). */
  rpId: string;
  /** The name authenticators show beside the passkey. */
  rpName: string;
  /** The exact origins (scheme, host, port) a ceremony may come from. */
  origins: string[];
}

export const PROVIDER_TYPES = ['oidc', 'google', 'microsoft', 'apple', 'github'] as const;
export type ProviderType = (typeof PROVIDER_TYPES)[number];

/** An outside identity provider from the environment (AUTH_PROVIDER_<ID>_*); administrators add more at run time. */
export interface ProviderSettings {
  id: string;
  type: ProviderType;
  name: string;
  clientId: string;
  clientSecret?: string;
  /** Where discovery starts (OpenID Connect); a preset's own unless _ISSUER overrides it. */
  issuer?: string;
  scopes?: string[];
  /** GitHub: overrides of its endpoints (tests point them at a local stand-in). */
  authorizationUrl?: string;
  tokenUrl?: string;
  apiUrl?: string;
  /** Microsoft: the tenant (common, organizations, consumers or a tenant id). */
  tenant?: string;
  /** Apple: the client secret is a JWT this service signs with the team's key. */
  apple?: { teamId: string; keyId: string; privateKey: string };
  /** false: the provider's addresses never make an account (its identities can only be linked). Default true. */
  trustEmail?: boolean;
}

/** One Redis deployment: a server by URL, a primary the sentinels name, or a cluster. */
export type RedisTarget =
  | { kind: 'url'; url: string }
  | { kind: 'sentinel'; sentinels: Array<{ host: string; port: number }>; name: string; sentinelPassword?: string; password?: string }
  | { kind: 'cluster'; nodes: Array<{ host: string; port: number }>; password?: string };

/** The values that depend on other settings (or are absent unless set together). */
interface Resolved {
  providers: ProviderSettings[];
  /** Whether this service acts as an OpenID provider: OAUTH_PROVIDER, else on with ES256. */
  oauthProvider: boolean;
  migrateOnStart: boolean;
  logFormat: 'json' | 'pretty';
  uploadDir: string;
  passwordHashPool: { threads: number; queueMax: number };
  /** Created (or promoted) at startup when both ADMIN_EMAIL and ADMIN_PASSWORD are set. */
  bootstrapAdmin?: { email: string; password: string; username: string };
  webauthn: WebAuthnSettings;
  email: EmailSettings;
  rateLimit: RateLimitSettings;
  /** Where the shared store lives (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES); absent: this process. */
  redis?: RedisTarget;
  /** STORAGE=s3: the bucket images go to instead of the disk. */
  s3?: { bucket: string; region: string; endpoint?: string; forcePathStyle: boolean; presignedDownloads: boolean };
}

export type Config = Omit<Declared, keyof Resolved> & Resolved;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Placeholder values from .env.example and the like, which production must never run with. */
const KNOWN_WEAK_SECRETS = [/^change[-_ ]?me/i, /^secret$/i, /^(.)\1+$/];

/** Why a secret is unacceptable, or undefined when it is fine. */
function weakSecretReason(secret: string | undefined): string | undefined {
  if (secret === undefined) return 'is required in production';
  if (Buffer.byteLength(secret, 'utf8') < MIN_SECRET_BYTES) return `must be at least ${MIN_SECRET_BYTES} bytes`;
  if (KNOWN_WEAK_SECRETS.some((pattern) => pattern.test(secret))) return 'is a placeholder, not a secret';
  return undefined;
}

function rateLimitSettings({ max, windowMs, groups, signedUrls, failOpen }: Declared['rateLimit']): RateLimitSettings {
  const budget = (groupMax: number | undefined, keyBy: 'ip' | 'principal') => ({ limit: groupMax || max, windowMs, keyBy });
  return {
    budgets: {
      auth: budget(groups.auth, 'ip'),
      // Its own budget: failed logins from a shared address (an office NAT, a proxy) must not sign its users out.
      refresh: budget(groups.refresh, 'ip'),
      // Forged or unknown Bearer tokens and API keys (not expired ones): guessing credentials costs budget.
      credentials: budget(groups.credentials, 'ip'),
      account: budget(groups.account, 'principal'),
      images: budget(groups.images, 'principal'),
      'api-keys': budget(groups.apiKeys, 'principal'),
      'signed-urls': { limit: signedUrls, windowMs, keyBy: 'ip' },
      // The routes that send mail to an address someone typed (forgot password, sign-in code, resend).
      email: budget(groups.email, 'ip'),
      // Completing a link carries a 256-bit single-use token: apart from `auth`, so failed logins never block a reset.
      links: budget(groups.links, 'ip'),
      // Reads of one's own state, apart from the writes they show: a screen's reads never cost the change it offers.
      reads: { limit: groups.reads || READS_PER_SCREEN * max, windowMs, keyBy: 'principal' },
      // The provider's own endpoints, ahead of everything it stores: a flood of authorization requests cannot fill the store.
      oauth: { limit: groups.oauth || OAUTH_REQUESTS_PER_BUDGET * max, windowMs, keyBy: 'ip' },
    },
    failOpen,
  };
}

/**
 * RP ID and origins from WEBAUTHN_*, else from PUBLIC_URL, else the local page (http://localhost:PORT). Every origin
 * must be HTTPS (or loopback HTTP) on the RP ID or a subdomain of it: browsers refuse anything else, so it is a
 * configuration error here rather than a ceremony that can never succeed.
 */
function webAuthnSettings(values: Declared, problems: string[]): WebAuthnSettings {
  const publicOrigin = values.publicUrl ? new URL(values.publicUrl).origin : undefined;
  const origins = values.webauthn.origins.length > 0 ? values.webauthn.origins : [publicOrigin ?? `http://localhost:${values.port}`];
  const first = origins[0] ?? '';
  const rpId = (values.webauthn.rpId ?? (URL.canParse(first) ? new URL(first).hostname : 'localhost')).toLowerCase();
  for (const origin of origins) {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      problems.push(`WEBAUTHN_ORIGINS: ${origin} is not a URL`);
      continue;
    }
    if (url.origin !== origin) problems.push(`WEBAUTHN_ORIGINS: ${origin} must be an origin only (${url.origin})`);
    const loopback = url.hostname === 'localhost' || url.hostname === '127.0.0.1' || url.hostname === '[::1]';
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback))
      problems.push(`WEBAUTHN_ORIGINS: ${origin} must use https (http only on localhost)`);
    if (url.hostname !== rpId && !url.hostname.endsWith(`.${rpId}`))
      problems.push(`WEBAUTHN_ORIGINS: ${origin} is not on the RP ID ${rpId} or a subdomain of it`);
  }
  return { rpId, rpName: values.webauthn.rpName ?? values.email.productName, origins };
}

/** The per-provider settings AUTH_PROVIDER_<ID>_* reads (see providerSettings). */
const PROVIDER_SETTING_NAMES = [
  'CLIENT_ID',
  'CLIENT_SECRET',
  'TYPE',
  'ISSUER',
  'SCOPES',
  'NAME',
  'TRUST_EMAIL',
  'TENANT',
  'TEAM_ID',
  'KEY_ID',
  'PRIVATE_KEY',
  'AUTHORIZATION_URL',
  'TOKEN_URL',
  'API_URL',
];

const PROVIDER_SETTING = new RegExp(`^AUTH_PROVIDER_[A-Z][A-Z0-9_]*_(${PROVIDER_SETTING_NAMES.join('|')})$`);

/** Whether an environment name is one of a provider's own settings (AUTH_PROVIDER_<ID>_CLIENT_ID and the rest). */
export function isProviderSetting(name: string): boolean {
  return PROVIDER_SETTING.test(name);
}

const PROVIDER_NAMES: Record<Exclude<ProviderType, 'oidc'>, string> = { google: 'Google', microsoft: 'Microsoft', apple: 'Apple', github: 'GitHub' };

/** The name on a provider's button when none is given: the preset's, or a generic provider's own id. */
export function defaultProviderName(type: ProviderType, id: string): string {
  return type === 'oidc' ? id : PROVIDER_NAMES[type];
}

/**
 * AUTH_PROVIDER_<ID>_{CLIENT_ID, CLIENT_SECRET, TYPE, ISSUER, SCOPES, NAME} for each id in AUTH_PROVIDERS (ID upper-cased,
 * dashes as underscores), plus _TENANT (Microsoft), _TEAM_ID, _KEY_ID, _PRIVATE_KEY (Apple) and _AUTHORIZATION_URL,
 * _TOKEN_URL, _API_URL (GitHub's endpoints). The type is the id for the four presets, else oidc (which needs _ISSUER).
 */
function providerSettings(env: Record<string, string | undefined>, ids: string[], problems: string[]): ProviderSettings[] {
  return ids.flatMap((id): ProviderSettings[] => {
    const prefix = `AUTH_PROVIDER_${id.toUpperCase().replaceAll('-', '_')}_`;
    const read = (name: string) => env[prefix + name]?.trim() || undefined;
    const type = (read('TYPE') ?? ((PROVIDER_TYPES as readonly string[]).includes(id) ? id : 'oidc')) as ProviderType;
    const fail = (problem: string) => (problems.push(`${prefix}${problem}`), []);
    if (!(PROVIDER_TYPES as readonly string[]).includes(type)) return fail(`TYPE: one of ${PROVIDER_TYPES.join(', ')}`);
    const clientId = read('CLIENT_ID');
    if (!clientId) return fail('CLIENT_ID: required for each provider in AUTH_PROVIDERS');
    const issuer = read('ISSUER');
    if (type === 'oidc' && !issuer) return fail('ISSUER: required for an OpenID Connect provider');
    for (const name of ['ISSUER', 'AUTHORIZATION_URL', 'TOKEN_URL', 'API_URL']) {
      const url = read(name);
      if (url !== undefined && !URL.canParse(url)) return fail(`${name}: not a URL`);
    }
    const apple =
      type === 'apple'
        ? { teamId: read('TEAM_ID') ?? '', keyId: read('KEY_ID') ?? '', privateKey: (read('PRIVATE_KEY') ?? '').replaceAll('\\n', '\n') }
        : undefined;
    if (apple && (!apple.teamId || !apple.keyId || !apple.privateKey))
      return fail('TEAM_ID, _KEY_ID and _PRIVATE_KEY: Apple signs its client secret with them');
    if (type !== 'apple' && !read('CLIENT_SECRET')) return fail('CLIENT_SECRET: required (Apple alone signs one from its key)');
    const trust = read('TRUST_EMAIL');
    if (trust !== undefined && !['true', 'false'].includes(trust)) return fail('TRUST_EMAIL: true or false');
    const scopes = read('SCOPES')
      ?.split(/[\s,]+/)
      .filter(Boolean);
    return [
      {
        id,
        type,
        name: read('NAME') ?? defaultProviderName(type, id),
        clientId,
        clientSecret: read('CLIENT_SECRET'),
        issuer,
        scopes,
        authorizationUrl: read('AUTHORIZATION_URL'),
        tokenUrl: read('TOKEN_URL'),
        apiUrl: read('API_URL'),
        tenant: read('TENANT'),
        apple,
        trustEmail: trust !== 'false',
      },
    ];
  });
}

/** Rules that span several settings, or depend on NODE_ENV. */
function crossChecks(env: Record<string, string | undefined>, values: Declared | undefined): string[] {
  const problems: string[] = [];
  const production = env.NODE_ENV === 'production';
  // Outside production a missing secret is generated later; a weak one given explicitly is refused everywhere.
  for (const name of ['JWT_SECRET', 'KEY_ENCRYPTION_KEY'] as const) {
    const secret = env[name]?.trim() || undefined;
    const reason = secret === undefined && !production ? undefined : weakSecretReason(secret);
    if (reason) problems.push(`${name}: ${reason}`);
  }
  for (const name of ['METRICS_TOKEN', 'OAUTH_REGISTRATION_TOKEN'] as const) {
    const token = env[name]?.trim() || undefined;
    if (token === undefined || !production) continue;
    const reason = weakSecretReason(token);
    if (reason) problems.push(`${name}: ${reason}`);
  }
  if (values === undefined) return problems;
  if (values.env !== 'test' && values.bcryptCost < MIN_BCRYPT_COST) problems.push(`BCRYPT_COST: must be at least ${MIN_BCRYPT_COST} outside tests`);
  // Links in messages and the discovery document's jwks_uri come from it; without it they would come from whatever
  // Host header a request carried.
  if (production && values.publicUrl === undefined) problems.push('PUBLIC_URL: required in production (the https:// address clients reach this service at)');
  if (values.oauthProvider === true && values.accessTokenAlgorithm === 'HS256')
    problems.push('OAUTH_PROVIDER: an OpenID provider signs ID tokens with published keys, so it needs JWT_ALGORITHM=ES256');
  const redisTopologies = [
    values.redisUrl && 'REDIS_URL',
    values.redisSentinels.length > 0 && 'REDIS_SENTINELS',
    values.redisClusterNodes.length > 0 && 'REDIS_CLUSTER_NODES',
  ].filter(Boolean);
  if (redisTopologies.length > 1) problems.push(`${redisTopologies.join(', ')}: set one of them (one Redis deployment)`);
  if (values.s3.storage === 's3' && values.s3.bucket === undefined) problems.push('S3_BUCKET: required with STORAGE=s3');
  if ((values.bootstrapAdmin.email === undefined) !== (values.bootstrapAdmin.password === undefined))
    problems.push('ADMIN_EMAIL: ADMIN_EMAIL and ADMIN_PASSWORD go together');
  return problems;
}

function redisTarget(values: Declared): RedisTarget | undefined {
  const password = values.redisPassword;
  if (values.redisUrl) return { kind: 'url', url: values.redisUrl };
  if (values.redisSentinels.length > 0)
    return { kind: 'sentinel', sentinels: values.redisSentinels, name: values.redisSentinelName, sentinelPassword: values.redisSentinelPassword, password };
  if (values.redisClusterNodes.length > 0) return { kind: 'cluster', nodes: values.redisClusterNodes, password };
  return undefined;
}

/** Validates the environment; throws one ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = envSchema.safeParse(env);
  const problems = parsed.success ? [] : parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
  const values = parsed.success ? shape(settings, parsed.data) : undefined;
  problems.push(...crossChecks(env, values));
  const webauthn = values ? webAuthnSettings(values, problems) : undefined;
  const providers = values ? providerSettings(env, values.authProviders, problems) : [];
  if (!values || !webauthn || problems.length > 0) throw new ConfigError(problems);

  const { bootstrapAdmin, s3, passwordHashPool, email } = values;
  // 0 or unset: one thread per core, and eight waiting hashes per thread (about two seconds at cost 12).
  const threads = passwordHashPool.threads || availableParallelism();
  return {
    ...values,
    migrateOnStart: values.migrateOnStart ?? values.databaseUrl === undefined,
    redis: redisTarget(values),
    oauthProvider: values.oauthProvider ?? values.accessTokenAlgorithm === 'ES256',
    logFormat: values.logFormat ?? (values.env === 'development' ? 'pretty' : 'json'),
    uploadDir: values.uploadDir ?? path.join(values.dataDir, 'uploads'),
    passwordHashPool: { threads, queueMax: passwordHashPool.queueMax || threads * 8 },
    bootstrapAdmin:
      bootstrapAdmin.email && bootstrapAdmin.password
        ? { email: bootstrapAdmin.email.toLowerCase(), password: bootstrapAdmin.password, username: bootstrapAdmin.username }
        : undefined,
    webauthn,
    providers,
    email: { ...email, outboxDir: path.join(values.dataDir, 'outbox'), baseUrl: values.publicUrl ?? `http://localhost:${values.port}` },
    rateLimit: rateLimitSettings(values.rateLimit),
    s3:
      s3.storage === 's3' && s3.bucket
        ? { bucket: s3.bucket, region: s3.region, endpoint: s3.endpoint, forcePathStyle: s3.forcePathStyle, presignedDownloads: s3.presignedDownloads }
        : undefined,
  };
}
