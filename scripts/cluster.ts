// npm run cluster -- --instances 3 [--port 8080]: N built instances on PostgreSQL and Redis behind nginx, until Ctrl-C.
// Needs DATABASE_URL and REDIS_URL (every instance shares them), and nginx (Debian: apt-get install nginx-light).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import dotenv from 'dotenv';
import { findNginx, startCluster } from './cluster-lib.js';

dotenv.config({ quiet: true });
const { values } = parseArgs({
  options: {
    instances: { type: 'string', default: '3' },
    port: { type: 'string', default: '8080' },
  },
});
const instances = Number(values.instances);
const port = Number(values.port);
if (!Number.isInteger(instances) || instances < 1 || instances > 32 || !Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('usage: npm run cluster -- --instances <1..32> [--port <nginx port, 0 for any>]');
  process.exit(2);
}
const databaseUrl = process.env.DATABASE_URL;
const redisUrl = process.env.REDIS_URL;
if (!databaseUrl || !redisUrl) {
  console.error('Set DATABASE_URL and REDIS_URL (in the environment or .env): several instances share PostgreSQL and Redis.');
  process.exit(2);
}
if (!findNginx()) {
  console.error('nginx is not installed. On Debian or Ubuntu: sudo apt-get install nginx-light (or nginx), then run this again.');
  process.exit(2);
}
// The instances run the built server.
spawnSync(process.execPath, [path.resolve(import.meta.dirname, 'build-if-stale.mjs')], { stdio: 'inherit' });

const cluster = await startCluster({ instances, port, databaseUrl, redisUrl, log: (line) => console.log(line) });
console.log(`\nauthkit: ${instances} instances behind nginx at ${cluster.url}\n(STORAGE=${process.env.STORAGE ?? 'local'}; Ctrl-C stops everything)`);
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  console.log('stopping…');
  void cluster.stop().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
