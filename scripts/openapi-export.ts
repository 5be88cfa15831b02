// Writes the OpenAPI document, exactly as the server serves it at /openapi.json, to a file (or standard output).
// Usage: npm run openapi:export [-- path/to/openapi.json]
import { writeFile } from 'node:fs/promises';
import { createApp } from '../src/app.js';
import { systemClock } from '../src/core/clock.js';
import { loadConfig } from '../src/core/config.js';
import { openDatabase } from '../src/core/db.js';
import { createLogger } from '../src/core/logger.js';
import { PasswordHashPool } from '../src/core/password-hash-pool.js';
import { inProcessStore } from '../src/core/shared-store.js';
import { openKeys } from '../src/kernel/keys/purpose-keys.js';

// An embedded database in memory and throwaway secrets: building the app registers every route, nothing is served.
const config = { ...loadConfig({ NODE_ENV: 'test' }), jwtSecret: 'openapi-export-secret-of-at-least-32-bytes' };
const db = await openDatabase({ migrate: true });
const passwordPool = new PasswordHashPool({ threads: 1, queueMax: 1 });
try {
  const keys = await openKeys(
    { algorithm: 'ES256', jwtSecret: config.jwtSecret, keyEncryptionKey: 'openapi-export-key-encryption-key-32-bytes', accessTtlS: 900, clockToleranceS: 5 },
    db.prisma,
    systemClock,
  );
  const app = createApp({
    config,
    db,
    store: inProcessStore,
    clock: systemClock,
    logger: createLogger({ level: 'silent', pretty: false }),
    passwordPool,
    ...keys,
  });
  const json = `${JSON.stringify(app.locals.openApiDocument, null, 2)}\n`;
  const out = process.argv[2];
  if (out) await writeFile(out, json);
  else process.stdout.write(json);
} finally {
  await Promise.all([db.close(), passwordPool.close()]);
}
