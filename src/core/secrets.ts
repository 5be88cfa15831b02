// Outside production, secrets made once and kept under the data directory (secrets.json, mode 0600) so tokens and
// sealed keys survive restarts. Production takes them from the environment only.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from './config.js';
import type { Logger } from './logger.js';

const SECRETS_FILE = 'secrets.json';

type StoredSecrets = Partial<Record<SecretName, string>>;
type SecretName = 'jwtSecret' | 'keyEncryptionKey';

const ENV_NAMES: Record<SecretName, string> = { jwtSecret: 'JWT_SECRET', keyEncryptionKey: 'KEY_ENCRYPTION_KEY' };

async function readStored(file: string): Promise<StoredSecrets | undefined> {
  try {
    const stored: unknown = JSON.parse(await readFile(file, 'utf8'));
    if (typeof stored !== 'object' || stored === null) throw new Error(`${file} does not hold a JSON object`);
    return stored;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The stored value of `name`, generating and storing one first if there is none. */
async function storedSecret(dataDir: string, name: SecretName): Promise<string> {
  const file = path.join(dataDir, SECRETS_FILE);
  const stored = await readStored(file);
  const existing = stored?.[name];
  if (typeof existing === 'string' && existing !== '') return existing;
  await mkdir(dataDir, { recursive: true });
  const fresh = randomBytes(48).toString('base64url');
  const contents = `${JSON.stringify({ ...stored, [name]: fresh }, null, 2)}\n`;
  if (stored === undefined) {
    try {
      // 'wx' so two processes starting at once cannot overwrite each other's secret.
      await writeFile(file, contents, { mode: 0o600, flag: 'wx' });
      return fresh;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      return storedSecret(dataDir, name);
    }
  }
  // Adding to an existing file (an older data directory): written aside, then renamed over it in one step.
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, contents, { mode: 0o600 });
  await rename(temporary, file);
  const reread = (await readStored(file))?.[name];
  if (reread === undefined) throw new Error(`${file} lost ${name} while it was written`);
  return reread;
}

/**
 * The JWT secret and the key-encryption key (sealing the stored keys), each from the environment or, outside
 * production, generated once for this data directory.
 */
export async function resolveSecrets(config: Config, logger: Logger): Promise<{ jwtSecret: string; keyEncryptionKey: string }> {
  const resolve = async (name: SecretName, configured: string | undefined) => {
    if (configured !== undefined) return configured;
    if (config.env === 'production') throw new Error(`${ENV_NAMES[name]} is required in production`);
    const value = await storedSecret(config.dataDir, name);
    logger.warn(
      { file: path.join(config.dataDir, SECRETS_FILE) },
      `${ENV_NAMES[name]} is not set: using a generated one kept in the data directory. Set ${ENV_NAMES[name]} for production.`,
    );
    return value;
  };
  return { jwtSecret: await resolve('jwtSecret', config.jwtSecret), keyEncryptionKey: await resolve('keyEncryptionKey', config.keyEncryptionKey) };
}
