// Wires the account services together once per app: tokens, passwords, sessions, users and administration.
import type { Clock } from '../core/clock.js';
import { deriveKey } from '../core/derived-keys.js';
import { createFailureLockout } from '../core/failure-lockout.js';
import type { Config } from '../core/config.js';
import type { Database } from '../core/db.js';
import type { Logger } from '../core/logger.js';
import type { PasswordHashPool } from '../core/password-hash-pool.js';
import type { SharedStore } from '../core/shared-store.js';
import { AdminService } from './admin/admin-service.js';
import { AuthService } from './auth/auth-service.js';
import { ApiKeyService } from './api-keys/api-key-service.js';
import { authenticators } from './auth/authenticate.js';
import { DEVICE_FAILURES_MAX, LoginThrottle, TrustedDevices } from './auth/login-throttle.js';
import { PasswordPolicy } from './auth/password-policy.js';
import { PasswordHasher } from './auth/passwords.js';
import { createRevocationStore } from './auth/revocation-store.js';
import { AccessTokens, MfaTokens } from './auth/tokens.js';
import type { Budget } from './rate-limit/rate-limiter.js';
import type { SigningKeys } from './keys/key-ring.js';
import { type PurposeKeys, VersionedBox, VersionedHmac } from './keys/purpose-keys.js';
import { MFA_LOCKOUT, MfaService } from './mfa/mfa-service.js';
import { Sessions } from './sessions/session-service.js';
import { createChallengeStore } from './passkeys/challenges.js';
import { PasskeyService } from './passkeys/passkey-service.js';
import { EmailService } from './email/email-service.js';
import { EmailTokens } from './email/email-tokens.js';
import type { MailQueue } from './email/mail-queue.js';
import { MailTemplates } from './email/templates.js';
import { AuditLog, SignInRecorder } from './audit/audit-log.js';
import { DestinationPolicy } from './webhooks/destination-policy.js';
import { Webhooks } from './webhooks/webhooks.js';
import { Metrics } from '../core/metrics.js';
import { UserService } from './users/user-service.js';
import { PasswordProof } from './auth/password-proof.js';
import { enrolmentGuards } from './auth/enrolment-guards.js';

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

export interface AccountDeps {
  config: Config & { jwtSecret: string };
  db: Database;
  store: SharedStore;
  clock: Clock;
  logger: Logger;
  passwordPool: PasswordHashPool;
  /** What signs and checks access tokens, and the keys of every other purpose (loaded before the app: see openKeys). */
  signingKeys: SigningKeys;
  purposeKeys: PurposeKeys;
  /** The durable outbox every message goes through. */
  mail: MailQueue;
  /** Counters and histograms (a registry of its own unless given). */
  metrics?: Metrics;
}

/** `failedCredentials`: the budget that forged or unknown tokens and keys spend (none: they are not counted). */
export function createAccounts(
  { config, db, store, clock, logger, passwordPool, signingKeys, purposeKeys, mail, metrics = new Metrics() }: AccountDeps,
  budgets: { failedCredentials?: Budget } = {},
) {
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
  const revocations = createRevocationStore(store, clock);
  // The secret this service's own keys derive from: never the HS256 JWT_SECRET, which every token verifier holds.
  const ownSecret = localDerivationSecret(config);
  const passwords = new PasswordHasher(passwordPool, config.bcryptCost, new PasswordPolicy(passwordPool, config.passwordPolicy, logger));
  const events = new AuditLog(db.prisma, clock, metrics, logger);
  const webhooks = new Webhooks(
    db.prisma,
    new VersionedBox(purposeKeys, 'webhook-signing'),
    clock,
    metrics,
    logger,
    config.env === 'production',
    new DestinationPolicy(config.webhookInternalAllowlist),
  );
  events.onEvent(webhooks.enqueue);
  const signIns = new SignInRecorder(events, metrics);
  const sessions = new Sessions(db.prisma, clock, tokens, revocations, config, deriveKey(ownSecret, 'authkit refresh successors v1'), events, metrics);
  const apiKeys = new ApiKeyService(db.prisma, clock, logger);
  const mfa = new MfaService(
    db.prisma,
    new VersionedBox(purposeKeys, 'totp'),
    new VersionedHmac(purposeKeys, 'recovery-codes'),
    createFailureLockout(store, clock, MFA_LOCKOUT),
    passwords,
    clock,
    config.jwtIssuer,
  );
  const mfaTokens = new MfaTokens(purposeKeys, config.jwtIssuer, clock);
  const loginThrottle = new LoginThrottle(
    createFailureLockout(store, clock, { name: 'login', ...config.loginLockout }),
    createFailureLockout(store, clock, { name: 'login-device', maxFailures: DEVICE_FAILURES_MAX, lockMs: config.loginLockout.lockMs }),
    new TrustedDevices(deriveKey(ownSecret, 'authkit device cookies v1')),
    config.rateLimit.failOpen,
  );
  const email = new EmailService(
    db.prisma,
    mail,
    new MailTemplates({ product: config.email.productName, baseUrl: config.email.baseUrl }),
    new EmailTokens(db.prisma, new VersionedHmac(purposeKeys, 'email-tokens'), clock),
    passwords,
    sessions,
    // The counter locks on the message after the last allowed one.
    createFailureLockout(store, clock, { name: 'mail-address', maxFailures: config.email.perAddress.max + 1, lockMs: config.email.perAddress.windowMs }),
    config.email,
    clock,
    logger,
  );
  const passkeys = new PasskeyService(db.prisma, createChallengeStore(store, clock), config.webauthn, clock, logger);
  const proof = new PasswordProof(passwords, loginThrottle, signIns);
  return {
    tokens,
    revocations,
    passwords,
    sessions,
    mfa,
    loginThrottle,
    passkeys,
    email,
    events,
    webhooks,
    metrics,
    signIns,
    auth: new AuthService({
      prisma: db.prisma,
      passwords,
      proof,
      sessions,
      revocations,
      mfa,
      mfaTokens,
      clock,
      logger,
      passkeys,
      requireEmailVerification: config.email.requireVerification,
      signIns,
      events,
      mail: { welcome: (user) => email.welcome(user), registrationAttempted: (address) => email.registrationAttempted(address) },
    }),
    users: new UserService(db.prisma, passwords, proof, sessions, clock),
    enrolment: enrolmentGuards(db.prisma),
    admin: new AdminService(db.prisma, sessions, revocations, clock),
    apiKeys,
    authn: authenticators({ tokens, revocations, apiKeys, failedCredentials: budgets.failedCredentials }),
  };
}

export type Accounts = ReturnType<typeof createAccounts>;
