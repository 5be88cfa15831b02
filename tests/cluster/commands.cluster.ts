// The commands an operator runs, as processes: `npm run cluster` twice on one database, and `npm start`, each stopped
// with SIGTERM sent to npm itself, as a process manager does.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrlFor } from '../support/database-url.js';

const BASE_DATABASE_URL = process.env.DATABASE_URL;
const REDIS_URL = process.env.REDIS_URL;
const ROOT = path.resolve(import.meta.dirname, '../..');

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

/** Runs `npm run <script>` and resolves once its output matches `ready` (with the output so far). */
async function npmUntil(
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
): Promise<{ child: ChildProcess; output: () => string; match: RegExpExecArray }> {
  const child = spawn('npm', args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await expect.poll(() => ready.test(output) || child.exitCode !== null, { timeout: 90_000, interval: 100 }).toBe(true);
  const match = ready.exec(output);
  if (!match) throw new Error(`npm ${args.join(' ')} exited before it was ready:\n${output}`);
  return { child, output: () => output, match };
}

const answers = (url: string) =>
  fetch(url).then(
    (res) => res.status,
    () => 0,
  );

describe.runIf(BASE_DATABASE_URL && REDIS_URL)('the operator’s commands', () => {
  let database: string;
  let scratch: string;
  beforeAll(async () => {
    if (!BASE_DATABASE_URL) return;
    database = `authkit_commands_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: BASE_DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
    scratch = await mkdtemp(path.join(os.tmpdir(), 'authkit-commands-'));
  });
  afterAll(async () => {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('when npm run cluster runs twice on one database and is stopped by SIGTERM to npm, then both runs start and nothing is left behind', async () => {
    const firstInstancePort = await freePort();
    const env = {
      DATABASE_URL: databaseUrlFor(BASE_DATABASE_URL!, database),
      REDIS_URL: REDIS_URL!,
      REDIS_KEY_PREFIX: `${database}:`,
      CLUSTER_SECRETS_FILE: path.join(scratch, 'cluster-secrets.json'),
      LOG_LEVEL: 'warn',
      JWT_SECRET: '',
      KEY_ENCRYPTION_KEY: '',
    };
    for (const run of [1, 2]) {
      const { child, match, output } = await npmUntil(
        ['run', 'cluster', '--', '--instances', '2', '--port', '0', '--first-instance-port', String(firstInstancePort)],
        env,
        /behind nginx at (http:\/\/\S+)/,
      );
      const url = match[1]!;
      expect(await answers(`${url}/health`)).toBe(200);
      expect(await answers(`http://127.0.0.1:${firstInstancePort + 1}/health`)).toBe(200);
      const dir = /logs in (\S+)\)/.exec(output())?.[1];
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      expect(code, output()).toBe(0);
      expect(await answers(`${url}/health`)).toBe(0);
      expect(await answers(`http://127.0.0.1:${firstInstancePort}/health`)).toBe(0);
      if (dir) expect(existsSync(dir)).toBe(false);
      // The generated pair is kept for the next run, which opens the signing keys the first one sealed.
      if (run === 1)
        expect(Object.values(JSON.parse(await readFile(env.CLUSTER_SECRETS_FILE, 'utf8')) as object)).toEqual([
          expect.objectContaining({ KEY_ENCRYPTION_KEY: expect.any(String) }),
        ]);
    }
  });

  it('when npm start is stopped with SIGTERM sent to npm, then the server stops too and frees its port', async () => {
    const port = await freePort();
    const { child, output } = await npmUntil(
      ['start'],
      { PORT: String(port), METRICS_PORT: '0', DATA_DIR: path.join(scratch, 'data'), DATABASE_URL: '', REDIS_URL: '', HOST: '127.0.0.1' },
      /listening on/,
    );
    expect(await answers(`http://127.0.0.1:${port}/health`)).toBe(200);
    child.kill('SIGTERM');
    await once(child, 'exit');
    await expect.poll(() => answers(`http://127.0.0.1:${port}/health`), { timeout: 15_000 }).toBe(0);
    expect(output()).toMatch(/stopped/);
  });

  it('when npm run admin:create runs while the embedded server holds its database, then the running server makes the administrator', async () => {
    const port = await freePort();
    const dataDir = path.join(scratch, 'data-admin');
    const server = { PORT: String(port), METRICS_PORT: '0', DATA_DIR: dataDir, DATABASE_URL: '', REDIS_URL: '', HOST: '127.0.0.1' };
    const { child } = await npmUntil(['start'], server, /listening on/);
    try {
      const created = await npmUntil(
        ['run', 'admin:create', '--', '--email', 'first@example.com', '--username', 'first_admin', '--password', 'the first admin passphrase'],
        server,
        /created administrator|refused|error/i,
      );
      await once(created.child, 'exit');
      expect(created.child.exitCode, created.output()).toBe(0);
      expect(created.output()).toMatch(/created administrator first_admin <first@example.com> \(through the running server\)/);
      const signIn = await fetch(`http://127.0.0.1:${port}/login`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ username: 'first_admin', password: 'the first admin passphrase' }),
      });
      const { access_token: token } = (await signIn.json()) as { access_token: string };
      expect((await fetch(`http://127.0.0.1:${port}/admin/users`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
      expect(existsSync(path.join(dataDir, 'setup-token'))).toBe(false);
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });
});
