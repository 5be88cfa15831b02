// npm run cluster -- --instances 3 [--port 8080] [--first-instance-port 3001]: N built instances on PostgreSQL and
// Redis behind nginx, until Ctrl-C or SIGTERM. Needs DATABASE_URL and REDIS_URL (every instance shares them), and nginx
// (Debian: apt-get install nginx-light). Secrets it generates are kept in .data/cluster-secrets.json for the next run.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import dotenv from 'dotenv';
import { findNginx, startCluster } from './cluster-lib.js';

dotenv.config({ quiet: true });
const { values } = parseArgs({
  options: {
    instances: { type: 'string', default: '3' },
    port: { type: 'string', default: '8080' },
    'first-instance-port': { type: 'string', default: '0' },
  },
});
const instances = Number(values.instances);
const port = Number(values.port);
const firstInstancePort = Number(values['first-instance-port']);
const isPort = (value: number) => Number.isInteger(value) && value >= 0 && value <= 65535;
if (!Number.isInteger(instances) || instances < 1 || instances > 32 || !isPort(port) || !isPort(firstInstancePort) || firstInstancePort + instances > 65536) {
  console.error('usage: npm run cluster -- --instances <1..32> [--port <nginx port, 0 for any>] [--first-instance-port <port; 0 for any>]');
  process.exit(2);
}
const databaseUrl = process.env.DATABASE_URL;
const redisUrl = process.env.REDIS_URL;
if (!databaseUrl || !(redisUrl || process.env.REDIS_SENTINELS || process.env.REDIS_CLUSTER_NODES)) {
  console.error(
    'Set DATABASE_URL and REDIS_URL (or REDIS_SENTINELS, or REDIS_CLUSTER_NODES) in the environment or .env: several instances share PostgreSQL and Redis.',
  );
  process.exit(2);
}
if (!findNginx()) {
  console.error('nginx is not installed. On Debian or Ubuntu: sudo apt-get install nginx-light (or nginx), then run this again.');
  process.exit(2);
}
// The instances run the built server.
spawnSync(process.execPath, [path.resolve(import.meta.dirname, 'build-if-stale.mjs')], { stdio: 'inherit' });

// Secrets the instances share: from the environment, else the ones generated on an earlier run against this database
// (its signing keys are sealed under that KEY_ENCRYPTION_KEY), else new ones, kept for the next run.
const secretsFile = process.env.CLUSTER_SECRETS_FILE ?? path.resolve(import.meta.dirname, '..', '.data', 'cluster-secrets.json');
const database = new URL(databaseUrl);
const databaseKey = `${database.hostname}:${database.port || 5432}${database.pathname}`;
const kept = JSON.parse(await readFile(secretsFile, 'utf8').catch(() => '{}')) as Record<string, { JWT_SECRET: string; KEY_ENCRYPTION_KEY: string }>;
const secrets = kept[databaseKey] ?? { JWT_SECRET: randomBytes(48).toString('base64url'), KEY_ENCRYPTION_KEY: randomBytes(48).toString('base64url') };
if (!process.env.JWT_SECRET && !process.env.KEY_ENCRYPTION_KEY && !kept[databaseKey]) {
  await mkdir(path.dirname(secretsFile), { recursive: true });
  await writeFile(secretsFile, JSON.stringify({ ...kept, [databaseKey]: secrets }, null, 2), { mode: 0o600 });
  console.log(`generated JWT_SECRET and KEY_ENCRYPTION_KEY for ${databaseKey}; kept in ${path.relative(process.cwd(), secretsFile)} for the next run`);
}
const env = {
  JWT_SECRET: process.env.JWT_SECRET || secrets.JWT_SECRET,
  KEY_ENCRYPTION_KEY: process.env.KEY_ENCRYPTION_KEY || secrets.KEY_ENCRYPTION_KEY,
  // Local storage works across the instances: they share one directory on this machine, kept between runs as the
  // database is (STORAGE=s3 sends images to a bucket instead).
  UPLOAD_DIR: process.env.UPLOAD_DIR || path.resolve(import.meta.dirname, '..', '.data', 'cluster-uploads'),
};

let cluster;
try {
  cluster = await startCluster({ instances, port, firstInstancePort, databaseUrl, redisUrl, env, log: (line) => console.log(line) });
} catch (err) {
  // One sentence, not a stack trace: the instances' own logs say the rest.
  console.error(`could not start the cluster: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
console.log(
  `\nauthkit: ${instances} instances behind nginx at ${cluster.url}\n(STORAGE=${process.env.STORAGE ?? 'local'}; Ctrl-C or SIGTERM stops everything)`,
);
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  console.log('stopping…');
  void cluster.stop().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
