// Creates the first administrator; an existing account with that email is never promoted (see ensureAdmin).
// Usage: npm run admin:create -- --email you@example.com [--username admin] [--password '…']
//        (or ADMIN_PASSWORD in the environment, which keeps it out of the shell history)
import { parseArgs } from 'node:util';
import dotenv from 'dotenv';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type Config, ConfigError, loadConfig } from '../src/core/config.js';
import { SETUP_TOKEN_FILE } from '../src/features/admin/setup-routes.js';
import { systemClock } from '../src/core/clock.js';
import { openDatabase } from '../src/core/db.js';
import { DataDirInUseError } from '../src/core/db/data-dir-lock.js';
import { PasswordHashPool } from '../src/core/password-hash-pool.js';
import { ensureAdmin } from '../src/features/admin/admin-service.js';
import { Email, Password, Username } from '../src/kernel/identity/user-schemas.js';

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

/**
 * The embedded server holds its database: hand it the one-time token it wrote to the data directory and let it create
 * the administrator (POST /setup/admin, answered only on this machine).
 */
async function throughRunningServer(config: Config, held: DataDirInUseError): Promise<never> {
  const token = await readFile(path.join(config.dataDir, SETUP_TOKEN_FILE), 'utf8').catch(() => undefined);
  if (!token) {
    console.error(
      `${held.message}\nThe server has an administrator already (or was started before this version): use the admin API, or stop the server and run this again.`,
    );
    process.exit(1);
  }
  const res = await fetch(`http://127.0.0.1:${config.port}/setup/admin`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token: token.trim(), email: email.data, username: username.data, password: password.data }),
  }).catch((err: unknown) => {
    console.error(
      `The server holding ${config.dataDir} did not answer on port ${config.port} (${err instanceof Error ? err.message : String(err)}): set PORT to its port.`,
    );
    process.exit(1);
  });
  const body = (await res.json().catch(() => ({}))) as { username?: string; email?: string; error?: { message?: string } };
  if (res.status !== 201) {
    console.error(`The running server refused: ${body.error?.message ?? `HTTP ${res.status}`}`);
    process.exit(1);
  }
  console.log(`created administrator ${body.username} <${body.email}> (through the running server)`);
  process.exit(0);
}

try {
  const config = loadConfig({ ...process.env, ADMIN_EMAIL: undefined, ADMIN_PASSWORD: undefined });
  const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, migrate: config.migrateOnStart }).catch((err: unknown) => {
    if (err instanceof DataDirInUseError) return throughRunningServer(config, err);
    throw err;
  });
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
