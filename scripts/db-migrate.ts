// Applies pending migrations to DATABASE_URL (or the embedded database), as `prisma migrate deploy` would.
// A database that does not exist yet is created when the server lets this user create databases.
import dotenv from 'dotenv';
import pg from 'pg';
import { ConfigError, loadConfig } from '../src/core/config.js';
import { openDatabase } from '../src/core/db.js';
import { DataDirInUseError } from '../src/core/db/data-dir-lock.js';

dotenv.config({ quiet: true });

/** PostgreSQL's code for "database does not exist". */
const INVALID_CATALOG_NAME = '3D000';

/** Creates the database `url` names, connecting to the server's `postgres` database; says why when it cannot. */
async function createDatabase(url: string): Promise<string> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const maintenance = new URL(url);
  maintenance.pathname = '/postgres';
  const client = new pg.Client({ connectionString: maintenance.toString() });
  try {
    await client.connect();
    await client.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
    return name;
  } catch (err) {
    throw new Error(
      `DATABASE_URL names the database "${name}", which does not exist, and it could not be created (${err instanceof Error ? err.message : String(err)}): create it (createdb ${name}) or point DATABASE_URL at one that exists.`,
      { cause: err },
    );
  } finally {
    await client.end().catch(() => {});
  }
}

async function databaseMissing(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    return false;
  } catch (err) {
    if ((err as { code?: string }).code === INVALID_CATALOG_NAME) return true;
    throw err;
  } finally {
    await client.end().catch(() => {});
  }
}

try {
  const config = loadConfig(process.env);
  if (config.databaseUrl && (await databaseMissing(config.databaseUrl))) console.log(`created database ${await createDatabase(config.databaseUrl)}`);
  const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, migrate: true });
  await db.close();
  const target = config.databaseUrl ? 'DATABASE_URL' : `the embedded database in ${config.dataDir}`;
  console.log(
    db.appliedMigrations.length === 0 ? `${target} is up to date.` : `applied to ${target}:\n${db.appliedMigrations.map((name) => `  ${name}`).join('\n')}`,
  );
} catch (err) {
  // One line a person can act on; DEBUG=1 shows the whole error.
  if (process.env.DEBUG) console.error(err);
  else if (err instanceof ConfigError || err instanceof DataDirInUseError) console.error(err.message);
  else console.error(`db:migrate failed: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}`);
  process.exit(1);
}
