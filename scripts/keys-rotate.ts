// Adds the next access-token signing key, for every instance sharing this database. Live tokens keep working: the new
// key is published at once and signs only after one JWKS cache lifetime (see KeyRing).
// Usage: npm run keys:rotate [-- --purpose totp|recovery-codes|mfa-tokens|image-urls]
//        with the server's environment (DATABASE_URL, KEY_ENCRYPTION_KEY, JWT_SECRET, or its DATA_DIR). Without
//        --purpose it rotates the access-token signing key.
import { parseArgs } from 'node:util';
import dotenv from 'dotenv';
import { systemClock } from '../src/core/clock.js';
import { ConfigError, loadConfig } from '../src/core/config.js';
import { openDatabase } from '../src/core/db.js';
import { DataDirInUseError } from '../src/core/db/data-dir-lock.js';
import { createLogger } from '../src/core/logger.js';
import { resolveSecrets } from '../src/core/secrets.js';
import { KeyRing, KeyRingError } from '../src/kernel/keys/key-ring.js';
import { KEY_PURPOSES, type KeyPurpose, openKeys } from '../src/kernel/keys/purpose-keys.js';

dotenv.config({ quiet: true });

const { values } = parseArgs({ options: { purpose: { type: 'string' } } });
const purpose = values.purpose as KeyPurpose | undefined;
if (purpose !== undefined && !KEY_PURPOSES.includes(purpose)) {
  console.error(`usage: npm run keys:rotate [-- --purpose ${KEY_PURPOSES.join('|')}]`);
  process.exit(2);
}

try {
  const config = loadConfig(process.env);
  if (purpose === undefined && config.accessTokenAlgorithm === 'HS256') {
    console.error('JWT_ALGORITHM=HS256: access tokens are signed with JWT_SECRET, so there is no key ring to rotate.');
    process.exit(1);
  }
  const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, migrate: config.migrateOnStart });
  try {
    const secrets = await resolveSecrets(config, createLogger({ level: 'silent', pretty: false }));
    const { signingKeys, purposeKeys } = await openKeys(
      { algorithm: config.accessTokenAlgorithm, ...secrets, accessTtlS: config.accessTokenTtlS, clockToleranceS: config.jwtClockToleranceS },
      db.prisma,
      systemClock,
    );
    if (purpose !== undefined) {
      const key = await purposeKeys.rotate(purpose);
      console.log(`added ${purpose} key generation ${key.generation}: protects new data from ${key.activatesAt}; older generations stay readable`);
    } else {
      if (!(signingKeys instanceof KeyRing)) throw new KeyRingError('no key ring to rotate');
      const key = await signingKeys.rotate();
      console.log(`added signing key ${key.kid} (generation ${key.generation}): published now, signs from ${key.activatesAt}`);
    }
  } finally {
    await db.close();
  }
} catch (err) {
  const known = err instanceof ConfigError || err instanceof DataDirInUseError || err instanceof KeyRingError;
  console.error(known ? err.message : err);
  process.exit(1);
}
