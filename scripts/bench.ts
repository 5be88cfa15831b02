// Measures throughput and latency of the hot paths against an in-process server; prints numbers, asserts nothing.
// Usage: npm run bench [-- --duration 10 --connections 50]   (with DATABASE_URL/REDIS_URL: real services, migrated first)
// The load generator runs in the same process, so compare against the bare-Express baseline it prints first.
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import express from 'express';
import { createApp } from '../src/app.js';
import { systemClock } from '../src/core/clock.js';
import { loadConfig } from '../src/core/config.js';
import { openDatabase } from '../src/core/db.js';
import { boundPort, closeGracefully, listen } from '../src/core/http/server.js';
import { createLogger } from '../src/core/logger.js';
import { connectRedis } from '../src/core/redis.js';
import { inProcessStore, redisStore } from '../src/core/shared-store.js';

const { values } = parseArgs({ options: { duration: { type: 'string', default: '10' }, connections: { type: 'string', default: '50' } } });
const duration = Number(values.duration);
const connections = Number(values.connections);

// Budgets far above what the run sends: this measures the limiter's cost, not its refusals.
const config = {
  ...loadConfig({ ...process.env, NODE_ENV: 'production', JWT_SECRET: randomBytes(48).toString('base64url'), RATE_LIMIT_MAX: '1000000', BCRYPT_COST: '10' }),
  jwtSecret: randomBytes(48).toString('base64url'),
};
const logger = createLogger({ level: 'silent', pretty: false });
const db = await openDatabase({ url: config.databaseUrl, migrate: true });
const redis = config.redisUrl ? await connectRedis({ url: config.redisUrl }, logger) : undefined;
const store = redis ? redisStore(redis, `bench:${randomBytes(3).toString('hex')}:`) : inProcessStore;
const server = await listen(createApp({ config, db, store, clock: systemClock, logger }), 0, '127.0.0.1');
const base = `http://127.0.0.1:${boundPort(server)}`;

const username = `bench_${randomBytes(4).toString('hex')}`;
const password = 'benchmark password';
const post = (path: string, body: unknown) =>
  fetch(`${base}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
await post('/register', { username, email: `${username}@example.com`, password });
const { access_token: token } = (await (await post('/login', { username, password })).json()) as { access_token: string };

async function measure(title: string, path: string, options: Partial<autocannon.Options> = {}) {
  const result = await autocannon({ url: `${base}${path}`, connections, duration, ...options });
  const errors = result.non2xx + result.errors + result.timeouts;
  console.log(
    `${title.padEnd(44)} ${String(Math.round(result.requests.average)).padStart(7)} req/s   p50 ${result.latency.p50} ms   p99 ${result.latency.p99} ms   errors ${errors}`,
  );
}

console.log(`backends: ${db.kind}, ${store.kind === 'redis' ? 'redis' : 'in-process store'}; ${connections} connections, ${duration} s each\n`);

// What this machine and this load generator manage at all: a bare Express route, for scale.
const bare = express();
bare.get('/health', (_req, res) => {
  res.json({ status: 'ok' });
});
const bareServer = await listen(bare, 0, '127.0.0.1');
const bareResult = await autocannon({ url: `http://127.0.0.1:${boundPort(bareServer)}/health`, connections, duration });
console.log(`${'baseline: bare Express GET /health'.padEnd(44)} ${String(Math.round(bareResult.requests.average)).padStart(7)} req/s   p50 ${bareResult.latency.p50} ms   p99 ${bareResult.latency.p99} ms`);
await closeGracefully(bareServer, 1_000);

await measure('GET /health (no auth, no limit)', '/health');
await measure('GET /protected (JWT + revocation + limit + DB)', '/protected', { headers: { authorization: `Bearer ${token}` } });
await measure('GET /expensive (cache hit)', '/expensive', { headers: { authorization: `Bearer ${token}` } });
await measure('POST /login (bcrypt cost 10)', '/login', {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ username, password }),
  connections: 4,
});

await closeGracefully(server, 1_000);
await db.close();
redis?.disconnect();
