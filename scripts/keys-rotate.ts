// Adds the next access-token signing key, for every instance sharing this database. Live tokens keep working: the new
// key is published at once and signs only after one JWKS cache lifetime (see KeyRing).
// Usage: npm run keys:rotate      (with the server's environment: DATABASE_URL, KEY_ENCRYPTION_KEY, or its DATA_DIR)
import dotenv from 'dotenv';
import { systemClock } from '../src/core/clock.js';
import { ConfigError, loadConfig } from '../src/core/config.js';
import { openDatabase } from '../src/core/db.js';
import { DataDirInUseError } from '../src/core/db/data-dir-lock.js';
import { createLogger } from '../src/core/logger.js';
import { resolveSecrets } from '../src/core/secrets.js';
import { KeyRing, KeyRingError, openSigningKeys } from '../src/features/signing-keys/key-ring.js';

dotenv.config({ quiet: true });

try {
  const config = loadConfig(process.env);
  if (config.accessTokenAlgorithm === 'HS256') {
    console.error('JWT_ALGORITHM=HS256: access tokens are signed with JWT_SECRET, so there is no key ring to rotate.');
    process.exit(1);
  }
  const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, migrate: config.migrateOnStart });
  try {
    const secrets = await resolveSecrets(config, createLogger({ level: 'silent', pretty: false }));
    const ring = await openSigningKeys(
      { algorithm: 'ES256', ...secrets, accessTtlS: config.accessTokenTtlS, clockToleranceS: config.jwtClockToleranceS },
      db.prisma,
      systemClock,
    );
    if (!(ring instanceof KeyRing)) throw new KeyRingError('no key ring to rotate');
    const key = await ring.rotate();
    console.log(`added signing key ${key.kid} (generation ${key.generation}): published now, signs from ${key.activatesAt}`);
  } finally {
    await db.close();
  }
} catch (err) {
  const known = err instanceof ConfigError || err instanceof DataDirInUseError || err instanceof KeyRingError;
  console.error(known ? err.message : err);
  process.exit(1);
}
