// Three built instances behind nginx (round-robin, no sticky sessions) on real PostgreSQL and Redis, driven only
// over HTTP through nginx's address, as a client of a deployed cluster would.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../../scripts/cluster-lib.js';
import { databaseUrlFor } from '../support/database-url.js';
import { type Answer, callService } from '../support/http-call.js';
import { png } from '../support/images.js';

const BASE_DATABASE_URL = process.env.DATABASE_URL;
const REDIS_URL = process.env.REDIS_URL;
const ROOT = path.resolve(import.meta.dirname, '../..');
/** The per-user budget the burst test spends; sign-in budgets are roomy so the suite's own logins never meet them. */
const ACCOUNT_BUDGET = 5;

describe.runIf(BASE_DATABASE_URL && REDIS_URL)('several instances behind nginx', () => {
  let cluster: Cluster;
  let database: string;
  let s3: S3rver;
  let s3Dir: string;

  beforeAll(async () => {
    if (!BASE_DATABASE_URL || !REDIS_URL) return;
    database = `authkit_cluster_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: BASE_DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
    // Images go to an S3-compatible server all instances share (s3rver, started here).
    s3Dir = await mkdtemp(path.join(os.tmpdir(), 'authkit-cluster-s3-'));
    s3 = new S3rver({ port: 0, address: '127.0.0.1', directory: s3Dir, silent: true, configureBuckets: [{ name: 'cluster-images', configs: [] }] });
    const { port: s3Port } = await s3.run();
    cluster = await startCluster({
      instances: 3,
      port: 0,
      databaseUrl: databaseUrlFor(BASE_DATABASE_URL, database),
      redisUrl: REDIS_URL,
      env: {
        REDIS_KEY_PREFIX: `${database}:`,
        RATE_LIMIT_MAX: '1000',
        RATE_LIMIT_ACCOUNT_MAX: String(ACCOUNT_BUDGET),
        BCRYPT_COST: '10',
        LOG_LEVEL: 'warn',
        STORAGE: 's3',
        S3_BUCKET: 'cluster-images',
        S3_ENDPOINT: `http://127.0.0.1:${s3Port}`,
        S3_FORCE_PATH_STYLE: 'true',
        AWS_ACCESS_KEY_ID: 'S3RVER',
        AWS_SECRET_ACCESS_KEY: 'S3RVER',
      },
    });
  });

  afterAll(async () => {
    await cluster?.stop();
    await s3?.close();
    if (s3Dir) await rm(s3Dir, { recursive: true, force: true });
    if (!BASE_DATABASE_URL || !database) return;
    const admin = new pg.Client({ connectionString: BASE_DATABASE_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  });

  const call = (method: string, route: string, options: Parameters<typeof callService>[3] = {}): Promise<Answer> =>
    callService(cluster.url, method, route, options);

  async function account() {
    const username = `c_${randomBytes(5).toString('hex')}`;
    const password = 'cluster test passphrase';
    const registered = await call('POST', '/register', { body: { username, email: `${username}@example.com`, password } });
    expect(registered.status).toBe(201);
    const login = await call('POST', '/login', { body: { username, password } });
    expect(login.status).toBe(200);
    return { username, password, registered, login, token: login.body.access_token as string, refresh: login.body.refresh_token as string };
  }

  it('when a person registers on one instance, then they log in on another, and every instance knows them', async () => {
    const { registered, login, token } = await account();
    const answers = await Promise.all([1, 2, 3, 4, 5, 6].map(() => call('GET', '/mfa', { token })));

    expect(registered.upstream).not.toBe(login.upstream);
    expect(answers.every((answer) => answer.status === 200)).toBe(true);
    expect(new Set(answers.map((answer) => answer.upstream)).size).toBe(3);
  });

  it('when a user logs out on one instance, then the token is refused by all of them', async () => {
    const { token } = await account();
    const logout = await call('POST', '/logout', { token });
    const after = await Promise.all([1, 2, 3, 4, 5, 6].map(() => call('GET', '/mfa', { token })));

    expect(logout.status).toBe(204);
    expect(after.map((answer) => answer.status)).toEqual([401, 401, 401, 401, 401, 401]);
    expect(new Set(after.map((answer) => answer.upstream)).size).toBe(3);
  });

  it(`when 50 requests burst over the instances, then exactly the budget of ${ACCOUNT_BUDGET} gets through`, async () => {
    const { token } = await account();
    const burst = await Promise.all(Array.from({ length: 50 }, () => call('GET', '/protected', { token })));

    expect(burst.filter((answer) => answer.status === 200)).toHaveLength(ACCOUNT_BUDGET);
    expect(burst.filter((answer) => answer.status === 429)).toHaveLength(50 - ACCOUNT_BUDGET);
    expect(new Set(burst.map((answer) => answer.upstream)).size).toBe(3);
  });

  it('when tabs refresh one token at once on different instances, then they all get the one successor', async () => {
    const { refresh } = await account();
    const answers = await Promise.all([1, 2, 3, 4, 5, 6].map(() => call('POST', '/refresh', { body: { refresh_token: refresh } })));

    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(new Set(answers.map((answer) => answer.body.refresh_token)).size).toBe(1);
    expect(new Set(answers.map((answer) => answer.upstream)).size).toBeGreaterThan(1);
  });

  it('when an image is uploaded through one instance, then the others list and serve it', async () => {
    const { token } = await account();
    const form = new FormData();
    const image = png(7, 3);
    form.append('image', new Blob([new Uint8Array(image)], { type: 'image/png' }), 'wide.png');
    const upload = await call('POST', '/images', { token, form });
    const lists = await Promise.all([1, 2, 3].map(() => call('GET', '/images', { token })));
    const downloads = await Promise.all(
      [1, 2, 3].map(async () => {
        const res = await fetch(`${cluster.url}${String(upload.body.url)}`);
        return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()), upstream: res.headers.get('x-upstream') };
      }),
    );

    expect(upload.status).toBe(201);
    expect(lists.every((list) => (list.body.images as unknown[]).length === 1)).toBe(true);
    // Stored re-encoded without metadata: every instance serves the bytes the upload described.
    const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
    expect(downloads.every((download) => download.status === 200 && sha256(download.bytes) === upload.body.sha256)).toBe(true);
    expect(new Set([upload.upstream, ...downloads.map((download) => download.upstream)]).size).toBeGreaterThan(1);
  });

  it('when the rate-limit script runs through nginx, then it reports that the limit held', async () => {
    const child = spawn(
      process.execPath,
      [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), path.join(ROOT, 'scripts/rate-limit-test.ts'), '--url', cluster.url, '--requests', '10'],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));

    expect(code, output).toBe(0);
    expect(output).toContain('PASS: the limit held');
    expect(output).toMatch(new RegExp(`advertised limit: ${ACCOUNT_BUDGET}; allowed: ${ACCOUNT_BUDGET}; rate limited: 5`));
  });

  it('when one instance is killed mid-run, then the others keep answering, with no failed request but those it held', async () => {
    const { token } = await account();
    const statuses: number[] = [];
    let killed = false;
    // Four clients, each asking in turn; the instance dies a third of the way through.
    await Promise.all(
      [0, 1, 2, 3].map(async () => {
        for (let i = 0; i < 30; i++) {
          if (!killed && statuses.length >= 40) {
            killed = true;
            cluster.kill(2);
          }
          statuses.push((await call('GET', '/health', { token })).status);
        }
      }),
    );

    const failed = statuses.filter((status) => status !== 200);
    expect(statuses).toHaveLength(120);
    // At most the requests that instance held at the moment it died (one per client); nginx retries refused ones.
    expect(failed.length).toBeLessThanOrEqual(4);
    expect(cluster.instances[2]?.process.signalCode).toBe('SIGKILL');
  });
});
