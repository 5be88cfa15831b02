// Measures how long the built server takes to become ready and how much memory it holds, first start and later ones.
// Usage: npm run measure:start [-- --runs 3 --idle 5 --port 4300 --root DIR --only embedded|services --skip-build]
//        Measures the embedded default (a fresh DATA_DIR per run) and, with DATABASE_URL (and REDIS_URL) set, real
//        services, on a scratch database created next to the one named and dropped afterwards.
//        --root measures another checkout's dist/ (to compare before and after a change, under the same load).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    idle: { type: 'string', default: '5' },
    port: { type: 'string', default: '4300' },
    root: { type: 'string', default: path.resolve(import.meta.dirname, '..') },
    only: { type: 'string' },
    'skip-build': { type: 'boolean', default: false },
  },
});
const RUNS = Number(args.runs);
const IDLE_MS = Number(args.idle) * 1000;
const PORT = Number(args.port);
const ROOT = path.resolve(args.root);
const READY_TIMEOUT_MS = 120_000;
/** How often /ready is asked and VmRSS read while the server starts. */
const POLL_MS = 25;
const CLOCK_TICKS_PER_S = 100; // USER_HZ on Linux

interface Sample {
  readyMs: number;
  /** CPU seconds (user + system, every thread) the process spent before it was ready: barely moved by other load. */
  cpuS: number;
  readyRssMb: number;
  /** The highest resident set size the process ever had (VmHWM), read after the idle wait. */
  peakRssMb: number;
  idleRssMb: number;
}

interface Target {
  label: string;
  env: NodeJS.ProcessEnv;
  /** Called before each run's first start, so that start has a database to create and migrate. */
  fresh(): Promise<void>;
  cleanup(): Promise<void>;
}

function status(pid: number): Map<string, number> {
  const fields = new Map<string, number>();
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const match = /^(Vm\w+):\s+(\d+) kB/.exec(line);
    if (match) fields.set(match[1] ?? '', Number(match[2]) / 1024);
  }
  return fields;
}

function cpuSeconds(pid: number): number {
  // Fields after the parenthesised command name; utime and stime are the 14th and 15th of the whole line.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / CLOCK_TICKS_PER_S;
}

async function answersReady(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false; // not listening yet
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(-child.pid, 'SIGTERM'); // its own process group: anything it started goes too
  const timer = setTimeout(() => child.pid && process.kill(-child.pid, 'SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

const running = new Set<ChildProcess>();

/** Starts `node dist/src/main.js` as its own process and measures it until it has idled for IDLE_MS. */
async function measureStart(env: NodeJS.ProcessEnv, logFile: string): Promise<Sample> {
  const log = openSync(logFile, 'w');
  const started = performance.now();
  // node itself (not a shell around it), so that the pid whose /proc entries are read is the server's.
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/src/main.js')], {
    cwd: path.dirname(logFile),
    env,
    detached: true,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  running.add(child);
  try {
    const pid = child.pid;
    if (pid === undefined) throw new Error('the server did not start');
    const url = `http://127.0.0.1:${env.PORT}/ready`;
    let rssMax = 0;
    while (!(await answersReady(url))) {
      if (child.exitCode !== null) throw new Error(`the server exited with code ${child.exitCode} before it was ready:\n${readFileSync(logFile, 'utf8')}`);
      if (performance.now() - started > READY_TIMEOUT_MS) throw new Error(`${url} did not answer 200 within ${READY_TIMEOUT_MS} ms`);
      rssMax = Math.max(rssMax, status(pid).get('VmRSS') ?? 0);
      await sleep(POLL_MS);
    }
    const readyMs = performance.now() - started;
    const cpuS = cpuSeconds(pid);
    const readyRssMb = status(pid).get('VmRSS') ?? 0;
    await sleep(IDLE_MS);
    const after = status(pid);
    return { readyMs, cpuS, readyRssMb, peakRssMb: Math.max(after.get('VmHWM') ?? 0, rssMax), idleRssMb: after.get('VmRSS') ?? 0 };
  } finally {
    await stop(child);
    running.delete(child);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

function describeLoad(): string {
  return loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');
}

function baseEnv(work: string): NodeJS.ProcessEnv {
  // What `npm start` runs with out of the box (development, generated secrets), minus the fixed ports.
  return { PATH: process.env.PATH, HOME: process.env.HOME, HOST: '127.0.0.1', PORT: String(PORT), METRICS_PORT: '0', DATA_DIR: path.join(work, 'data') };
}

function embeddedTarget(work: string): Target {
  const env = baseEnv(work);
  return {
    label: 'embedded (PGlite, in-process store)',
    env,
    fresh: () => rm(env.DATA_DIR ?? '', { recursive: true, force: true }),
    cleanup: async () => {},
  };
}

function realTarget(work: string, databaseUrl: string, redisUrl: string | undefined): Target {
  const name = `authkit_measure_${process.pid}`;
  const url = new URL(databaseUrl);
  url.pathname = `/${name}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  // With DATABASE_URL the server migrates only when told (deployments usually run db:migrate first): the first start
  // here includes the migration, as with the embedded default.
  const env: NodeJS.ProcessEnv = { ...baseEnv(work), DATABASE_URL: url.toString(), MIGRATE_ON_START: 'true' };
  if (redisUrl) Object.assign(env, { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: `measure-${randomBytes(4).toString('hex')}:` });
  const drop = () => admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  return {
    label: `PostgreSQL${redisUrl ? ' and Redis' : ', in-process store'}, MIGRATE_ON_START=true`,
    env,
    fresh: async () => {
      await drop();
      await admin(`CREATE DATABASE "${name}"`);
      await rm(env.DATA_DIR ?? '', { recursive: true, force: true });
    },
    // Redis keys are left to expire: every key the server writes has a TTL, and the prefix is unique to this run.
    cleanup: drop,
  };
}

function mb(value: number): string {
  return `${value.toFixed(0)} MB`;
}

function printTable(label: string, results: Record<'first' | 'later', Sample[]>): void {
  console.log(`\n${label}, ${RUNS} run(s): median / max`);
  const header = ['start', 'ready after', 'CPU used', 'RSS at ready', 'peak RSS', `idle RSS (+${IDLE_MS / 1000} s)`];
  const rows = (['first', 'later'] as const).map((phase) => {
    const samples = results[phase];
    const cell = (pick: (sample: Sample) => number, format: (value: number) => string) =>
      `${format(median(samples.map(pick)))} / ${format(Math.max(...samples.map(pick)))}`;
    return [
      phase,
      cell(
        (s) => s.readyMs / 1000,
        (v) => `${v.toFixed(2)} s`,
      ),
      cell(
        (s) => s.cpuS,
        (v) => `${v.toFixed(2)} s`,
      ),
      cell((s) => s.readyRssMb, mb),
      cell((s) => s.peakRssMb, mb),
      cell((s) => s.idleRssMb, mb),
    ];
  });
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]?.length ?? 0)));
  for (const row of [header, ...rows]) console.log(`  ${row.map((value, i) => value.padEnd(widths[i] ?? 0)).join('  ')}`);
}

if (!args['skip-build']) execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });

const work = await mkdtemp(path.join(tmpdir(), 'authkit-measure-'));
const targets: Target[] = [];
if (args.only !== 'services') targets.push(embeddedTarget(work));
if (args.only !== 'embedded' && process.env.DATABASE_URL) targets.push(realTarget(work, process.env.DATABASE_URL, process.env.REDIS_URL));
if (targets.length === 0) {
  console.error('Nothing to measure: --only services needs DATABASE_URL (and REDIS_URL for Redis).');
  process.exit(2);
}
const onSignal = () => {
  for (const child of running) if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
  process.exit(130);
};
process.once('SIGINT', onSignal).once('SIGTERM', onSignal);

const cpu = cpus();
console.log(`authkit start measurement, ${new Date().toISOString()}: ${cpu.length} × ${cpu[0]?.model.trim()}, Node ${process.version}`);
console.log(`server: ${path.join(ROOT, 'dist/src/main.js')}; load average (1/5/15 min) before: ${describeLoad()}`);
try {
  for (const target of targets) {
    const results: Record<'first' | 'later', Sample[]> = { first: [], later: [] };
    for (let run = 1; run <= RUNS; run++) {
      await target.fresh();
      // The first start creates and migrates the database; the later one finds it up to date.
      for (const phase of ['first', 'later'] as const) {
        const sample = await measureStart(target.env, path.join(work, `${phase}.log`));
        results[phase].push(sample);
        console.log(
          `  ${target.label}, run ${run}, ${phase} start: ready after ${(sample.readyMs / 1000).toFixed(2)} s (${sample.cpuS.toFixed(2)} s CPU), ` +
            `peak ${mb(sample.peakRssMb)}, idle ${mb(sample.idleRssMb)}; load ${describeLoad()}`,
        );
      }
    }
    printTable(target.label, results);
  }
  console.log(`\nload average (1/5/15 min) after: ${describeLoad()} on ${cpu.length} cores`);
} finally {
  for (const target of targets) await target.cleanup().catch((err: unknown) => console.error(`cleanup failed: ${String(err)}`));
  await rm(work, { recursive: true, force: true });
}
