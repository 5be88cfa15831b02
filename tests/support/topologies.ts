// Real Redis (Sentinel, Cluster), PostgreSQL and PgBouncer topologies on loopback, for the failover tests. Every server
// is a child process started here, in a new temporary directory, on free ports; `stop()` ends each process by its own
// PID, waits for it, and removes the directory. Nothing touches the machine's own PostgreSQL (:5432) or Redis (:6379).
// Needs redis-server and redis-cli, redis-sentinel, pgbouncer and PostgreSQL's server binaries
// (apt-get install redis-server redis-sentinel pgbouncer postgresql).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';

export interface HostPort {
  host: string;
  port: number;
}

export interface SentinelTopology {
  name: 'authkit';
  sentinels: HostPort[];
  /** "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3" */
  sentinelsSetting: string;
  /** The primary's port, as a sentinel reports it. */
  primaryPort(): Promise<number>;
  /** SIGKILLs the current primary's redis-server (and waits for it to die); resolves with its port. */
  killPrimary(): Promise<number>;
  /** Resolves with the promoted primary's port once every sentinel reports it (not `oldPort`) and it answers ROLE as master. */
  waitForNewPrimary(oldPort: number, timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

export interface RedisClusterTopology {
  /** "127.0.0.1:p1,…" for all six nodes. */
  nodesSetting: string;
  nodes: HostPort[];
  /** The port of the primary serving the key's slot, as a live node sees it. */
  primaryForKey(key: string): Promise<number>;
  /** SIGKILLs one node, as a crash would. */
  killNode(port: number): void;
  /** Until every surviving node says cluster_state:ok and none of them routes a slot to the killed node any more. */
  waitForFailover(killedPort: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface PrivatePostgres {
  /** postgresql://postgres@127.0.0.1:PORT/postgres */
  url: string;
  port: number;
  /** pg_ctl stop -m fast, `downMs` of downtime (0 by default), then start again on the same port. */
  restart(options?: { downMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

export interface PgBouncer {
  /** postgresql://postgres@127.0.0.1:PORT/DATABASE (postgres by default) */
  url(database?: string): string;
  port: number;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const SENTINEL_NAME = 'authkit';
const START_TIMEOUT_MS = 30_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Ports handed out by this process: a port is never given twice, even if the OS would offer it again. */
const handedOut = new Set<number>();

async function freePort(): Promise<number> {
  for (;;) {
    const server = createServer();
    server.listen(0, HOST);
    await once(server, 'listening');
    const address = server.address();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (typeof address !== 'object' || address === null) throw new Error('no port');
    if (handedOut.has(address.port)) continue;
    handedOut.add(address.port);
    return address.port;
  }
}

/** The first of `candidates` that exists, or an error that says which package to install. */
function binary(candidates: string[], apt: string): string {
  const found = candidates.find((candidate) => existsSync(candidate));
  if (!found) throw new Error(`${path.basename(candidates[0] ?? apt)} is not installed: apt-get install ${apt}`);
  return found;
}

const redisServer = () => binary(['/usr/bin/redis-server', '/usr/local/bin/redis-server'], 'redis-server');
const redisCli = () => binary(['/usr/bin/redis-cli', '/usr/local/bin/redis-cli'], 'redis-tools');
const redisSentinel = () => binary(['/usr/bin/redis-sentinel', '/usr/local/bin/redis-sentinel'], 'redis-sentinel');
const pgbouncerBinary = () => binary(['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer'], 'pgbouncer');

/** PostgreSQL's server binaries: the newest /usr/lib/postgresql/<version>/bin that has initdb. */
function postgresBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((version) => existsSync(path.join(root, version, 'bin', 'initdb'))) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest) throw new Error(`no ${root}/*/bin/initdb: apt-get install postgresql`);
  return path.join(root, newest, 'bin');
}

interface User {
  uid: number;
  gid: number;
}

/** initdb, postgres and pgbouncer refuse to run as root: they run as the `postgres` OS user. */
async function postgresUser(): Promise<User> {
  if (process.getuid?.() !== 0) return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  const uid = Number((await run('id', ['-u', 'postgres'])).trim());
  const gid = Number((await run('id', ['-g', 'postgres'])).trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error('no `postgres` OS user (it comes with the postgresql package)');
  return { uid, gid };
}

/** Runs a command to its end; resolves with its stdout, or throws with what it printed. */
function run(command: string, args: string[], options: { user?: User; cwd?: string; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { cwd: options.cwd, uid: options.user?.uid, gid: options.user?.gid, timeout: options.timeoutMs ?? 60_000, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${path.basename(command)} ${args.join(' ')} failed: ${(stderr || stdout || err.message).trim()}`));
        else resolve(stdout);
      },
    );
  });
}

/** A child process this module started, with where its output goes. */
interface Managed {
  name: string;
  child: ChildProcess;
  logFile: string;
  exited: Promise<void>;
}

const running = (managed: Managed) => managed.child.pid !== undefined && managed.child.exitCode === null && managed.child.signalCode === null;

function start(name: string, command: string, args: string[], logFile: string, user?: User): Managed {
  const out = openSync(logFile, 'a');
  try {
    const child = spawn(command, args, { stdio: ['ignore', out, out], uid: user?.uid, gid: user?.gid, cwd: path.dirname(logFile) });
    const exited = new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      // A spawn that fails (ENOENT …) emits 'error' and never 'exit'.
      child.once('error', () => resolve());
    });
    return { name, child, logFile, exited };
  } finally {
    closeSync(out);
  }
}

/** Sends `signal` to the process (by its PID) and waits for it to exit; SIGKILL after `graceMs`. */
async function end(managed: Managed, signal: NodeJS.Signals = 'SIGKILL', graceMs = 5_000): Promise<void> {
  if (running(managed)) {
    managed.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([managed.exited.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)))]);
    clearTimeout(timer);
    if (late && running(managed)) managed.child.kill('SIGKILL');
  }
  await managed.exited;
}

/**
 * Polls `probe` until it returns a value (not undefined/false/null). Throws, naming a log file, when `watch`ed
 * processes exit first or the time runs out.
 */
async function waitFor<T>(
  what: string,
  logFile: string,
  probe: () => Promise<T | undefined | null | false>,
  options: { timeoutMs?: number; watch?: Managed[]; intervalMs?: number } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? START_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    const dead = options.watch?.find((managed) => !running(managed));
    if (dead) throw new Error(`${dead.name} exited (${dead.child.exitCode ?? dead.child.signalCode}) while waiting for ${what} (its log: ${dead.logFile})`);
    try {
      const value = await probe();
      if (value !== undefined && value !== null && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      throw new Error(`${what}: not within ${timeoutMs} ms${why} (see ${logFile})`);
    }
    await sleep(options.intervalMs ?? 100);
  }
}

/** One command on a fresh connection to 127.0.0.1:port, without retries: a dead server fails at once. */
async function redisCall(port: number, command: string, ...args: (string | number)[]): Promise<unknown> {
  const client = new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    enableReadyCheck: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1_000,
    commandTimeout: 2_000,
    disableClientInfo: true,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return await client.call(command, args);
  } finally {
    client.disconnect();
  }
}

/** INFO's and CLUSTER INFO's "key:value" lines. */
function infoFields(reply: unknown): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of String(reply).split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

/** SENTINEL REPLICAS / SENTINELS: an array of flat [field, value, …] arrays. */
function sentinelEntries(reply: unknown): Map<string, string>[] {
  if (!Array.isArray(reply)) return [];
  return reply.map((entry: unknown) => {
    const fields = new Map<string, string>();
    if (Array.isArray(entry)) for (let i = 0; i + 1 < entry.length; i += 2) fields.set(String(entry[i]), String(entry[i + 1]));
    return fields;
  });
}

function healthy(fields: Map<string, string>): boolean {
  const flags = (fields.get('flags') ?? '').split(',');
  return !flags.some((flag) => ['s_down', 'o_down', 'disconnected'].includes(flag));
}

async function sentinelPrimary(sentinelPort: number): Promise<number> {
  const reply = await redisCall(sentinelPort, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_NAME);
  if (!Array.isArray(reply) || reply.length < 2) throw new Error(`sentinel :${sentinelPort} knows no primary named ${SENTINEL_NAME}`);
  return Number(reply[1]);
}

async function isMaster(port: number): Promise<boolean> {
  const role = await redisCall(port, 'ROLE').catch(() => undefined);
  return Array.isArray(role) && role[0] === 'master';
}

function redisServerArgs(dir: string, port: number): string[] {
  // Any server may become a primary; a replica's full sync then starts at once instead of after the default 5 s delay.
  return [
    '--port',
    String(port),
    '--bind',
    HOST,
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'no',
    '--repl-diskless-sync-delay',
    '0',
    '--daemonize',
    'no',
    '--logfile',
    '',
  ];
}

/** Removes a scratch directory once its processes are gone; a failed start keeps it, so the logs the error names stay readable. */
async function cleanUp(managed: Managed[], dir: string, { keepDir = false } = {}): Promise<void> {
  await Promise.all(managed.map((one) => end(one)));
  if (!keepDir) await rm(dir, { recursive: true, force: true });
}

/** One Redis primary, one replica and three sentinels monitoring it as `authkit` (quorum 2). */
export async function startSentinelTopology(): Promise<SentinelTopology> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'authkit-sentinel-'));
  const managed: Managed[] = [];
  const servers = new Map<number, Managed>();
  try {
    const sentinelBinary = redisSentinel();
    const primary = await freePort();
    const replica = await freePort();
    for (const port of [primary, replica]) {
      const args = redisServerArgs(dir, port);
      if (port === replica) args.push('--replicaof', HOST, String(primary));
      const server = start(`redis-server :${port}`, redisServer(), args, path.join(dir, `redis-${port}.log`));
      managed.push(server);
      servers.set(port, server);
    }
    const replicaLog = path.join(dir, `redis-${replica}.log`);
    await waitFor(
      'the replica in sync with the primary',
      replicaLog,
      async () => infoFields(await redisCall(replica, 'INFO', 'replication')).get('master_link_status') === 'up',
      {
        watch: managed,
      },
    );

    const sentinelPorts = [await freePort(), await freePort(), await freePort()];
    for (const port of sentinelPorts) {
      const conf = path.join(dir, `sentinel-${port}.conf`);
      // Sentinel rewrites its own config file (the replicas and sentinels it learns of), so each gets one of its own.
      await writeFile(
        conf,
        [
          `port ${port}`,
          `bind ${HOST}`,
          'daemonize no',
          'logfile ""',
          `dir ${dir}`,
          'sentinel resolve-hostnames no',
          'sentinel announce-hostnames no',
          `sentinel monitor ${SENTINEL_NAME} ${HOST} ${primary} 2`,
          `sentinel down-after-milliseconds ${SENTINEL_NAME} 1000`,
          `sentinel failover-timeout ${SENTINEL_NAME} 5000`,
          `sentinel parallel-syncs ${SENTINEL_NAME} 1`,
          '',
        ].join('\n'),
      );
      managed.push(start(`redis-sentinel :${port}`, sentinelBinary, [conf], path.join(dir, `sentinel-${port}.log`)));
    }
    // Every sentinel must see the primary, a healthy replica and both other sentinels before a failover can be voted.
    for (const port of sentinelPorts) {
      await waitFor(
        `sentinel :${port} to know the primary, the replica and the other sentinels`,
        path.join(dir, `sentinel-${port}.log`),
        async () => {
          if ((await sentinelPrimary(port)) !== primary) return false;
          const replicas = sentinelEntries(await redisCall(port, 'SENTINEL', 'REPLICAS', SENTINEL_NAME));
          const sentinels = sentinelEntries(await redisCall(port, 'SENTINEL', 'SENTINELS', SENTINEL_NAME));
          const replicaOk = replicas.some((entry) => entry.get('port') === String(replica) && healthy(entry) && entry.get('master-link-status') === 'ok');
          return replicaOk && sentinels.length === sentinelPorts.length - 1 && sentinels.every(healthy);
        },
        { watch: managed },
      );
    }

    const sentinels = sentinelPorts.map((port) => ({ host: HOST, port }));
    const primaryPort = async (): Promise<number> => {
      let lastError: unknown;
      for (const port of sentinelPorts) {
        try {
          return await sentinelPrimary(port);
        } catch (err) {
          lastError = err;
        }
      }
      throw new Error(`no sentinel answered: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
    };
    let stopping: Promise<void> | undefined;
    return {
      name: SENTINEL_NAME,
      sentinels,
      sentinelsSetting: sentinels.map(({ host, port }) => `${host}:${port}`).join(','),
      primaryPort,
      async killPrimary() {
        const port = await primaryPort();
        const server = servers.get(port);
        if (!server) throw new Error(`the sentinels report a primary on :${port}, which is not one of this topology's servers`);
        await end(server, 'SIGKILL');
        return port;
      },
      waitForNewPrimary(oldPort, timeoutMs = 30_000) {
        return waitFor(
          `a primary other than :${oldPort}`,
          path.join(dir, `sentinel-${sentinelPorts[0]}.log`),
          async () => {
            const reported = await Promise.all(sentinelPorts.map(sentinelPrimary));
            const port = reported[0];
            if (port === undefined || port === oldPort || reported.some((other) => other !== port)) return undefined;
            return (await isMaster(port)) ? port : undefined;
          },
          { timeoutMs },
        );
      },
      stop() {
        stopping ??= cleanUp(managed, dir);
        return stopping;
      },
    };
  } catch (err) {
    await cleanUp(managed, dir, { keepDir: true });
    throw err;
  }
}

/** Parses CLUSTER SLOTS into [start, end, primary port] ranges. */
function slotRanges(reply: unknown): Array<[number, number, number]> {
  if (!Array.isArray(reply)) throw new Error('CLUSTER SLOTS: not an array');
  return reply.map((range: unknown): [number, number, number] => {
    if (!Array.isArray(range) || !Array.isArray(range[2])) throw new Error('CLUSTER SLOTS: unexpected reply');
    return [Number(range[0]), Number(range[1]), Number((range[2] as unknown[])[1])];
  });
}

/** Six cluster-enabled redis-servers: three primaries with one replica each. */
export async function startRedisCluster(): Promise<RedisClusterTopology> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'authkit-redis-cluster-'));
  const managed: Managed[] = [];
  const byPort = new Map<number, Managed>();
  try {
    const ports: number[] = [];
    for (let i = 0; i < 6; i++) {
      const port = await freePort();
      // The cluster bus gets a free port of its own: the default, port + 10000, may be taken or past 65535.
      const busPort = await freePort();
      const args = [
        ...redisServerArgs(dir, port),
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        path.join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        '1000',
        '--cluster-port',
        String(busPort),
      ];
      const node = start(`redis-server (cluster) :${port}`, redisServer(), args, path.join(dir, `redis-${port}.log`));
      managed.push(node);
      byPort.set(port, node);
      ports.push(port);
    }
    for (const port of ports) {
      await waitFor(`redis-server :${port} to answer`, path.join(dir, `redis-${port}.log`), async () => (await redisCall(port, 'PING')) === 'PONG', {
        watch: managed,
      });
    }
    const createLog = path.join(dir, 'cluster-create.log');
    const created = await run(redisCli(), ['--cluster', 'create', ...ports.map((port) => `${HOST}:${port}`), '--cluster-replicas', '1', '--cluster-yes'], {
      timeoutMs: START_TIMEOUT_MS,
    }).catch(async (err: unknown) => {
      await writeFile(createLog, err instanceof Error ? err.message : String(err));
      throw new Error(`redis-cli --cluster create failed (see ${createLog})`);
    });
    await writeFile(createLog, created);

    await waitFor(
      'cluster_state:ok on all six nodes, every primary with a replica in sync',
      createLog,
      async () => {
        for (const port of ports) {
          const info = infoFields(await redisCall(port, 'CLUSTER', 'INFO'));
          if (info.get('cluster_state') !== 'ok' || info.get('cluster_known_nodes') !== '6') return false;
        }
        const primaries = new Set<string>();
        const replicasOf = new Map<string, number>();
        for (const line of String(await redisCall(ports[0] ?? 0, 'CLUSTER', 'NODES'))
          .trim()
          .split('\n')) {
          const [id = '', address = '', flags = '', master = '', , , , link = '', ...slots] = line.split(' ');
          if (link !== 'connected' || flags.includes('fail')) return false;
          if (flags.includes('master') && slots.length > 0) primaries.add(id);
          if (flags.includes('slave')) {
            replicasOf.set(master, (replicasOf.get(master) ?? 0) + 1);
            const replicaPort = Number(address.split('@')[0]?.split(':')[1]);
            if (infoFields(await redisCall(replicaPort, 'INFO', 'replication')).get('master_link_status') !== 'up') return false;
          }
        }
        return primaries.size === 3 && [...primaries].every((id) => (replicasOf.get(id) ?? 0) >= 1);
      },
      { watch: managed },
    );

    const nodes = ports.map((port) => ({ host: HOST, port }));
    const killed = new Set<number>();
    const alive = () => ports.filter((port) => !killed.has(port));
    let stopping: Promise<void> | undefined;
    return {
      nodesSetting: nodes.map(({ host, port }) => `${host}:${port}`).join(','),
      nodes,
      async primaryForKey(key) {
        let lastError: unknown;
        for (const port of alive()) {
          try {
            const slot = Number(await redisCall(port, 'CLUSTER', 'KEYSLOT', key));
            const range = slotRanges(await redisCall(port, 'CLUSTER', 'SLOTS')).find(([first, last]) => slot >= first && slot <= last);
            if (range) return range[2];
            lastError = new Error(`:${port} has no node serving slot ${slot}`);
          } catch (err) {
            lastError = err;
          }
        }
        throw new Error(`no live node knows who serves ${key}: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
      },
      killNode(port) {
        const node = byPort.get(port);
        if (!node) throw new Error(`:${port} is not one of this cluster's nodes`);
        killed.add(port);
        node.child.kill('SIGKILL');
      },
      async waitForFailover(killedPort, timeoutMs = 30_000) {
        await waitFor(
          `the cluster to fail over from :${killedPort}`,
          path.join(dir, `redis-${alive()[0]}.log`),
          async () => {
            let agreed: string | undefined;
            for (const port of alive()) {
              if (infoFields(await redisCall(port, 'CLUSTER', 'INFO')).get('cluster_state') !== 'ok') return false;
              const ranges = slotRanges(await redisCall(port, 'CLUSTER', 'SLOTS')).sort((a, b) => a[0] - b[0]);
              const covered = ranges.reduce((sum, [first, last]) => sum + last - first + 1, 0);
              if (covered !== 16384 || ranges.some(([, , primary]) => primary === killedPort)) return false;
              // Every survivor routes each slot to the same primary.
              const map = JSON.stringify(ranges);
              if (agreed !== undefined && agreed !== map) return false;
              agreed = map;
            }
            return true;
          },
          { timeoutMs },
        );
      },
      stop() {
        stopping ??= cleanUp(managed, dir);
        return stopping;
      },
    };
  } catch (err) {
    await cleanUp(managed, dir, { keepDir: true });
    throw err;
  }
}

async function selectOne(connectionString: string): Promise<boolean> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 2_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ one: number }>('select 1 as one');
    return rows[0]?.one === 1;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Whether a PID (not our child: pg_ctl's postmaster) is still alive. */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A PostgreSQL server of its own (initdb in a temporary directory, trust auth, user postgres) on a free port. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBin();
  const user = await postgresUser();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'authkit-postgres-'));
  const data = path.join(dir, 'data');
  const logFile = path.join(dir, 'postgres.log');
  const pgCtl = path.join(bin, 'pg_ctl');
  let port = 0;
  const url = () => `postgresql://postgres@${HOST}:${port}/postgres`;
  const postmasterPid = async () => Number((await readFile(path.join(data, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]) || undefined;
  /** pg_ctl stop; then, whatever pg_ctl said, the postmaster's PID is killed and awaited. */
  const shutDown = async (mode: 'fast' | 'immediate') => {
    const pid = await postmasterPid();
    await run(pgCtl, ['-D', data, 'stop', '-m', mode, '-w', '-t', '30'], { user, cwd: dir }).catch(() => {});
    if (pid === undefined) return;
    if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
    await waitFor(`postmaster ${pid} to exit`, logFile, () => Promise.resolve(!pidAlive(pid)), { timeoutMs: 10_000, intervalMs: 50 });
  };
  const startServer = async () => {
    await run(pgCtl, ['-D', data, '-o', `-p ${port} -k ${dir} -c listen_addresses=${HOST}`, '-l', logFile, 'start', '-w', '-t', '60'], {
      user,
      cwd: dir,
    }).catch((err: unknown) => {
      throw new Error(`${err instanceof Error ? err.message : String(err)} (see ${logFile})`);
    });
    await waitFor(`postgres :${port} to answer select 1`, logFile, () => selectOne(url()));
  };
  try {
    await chown(dir, user.uid, user.gid);
    await run(path.join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync'], { user, cwd: dir });
    port = await freePort();
    await startServer();
  } catch (err) {
    await shutDown('immediate');
    throw err;
  }
  let stopping: Promise<void> | undefined;
  return {
    url: url(),
    port,
    async restart({ downMs = 0 } = {}) {
      await shutDown('fast');
      await sleep(downMs);
      await startServer();
    },
    stop() {
      stopping ??= shutDown('immediate').then(() => rm(dir, { recursive: true, force: true }));
      return stopping;
    },
  };
}

export interface PgBouncerOptions {
  /**
   * `server_login_retry`, unset by default (PgBouncer's own 15 s): after a failed connection to the server, PgBouncer
   * waits this long before it tries again, and clients that arrived meanwhile wait with it.
   */
  serverLoginRetrySeconds?: number;
}

/** PgBouncer in transaction mode, trust auth, forwarding every database name to `target`, in the foreground. */
export async function startPgBouncer(target: HostPort, options: PgBouncerOptions = {}): Promise<PgBouncer> {
  const user = await postgresUser();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'authkit-pgbouncer-'));
  const logFile = path.join(dir, 'pgbouncer.log');
  const port = await freePort();
  const url = (database = 'postgres') => `postgresql://postgres@${HOST}:${port}/${database}`;
  const managed: Managed[] = [];
  try {
    await chown(dir, user.uid, user.gid);
    await writeFile(path.join(dir, 'userlist.txt'), '"postgres" ""\n');
    const ini = path.join(dir, 'pgbouncer.ini');
    // Minimal on purpose: no server-side parameters (statement_timeout, options …) that would hide what a client sends.
    await writeFile(
      ini,
      [
        '[databases]',
        `* = host=${target.host} port=${target.port}`,
        '',
        '[pgbouncer]',
        `listen_addr = ${HOST}`,
        `listen_port = ${port}`,
        `unix_socket_dir = ${dir}`,
        'auth_type = trust',
        `auth_file = ${path.join(dir, 'userlist.txt')}`,
        'pool_mode = transaction',
        'max_client_conn = 200',
        'default_pool_size = 20',
        'ignore_startup_parameters = extra_float_digits',
        'server_reset_query =',
        `logfile = ${logFile}`,
        `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
        ...(options.serverLoginRetrySeconds === undefined ? [] : [`server_login_retry = ${options.serverLoginRetrySeconds}`]),
        '',
      ].join('\n'),
    );
    // -q: the log goes to `logfile` only; stdout/stderr (early errors) go to pgbouncer.out.
    managed.push(start(`pgbouncer :${port}`, pgbouncerBinary(), ['-q', ini], path.join(dir, 'pgbouncer.out'), user));
    await waitFor(`pgbouncer :${port} to answer select 1`, logFile, () => selectOne(url()), { watch: managed });
  } catch (err) {
    await cleanUp(managed, dir, { keepDir: true });
    throw err;
  }
  let stopping: Promise<void> | undefined;
  return {
    url,
    port,
    stop() {
      // SIGTERM is PgBouncer 1.18's immediate shutdown.
      stopping ??= Promise.all(managed.map((one) => end(one, 'SIGTERM'))).then(() => rm(dir, { recursive: true, force: true }));
      return stopping;
    },
  };
}
