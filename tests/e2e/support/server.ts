// Starts the real server (src/main.ts, as `npm run dev` would) as its own process on a free port, embedded, with a
// fresh data directory: the browser tests reach it over HTTP only, as a person's browser would.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** E2E_SERVER_ROOT runs another checkout's server against this page (its public/ a link to this one's). */
const ROOT = process.env.E2E_SERVER_ROOT ?? path.resolve(import.meta.dirname, '../../..');

export interface RunningServer {
  /** http://localhost:PORT: passkeys need the page on localhost, and emailed links name this address. */
  url: string;
  /** Where the embedded server writes its outbox (DATA_DIR/outbox). */
  dataDir: string;
  stop(): Promise<void>;
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/** Ports handed to a server of this run: two servers starting at once never get the same one. */
const reserved = new Set<number>();

/** The first free port from `from` on (E2E_PORT_BASE moves the range; 4100 by default), reserved before it is probed. */
async function freePort(from: number): Promise<number> {
  for (let port = from; port < from + 100; port++) {
    if (reserved.has(port)) continue;
    reserved.add(port);
    if (await portIsFree(port)) return port;
    reserved.delete(port);
  }
  throw new Error(`no free port in ${from}-${from + 99}`);
}

async function waitUntilReady(url: string, child: ChildProcess, log: () => string, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the server exited (${child.exitCode ?? child.signalCode}):\n${log()}`);
    try {
      if ((await fetch(`${url.replace('localhost', '127.0.0.1')}/ready`)).ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`the server did not become ready within ${timeoutMs} ms:\n${log()}`);
}

/**
 * Starts one server. `env` adds to (or overrides) settings roomy enough for a scripted visit: a cheap bcrypt cost,
 * and an outbox cap that never drops the links the tests read.
 */
export async function startServer(env: Record<string, string> = {}): Promise<RunningServer> {
  const port = await freePort(Number(process.env.E2E_PORT_BASE ?? 4100));
  const url = `http://localhost:${port}`;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'authkit-e2e-'));
  // Embedded whatever the calling shell has: these servers must not migrate or fill a shared database.
  const { DATABASE_URL: _db, REDIS_URL: _redis, ...inherited } = process.env;
  const child = spawn(path.join(ROOT, 'node_modules/.bin/tsx'), ['src/main.ts'], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...inherited,
      NODE_ENV: 'test',
      PORT: String(port),
      HOST: '127.0.0.1',
      METRICS_PORT: '0',
      DATA_DIR: dataDir,
      BCRYPT_COST: '4',
      PASSWORD_HASH_THREADS: '1',
      LOG_LEVEL: 'warn',
      PUBLIC_URL: url,
      WEBAUTHN_ORIGINS: url,
      EMAIL_PER_ADDRESS_MAX: '100',
      ...env,
    },
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  /** Signals the server's process group (tsx and the server it runs); a group already gone is fine. */
  const signal = (name: NodeJS.Signals) => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, name);
    } catch {
      // Already exited.
    }
  };
  // A runner that dies without its afterAll still takes the server with it.
  const onExit = () => signal('SIGKILL');
  process.once('exit', onExit);

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      signal('SIGTERM');
      const timer = setTimeout(() => signal('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    process.off('exit', onExit);
    reserved.delete(port);
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    await waitUntilReady(url, child, () => output, 120_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, dataDir, stop };
}
