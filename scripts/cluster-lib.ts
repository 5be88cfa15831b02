// Starts N built instances on real PostgreSQL and Redis behind nginx (round-robin, no sticky sessions), for
// `npm run cluster` and the cluster test suite.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');

export interface ClusterOptions {
  instances: number;
  /** nginx's port; 0 picks a free one. */
  port: number;
  databaseUrl: string;
  /** Redis by URL; absent, the settings (REDIS_SENTINELS or REDIS_CLUSTER_NODES) come from `env` or this process's. */
  redisUrl?: string;
  /** More settings for every instance (budgets, S3 …), over the cluster's own. */
  env?: Record<string, string>;
  /** Where instances' and nginx's logs go (a new temporary directory by default, removed by `stop`). */
  dir?: string;
  /** The first instance's port (the others follow it); 0 or absent: any free ports. */
  firstInstancePort?: number;
  log?: (line: string) => void;
}

export interface Instance {
  index: number;
  port: number;
  process: ChildProcess;
}

export interface Cluster {
  url: string;
  dir: string;
  instances: Instance[];
  /** SIGKILL one instance, as a crash would. */
  kill(index: number): void;
  stop(): Promise<void>;
}

/** nginx's path, or undefined with a hint when it is not installed. */
export function findNginx(): string | undefined {
  for (const candidate of ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx']) {
    if (spawnSync(candidate, ['-v']).status === 0) return candidate;
  }
  return undefined;
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

/** The message of the last line an instance logged (JSON logs), to say why it stopped in one sentence. */
async function lastLogMessage(logFile: string): Promise<string | undefined> {
  const lines = (await readFile(logFile, 'utf8').catch(() => '')).trim().split('\n');
  for (const line of lines.reverse()) {
    try {
      const entry = JSON.parse(line) as { msg?: string; err?: { message?: string } };
      if (entry.msg) return entry.err?.message ? `${entry.msg}: ${entry.err.message}` : entry.msg;
    } catch {
      // not a JSON line
    }
  }
  return undefined;
}

async function waitUntilReady(url: string, child: ChildProcess, logFile: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      const why = await lastLogMessage(logFile);
      throw new Error(`an instance (${url}) stopped before it was ready${why ? `: ${why}` : ''} (its log: ${logFile})`);
    }
    const ok = await fetch(`${url}/ready`).then(
      (res) => res.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url} was not ready within ${timeoutMs} ms`);
}

function nginxConfig(dir: string, listen: number, upstreams: number[]): string {
  return `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log ${dir}/nginx-access.log;
  client_body_temp_path ${dir}/nginx-body;
  proxy_temp_path ${dir}/nginx-proxy;
  fastcgi_temp_path ${dir}/nginx-fastcgi;
  uwsgi_temp_path ${dir}/nginx-uwsgi;
  scgi_temp_path ${dir}/nginx-scgi;
  # Round-robin, no sticky sessions: every instance must be able to answer every request.
  upstream authkit {
${upstreams.map((port) => `    server 127.0.0.1:${port} max_fails=1 fail_timeout=5s;`).join('\n')}
    keepalive 16;
  }
  server {
    listen 127.0.0.1:${listen};
    client_max_body_size 8m;
    location / {
      proxy_pass http://authkit;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      # The one proxy hop the instances trust (TRUST_PROXY=loopback): they read the client's address from here.
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      # A refused or reset connection (a dead instance) is tried on the next one.
      proxy_next_upstream error timeout http_502;
      proxy_connect_timeout 2s;
      add_header X-Upstream $upstream_addr always;
    }
  }
}
`;
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const nginx = findNginx();
  if (!nginx) throw new Error('nginx is not installed: apt-get install nginx-light (or nginx), then run this again');
  const log = options.log ?? (() => {});
  const scratch = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'authkit-cluster-')));
  await mkdir(dir, { recursive: true });
  const port = options.port || (await freePort());
  const url = `http://localhost:${port}`;
  // Every instance shares one set of secrets (they sign and seal for each other) and one idea of its public URL.
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    NODE_ENV: 'production',
    DATABASE_URL: options.databaseUrl,
    ...(options.redisUrl !== undefined && { REDIS_URL: options.redisUrl }),
    JWT_SECRET: process.env.JWT_SECRET ?? randomBytes(48).toString('base64url'),
    KEY_ENCRYPTION_KEY: process.env.KEY_ENCRYPTION_KEY ?? randomBytes(48).toString('base64url'),
    PUBLIC_URL: url,
    TRUST_PROXY: 'loopback',
    HOST: '127.0.0.1',
    METRICS_PORT: '0',
    LOG_FORMAT: 'json',
    // On one machine the instances share one upload directory, so local storage works across them too.
    UPLOAD_DIR: path.join(dir, 'uploads'),
    ...options.env,
  };

  log(`migrating ${options.databaseUrl.replace(/\/\/[^@]*@/, '//…@')}`);
  const migrate = spawnSync(process.execPath, [path.join(ROOT, 'dist/scripts/db-migrate.js')], { env, encoding: 'utf8' });
  if (migrate.status !== 0) throw new Error(`db-migrate failed: ${migrate.stderr || migrate.stdout}`);

  const instances: Instance[] = [];
  const children: ChildProcess[] = [];
  /** Stops every process; a scratch directory goes too, unless a failed start's logs must stay readable. */
  const stopAll = async ({ keepLogs = false } = {}) => {
    const running = children.filter((child) => child.exitCode === null && child.signalCode === null);
    const exited = running.map((child) => once(child, 'exit'));
    for (const child of running) child.kill('SIGTERM');
    await Promise.all(exited);
    if (scratch && !keepLogs) await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let index = 0; index < options.instances; index++) {
      const instancePort = options.firstInstancePort ? options.firstInstancePort + index : await freePort();
      const { openSync } = await import('node:fs');
      const out = openSync(path.join(dir, `instance-${index}.log`), 'a');
      const child = spawn(process.execPath, [path.join(ROOT, 'dist/src/main.js')], {
        env: { ...env, PORT: String(instancePort), DATA_DIR: path.join(dir, `data-${index}`) },
        stdio: ['ignore', out, out],
      });
      children.push(child);
      instances.push({ index, port: instancePort, process: child });
    }
    await Promise.all(
      instances.map((instance) => waitUntilReady(`http://127.0.0.1:${instance.port}`, instance.process, path.join(dir, `instance-${instance.index}.log`))),
    );
    log(`${instances.length} instances ready on ports ${instances.map((instance) => instance.port).join(', ')}`);

    const conf = path.join(dir, 'nginx.conf');
    await writeFile(
      conf,
      nginxConfig(
        dir,
        port,
        instances.map((instance) => instance.port),
      ),
    );
    const proxy = spawn(nginx, ['-c', conf, '-p', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(proxy);
    const deadline = Date.now() + 10_000;
    while (
      !(await fetch(`${url}/health`).then(
        (res) => res.ok,
        () => false,
      ))
    ) {
      if (proxy.exitCode !== null || Date.now() > deadline) throw new Error(`nginx did not start (see ${dir}/nginx-error.log)`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    log(`nginx on ${url} (logs in ${dir})`);
  } catch (err) {
    await stopAll({ keepLogs: true });
    throw err;
  }

  return {
    url,
    dir,
    instances,
    kill(index) {
      instances[index]?.process.kill('SIGKILL');
    },
    stop: () => stopAll(),
  };
}
