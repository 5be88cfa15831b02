// Creates the first administrator; an existing account with that email is never promoted (see ensureAdmin).
// Usage: npm run admin:create -- --email you@example.com [--username admin] [--password '…']
//        (or ADMIN_PASSWORD in the environment, which keeps it out of the shell history)
import { parseArgs } from 'node:util';
import dotenv from 'dotenv';
import { ConfigError, loadConfig } from '../src/core/config.js';
import { systemClock } from '../src/core/clock.js';
import { openDatabase } from '../src/core/db.js';
import { DataDirInUseError } from '../src/core/db/data-dir-lock.js';
import { PasswordHashPool } from '../src/core/password-hash-pool.js';
import { ensureAdmin } from '../src/features/admin/admin-service.js';
import { Email, Password, Username } from '../src/features/users/user-schemas.js';

dotenv.config({ quiet: true });

const { values } = parseArgs({
  options: { email: { type: 'string' }, username: { type: 'string', default: 'admin' }, password: { type: 'string' } },
});

const email = Email.safeParse(values.email ?? process.env.ADMIN_EMAIL);
const username = Username.safeParse(values.username);
const password = Password.safeParse(values.password ?? process.env.ADMIN_PASSWORD);
if (!email.success || !username.success || !password.success) {
  console.error('usage: npm run admin:create -- --email you@example.com [--username admin] --password <8 to 72 bytes>');
  console.error('       (ADMIN_EMAIL and ADMIN_PASSWORD from the environment are used when the flags are absent)');
  process.exit(2);
}

try {
  const config = loadConfig({ ...process.env, ADMIN_EMAIL: undefined, ADMIN_PASSWORD: undefined });
  const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, migrate: config.migrateOnStart });
  const pool = new PasswordHashPool({ threads: 1, queueMax: 1 });
  const { created, user } = await ensureAdmin(
    db.prisma,
    (plain) => pool.hash(plain, config.bcryptCost),
    {
      email: email.data,
      username: username.data,
      password: password.data,
    },
    systemClock,
  );
  await Promise.all([db.close(), pool.close()]);
  if (!created) {
    console.error(
      `${user.email} already belongs to an account, which was not changed: an existing account is never promoted here (anyone may have registered that address). Create an administrator with another email, then grant roles through the admin API.`,
    );
    process.exit(1);
  }
  console.log(`created administrator ${user.username} <${user.email}>`);
} catch (err) {
  console.error(err instanceof ConfigError || err instanceof DataDirInUseError ? err.message : err);
  process.exit(1);
}
