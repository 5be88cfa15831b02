// Outside production, a JWT secret made once and kept under the data directory so tokens survive restarts.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from './config.js';
import type { Logger } from './logger.js';

const SECRETS_FILE = 'secrets.json';

async function readStoredSecret(file: string): Promise<string | undefined> {
  try {
    const stored: unknown = JSON.parse(await readFile(file, 'utf8'));
    if (typeof stored === 'object' && stored !== null && 'jwtSecret' in stored && typeof stored.jwtSecret === 'string') {
      return stored.jwtSecret;
    }
    return undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Returns the configured JWT secret, or the generated one for this data directory. */
export async function resolveJwtSecret(config: Config, logger: Logger): Promise<string> {
  if (config.jwtSecret !== undefined) return config.jwtSecret;
  if (config.env === 'production') throw new Error('JWT_SECRET is required in production');

  const file = path.join(config.dataDir, SECRETS_FILE);
  let secret = await readStoredSecret(file);
  if (secret === undefined) {
    await mkdir(config.dataDir, { recursive: true });
    const fresh = randomBytes(48).toString('base64url');
    try {
      // 'wx' so two processes starting at once cannot overwrite each other's secret.
      await writeFile(file, `${JSON.stringify({ jwtSecret: fresh }, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
      secret = fresh;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      secret = await readStoredSecret(file);
    }
  }
  if (secret === undefined) throw new Error(`${file} exists but holds no jwtSecret`);
  logger.warn({ file }, 'JWT_SECRET is not set: using a generated secret kept in the data directory. Set JWT_SECRET for production.');
  return secret;
}
