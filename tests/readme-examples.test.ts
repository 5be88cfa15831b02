// The documentation's shell examples, run in order as written by bash against a freshly started built server: the
// README's main calls, then the walk-through (the sections docs/README.md lists, in that order). Every command exits 0
// and answers with the status, body and headers written under it, so neither the README nor docs/ can drift.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mismatches, parsePattern } from './support/readme-answer-pattern.js';
import { walkThrough } from './support/docs-pages.js';
import { type Backend, type ReadmeBlock, type ReadmeStep, section, shellBlocks } from './support/readme-blocks.js';
import { budgetProblems, stepProblems, where } from './support/readme-checks.js';
import { runSteps, type StepRun } from './support/readme-run.js';
import { databaseUrlFor } from './support/database-url.js';

const ROOT = path.resolve(import.meta.dirname, '..');
/**
 * Blocks of the walk-through shown but not run here (passkey ceremonies, a second way to do what the run did, npm
 * scripts that need the server stopped, a sign-in at an outside provider, which needs the provider and a browser: that
 * flow runs in tests/federation.test.ts).
 */
const MAX_NO_RUN_BLOCKS = 4;
/**
 * The steps the walk-through had when it moved from the README into docs/ (104, plus the README's new main calls):
 * fewer means an example stopped running.
 */
const MIN_STEPS = 112;
const BUILD_TIMEOUT_MS = 240_000;
const BACKEND: Backend = process.env.DATABASE_URL && process.env.REDIS_URL ? 'real services' : 'embedded';
/** What the reader's project directory holds that the server and `npm run …` need (linked, not copied). */
const PROJECT_ENTRIES = ['package.json', 'node_modules', 'dist', 'src', 'scripts', 'prisma', 'public', 'tsconfig.json'];

/** A free port in the range this suite's servers use (4200-4299), from a random start so parallel runs rarely meet. */
async function freePort(): Promise<number> {
  const offset = randomBytes(1)[0] as number;
  for (let i = 0; i < 100; i++) {
    const port = 4200 + ((offset + i) % 100);
    const free = await new Promise<boolean>((resolve) => {
      const probe = createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port in 4200-4299');
}

/** The environment of the reader's shell and server: this one's, without the suite's own settings. */
function readerEnvironment(settings: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key === 'NODE_ENV' || key === 'DATABASE_URL' || key === 'REDIS_URL' || key.startsWith('VITEST')) delete env[key];
  return { ...env, ...settings };
}

async function waitUntilReady(url: string, server: ChildProcess, logFile: string): Promise<void> {
  // A deadline for a broken start only: a slow machine waits longer, it does not fail.
  for (let tries = 0; tries < 600; tries++) {
    if (server.exitCode !== null) throw new Error(`the server stopped before it was ready:\n${await readFile(logFile, 'utf8')}`);
    if (
      await fetch(`${url}/ready`).then(
        (res) => res.ok,
        () => false,
      )
    )
      return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`the server was not ready within two minutes:\n${await readFile(logFile, 'utf8')}`);
}

interface Run {
  blocks: ReadmeBlock[];
  steps: ReadmeStep[];
  runs: StepRun[];
}

describe.sequential(`the README's and docs' examples, run in order (${BACKEND})`, () => {
  let scratch: string;
  let server: ChildProcess | undefined;
  let database: string | undefined;
  let redisPrefix: string | undefined;
  let run: Run;

  beforeAll(async () => {
    // What the examples ask a reader to have; on a fresh machine: apt-get install jq curl python3.
    await promisify(execFile)('bash', ['-c', 'for tool in curl jq python3; do command -v "$tool" >/dev/null || { echo "$tool"; exit 1; }; done']).catch(
      (err: { stdout?: string }) => {
        throw new Error(`the documentation's examples need ${err.stdout?.trim() ?? 'a tool'} on the PATH (apt-get install jq curl python3)`);
      },
    );
    await promisify(execFile)(process.execPath, ['scripts/build-if-stale.mjs'], { cwd: ROOT }).catch((err: { stdout?: string; stderr?: string }) => {
      throw new Error(`npm run build failed:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
    });
    // The reader's project directory: the project's files linked in, and the data directory, uploads and the photo
    // the examples upload of its own.
    scratch = await mkdtemp(path.join(os.tmpdir(), 'authkit-readme-'));
    const project = path.join(scratch, 'project');
    await mkdir(project);
    for (const entry of PROJECT_ENTRIES) await symlink(path.join(ROOT, entry), path.join(project, entry));
    await sharp({ create: { width: 800, height: 600, channels: 3, background: '#5a7fa8' } })
      .jpeg()
      .toFile(path.join(project, 'photo.jpg'));

    const port = await freePort();
    const settings: Record<string, string> = {
      PORT: String(port),
      HOST: '127.0.0.1',
      METRICS_PORT: '0',
      // Settings the documentation describes: quicker hashing, and budgets that a run taking seconds never meets (whether
      // a reader at the default budgets would meet one is checked separately, from the RateLimit-Policy headers).
      BCRYPT_COST: '10',
      RATE_LIMIT_MAX: '10000',
      EXPENSIVE_DELAY_MS: '200',
    };
    if (BACKEND === 'real services') {
      const baseUrl = process.env.DATABASE_URL as string;
      database = `authkit_readme_${randomBytes(4).toString('hex')}`;
      const admin = new pg.Client({ connectionString: baseUrl });
      await admin.connect();
      await admin.query(`CREATE DATABASE "${database}"`);
      await admin.end();
      redisPrefix = `authkit-readme-${database}:`;
      Object.assign(settings, {
        DATABASE_URL: databaseUrlFor(baseUrl, database),
        REDIS_URL: process.env.REDIS_URL as string,
        REDIS_KEY_PREFIX: redisPrefix,
        MIGRATE_ON_START: 'true',
      });
    }
    const env = readerEnvironment(settings);
    const logFile = path.join(scratch, 'server.log');
    await writeFile(logFile, '');
    const { openSync } = await import('node:fs');
    const log = openSync(logFile, 'a');
    server = spawn(process.execPath, [path.join(ROOT, 'dist/src/main.js')], { cwd: project, env, stdio: ['ignore', log, log] });
    await waitUntilReady(`http://127.0.0.1:${port}`, server, logFile);

    // The pages address a default server; this one listens on its own port.
    const blocks = walkThrough((markdown) => markdown.replaceAll('localhost:3000', `localhost:${port}`)).flatMap((part) => part.blocks);
    const steps = blocks.filter((block) => !block.noRun).flatMap((block) => block.steps);
    const recordDir = path.join(scratch, 'record');
    await mkdir(recordDir);
    const runs = await runSteps(steps, { cwd: project, env, recordDir, timeoutMs: 150_000 });
    run = { blocks, steps, runs };
  }, BUILD_TIMEOUT_MS + 300_000);

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = once(server, 'exit');
      server.kill('SIGTERM');
      const timer = setTimeout(() => server?.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    if (database) {
      const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      await admin.end();
    }
    if (redisPrefix && process.env.REDIS_URL) {
      const redis = new Redis(process.env.REDIS_URL);
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${redisPrefix}*`, 'COUNT', 500);
        if (keys.length > 0) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
      redis.disconnect();
    }
    // README_EXAMPLES_KEEP=1 keeps the server's log and each step's output and answers for a look after a failure.
    if (scratch && !process.env.README_EXAMPLES_KEEP) await rm(scratch, { recursive: true, force: true });
    else if (scratch) console.log(`kept ${scratch}`);
  }, 60_000);

  it('when every runnable block of the walk-through runs in order, then each command exits 0 and answers as its page says', () => {
    const problems = run.steps.flatMap((step, index) =>
      stepProblems(step, run.runs[index] as StepRun, BACKEND).map((problem) => `${where(step)}\n    ${problem}`),
    );

    expect(run.steps.length).toBeGreaterThanOrEqual(MIN_STEPS);
    expect(problems).toEqual([]);
  });

  it('when a reader pastes the examples quickly at the default budgets, then the pauses the pages ask for keep them under every budget', () => {
    const counted = run.runs.flatMap((stepRun) => stepRun.calls).filter((call) => call.headers.has('ratelimit-policy'));

    expect(counted.length).toBeGreaterThan(20);
    expect(budgetProblems(run.steps, run.runs)).toEqual([]);
  });

  it(`when a block cannot run in a shell, then it is marked no-run, and there are at most ${MAX_NO_RUN_BLOCKS}`, () => {
    const noRun = run.blocks.filter((block) => block.noRun).map((block) => `${block.file} line ${block.line} (${block.heading})`);

    expect(noRun.length, noRun.join('\n')).toBeLessThanOrEqual(MAX_NO_RUN_BLOCKS);
  });
});

describe('the notation of the examples, and its checks', () => {
  it('when an answer has a wrong value, a missing or an undocumented key, then each is named', () => {
    const pattern = parsePattern('{"status":"ready","checks":{"database":"up","redis":"in-process" | "up"},"id"}');

    expect(mismatches(pattern, { status: 'ready', checks: { database: 'up', redis: 'up' }, id: 1 })).toEqual([]);
    expect(mismatches(pattern, { status: 'ready', checks: { database: 'down', redis: 'down' }, extra: true })).toEqual([
      '$.checks.database: expected "up", got "down"',
      '$.checks.redis: none of the documented values matches "down"',
      '$.id: documented but absent',
      '$.extra: in the answer but not documented (add it, or …)',
    ]);
  });

  it('when a pattern uses …, then it stands for any text, any value, or more entries', () => {
    const pattern = parsePattern('{"access_token":"eyJ…","user":{…},"roles":["user",…],"url":"/images/…/content?k=1&sig=…",…}');

    expect(mismatches(pattern, { access_token: 'eyJhbGc', user: { id: 1 }, roles: ['user', 'admin'], url: '/images/a/content?k=1&sig=x', more: 1 })).toEqual(
      [],
    );
    expect(mismatches(pattern, { access_token: 'rt_x', user: [], roles: ['admin'], url: '/images/a/content?k=2&sig=x' })).toHaveLength(4);
  });

  it('when a block documents answers, headers, prints and pauses, then its steps carry them', () => {
    const markdown = [
      '## Endpoints',
      '```sh',
      'curl -s localhost:3000/ready \\',
      '  -H "X: 1"   # 200 {"status":"ready",',
      '#   "checks":{…}}',
      '#     Cache-Control: no-store   (always)',
      '# Wait a minute here',
      'f() { echo "{#}"',
      '}',
      'claims "$T" | jq -c .amr   # prints ["pwd"]',
      'curl -s localhost:3000/x',
      '# embedded: 404: gone',
      '# real services: 204',
      '```',
      '```sh no-run',
      'curl -s localhost:3000/passkeys   # 200 {…}',
      '```',
    ].join('\n');

    const blocks = shellBlocks(section(markdown, 'Endpoints'));

    expect(blocks.map((block) => block.noRun)).toEqual([false, true]);
    const [ready, fn, claims, gone] = blocks[0]?.steps ?? [];
    expect(ready?.answers).toEqual([
      { line: 4, status: 200, backend: undefined, body: expect.anything(), headers: [{ name: 'Cache-Control', value: 'no-store' }] },
    ]);
    expect(mismatches(ready?.answers[0]?.body ?? { kind: 'any' }, { status: 'ready', checks: {} })).toEqual([]);
    expect(fn?.command).toBe('f() { echo "{#}"\n}');
    expect(fn?.pauseBefore).toBe(true);
    expect(claims?.prints).toEqual({ kind: 'array', items: [{ kind: 'string', parts: ['pwd'] }], open: false });
    expect(gone?.answers.map((answer) => [answer.backend, answer.status])).toEqual([
      ['embedded', 404],
      ['real services', 204],
    ]);
  });

  it('when a step answers another status, misses a documented header or exits non-zero, then each is a problem', () => {
    const [step] =
      shellBlocks(
        section(['## Endpoints', '```sh', 'curl -s localhost:3000/ready   # 200 {"status":"ready",…}', '#     X-Cache: HIT', '```'].join('\n'), 'Endpoints'),
      )[0]?.steps ?? [];
    const answered = (status: number, exit = 0): StepRun => ({
      exit,
      stdout: '',
      stderr: 'boom',
      calls: [{ status, headers: new Map([['x-cache', 'MISS']]), body: '{"status":"ready"}', args: [] }],
    });

    expect(stepProblems(step as ReadmeStep, answered(503, 7), 'embedded')).toEqual([
      'exited 7: boom',
      'answered 503 where the page says 200: {"status":"ready"}',
      'header X-Cache: the page says "HIT", the answer has "MISS"',
    ]);
  });

  it('when a sixth request meets a budget of five with no pause before it, then it is named, and a pause clears it', () => {
    const steps = [1, 2, 3, 4, 5, 6].map((line): ReadmeStep => ({
      line,
      heading: 'Accounts',
      command: `curl -s localhost:3000/login # ${line}`,
      answers: [],
      pauseBefore: false,
    }));
    const runs = steps.map((): StepRun => ({
      exit: 0,
      stdout: '',
      stderr: '',
      calls: [{ status: 200, headers: new Map([['ratelimit-policy', '"auth"; q=10000; w=60; pk=:abc:']]), body: '', args: [] }],
    }));

    expect(budgetProblems(steps, runs)).toEqual([
      'README.md line 6 (Accounts): curl -s localhost:3000/login # 6: request 6 on the "auth" budget (5 a minute) since the last pause',
    ]);
    expect(
      budgetProblems(
        steps.map((step) => ({ ...step, pauseBefore: step.line === 4 })),
        runs,
      ),
    ).toEqual([]);
  });
});
