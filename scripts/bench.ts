// Measures the built server as its own process, with wrk as the load from another process, side by side with the
// reference servers in ../shared/peers (bare Express, a do-it-yourself Express, Better Auth) in the same run. The
// token check and its peers are measured in interleaved rounds and every ratio is taken within a round (a machine's
// speed drifts between rounds far more than within one); prints medians and the spread of the ratios, asserts nothing.
// Usage: npm run bench [-- --duration 8 --connections 50 --rounds 3 --peers ../shared/peers --skip-build --keep]
//        (--keep leaves the servers' logs and data in the scratch directory it prints)
//        DATABASE_URL (a database the run may create scratch databases next to) and REDIS_URL select real services;
//        without them the server runs on its embedded defaults.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createSecretKey, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { crc32, deflateSync } from 'node:zlib';
import bcrypt from 'bcryptjs';
import jwt from 'jsonwebtoken';
import { Redis } from 'ioredis';
import pg from 'pg';
import { readOutbox } from '../src/features/email/transport.js';
import { BENCH_RESOURCE_SETTING, measureOpenIdProvider, rotatingTokensScript } from './bench-oauth.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    connections: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '3' },
    peers: { type: 'string', default: path.resolve('../shared/peers') },
    'skip-build': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const DURATION = Number(args.duration);
const CONNECTIONS = Number(args.connections);
const ROUNDS = Math.max(1, Number(args.rounds));
const WARMUP_S = 2;
const LOGIN_CONNECTIONS = 8;
const PASSWORD = 'correct horse battery staple';
const work = await mkdtemp(path.join(tmpdir(), 'authkit-bench-'));
const cleanups: Array<() => unknown> = [];

function sh(command: string, commandArgs: string[], options: { env?: NodeJS.ProcessEnv } = {}): string {
  return execFileSync(command, commandArgs, { encoding: 'utf8', env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A process in a group of its own, so that stopping it also stops anything it started. */
function startGroup(command: string, commandArgs: string[], env: NodeJS.ProcessEnv, logFile: string): ChildProcess {
  const child = spawn('sh', ['-c', `exec "$0" "$@" > ${logFile} 2>&1`, command, ...commandArgs], { env, detached: true, stdio: 'ignore' });
  cleanups.push(() => stopGroup(child));
  return child;
}

async function stopGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    return;
  }
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
}

async function waitFor(url: string, timeoutMs = 60_000): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    try {
      if ((await fetch(url)).ok) return performance.now() - started;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

interface WrkResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
}

function parseMs(value: string | undefined): number {
  const match = /([\d.]+)(us|ms|s)/.exec(value ?? '');
  if (!match) return Number.NaN;
  return Number(match[1]) * ({ us: 0.001, ms: 1, s: 1000 } as const)[match[2] as 'us' | 'ms' | 's'];
}

function parseWrk(output: string): WrkResult {
  const number = (pattern: RegExp) => Number(pattern.exec(output)?.[1] ?? 0);
  return {
    rps: number(/Requests\/sec:\s+([\d.]+)/),
    p50Ms: parseMs(/\s50%\s+(\S+)/.exec(output)?.[1]),
    p99Ms: parseMs(/\s99%\s+(\S+)/.exec(output)?.[1]),
    non2xx: number(/Non-2xx or 3xx responses:\s+(\d+)/),
    errors: [...output.matchAll(/(connect|read|write|timeout) (\d+)/g)].reduce((sum, match) => sum + Number(match[2]), 0),
  };
}

interface WrkOptions {
  connections?: number;
  headers?: string[];
  script?: string;
  scriptArgs?: string[];
}

/** Runs wrk in its own process, first for a short unrecorded warm-up (so every server is measured with its JIT warm). */
async function wrk(url: string, options: WrkOptions = {}): Promise<WrkResult> {
  await runWrk(url, options, WARMUP_S);
  return runWrk(url, options, DURATION);
}

function runWrk(url: string, options: WrkOptions, seconds: number): Promise<WrkResult> {
  const wrkArgs = ['-t1', `-c${options.connections ?? CONNECTIONS}`, `-d${seconds}s`, '--latency', '--timeout', '10s'];
  for (const header of options.headers ?? []) wrkArgs.push('-H', header);
  if (options.script) wrkArgs.push('-s', options.script);
  wrkArgs.push(url);
  if (options.scriptArgs) wrkArgs.push('--', ...options.scriptArgs);
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', wrkArgs, { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (data: Buffer) => (output += data.toString()));
    child.on('error', reject);
    child.on('exit', () => resolve(parseWrk(output)));
  });
}

/** A valid RGBA PNG of about `bytes` bytes (random pixels do not compress). */
/**
 * Microseconds one uncached access-token verification takes, in this process, with keys imported once as the server
 * keeps them (the server also skips the check for a token it verified before; this is the cost of a new one).
 */
function verifyMicros(algorithm: 'ES256' | 'HS256'): number {
  const { privateKey, publicKey } =
    algorithm === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : { privateKey: createSecretKey(randomBytes(48)), publicKey: undefined };
  const verifyKey = publicKey ?? privateKey;
  const nowS = Math.floor(Date.now() / 1000);
  const claims = { sub: randomUUID(), preferred_username: 'bench', sid: randomUUID(), jti: randomUUID(), roles: ['user'], amr: ['pwd'], typ: 'access' };
  const token = jwt.sign({ ...claims, iss: 'authkit', aud: 'authkit-api', iat: nowS, exp: nowS + 900, auth_time: nowS }, privateKey, {
    algorithm,
    keyid: 'bench',
  });
  const verify = () => jwt.verify(token, verifyKey, { algorithms: [algorithm], issuer: 'authkit', audience: 'authkit-api' });
  for (let i = 0; i < 500; i++) verify();
  const rounds = 5_000;
  const started = performance.now();
  for (let i = 0; i < rounds; i++) verify();
  return ((performance.now() - started) * 1000) / rounds;
}

function pngOfSize(bytes: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(data.length);
    const tail = Buffer.alloc(4);
    tail.writeUInt32BE(crc32(body));
    return Buffer.concat([head, body, tail]);
  };
  const side = Math.ceil(Math.sqrt(bytes / 4));
  const header = Buffer.alloc(13);
  header.writeUInt32BE(side, 0);
  header.writeUInt32BE(side, 4);
  header.set([8, 6, 0, 0, 0], 8);
  const rows = Buffer.concat(Array.from({ length: side }, () => Buffer.concat([Buffer.from([0]), randomBytes(side * 4)])));
  return Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), chunk('IHDR', header), chunk('IDAT', deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}

// ---- set-up ---------------------------------------------------------------------------------------------------

try {
  sh('wrk', ['--version']);
} catch (err) {
  // wrk prints its version and exits 1; only a missing binary is a problem.
  if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
    console.error('wrk is not installed: apt-get install wrk');
    process.exit(2);
  }
}
if (!args['skip-build']) sh('npm', ['run', '--silent', 'build']);

const databaseUrl = process.env.DATABASE_URL;
const redisUrl = process.env.REDIS_URL;
const serverEnv: NodeJS.ProcessEnv = {
  PATH: process.env.PATH,
  NODE_ENV: 'production',
  HOST: '127.0.0.1',
  // Each server gets its own address as PUBLIC_URL (see startServer); the migration needs one too.
  PUBLIC_URL: 'http://127.0.0.1',
  JWT_SECRET: randomBytes(48).toString('base64url'),
  KEY_ENCRYPTION_KEY: randomBytes(48).toString('base64url'),
  LOG_LEVEL: 'info',
  DATA_DIR: path.join(work, 'data'),
  UPLOAD_DIR: path.join(work, 'uploads'),
  REDIS_KEY_PREFIX: `bench-${randomBytes(4).toString('hex')}:`,
};
if (databaseUrl) {
  const name = `authkit_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(databaseUrl);
  url.pathname = `/${name}`;
  serverEnv.DATABASE_URL = url.toString();
  sh('node', ['dist/scripts/db-migrate.js'], { env: serverEnv });
  cleanups.push(async () => {
    const drop = new pg.Client({ connectionString: databaseUrl });
    await drop.connect();
    await drop.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await drop.end();
  });
}
if (redisUrl) {
  serverEnv.REDIS_URL = redisUrl;
  cleanups.push(async () => {
    const redis = new Redis(redisUrl);
    const keys = await redis.keys(`${serverEnv.REDIS_KEY_PREFIX}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });
}

let port = 4600;
/**
 * How the server answered `path` since the access log was `from` characters long: status → count. A rate that
 * counts refusals says nothing of what succeeded, so a measured scenario with refusals names them.
 */
async function answersIn(logFile: string, from: number, path: string): Promise<{ statuses: Map<number, number>; end: number }> {
  const text = await readFile(logFile, 'utf8');
  const statuses = new Map<number, number>();
  for (const line of text.slice(from).split('\n')) {
    if (!line.includes(`"path":"${path}"`)) continue;
    const status = Number(/"statusCode":(\d+)/.exec(line)?.[1]);
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
  }
  return { statuses, end: text.length };
}

async function startServer(extraEnv: NodeJS.ProcessEnv): Promise<{ base: string; child: ChildProcess; readyMs: number; log: string }> {
  port++;
  const base = `http://127.0.0.1:${port}`;
  // PUBLIC_URL is the server's own address: the OpenID provider's redirects and issuer name it.
  const child = startGroup(
    'node',
    ['dist/src/main.js'],
    // METRICS_PORT 0: two servers run at once (the 429 one beside the main one), and each would take 9464.
    { ...serverEnv, PUBLIC_URL: base, METRICS_PORT: '0', ...extraEnv, PORT: String(port) },
    path.join(work, `server-${port}.log`),
  );
  const readyMs = await waitFor(`${base}/health`);
  return { base, child, readyMs, log: path.join(work, `server-${port}.log`) };
}

/** The token of the newest emailed link of `kind` (`#<kind>=<token>`) to `address` in the server's outbox. */
async function emailedLinkToken(address: string, kind: string): Promise<string> {
  const pattern = new RegExp(`#${kind}=([\\w-]+)`);
  for (let tries = 0; tries < 100; tries++) {
    const mail = (await readOutbox(path.join(serverEnv.DATA_DIR ?? '', 'outbox'))).find((entry) => entry.to === address && pattern.test(entry.text));
    const token = mail && pattern.exec(mail.text)?.[1];
    if (token) return token;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no ${kind} link for ${address} in the outbox`);
}

async function call(base: string, route: string, init: { method?: string; token?: string; body?: unknown } = {}) {
  const res = await fetch(`${base}${route}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: { 'content-type': 'application/json', ...(init.token && { authorization: `Bearer ${init.token}` }) },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? 'POST'} ${route}: ${res.status} ${text}`);
  return text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
}

try {
  // Peers first: their set-up installs packages and must not overlap our measurements.
  let peers: { bare: string; betterAuth: string; cookie: string; diy: string; diyToken: string } | undefined;
  if (existsSync(path.join(args.peers, 'setup.sh'))) {
    // The peers pick their own database and Redis DB: ours must not leak into their environment.
    const { DATABASE_URL: _db, REDIS_URL: _redis, ...peerEnv } = process.env;
    const output = sh('bash', [path.join(args.peers, 'setup.sh')], { env: { ...peerEnv, PEERS_DIR: path.join(tmpdir(), 'peers') } });
    if (process.env.BENCH_DEBUG) console.log(output);
    for (const pid of output.matchAll(/pid (\d+)/g)) cleanups.push(() => process.kill(Number(pid[1]), 'SIGTERM'));
    const exported = new Map([...output.matchAll(/(\w+)=('[^']*'|\S+)/g)].map((m) => [m[1], (m[2] ?? '').replace(/^'|'$/g, '')]));
    peers = {
      bare: exported.get('BARE_URL') ?? '',
      betterAuth: exported.get('PEER_URL') ?? '',
      cookie: exported.get('PEER_COOKIE') ?? '',
      diy: exported.get('DIY_URL') ?? '',
      diyToken: exported.get('DIY_TOKEN') ?? '',
    };
  } else {
    console.log(`(no reference servers at ${args.peers}: ratios to them are left out)`);
  }

  // ---- measurements -------------------------------------------------------------------------------------------

  const rows: Array<{ name: string; result: WrkResult; note?: string }> = [];
  const record = (name: string, result: WrkResult, note?: string) => {
    rows.push({ name, result, note });
    console.log(
      `  ${name.padEnd(46)} ${result.rps.toFixed(0).padStart(7)} req/s  p99 ${result.p99Ms.toFixed(1)} ms${result.non2xx ? `  non-2xx ${result.non2xx}` : ''}${result.errors ? `  errors ${result.errors}` : ''}`,
    );
  };

  const started = new Date();
  console.log(`authkit benchmark, ${started.toISOString()}: ${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}`);
  console.log(
    `backends: ${databaseUrl ? 'PostgreSQL' : 'embedded PGlite'}, ${redisUrl ? 'Redis' : 'in-process store'}; wrk -t1 -c${CONNECTIONS} -d${DURATION}s\n`,
  );

  // Budgets far above what a run sends: these scenarios measure the limiter's cost, not its refusals.
  const admin = { email: `bench-admin-${randomBytes(3).toString('hex')}@example.com`, password: PASSWORD, username: `admin_${randomBytes(3).toString('hex')}` };
  const server = await startServer({
    RATE_LIMIT_MAX: '1000000',
    ADMIN_EMAIL: admin.email,
    ADMIN_PASSWORD: admin.password,
    ADMIN_USERNAME: admin.username,
    OAUTH_RESOURCES: BENCH_RESOURCE_SETTING,
  });
  const username = `bench_${randomBytes(3).toString('hex')}`;
  await call(server.base, '/register', { body: { username, email: `${username}@example.com`, password: PASSWORD } });
  // An API key needs a confirmed address: the link is in the outbox (no SMTP_URL here), written a moment after.
  await call(server.base, '/email/verify', { body: { token: await emailedLinkToken(`${username}@example.com`, 'verify-email') } });
  const login = () => call(server.base, '/login', { body: { username, password: PASSWORD } }) as Promise<{ access_token: string; refresh_token: string }>;
  const { access_token: token } = await login();
  const { key: apiKey } = (await call(server.base, '/api-keys', { token, body: { name: 'bench', scopes: ['profile:read', 'images:write'] } })) as {
    key: string;
  };

  // Refusals with 429: a server with the default budget of 5 per minute, spent before each measurement.
  // Its own key prefix: the logins below spend the address's sign-in budget in the shared store.
  const limited = await startServer({ RATE_LIMIT_AUTH_MAX: '1000', REDIS_KEY_PREFIX: `${serverEnv.REDIS_KEY_PREFIX}limited:` });
  const limitedUser = `bench_${randomBytes(3).toString('hex')}`;
  await call(limited.base, '/register', { body: { username: limitedUser, email: `${limitedUser}@example.com`, password: PASSWORD } });
  const { access_token: limitedToken } = (await call(limited.base, '/login', { body: { username: limitedUser, password: PASSWORD } })) as {
    access_token: string;
  };

  // The token check and its peers, in interleaved rounds (see the top of the file).
  const headline: Array<{ name: string; run: () => Promise<WrkResult> }> = [
    ...(peers
      ? [
          { name: 'bare Express: GET /protected', run: () => wrk(peers.bare) },
          { name: 'do-it-yourself Express: GET /protected', run: () => wrk(peers.diy, { headers: [`Authorization: Bearer ${peers.diyToken}`] }) },
          { name: 'Better Auth 1.7: session check', run: () => wrk(peers.betterAuth, { headers: [`Cookie: ${peers.cookie}`] }) },
        ]
      : []),
    { name: 'GET /protected, Bearer token', run: () => wrk(`${server.base}/protected`, { headers: [`Authorization: Bearer ${token}`] }) },
    { name: 'GET /protected, API key', run: () => wrk(`${server.base}/protected`, { headers: [`X-API-Key: ${apiKey}`] }) },
    {
      name: 'GET /protected refused: 429 (budget spent)',
      run: async () => {
        for (let i = 0; i < 6; i++) await fetch(`${limited.base}/protected`, { headers: { authorization: `Bearer ${limitedToken}` } });
        return wrk(`${limited.base}/protected`, { headers: [`Authorization: Bearer ${limitedToken}`] });
      },
    },
  ];
  const rounds = new Map<string, WrkResult[]>(headline.map((scenario) => [scenario.name, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    console.log(`round ${round} of ${ROUNDS}`);
    for (const scenario of headline) {
      const result = await scenario.run();
      rounds.get(scenario.name)?.push(result);
      console.log(`  ${scenario.name.padEnd(46)} ${result.rps.toFixed(0).padStart(7)} req/s  p99 ${result.p99Ms.toFixed(1)} ms`);
    }
  }
  await stopGroup(limited.child);
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
  const medianResult = (name: string): WrkResult | undefined => {
    const results = rounds.get(name) ?? [];
    if (results.length === 0) return undefined;
    return {
      rps: median(results.map((r) => r.rps)),
      p50Ms: median(results.map((r) => r.p50Ms)),
      p99Ms: median(results.map((r) => r.p99Ms)),
      non2xx: 0,
      errors: 0,
    };
  };
  const bearer = medianResult('GET /protected, Bearer token') as WrkResult;
  console.log('');
  const forged = `${token.slice(0, token.lastIndexOf('.'))}.${randomBytes(32).toString('base64url')}`;
  record('GET /protected refused: 401 (bad signature)', await wrk(`${server.base}/protected`, { headers: [`Authorization: Bearer ${forged}`] }));
  await call(server.base, '/expensive', { method: 'GET', token });
  record('GET /expensive, cache hit', await wrk(`${server.base}/expensive`, { headers: [`Authorization: Bearer ${token}`] }));

  // Refresh: every request spends one refresh token and the script queues the one it gets back.
  // wrk drops the answers in flight when it stops, so each run (warm-up, then measured) can lose one token per
  // connection. Sessions are made in batches that fit the password-hash queue (a burst past it gets 503, by design).
  const refreshTokens: string[] = [];
  while (refreshTokens.length < 2 * CONNECTIONS + 20) {
    const batch = await Promise.all(Array.from({ length: LOGIN_CONNECTIONS }, login));
    refreshTokens.push(...batch.map((pair) => pair.refresh_token));
  }
  const tokensFile = path.join(work, 'refresh-tokens.txt');
  await writeFile(tokensFile, `${refreshTokens.join('\n')}\n`);
  const refreshScript = path.join(work, 'refresh.lua');
  await writeFile(
    refreshScript,
    rotatingTokensScript(`wrk.format("POST", "/refresh", { ["Content-Type"] = "application/json" }, '{"refresh_token":"' .. token .. '"}')`),
  );
  record('POST /refresh (rotation)', await wrk(server.base, { script: refreshScript, scriptArgs: [tokensFile] }));

  // The OpenID provider: its token endpoint, introspection, UserInfo and refresh grant.
  const { access_token: adminToken } = (await call(server.base, '/login', { body: { username: admin.username, password: admin.password } })) as {
    access_token: string;
  };
  const openId = await measureOpenIdProvider({
    base: server.base,
    work,
    adminToken,
    userToken: token,
    refreshTokens: 2 * CONNECTIONS + 20,
    wrk: (url, options) => wrk(url, options),
    record,
  });

  const boundary = `bench${randomBytes(8).toString('hex')}`;
  const uploadBody = path.join(work, 'upload.bin');
  await writeFile(
    uploadBody,
    Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="bench.png"\r\nContent-Type: image/png\r\n\r\n`),
      pngOfSize(1024 * 1024),
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]),
  );
  const uploadScript = path.join(work, 'upload.lua');
  await writeFile(
    uploadScript,
    `function init(args)
    local file = io.open(args[1], "rb"); wrk.body = file:read("*a"); file:close()
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "multipart/form-data; boundary=${boundary}"
    wrk.headers["X-API-Key"] = "${apiKey}"
  end
  `,
  );
  record('POST /images, 1 MB upload', await wrk(`${server.base}/images`, { connections: 8, script: uploadScript, scriptArgs: [uploadBody] }), '8 connections');

  // Logins at the default cost: their rate against one thread's compare rate, alone and beside /protected traffic.
  const hash = bcrypt.hashSync(PASSWORD, 12);
  const compareStarted = performance.now();
  for (let i = 0; i < 4; i++) bcrypt.compareSync(PASSWORD, hash);
  const oneThreadRate = 4000 / (performance.now() - compareStarted);
  // People sign in as many accounts, not as one: an account's attempts in flight count against its failure budget
  // before the compare (what keeps that budget exact), so eight at once for one account would meet 429s.
  const loginUsers = Array.from({ length: 4 * LOGIN_CONNECTIONS }, () => `bench_${randomBytes(4).toString('hex')}`);
  for (let i = 0; i < loginUsers.length; i += LOGIN_CONNECTIONS)
    await Promise.all(
      loginUsers
        .slice(i, i + LOGIN_CONNECTIONS)
        .map((name) => call(server.base, '/register', { body: { username: name, email: `${name}@example.com`, password: PASSWORD } })),
    );
  const loginScript = path.join(work, 'login.lua');
  await writeFile(
    loginScript,
    `local bodies = { ${loginUsers.map((name) => `'{"username":"${name}","password":"${PASSWORD}"}'`).join(', ')} }
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, bodies[(n % #bodies) + 1])
end
`,
  );
  const logStart = (await answersIn(server.log, 0, '/login')).end;
  const logins = await wrk(`${server.base}/login`, { connections: LOGIN_CONNECTIONS, script: loginScript });
  const loginAnswers = await answersIn(server.log, logStart, '/login');
  console.log(`  (POST /login answers, warm-up included: ${[...loginAnswers.statuses].map(([status, n]) => `${status} ×${n}`).join(', ')})`);
  const answered = [...loginAnswers.statuses.values()].reduce((sum, n) => sum + n, 0);
  const signedIn = logins.rps * ((loginAnswers.statuses.get(200) ?? 0) / Math.max(1, answered));
  record(`POST /login, bcrypt cost 12 (${LOGIN_CONNECTIONS} connections)`, logins);
  const [busy, loginsBeside] = await Promise.all([
    wrk(`${server.base}/protected`, { headers: [`Authorization: Bearer ${token}`] }),
    wrk(`${server.base}/login`, { connections: LOGIN_CONNECTIONS, script: loginScript }),
  ]);
  record(`GET /protected while ${LOGIN_CONNECTIONS} logins hash`, busy);
  record('  ... the logins beside it', loginsBeside);
  await stopGroup(server.child);

  // The same check with HS256 (JWT_SECRET) instead of the default ES256 key ring.
  const hs256 = await startServer({ RATE_LIMIT_MAX: '1000000', JWT_ALGORITHM: 'HS256', REDIS_KEY_PREFIX: `${serverEnv.REDIS_KEY_PREFIX}hs256:` });
  const hsUser = `bench_${randomBytes(3).toString('hex')}`;
  await call(hs256.base, '/register', { body: { username: hsUser, email: `${hsUser}@example.com`, password: PASSWORD } });
  const { access_token: hsToken } = (await call(hs256.base, '/login', { body: { username: hsUser, password: PASSWORD } })) as { access_token: string };
  const hsBearer = await wrk(`${hs256.base}/protected`, { headers: [`Authorization: Bearer ${hsToken}`] });
  record('GET /protected, Bearer token, JWT_ALGORITHM=HS256', hsBearer);
  await stopGroup(hs256.child);

  // ---- report --------------------------------------------------------------------------------------------------

  const bare = medianResult('bare Express: GET /protected')?.rps;
  const betterAuth = medianResult('Better Auth 1.7: session check')?.rps;
  const ratio = (value: number, to: number | undefined) => (to ? `${((100 * value) / to).toFixed(0)} %` : '');
  const times = (value: number, to: number | undefined) => (to ? `${(value / to).toFixed(2)}×` : '');
  /** The ratio of two scenarios in each round, as "low–high" (one value when they agree to two digits). */
  const spread = (name: string, to: string, format: (ratio: number) => string) => {
    const [mine, theirs] = [rounds.get(name) ?? [], rounds.get(to) ?? []];
    if (theirs.length === 0 || mine.length === 0) return '';
    const ratios = mine.map((result, index) => result.rps / (theirs[index]?.rps ?? Number.NaN)).sort((a, b) => a - b);
    const [low, high] = [format(ratios[0] as number), format(ratios[ratios.length - 1] as number)];
    return low === high ? low : `${low}–${high}`;
  };
  const percent = (value: number) => `${(100 * value).toFixed(0)} %`;
  const multiple = (value: number) => `${value.toFixed(2)}×`;
  console.log(
    `\nThe token check, ${ROUNDS} interleaved rounds (median req/s and p99; each ratio taken within a round, lowest–highest):\n` +
      `| request | req/s | p99 | vs bare Express | vs do-it-yourself | vs Better Auth |\n|---|---:|---:|---:|---:|---:|`,
  );
  for (const { name } of headline) {
    const result = medianResult(name) as WrkResult;
    console.log(
      `| ${name} | ${result.rps.toFixed(0)} | ${result.p99Ms.toFixed(1)} ms | ${spread(name, 'bare Express: GET /protected', percent)} | ` +
        `${spread(name, 'do-it-yourself Express: GET /protected', multiple)} | ${spread(name, 'Better Auth 1.7: session check', multiple)} |`,
    );
  }
  console.log(`API key against Bearer token, within each round: ${spread('GET /protected, API key', 'GET /protected, Bearer token', multiple)}`);
  console.log(`\nEverything else, measured once (ratios to the median bare Express and Better Auth above):`);
  console.log(`| request | req/s | p99 | vs bare Express | vs Better Auth |\n|---|---:|---:|---:|---:|`);
  for (const { name, result, note } of rows) {
    const label = `${name.trim()}${note ? ` (${note})` : ''}${result.non2xx && !name.includes('refused') ? ` — ${result.non2xx} non-2xx` : ''}`;
    console.log(`| ${label} | ${result.rps.toFixed(0)} | ${result.p99Ms.toFixed(1)} ms | ${ratio(result.rps, bare)} | ${times(result.rps, betterAuth)} |`);
  }
  const requestMicros = 1e6 / bearer.rps;
  const es256 = verifyMicros('ES256');
  const hs = verifyMicros('HS256');
  console.log(
    `\naccess-token verification, uncached: ES256 ${es256.toFixed(1)} µs, HS256 ${hs.toFixed(1)} µs (${(es256 / hs).toFixed(1)}×); ` +
      `a /protected request costs ${requestMicros.toFixed(0)} µs of the event loop, so a new ES256 token adds ${((100 * es256) / requestMicros).toFixed(0)} % ` +
      `once, and nothing afterwards (verified tokens are remembered). /protected ES256 vs HS256, measured one after the other: ${ratio(bearer.rps, hsBearer.rps)}`,
  );
  const vcpus = cpus().length;
  const perVcpu = (rps: number) => `${(rps / vcpus).toFixed(0)}/s per vCPU`;
  console.log(
    `OpenID provider on ${vcpus} vCPU (one Node process): client-credential grants ${perVcpu(openId.token)} (Keycloak sizes 120/s per vCPU), ` +
      `introspection ${perVcpu(openId.introspection)} (ZITADEL: 4,810/s on up to 7 containers × 6 vCPU), UserInfo ${perVcpu(openId.userinfo)}, ` +
      `refresh grants ${perVcpu(openId.refresh)}`,
  );
  console.log(`one thread's bcrypt cost-12 compare rate: ${oneThreadRate.toFixed(2)}/s`);
  console.log(
    `logins per second (200s only): ${signedIn.toFixed(2)} alone (${(signedIn / oneThreadRate).toFixed(2)}× one thread); ` +
      `${loginsBeside.rps.toFixed(2)} requests a second beside /protected traffic`,
  );
  console.log(
    `/protected p99 while ${LOGIN_CONNECTIONS} logins hash: ${busy.p99Ms.toFixed(1)} ms vs ${bearer.p99Ms.toFixed(1)} ms idle (${(busy.p99Ms / bearer.p99Ms).toFixed(2)}×)`,
  );
} finally {
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup();
    } catch (err) {
      console.error('cleanup:', err instanceof Error ? err.message : err);
    }
  }
  if (args.keep) console.log(`\nkept the servers' logs and data in ${work}`);
  else await rm(work, { recursive: true, force: true });
}
