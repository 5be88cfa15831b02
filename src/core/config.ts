// Reads and validates every setting from the environment, failing fast with all problems at once.
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { z } from 'zod';

const MIN_SECRET_BYTES = 32;
const MIN_BCRYPT_COST = 10;

const booleanFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

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

const integer = (fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max).default(fallback);

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: integer(3000, 0, 65535),
  HOST: z.string().default('0.0.0.0'),
  DATA_DIR: z.string().default('./.data'),
  DATABASE_URL: optionalString.pipe(z.url({ protocol: /^postgres(ql)?$/ }).optional()),
  REDIS_URL: optionalString.pipe(z.url({ protocol: /^rediss?$/ }).optional()),
  REDIS_KEY_PREFIX: z.string().default('authkit:'),
  REDIS_COMMAND_TIMEOUT_MS: integer(1_000, 50, 60_000),
  MIGRATE_ON_START: booleanFlag.optional(),
  DATABASE_TIMEOUT_MS: integer(1_000, 100, 600_000),
  JWT_SECRET: optionalString,
  JWT_ALGORITHM: z.enum(['ES256', 'HS256']).default('ES256'),
  KEY_ENCRYPTION_KEY: optionalString,
  SIGNING_KEY_ROTATION_DAYS: integer(30, 0, 3_650),
  PUBLIC_URL: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
  JWT_ISSUER: z.string().min(1).default('authkit'),
  WEBAUTHN_RP_ID: optionalString,
  WEBAUTHN_RP_NAME: optionalString.pipe(z.string().max(64).optional()),
  PRODUCT_NAME: z.string().trim().min(1).max(64).default('authkit'),
  SMTP_URL: optionalString.pipe(z.url({ protocol: /^smtps?$/ }).optional()),
  MAIL_FROM: z.string().trim().min(3).max(254).default('authkit <no-reply@localhost>'),
  REQUIRE_EMAIL_VERIFICATION: booleanFlag.default(false),
  EMAIL_PER_ADDRESS_MAX: integer(3, 1, 1_000),
  EMAIL_PER_ADDRESS_WINDOW_MINUTES: integer(15, 1, 1_440),
  WEBAUTHN_ORIGINS: commaList,
  JWT_AUDIENCE: z.string().min(1).default('authkit-api'),
  JWT_CLOCK_TOLERANCE_S: integer(5, 0, 60),
  ACCESS_TOKEN_TTL_S: integer(900, 30, 86_400),
  SESSION_TTL_S: integer(7 * 86_400, 300, 365 * 86_400),
  REFRESH_REUSE_INTERVAL_S: integer(10, 0, 300),
  REAUTH_MAX_AGE_S: integer(300, 30, 86_400),
  BCRYPT_COST: integer(12, 4, 15),
  PASSWORD_HASH_THREADS: integer(0, 0, 64),
  PASSWORD_HASH_QUEUE_MAX: integer(0, 0, 100_000),
  ADMIN_EMAIL: optionalString.pipe(z.email().optional()),
  ADMIN_PASSWORD: optionalString,
  ADMIN_USERNAME: z.string().default('admin'),
  ADMIN_REQUIRE_MFA: booleanFlag.default(false),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
  CORS_ORIGINS: commaList,
  TRUST_PROXY: trustProxy,
  BODY_LIMIT: z.string().regex(/^\d+(b|kb|mb)$/i, 'a size such as 100kb').default('100kb'),
  SHUTDOWN_TIMEOUT_MS: integer(10_000, 0, 120_000),
  RATE_LIMIT_MAX: integer(5, 1, 1_000_000),
  RATE_LIMIT_WINDOW_MS: integer(60_000, 1_000, 86_400_000),
  RATE_LIMIT_AUTH_MAX: integer(0, 0, 1_000_000).optional(),
  RATE_LIMIT_REFRESH_MAX: integer(0, 0, 1_000_000).optional(),
  RATE_LIMIT_CREDENTIALS_MAX: integer(0, 0, 1_000_000).optional(),
  RATE_LIMIT_ACCOUNT_MAX: integer(0, 0, 1_000_000).optional(),
  RATE_LIMIT_IMAGES_MAX: integer(0, 0, 1_000_000).optional(),
  RATE_LIMIT_API_KEYS_MAX: integer(0, 0, 1_000_000).optional(),
  RATE_LIMIT_EMAIL_MAX: integer(0, 0, 1_000_000).optional(),
  SIGNED_URL_RATE_LIMIT_MAX: integer(300, 1, 1_000_000),
  RATE_LIMIT_FAIL_OPEN: booleanFlag.default(false),
  PASSWORD_MIN_LENGTH: integer(8, 8, 64),
  PASSWORD_MIN_SCORE: integer(3, 0, 4),
  BREACHED_PASSWORD_CHECK: z.enum(['off', 'fail-open', 'fail-closed']).default('off'),
  BREACHED_PASSWORD_API_URL: z.url({ protocol: /^https?$/ }).default('https://api.pwnedpasswords.com'),
  BREACHED_PASSWORD_TIMEOUT_MS: integer(1_500, 100, 30_000),
  LOGIN_FAILURES_MAX: integer(10, 1, 1_000),
  LOGIN_LOCKOUT_MINUTES: integer(15, 1, 1_440),
  CACHE_TTL_S: integer(60, 1, 86_400),
  UPLOAD_DIR: optionalString,
  STORAGE: z.enum(['local', 's3']).default('local'),
  S3_BUCKET: optionalString,
  S3_REGION: z.string().trim().min(1).default('us-east-1'),
  S3_ENDPOINT: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
  S3_FORCE_PATH_STYLE: booleanFlag.default(false),
  S3_PRESIGNED_DOWNLOADS: booleanFlag.default(false),
  MAX_UPLOAD_BYTES: integer(5 * 1024 * 1024, 1_024, 100 * 1024 * 1024),
  // 40 megapixels: a full-size photo from any phone and most cameras, at most 160 MB once decoded (4 bytes a pixel); at
  // most sharp's own ceiling (16383 × 16383).
  IMAGE_MAX_PIXELS: integer(40_000_000, 1, 268_402_689),
  IMAGE_STRIP_METADATA: booleanFlag.default(true),
  IMAGE_QUOTA_BYTES_PER_USER: integer(1024 * 1024 * 1024, 0),
  SIGNED_URL_TTL_S: integer(300, 10, 86_400),
  EXPENSIVE_DELAY_MS: integer(1_000, 0, 60_000),
  METRICS_PORT: integer(9464, 0, 65535),
  METRICS_HOST: z.string().default('127.0.0.1'),
  METRICS_TOKEN: optionalString,
  AUDIT_RETENTION_DAYS: integer(90, 1, 3_650),
  WEBHOOK_INTERNAL_ALLOWLIST: commaList.pipe(z.array(z.string().refine(isWebhookAllowlistEntry, 'each entry must be an address, a CIDR or a host name'))),
});

/** A budget of its own, so that exhausting one (say, images) never locks a client out of another (say, refresh). */
export type BudgetGroup = 'auth' | 'refresh' | 'credentials' | 'account' | 'images' | 'api-keys' | 'signed-urls' | 'email';

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

export interface BreachedPasswordSettings {
  /** off; or ask the range API, and on a failure or timeout let the password through (fail-open) or refuse (fail-closed). */
  mode: 'off' | 'fail-open' | 'fail-closed';
  /** The Pwned Passwords range API's base (`<url>/range/<first 5 hex of the SHA-1>`). */
  url: string;
  timeoutMs: number;
}

export interface PasswordPolicySettings {
  minLength: number;
  /** The least zxcvbn score (0 to 4) accepted. */
  minScore: number;
  breached: BreachedPasswordSettings;
}

/** How mail goes out, and what it says about us. */
export interface EmailSettings {
  /** SMTP(S) server; unset: messages are written to `outboxDir` instead of sent. */
  smtpUrl?: string;
  from: string;
  outboxDir: string;
  /** The product name in every message. */
  productName: string;
  /** Where links in messages point (PUBLIC_URL, else http://localhost:PORT). */
  baseUrl: string;
  /** Logins (of every kind) are refused until the address is confirmed. */
  requireVerification: boolean;
  /** Messages one address may be sent per window, whatever sends them; more are dropped silently (see EmailService.send). */
  perAddress: { max: number; windowMs: number };
}

/** Who passkeys belong to, and the pages allowed to use them. */
export interface WebAuthnSettings {
  /** The RP ID: the domain passkeys are bound to (the origins' host or a parent of it). */
  rpId: string;
  /** The name authenticators show beside the passkey. */
  rpName: string;
  /** The exact origins (scheme, host, port) a ceremony may come from. */
  origins: string[];
}

export type Env = z.input<typeof envSchema>;

export interface Config {
  env: 'development' | 'production' | 'test';
  port: number;
  host: string;
  dataDir: string;
  databaseUrl?: string;
  redisUrl?: string;
  redisKeyPrefix: string;
  /** Longest a Redis command may take before it fails (a refused connection fails at once regardless). */
  redisCommandTimeoutMs: number;
  migrateOnStart: boolean;
  /** Longest a database connection may take to open, and a statement to run, before the request gets 503. */
  databaseTimeoutMs: number;
  /** Absent only before `resolveSecrets` fills it in outside production. */
  jwtSecret?: string;
  /** ES256: key pairs from the key ring, published as a JWKS. HS256: JWT_SECRET, shared with every verifier. */
  accessTokenAlgorithm: 'ES256' | 'HS256';
  /** Seals the stored keys (signing keys' private halves, purpose keys); like jwtSecret, generated outside production. */
  keyEncryptionKey?: string;
  /** Days between automatic signing-key rotations; 0 rotates only on demand. */
  signingKeyRotationDays: number;
  /** Where clients reach this service (the base of jwks_uri in the discovery document); else the request's origin. */
  publicUrl?: string;
  jwtIssuer: string;
  webauthn: WebAuthnSettings;
  email: EmailSettings;
  jwtAudience: string;
  jwtClockToleranceS: number;
  accessTokenTtlS: number;
  /** Absolute lifetime of a login, however often it refreshes. */
  sessionTtlS: number;
  /** How long a rotated refresh token may be replayed (another tab refreshing at once) before it counts as theft. */
  refreshReuseIntervalS: number;
  /** How recent a sign-in must be to enrol two-factor or create an API key (else POST /reauthenticate). */
  reauthMaxAgeS: number;
  bcryptCost: number;
  /** The worker threads that run bcrypt, and how many hashes may wait for one before logins get 503. */
  passwordHashPool: { threads: number; queueMax: number };
  /** Created (or promoted) at startup when both are set. */
  bootstrapAdmin?: { email: string; password: string; username: string };
  /** Admin routes need an access token earned with a second factor. */
  adminRequireMfa: boolean;
  logLevel: string;
  logFormat: 'json' | 'pretty';
  corsOrigins: string[];
  trustProxy: boolean | number | string[];
  bodyLimit: string;
  shutdownTimeoutMs: number;
  rateLimit: RateLimitSettings;
  /** What a new password must be: length, zxcvbn score, and (optionally) absence from Pwned Passwords. */
  passwordPolicy: PasswordPolicySettings;
  /** Failed logins per account (every address, every instance) before it answers 429 to browsers it has not seen. */
  loginLockout: { maxFailures: number; lockMs: number };
  cacheTtlS: number;
  /** Where image bytes are stored on local disk (STORAGE=local). */
  uploadDir: string;
  /** STORAGE=s3: the bucket images go to instead of the disk. */
  s3?: { bucket: string; region: string; endpoint?: string; forcePathStyle: boolean; presignedDownloads: boolean };
  maxUploadBytes: number;
  /** The most pixels an image may declare (every frame of an animation counted); more is refused before decoding. */
  imageMaxPixels: number;
  /** Re-encode uploads without EXIF, GPS, XMP, IPTC, ICC profiles or comments (the EXIF Orientation is kept). */
  imageStripMetadata: boolean;
  /** The bytes one account's images may take together; 0: no limit. */
  imageQuotaBytesPerUser: number;
  signedUrlTtlS: number;
  /** How long the stand-in for an expensive computation takes. */
  expensiveDelayMs: number;
  /** GET /metrics: on a port of its own (0: none), and on the public port when a token is set. */
  metrics: { port: number; host: string; token?: string };
  /** Days the audit log keeps an event. */
  auditRetentionDays: number;
  /** Addresses, CIDRs and host names webhooks may reach although they are loopback, private, link-local or the like. */
  webhookInternalAllowlist: string[];
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Placeholder values from .env.example and the like, which production must never run with. */
const KNOWN_WEAK_SECRETS = [/^change[-_ ]?me/i, /^secret$/i, /^(.)\1+$/];

/** Why a JWT secret is unacceptable, or undefined when it is fine. */
export function weakSecretReason(secret: string | undefined): string | undefined {
  if (secret === undefined) return 'is required in production';
  if (Buffer.byteLength(secret, 'utf8') < MIN_SECRET_BYTES) return `must be at least ${MIN_SECRET_BYTES} bytes`;
  if (KNOWN_WEAK_SECRETS.some((pattern) => pattern.test(secret))) return 'is a placeholder, not a secret';
  return undefined;
}

function rateLimitSettings(values: z.output<typeof envSchema>): RateLimitSettings {
  const windowMs = values.RATE_LIMIT_WINDOW_MS;
  // 0 or unset means "the default budget", so one variable tunes every group.
  const budget = (max: number | undefined, keyBy: 'ip' | 'principal') => ({ limit: max || values.RATE_LIMIT_MAX, windowMs, keyBy });
  return {
    budgets: {
      auth: budget(values.RATE_LIMIT_AUTH_MAX, 'ip'),
      // Its own budget: failed logins from a shared address (an office NAT, a proxy) must not sign its users out.
      refresh: budget(values.RATE_LIMIT_REFRESH_MAX, 'ip'),
      // Forged or unknown Bearer tokens and API keys (not expired ones): guessing credentials costs budget.
      credentials: budget(values.RATE_LIMIT_CREDENTIALS_MAX, 'ip'),
      account: budget(values.RATE_LIMIT_ACCOUNT_MAX, 'principal'),
      images: budget(values.RATE_LIMIT_IMAGES_MAX, 'principal'),
      'api-keys': budget(values.RATE_LIMIT_API_KEYS_MAX, 'principal'),
      'signed-urls': { limit: values.SIGNED_URL_RATE_LIMIT_MAX, windowMs, keyBy: 'ip' },
      // The routes that send mail to an address someone typed (forgot password, sign-in code, resend).
      email: budget(values.RATE_LIMIT_EMAIL_MAX, 'ip'),
    },
    failOpen: values.RATE_LIMIT_FAIL_OPEN,
  };
}

/**
 * RP ID and origins from WEBAUTHN_*, else from PUBLIC_URL, else the local page (http://localhost:PORT). Every origin
 * must be HTTPS (or loopback HTTP) on the RP ID or a subdomain of it: browsers refuse anything else, so it is a
 * configuration error here rather than a ceremony that can never succeed.
 */
function webAuthnSettings(values: z.output<typeof envSchema>, problems: string[]): WebAuthnSettings {
  const publicOrigin = values.PUBLIC_URL ? new URL(values.PUBLIC_URL).origin : undefined;
  const origins = values.WEBAUTHN_ORIGINS.length > 0 ? values.WEBAUTHN_ORIGINS : [publicOrigin ?? `http://localhost:${values.PORT}`];
  const first = origins[0] ?? '';
  const rpId = (values.WEBAUTHN_RP_ID ?? (URL.canParse(first) ? new URL(first).hostname : 'localhost')).toLowerCase();
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
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) problems.push(`WEBAUTHN_ORIGINS: ${origin} must use https (http only on localhost)`);
    if (url.hostname !== rpId && !url.hostname.endsWith(`.${rpId}`)) problems.push(`WEBAUTHN_ORIGINS: ${origin} is not on the RP ID ${rpId} or a subdomain of it`);
  }
  return { rpId, rpName: values.WEBAUTHN_RP_NAME ?? values.PRODUCT_NAME, origins };
}

function passwordHashPoolSettings(values: z.output<typeof envSchema>): Config['passwordHashPool'] {
  // 0 or unset: one thread per core, and eight waiting hashes per thread (about two seconds at cost 12).
  const threads = values.PASSWORD_HASH_THREADS || availableParallelism();
  return { threads, queueMax: values.PASSWORD_HASH_QUEUE_MAX || threads * 8 };
}

/** Validates the environment; throws one ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = envSchema.safeParse(env);
  const problems = parsed.success ? [] : parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);

  const secret = env.JWT_SECRET?.trim() || undefined;
  const production = env.NODE_ENV === 'production';
  // Outside production a missing secret is generated later; a weak one given explicitly is refused everywhere.
  const secretProblem = secret === undefined && !production ? undefined : weakSecretReason(secret);
  if (secretProblem) problems.push(`JWT_SECRET: ${secretProblem}`);
  const keyEncryptionKey = env.KEY_ENCRYPTION_KEY?.trim() || undefined;
  const keyProblem = keyEncryptionKey === undefined && !production ? undefined : weakSecretReason(keyEncryptionKey);
  if (keyProblem) problems.push(`KEY_ENCRYPTION_KEY: ${keyProblem}`);
  if (parsed.success && parsed.data.NODE_ENV !== 'test' && parsed.data.BCRYPT_COST < MIN_BCRYPT_COST) {
    problems.push(`BCRYPT_COST: must be at least ${MIN_BCRYPT_COST} outside tests`);
  }
  const metricsToken = env.METRICS_TOKEN?.trim() || undefined;
  if (metricsToken !== undefined && production) {
    const reason = weakSecretReason(metricsToken);
    if (reason) problems.push(`METRICS_TOKEN: ${reason}`);
  }
  // Links in messages and the discovery document's jwks_uri come from it; without it they would come from whatever
  // Host header a request carried.
  if (production && parsed.success && parsed.data.PUBLIC_URL === undefined) problems.push('PUBLIC_URL: required in production (the https:// address clients reach this service at)');
  if (parsed.success && parsed.data.STORAGE === 's3' && parsed.data.S3_BUCKET === undefined) problems.push('S3_BUCKET: required with STORAGE=s3');
  if (parsed.success && (parsed.data.ADMIN_EMAIL === undefined) !== (parsed.data.ADMIN_PASSWORD === undefined)) {
    problems.push('ADMIN_EMAIL: ADMIN_EMAIL and ADMIN_PASSWORD go together');
  }

  const webauthn = parsed.success ? webAuthnSettings(parsed.data, problems) : undefined;
  if (!parsed.success || !webauthn || problems.length > 0) throw new ConfigError(problems);
  const values = parsed.data;

  return {
    env: values.NODE_ENV,
    port: values.PORT,
    host: values.HOST,
    dataDir: values.DATA_DIR,
    databaseUrl: values.DATABASE_URL,
    redisUrl: values.REDIS_URL,
    redisKeyPrefix: values.REDIS_KEY_PREFIX,
    redisCommandTimeoutMs: values.REDIS_COMMAND_TIMEOUT_MS,
    migrateOnStart: values.MIGRATE_ON_START ?? values.DATABASE_URL === undefined,
    databaseTimeoutMs: values.DATABASE_TIMEOUT_MS,
    jwtSecret: values.JWT_SECRET,
    accessTokenAlgorithm: values.JWT_ALGORITHM,
    keyEncryptionKey: values.KEY_ENCRYPTION_KEY,
    signingKeyRotationDays: values.SIGNING_KEY_ROTATION_DAYS,
    publicUrl: values.PUBLIC_URL?.replace(/\/+$/, ''),
    jwtIssuer: values.JWT_ISSUER,
    webauthn,
    email: {
      smtpUrl: values.SMTP_URL,
      from: values.MAIL_FROM,
      outboxDir: path.join(values.DATA_DIR, 'outbox'),
      productName: values.PRODUCT_NAME,
      baseUrl: values.PUBLIC_URL?.replace(/\/+$/, '') ?? `http://localhost:${values.PORT}`,
      requireVerification: values.REQUIRE_EMAIL_VERIFICATION,
      perAddress: { max: values.EMAIL_PER_ADDRESS_MAX, windowMs: values.EMAIL_PER_ADDRESS_WINDOW_MINUTES * 60_000 },
    },
    jwtAudience: values.JWT_AUDIENCE,
    jwtClockToleranceS: values.JWT_CLOCK_TOLERANCE_S,
    accessTokenTtlS: values.ACCESS_TOKEN_TTL_S,
    sessionTtlS: values.SESSION_TTL_S,
    refreshReuseIntervalS: values.REFRESH_REUSE_INTERVAL_S,
    reauthMaxAgeS: values.REAUTH_MAX_AGE_S,
    bcryptCost: values.BCRYPT_COST,
    passwordHashPool: passwordHashPoolSettings(values),
    adminRequireMfa: values.ADMIN_REQUIRE_MFA,
    bootstrapAdmin:
      values.ADMIN_EMAIL && values.ADMIN_PASSWORD
        ? { email: values.ADMIN_EMAIL.toLowerCase(), password: values.ADMIN_PASSWORD, username: values.ADMIN_USERNAME }
        : undefined,
    logLevel: values.LOG_LEVEL,
    logFormat: values.LOG_FORMAT ?? (values.NODE_ENV === 'development' ? 'pretty' : 'json'),
    corsOrigins: values.CORS_ORIGINS,
    trustProxy: values.TRUST_PROXY,
    bodyLimit: values.BODY_LIMIT,
    shutdownTimeoutMs: values.SHUTDOWN_TIMEOUT_MS,
    rateLimit: rateLimitSettings(values),
    passwordPolicy: {
      minLength: values.PASSWORD_MIN_LENGTH,
      minScore: values.PASSWORD_MIN_SCORE,
      breached: { mode: values.BREACHED_PASSWORD_CHECK, url: values.BREACHED_PASSWORD_API_URL.replace(/\/+$/, ''), timeoutMs: values.BREACHED_PASSWORD_TIMEOUT_MS },
    },
    loginLockout: { maxFailures: values.LOGIN_FAILURES_MAX, lockMs: values.LOGIN_LOCKOUT_MINUTES * 60_000 },
    cacheTtlS: values.CACHE_TTL_S,
    uploadDir: values.UPLOAD_DIR ?? path.join(values.DATA_DIR, 'uploads'),
    s3:
      values.STORAGE === 's3' && values.S3_BUCKET
        ? { bucket: values.S3_BUCKET, region: values.S3_REGION, endpoint: values.S3_ENDPOINT, forcePathStyle: values.S3_FORCE_PATH_STYLE, presignedDownloads: values.S3_PRESIGNED_DOWNLOADS }
        : undefined,
    maxUploadBytes: values.MAX_UPLOAD_BYTES,
    imageMaxPixels: values.IMAGE_MAX_PIXELS,
    imageStripMetadata: values.IMAGE_STRIP_METADATA,
    imageQuotaBytesPerUser: values.IMAGE_QUOTA_BYTES_PER_USER,
    signedUrlTtlS: values.SIGNED_URL_TTL_S,
    expensiveDelayMs: values.EXPENSIVE_DELAY_MS,
    metrics: { port: values.METRICS_PORT, host: values.METRICS_HOST, token: values.METRICS_TOKEN },
    auditRetentionDays: values.AUDIT_RETENTION_DAYS,
    webhookInternalAllowlist: values.WEBHOOK_INTERNAL_ALLOWLIST,
  };
}
