// Wires the account services together once per app: tokens, passwords, sessions, users and administration.
import type { Clock } from '../core/clock.js';
import type { Config } from '../core/config.js';
import type { Database } from '../core/db.js';
import type { SharedStore } from '../core/shared-store.js';
import { AdminService } from './admin/admin-service.js';
import { AuthService } from './auth/auth-service.js';
import { authenticate } from './auth/authenticate.js';
import { PasswordHasher } from './auth/passwords.js';
import { createRevocationStore } from './auth/revocation-store.js';
import { AccessTokens } from './auth/tokens.js';
import { Sessions } from './sessions/session-service.js';
import { UserService } from './users/user-service.js';

export interface AccountDeps {
  config: Config & { jwtSecret: string };
  db: Database;
  store: SharedStore;
  clock: Clock;
}

export function createAccounts({ config, db, store, clock }: AccountDeps) {
  const tokens = new AccessTokens(
    {
      secret: config.jwtSecret,
      issuer: config.jwtIssuer,
      audience: config.jwtAudience,
      accessTtlS: config.accessTokenTtlS,
      clockToleranceS: config.jwtClockToleranceS,
    },
    clock,
  );
  const revocations = createRevocationStore(store, clock);
  const passwords = new PasswordHasher(config.bcryptCost);
  const sessions = new Sessions(db.prisma, clock, tokens, revocations, config);
  return {
    tokens,
    revocations,
    passwords,
    sessions,
    auth: new AuthService(db.prisma, passwords, sessions, revocations, clock),
    users: new UserService(db.prisma, passwords, sessions, clock),
    admin: new AdminService(db.prisma, sessions, revocations, passwords, clock),
    authenticate: authenticate({ tokens, revocations }),
  };
}

export type Accounts = ReturnType<typeof createAccounts>;
