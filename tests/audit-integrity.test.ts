import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import request from 'supertest';
import { describe, expect, inject, it } from 'vitest';
import { type Clock, ManualClock } from '../src/core/clock.js';
import { type Database, openDatabase } from '../src/core/db.js';
import { applyMigrations, MIGRATIONS_DIR } from '../src/core/db/schema-engine.js';
import { Metrics } from '../src/core/metrics.js';
import { GENESIS_HASH, verifyAuditChain } from '../src/features/audit/audit-chain.js';
import { AuditLog, pruneAuditEvents } from '../src/features/audit/audit-log.js';
import { PrismaClient } from '../src/generated/prisma/client.js';
import { bearer, createAdmin, login, registerAndLogin, uniqueName } from './support/accounts.js';
import { databaseUrlFor } from './support/database-url.js';
import { type Backends, buildApp, silentLogger, withOwnBackends } from './support/test-app.js';

const DAY_MS = 24 * 60 * 60_000;
const ROOT = path.resolve(import.meta.dirname, '..');
const CHAIN_MIGRATION = '20261207030616_audit_hash_chain';

function auditLog(db: Database, clock: Clock = new ManualClock()) {
  const metrics = new Metrics();
  return { log: new AuditLog(db.prisma, clock, metrics, silentLogger), metrics };
}

/** Writes `count` events one after another (so their seq follows the call order), with nulls, non-ASCII and JSON details. */
async function writeEvents(log: AuditLog, count: number, label = 'e'): Promise<void> {
  for (let i = 0; i < count; i++) {
    log.record(
      {
        type: 'session.sign_in_failed',
        targetId: i % 2 === 0 ? null : '6f1c2d3e-4f50-4617-8a9b-0c1d2e3f4a5b',
        details: { reason: 'wrong_password', method: 'password', n: i + 0.25, label, ok: false, none: null },
      },
      { ip: '127.0.0.1', userAgent: i % 3 === 0 ? undefined : `Tests/1.0 (ünïcödé ✓ ${label}${i})`, requestId: `${label}-${i}` },
    );
    await log.settled();
  }
}

async function chain(db: Database) {
  return db.prisma.$queryRaw<
    Array<{ seq: string; id: string; prev_hash: string; hash: string }>
  >`SELECT seq::text AS seq, id::text AS id, prev_hash, hash FROM audit_events ORDER BY audit_events.seq`;
}

/** What a superuser (or the table's owner) can do: switch the triggers off for one transaction and change rows. */
async function tamperWithTriggersOff(db: Database, statements: string[]): Promise<void> {
  await db.prisma.$transaction(async (tx) => {
    await tx.$executeRawUnsafe('SET LOCAL session_replication_role = replica');
    for (const sql of statements) await tx.$executeRawUnsafe(sql);
  });
}

/** The same through ALTER TABLE … DISABLE TRIGGER USER, turned back on afterwards. */
async function tamperWithTriggersDisabled(db: Database, statements: string[]): Promise<void> {
  await db.prisma.$executeRawUnsafe('ALTER TABLE audit_events DISABLE TRIGGER USER');
  try {
    for (const sql of statements) await db.prisma.$executeRawUnsafe(sql);
  } finally {
    await db.prisma.$executeRawUnsafe('ALTER TABLE audit_events ENABLE TRIGGER USER');
  }
}

async function adminToken(backends: Backends) {
  const { app, deps } = buildApp(backends);
  const username = uniqueName('audit_admin');
  await createAdmin(deps, { email: `${username}@example.com`, username, password: 'admin password 123' });
  return { app, token: (await login(app, { username, password: 'admin password 123' })).accessToken };
}

/** An empty database of its own (PostgreSQL when DATABASE_URL is set, else in-memory PGlite), with a way to run SQL on it. */
async function withScratchDatabase(
  use: (adapter: SqlMigrationAwareDriverAdapterFactory, sql: (text: string) => Promise<unknown>) => Promise<void>,
): Promise<void> {
  const baseUrl = process.env.DATABASE_URL;
  if (!baseUrl) {
    const pglite = await PGlite.create();
    try {
      await use(new PrismaPGlite(pglite), (text) => pglite.query(text));
    } finally {
      await pglite.close();
    }
    return;
  }
  const name = `authkit_test_${inject('runId')}_audit_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  const pool = new pg.Pool({ connectionString: databaseUrlFor(baseUrl, name) });
  try {
    await use(new PrismaPg(pool), (text) => pool.query(text));
  } finally {
    await pool.end();
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.end();
  }
}

describe('the audit log is append-only and hash-chained', () => {
  it("when the service's connection updates, deletes, deletes and re-inserts, or truncates events, then the database refuses each and the chain still verifies", async () => {
    await withOwnBackends(async ({ db }) => {
      const { log } = auditLog(db);
      await writeEvents(log, 4);
      const [first, , third, newest] = await chain(db);
      const copy = `INSERT INTO audit_events (id, type, created_at) SELECT gen_random_uuid(), 'session.signed_in', created_at FROM audit_events WHERE seq = ${third?.seq}`;

      const attempts = {
        update: db.prisma.$executeRawUnsafe(`UPDATE audit_events SET details = '{"reason":"nothing happened"}' WHERE seq = ${third?.seq}`),
        updateNothing: db.prisma.$executeRawUnsafe('UPDATE audit_events SET type = type WHERE false'),
        delete: db.prisma.$executeRawUnsafe(`DELETE FROM audit_events WHERE seq = ${third?.seq}`),
        deleteAll: db.prisma.$executeRawUnsafe('DELETE FROM audit_events'),
        deleteThenInsert: db.prisma.$transaction([
          db.prisma.$executeRawUnsafe(copy),
          db.prisma.$executeRawUnsafe(`DELETE FROM audit_events WHERE seq = ${third?.seq}`),
        ]),
        truncate: db.prisma.$executeRawUnsafe('TRUNCATE audit_events'),
        // The pruning flag set by hand still lets only old events at the start of the chain go.
        flagThenDeleteMiddle: db.prisma.$transaction([
          db.prisma.$executeRawUnsafe("SELECT set_config('authkit.audit_prune', 'on', true)"),
          db.prisma.$executeRawUnsafe(`DELETE FROM audit_events WHERE seq = ${third?.seq}`),
        ]),
        flagThenDeleteYoungOldest: db.prisma.$transaction([
          db.prisma.$executeRawUnsafe("SELECT set_config('authkit.audit_prune', 'on', true)"),
          db.prisma.$executeRawUnsafe(`DELETE FROM audit_events WHERE seq = ${first?.seq}`),
        ]),
      };
      const outcomes = Object.fromEntries(
        await Promise.all(
          Object.entries(attempts).map(
            async ([name, attempt]) =>
              [
                name,
                await Promise.resolve(attempt).then(
                  () => 'done',
                  (err: Error) => err.message,
                ),
              ] as const,
          ),
        ),
      );

      expect(outcomes.update).toMatch(/append-only: UPDATE is refused/);
      expect(outcomes.updateNothing).toMatch(/append-only: UPDATE is refused/);
      expect(outcomes.delete).toMatch(/append-only: DELETE is refused/);
      expect(outcomes.deleteAll).toMatch(/append-only: DELETE is refused/);
      expect(outcomes.deleteThenInsert).toMatch(/append-only: DELETE is refused/);
      expect(outcomes.truncate).toMatch(/append-only: TRUNCATE is refused/);
      expect(outcomes.flagThenDeleteMiddle).toMatch(/only the oldest events may be pruned/);
      expect(outcomes.flagThenDeleteYoungOldest).toMatch(/less than a day old is never pruned/);
      const after = await chain(db);
      expect(after.map((row) => row.id)).toEqual([first?.id, expect.any(String), third?.id, newest?.id]);
      expect(await verifyAuditChain(db.prisma)).toMatchObject({ ok: true, events: 4, firstSeq: 1, head: { seq: 4, hash: newest?.hash } });
    });
  });

  it('when an INSERT brings its own seq and hashes, then the database chains the event anyway', async () => {
    await withOwnBackends(async ({ db }) => {
      const { log } = auditLog(db);
      await writeEvents(log, 2);

      await db.prisma.$executeRawUnsafe(
        `INSERT INTO audit_events (id, type, seq, prev_hash, hash) VALUES (gen_random_uuid(), 'user.registered', 1, '${GENESIS_HASH}', 'forged')`,
      );

      const rows = await chain(db);
      expect(rows.map((row) => row.seq)).toEqual(['1', '2', '3']);
      expect(rows[2]?.prev_hash).toBe(rows[1]?.hash);
      expect(rows[2]?.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(rows[0]?.prev_hash).toBe(GENESIS_HASH);
      expect(await verifyAuditChain(db.prisma)).toMatchObject({ ok: true, events: 3 });
    });
  });

  it('when 50 events are appended at once by two instances, then they form one chain that verifies', async () => {
    await withOwnBackends(async (backends) => {
      // On PostgreSQL the second instance has a connection pool of its own; embedded there is only one database.
      const second = backends.url ? await openDatabase({ url: backends.url, migrate: false }) : backends.db;
      try {
        const instances = [auditLog(backends.db), auditLog(second)] as const;

        for (let i = 0; i < 50; i++) {
          const { log } = instances[i % 2 === 0 ? 0 : 1];
          log.record({ type: 'session.signed_in', details: { method: 'password', n: i } }, { requestId: `parallel-${i}` });
        }
        await Promise.all(instances.map(({ log }) => log.settled()));

        const failures = await Promise.all(instances.map(async ({ metrics }) => (await metrics.auditWriteFailures.get()).values[0]?.value ?? 0));
        expect(failures).toEqual([0, 0]);
        const rows = await chain(backends.db);
        expect(rows.map((row) => Number(row.seq))).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
        expect(new Set(rows.map((row) => row.prev_hash)).size).toBe(50);
        expect(await verifyAuditChain(backends.db.prisma)).toMatchObject({ ok: true, events: 50, firstSeq: 1, head: { seq: 50 } });
        // Read in batches that do not divide the log evenly, too.
        expect(await verifyAuditChain(backends.db.prisma, 7)).toMatchObject({ ok: true, events: 50, head: { seq: 50 } });
      } finally {
        if (second !== backends.db) await second.close();
      }
    });
  });

  it('when the retention sweep runs, then only old events at the start of the chain go, the newest stays, and the rest verifies from its new anchor', async () => {
    await withOwnBackends(async ({ db }) => {
      const now = Date.now();
      const at = (ago: number) => auditLog(db, new ManualClock(now - ago)).log;
      await writeEvents(at(100 * DAY_MS), 3, 'old');
      await writeEvents(at(10 * DAY_MS), 1, 'recent');
      // An old timestamp after a recent one (an instance with a slow clock): it is not at the start, so it stays.
      await writeEvents(at(100 * DAY_MS), 1, 'skewed');
      await writeEvents(at(2 * DAY_MS), 1, 'newest');
      const before = await chain(db);

      const first = await pruneAuditEvents(db.prisma, new ManualClock(now), 30);
      const afterFirst = await chain(db);
      const firstVerdict = await verifyAuditChain(db.prisma);
      const second = await pruneAuditEvents(db.prisma, new ManualClock(now), 1);
      const afterSecond = await chain(db);
      await writeEvents(at(0), 1, 'appended');
      // Asked for everything, the database still keeps the last day.
      const [{ pruned: third } = { pruned: -1 }] = await db.prisma.$queryRaw<
        Array<{ pruned: string }>
      >`SELECT audit_prune(now() + interval '1 year')::text AS pruned`;
      const afterThird = await chain(db);

      expect(first).toBe(3);
      expect(afterFirst.map((row) => row.seq)).toEqual(['4', '5', '6']);
      expect(firstVerdict).toMatchObject({ ok: true, events: 3, firstSeq: 4 });
      expect(afterFirst[0]?.prev_hash).toBe(before[2]?.hash);
      expect(second).toBe(2);
      expect(afterSecond.map((row) => row.seq)).toEqual(['6']);
      expect(third).toBe('1');
      expect(afterThird.map((row) => row.seq)).toEqual(['7']);
      expect(afterThird[0]?.prev_hash).toBe(afterSecond[0]?.hash);
      expect(await verifyAuditChain(db.prisma)).toMatchObject({ ok: true, events: 1, firstSeq: 7, head: { seq: 7 } });
    });
  });

  describe('when someone with the power to switch the triggers off changes the log, then verification names the first broken link', () => {
    const cases: Array<{
      name: string;
      tamper: (rows: Array<{ seq: string; id: string; hash: string }>) => string[];
      brokenAt: (rows: Array<{ seq: string; id: string }>) => { seq: number; id: string | undefined; intact: number };
      reason: string;
      how: typeof tamperWithTriggersOff;
    }> = [
      {
        name: "a middle event's details edited",
        tamper: (rows) => [`UPDATE audit_events SET details = details || '{"reason":"nothing happened"}' WHERE seq = ${rows[4]?.seq}`],
        brokenAt: (rows) => ({ seq: 5, id: rows[4]?.id, intact: 4 }),
        reason: 'altered',
        how: tamperWithTriggersOff,
      },
      {
        name: 'a middle event deleted',
        tamper: (rows) => [`DELETE FROM audit_events WHERE seq = ${rows[4]?.seq}`],
        brokenAt: (rows) => ({ seq: 6, id: rows[5]?.id, intact: 4 }),
        reason: 'missing',
        how: tamperWithTriggersDisabled,
      },
      {
        name: 'a middle event deleted and re-inserted with another actor, keeping its seq and hashes',
        tamper: (rows) => [
          'CREATE TEMP TABLE doctored ON COMMIT DROP AS SELECT * FROM audit_events WHERE seq = ' + rows[4]?.seq,
          "UPDATE doctored SET actor_id = '11111111-2222-4333-8444-555555555555'",
          `DELETE FROM audit_events WHERE seq = ${rows[4]?.seq}`,
          'INSERT INTO audit_events SELECT * FROM doctored',
        ],
        brokenAt: (rows) => ({ seq: 5, id: rows[4]?.id, intact: 4 }),
        reason: 'altered',
        how: tamperWithTriggersOff,
      },
      {
        name: 'a middle event edited and its hash recomputed',
        tamper: (rows) => [
          `UPDATE audit_events SET ip = '10.9.9.9' WHERE seq = ${rows[4]?.seq}`,
          `UPDATE audit_events SET hash = audit_event_hash(audit_events) WHERE seq = ${rows[4]?.seq}`,
        ],
        brokenAt: (rows) => ({ seq: 6, id: rows[5]?.id, intact: 5 }),
        reason: 'relinked',
        how: tamperWithTriggersDisabled,
      },
      {
        name: 'an event inserted while the chaining trigger was off',
        tamper: () => ["INSERT INTO audit_events (id, type) VALUES ('99999999-8888-4777-8666-555555555555', 'role.granted')"],
        brokenAt: () => ({ seq: 0, id: '99999999-8888-4777-8666-555555555555', intact: 0 }),
        reason: 'out_of_order',
        how: tamperWithTriggersOff,
      },
    ];

    it.each(cases)('$name', async ({ tamper, brokenAt, reason, how }) => {
      await withOwnBackends(async ({ db }) => {
        const { log } = auditLog(db);
        await writeEvents(log, 8);
        const rows = await chain(db);
        expect(await verifyAuditChain(db.prisma)).toMatchObject({ ok: true, events: 8 });

        await how(db, tamper(rows));

        const broken = brokenAt(rows);
        expect(await verifyAuditChain(db.prisma)).toEqual({
          ok: false,
          events: broken.intact,
          firstBrokenSeq: broken.seq,
          eventId: broken.id,
          reason,
          message: expect.any(String),
        });
      });
    });
  });

  it('when a database that already holds events is migrated, then they are chained in the order they happened and new events follow', async () => {
    // Every migration before the chain's, in a directory of their own.
    const earlier = await mkdtemp(path.join(os.tmpdir(), 'authkit-audit-migrations-'));
    for (const name of await readdir(MIGRATIONS_DIR)) {
      if (name < CHAIN_MIGRATION) await cp(path.join(MIGRATIONS_DIR, name), path.join(earlier, name), { recursive: true });
    }
    await withScratchDatabase(async (adapter, sql) => {
      await applyMigrations(adapter, earlier);
      await sql(`INSERT INTO audit_events (id, type, details, created_at) VALUES
        ('00000000-0000-4000-8000-000000000003', 'user.registered', '{"b":1,"a":"ü"}', '2026-11-01T10:00:02.5Z'),
        ('00000000-0000-4000-8000-000000000001', 'session.signed_in', '{}', '2026-11-01T10:00:00Z'),
        ('00000000-0000-4000-8000-000000000004', 'session.signed_out', '{}', '2026-11-01T10:00:01Z'),
        ('00000000-0000-4000-8000-000000000002', 'session.signed_out', '{}', '2026-11-01T10:00:01Z')`);

      await applyMigrations(adapter);
      await sql("INSERT INTO audit_events (id, type) VALUES ('00000000-0000-4000-8000-000000000005', 'password.changed')");

      const prisma = new PrismaClient({ adapter });
      try {
        const rows = await prisma.$queryRaw<
          Array<{ seq: string; id: string }>
        >`SELECT seq::text AS seq, id::text AS id FROM audit_events ORDER BY audit_events.seq`;
        expect(rows.map((row) => row.id.slice(-1))).toEqual(['1', '2', '4', '3', '5']);
        expect(await verifyAuditChain(prisma)).toMatchObject({ ok: true, events: 5, firstSeq: 1, head: { seq: 5 } });
        await expect(sql("UPDATE audit_events SET type = 'x'")).rejects.toThrow(/append-only: UPDATE is refused/);
      } finally {
        await prisma.$disconnect();
      }
    });
    await rm(earlier, { recursive: true, force: true });
  }, 90_000);

  describe('GET /admin/audit/verify', () => {
    it('when called without a token, then 401; by a user who is not an administrator, then 403; with a query, then 400', async () => {
      await withOwnBackends(async (backends) => {
        const { app } = buildApp(backends);
        const user = await registerAndLogin(app);
        const { token } = await adminToken(backends);

        const anonymous = await request(app).get('/admin/audit/verify');
        const asUser = await request(app)
          .get('/admin/audit/verify')
          .set(...bearer(user.accessToken));
        const withQuery = await request(app)
          .get('/admin/audit/verify')
          .query({ from: '1' })
          .set(...bearer(token));

        expect(anonymous.status).toBe(401);
        expect(anonymous.body.error).toMatchObject({ code: expect.any(String), requestId: expect.any(String) });
        expect(asUser.status).toBe(403);
        expect(asUser.body.error.code).toBe('forbidden');
        expect(withQuery.status).toBe(400);
      });
    });

    it('when an administrator asks, then the verdict says intact, and after a tampered event names it', async () => {
      await withOwnBackends(async (backends) => {
        const { app, token } = await adminToken(backends);
        await registerAndLogin(app);
        const { log } = auditLog(backends.db);
        await writeEvents(log, 3);
        const rows = await chain(backends.db);

        const intact = await request(app)
          .get('/admin/audit/verify')
          .set(...bearer(token));
        await tamperWithTriggersOff(backends.db, [`UPDATE audit_events SET type = 'rate_limit.reset' WHERE seq = ${rows[1]?.seq}`]);
        const broken = await request(app)
          .get('/admin/audit/verify')
          .set(...bearer(token));

        expect(intact.status).toBe(200);
        expect(intact.body).toEqual({
          ok: true,
          events: rows.length,
          firstSeq: 1,
          head: { seq: rows.length, hash: rows.at(-1)?.hash, createdAt: expect.any(String) },
        });
        expect(broken.status).toBe(200);
        expect(broken.body).toMatchObject({ ok: false, events: 1, firstBrokenSeq: 2, eventId: rows[1]?.id, reason: 'altered' });
      });
    });
  });

  describe('npm run audit:verify', () => {
    const run = (env: NodeJS.ProcessEnv) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/audit-verify.ts'], { cwd: ROOT, env: { ...process.env, ...env } }).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
      );

    /** A database the script can open by itself (the test's PostgreSQL database, or an embedded one in a directory), and its environment. */
    async function withScriptDatabase(use: (open: () => Promise<Database>, env: NodeJS.ProcessEnv) => Promise<void>) {
      if (process.env.DATABASE_URL) {
        await withOwnBackends(({ url }) => use(() => openDatabase({ url, migrate: false }), { DATABASE_URL: url }));
        return;
      }
      const dataDir = await mkdtemp(path.join(os.tmpdir(), 'authkit-audit-verify-'));
      try {
        const dump = await readFile(inject('pgliteDump') as string);
        await (await openDatabase({ dataDir, loadDataDir: new Blob([dump]), migrate: false })).close();
        await use(() => openDatabase({ dataDir, migrate: false }), { DATA_DIR: dataDir });
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    }

    it('when the chain is intact, then it exits 0 and prints the head; when an event was deleted, then it exits 1 naming the first broken link', async () => {
      await withScriptDatabase(async (open, env) => {
        // Each step closes its connection: the embedded database takes one process at a time.
        const db = await open();
        await writeEvents(auditLog(db).log, 5);
        const rows = await chain(db);
        await db.close();
        const intact = await run(env);
        const again = await open();
        await tamperWithTriggersOff(again, [`DELETE FROM audit_events WHERE seq = ${rows[2]?.seq}`]);
        await again.close();
        const broken = await run(env);

        expect(intact).toMatchObject({ code: 0, stderr: '' });
        expect(intact.stdout).toContain(`audit log intact: 5 events, seq 1 to 5; head ${rows[4]?.hash}`);
        expect(broken.code).toBe(1);
        expect(broken.stderr).toContain(`audit log BROKEN at seq 4 (event ${rows[3]?.id}): missing: event 3 is missing between seq 2 and seq 4`);
      });
    }, 90_000);
  });
});
