// Imports users, with the password hashes they have elsewhere, straight into the database the server uses.
// Usage: npm run users:import -- FILE [--format ndjson|json|csv|supabase|auth0|firebase|keycloak] [--dry-run]
//        [--report rejected.ndjson] [--hash-key B64 --salt-separator B64 --rounds N --mem-cost N]   (Firebase)
//        with the server's environment (DATABASE_URL, JWT_SECRET, KEY_ENCRYPTION_KEY, or its DATA_DIR). FILE - reads stdin.
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { parseArgs } from 'node:util';
import dotenv from 'dotenv';
import { systemClock } from '../src/core/clock.js';
import { ConfigError, loadConfig } from '../src/core/config.js';
import { openDatabase } from '../src/core/db.js';
import { DataDirInUseError } from '../src/core/db/data-dir-lock.js';
import { createLogger } from '../src/core/logger.js';
import { PasswordHashPool } from '../src/core/password-hash-pool.js';
import { resolveSecrets } from '../src/core/secrets.js';
import { KeyRingError } from '../src/kernel/keys/key-ring.js';
import { openKeys, VersionedBox } from '../src/kernel/keys/purpose-keys.js';
import { PasswordHasher } from '../src/kernel/passwords/passwords.js';
import { type FirebaseHashConfig, readSource, SOURCE_FORMATS, type SourceFormat } from '../src/features/user-import/source-mappings.js';
import { SourceError } from '../src/features/user-import/source-readers.js';
import { type ImportProgress, UserImport } from '../src/features/user-import/user-import.js';

dotenv.config({ quiet: true });

const USAGE = `usage: npm run users:import -- FILE [--format ${SOURCE_FORMATS.join('|')}] [--dry-run] [--report FILE]
       Firebase's hash parameters: --hash-key B64 --salt-separator B64 --rounds N --mem-cost N`;

function fail(message: string, code = 2): never {
  console.error(message);
  process.exit(code);
}

const { values, positionals } = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        format: { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        report: { type: 'string' },
        'hash-key': { type: 'string' },
        'salt-separator': { type: 'string' },
        rounds: { type: 'string' },
        'mem-cost': { type: 'string' },
      },
    });
  } catch (err) {
    return fail(`${(err as Error).message}\n${USAGE}`);
  }
})();

const file = positionals[0];
if (positionals.length !== 1 || file === undefined) fail(USAGE);

/** The format named, else the file's extension: .csv, .json, and NDJSON for anything else. */
function formatOf(name: string, given: string | undefined): SourceFormat {
  if (given !== undefined) {
    if (!(SOURCE_FORMATS as readonly string[]).includes(given)) fail(`--format must be one of ${SOURCE_FORMATS.join(', ')}\n${USAGE}`);
    return given as SourceFormat;
  }
  const extension = path.extname(name).toLowerCase();
  return extension === '.csv' ? 'csv' : extension === '.json' ? 'json' : 'ndjson';
}

/** Firebase's hash_config from the flags: all four, or none (then records with a hash are refused, saying why). */
function firebaseConfig(): FirebaseHashConfig | undefined {
  const given = [values['hash-key'], values['salt-separator'], values.rounds, values['mem-cost']];
  if (given.every((value) => value === undefined)) return undefined;
  const [signerKey = '', saltSeparator = '', rounds = '', memCost = ''] = given;
  if (given.some((value) => value === undefined)) fail('give all four of --hash-key, --salt-separator, --rounds and --mem-cost (Firebase’s hash_config)');
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(signerKey) || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(saltSeparator))
    fail('--hash-key and --salt-separator are base64, as the Firebase console shows them');
  if (!/^\d{1,2}$/.test(rounds) || !/^\d{1,2}$/.test(memCost)) fail('--rounds and --mem-cost are small whole numbers (8 and 14 in most projects)');
  return { signerKey, saltSeparator, rounds: Number(rounds), memCost: Number(memCost) };
}

/** Counts the bytes read, for the progress bar. */
function byteCounter(onBytes: (total: number) => void): Transform {
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      total += chunk.length;
      onBytes(total);
      done(null, chunk);
    },
  });
}

/** A progress bar on a terminal (redrawn in place), a line every ten seconds elsewhere. */
function progressReporter(totalBytes: number | undefined) {
  const started = performance.now();
  let bytes = 0;
  let last: ImportProgress = { records: 0, created: 0, updated: 0, rejected: 0 };
  let lastLine = 0;
  const tty = process.stderr.isTTY;
  const draw = (final = false) => {
    const seconds = (performance.now() - started) / 1000;
    const rate = Math.round(last.records / Math.max(seconds, 0.001));
    const share = totalBytes ? Math.min(1, bytes / totalBytes) : undefined;
    const bar = share === undefined ? '' : `${String(Math.floor(share * 100)).padStart(3)}% [${'#'.repeat(Math.round(share * 30)).padEnd(30, '.')}] `;
    const text = `${bar}${last.records.toLocaleString('en')} records  ${rate.toLocaleString('en')}/s  created ${last.created.toLocaleString('en')}  updated ${last.updated.toLocaleString('en')}  rejected ${last.rejected.toLocaleString('en')}`;
    if (tty) process.stderr.write(`\r${text}${final ? '\n' : ''}`);
    else if (final || performance.now() - lastLine > 10_000) {
      process.stderr.write(`${text}\n`);
      lastLine = performance.now();
    }
  };
  return {
    bytes: (total: number) => (bytes = total),
    progress: (progress: ImportProgress) => {
      last = progress;
      draw();
    },
    finish: () => draw(true),
  };
}

async function main(name: string): Promise<void> {
  const format = formatOf(name, values.format);
  const firebase = firebaseConfig();
  const size =
    name === '-'
      ? undefined
      : await stat(name).then(
          (info) => info.size,
          () => fail(`cannot read ${name}`, 1),
        );
  const config = loadConfig(process.env);
  const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, migrate: config.migrateOnStart });
  const pool = new PasswordHashPool({ threads: 1, queueMax: 1 });
  try {
    const secrets = await resolveSecrets(config, createLogger({ level: 'silent', pretty: false }));
    const { purposeKeys } = await openKeys(
      { algorithm: config.accessTokenAlgorithm, ...secrets, accessTtlS: config.accessTokenTtlS, clockToleranceS: config.jwtClockToleranceS },
      db.prisma,
      systemClock,
    );
    // The import never hashes: it checks each hash's format, and sign-in re-hashes later.
    const passwords = new PasswordHasher(pool, config.bcryptCost, undefined, { legacyHashes: config.passwordLegacyHashes });
    const importer = new UserImport({ prisma: db.prisma, passwords, totpBox: new VersionedBox(purposeKeys, 'totp'), clock: systemClock });
    const reporter = progressReporter(size);
    const report = values.report ? createWriteStream(values.report) : undefined;
    const input = (name === '-' ? process.stdin : createReadStream(name)).pipe(byteCounter(reporter.bytes));
    const started = performance.now();
    const summary = await importer.run(readSource(format, input, { firebase }), {
      dryRun: values['dry-run'],
      onProgress: reporter.progress,
      onRejected: (rejection) => report?.write(`${JSON.stringify(rejection)}\n`),
    });
    reporter.finish();
    if (report) await new Promise((resolve) => report.end(resolve));
    const seconds = (performance.now() - started) / 1000;
    const verb = summary.dryRun ? 'would be' : 'were';
    console.log(
      `${summary.records.toLocaleString('en')} records in ${seconds.toFixed(1)} s: ${summary.created.toLocaleString('en')} ${verb} created, ` +
        `${summary.updated.toLocaleString('en')} ${verb} updated, ${summary.rejected.toLocaleString('en')} rejected` +
        (summary.passwordsKept > 0 ? ` (${summary.passwordsKept} kept the password set here since the last import)` : '') +
        (summary.dryRun ? ' (dry run: nothing was written)' : ''),
    );
    const formats = Object.entries(summary.hashFormats).map(([hash, count]) => `${hash} ${count.toLocaleString('en')}`);
    if (formats.length > 0) console.log(`password hashes: ${formats.join(', ')}`);
    for (const rejection of summary.rejections.slice(0, report ? 0 : 20))
      console.log(`  line ${rejection.line}${rejection.email ? ` (${rejection.email})` : ''}: ${rejection.code}: ${rejection.message}`);
    if (!report && summary.rejected > 20) console.log(`  … and ${summary.rejected - 20} more: --report FILE writes them all`);
    if (report && summary.rejected > 0) console.log(`every rejected record is in ${values.report}`);
  } finally {
    await Promise.all([db.close(), pool.close()]);
  }
}

try {
  await main(file);
} catch (err) {
  if (err instanceof DataDirInUseError) {
    fail(`${err.message}\nThe embedded server holds its database: stop it and run this again, or send the file to POST /admin/users/import.`, 1);
  }
  const known = err instanceof ConfigError || err instanceof SourceError || err instanceof SyntaxError || err instanceof KeyRingError;
  fail(known ? err.message : String((err as Error).stack ?? err), 1);
}
