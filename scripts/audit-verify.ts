// Checks the audit log's hash chain from its oldest event; exits 1 and names the first broken link when one is broken.
// Usage: npm run audit:verify   with the server's environment (DATABASE_URL, or its DATA_DIR for the embedded database).
import dotenv from 'dotenv';
import { ConfigError, loadConfig } from '../src/core/config.js';
import { openDatabase } from '../src/core/db.js';
import { DataDirInUseError } from '../src/core/db/data-dir-lock.js';
import { verifyAuditChain } from '../src/features/audit/audit-chain.js';

dotenv.config({ quiet: true });

try {
  const config = loadConfig(process.env);
  const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, migrate: config.migrateOnStart });
  const verdict = await verifyAuditChain(db.prisma).finally(() => db.close());
  if (verdict.ok) {
    console.log(
      verdict.head === null
        ? 'audit log intact: no events yet'
        : `audit log intact: ${verdict.events} events, seq ${verdict.firstSeq} to ${verdict.head.seq}; head ${verdict.head.hash} (${verdict.head.createdAt})`,
    );
  } else {
    console.error(`audit log BROKEN at seq ${verdict.firstBrokenSeq} (event ${verdict.eventId}): ${verdict.reason}: ${verdict.message}`);
    console.error(`${verdict.events} events before it verified`);
    process.exitCode = 1;
  }
} catch (err) {
  console.error(err instanceof ConfigError || err instanceof DataDirInUseError ? err.message : err);
  process.exit(1);
}
