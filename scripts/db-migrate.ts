// Applies pending migrations to DATABASE_URL (or the embedded database), as `prisma migrate deploy` would.
import dotenv from 'dotenv';
import { ConfigError, loadConfig } from '../src/core/config.js';
import { openDatabase } from '../src/core/db.js';
import { DataDirInUseError } from '../src/core/db/data-dir-lock.js';

dotenv.config({ quiet: true });

try {
  const config = loadConfig(process.env);
  const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, migrate: true });
  await db.close();
  const target = config.databaseUrl ? 'DATABASE_URL' : `the embedded database in ${config.dataDir}`;
  console.log(
    db.appliedMigrations.length === 0
      ? `${target} is up to date.`
      : `applied to ${target}:\n${db.appliedMigrations.map((name) => `  ${name}`).join('\n')}`,
  );
} catch (err) {
  console.error(err instanceof ConfigError || err instanceof DataDirInUseError ? err.message : err);
  process.exit(1);
}
