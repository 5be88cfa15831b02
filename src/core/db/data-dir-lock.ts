// Keeps a second process off an embedded database: PGlite is single-process, and two writers would lose data.
import { open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';

const LOCK_FILE = 'embedded-db.lock';

export class DataDirInUseError extends Error {
  override name = 'DataDirInUseError';
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the data directory for this process, or throws DataDirInUseError naming the process that holds it. A lock
 * left by a process that is gone is taken over. Resolves with the function that releases it.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const file = path.join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number((await readFile(file, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(holder) && holder > 0 && isRunning(holder)) {
      throw new DataDirInUseError(
        `The embedded database in ${path.resolve(dataDir)} is in use by process ${holder} (probably the server). ` +
          'It serves one process at a time: stop that process first, or make the change through its API (the admin ' +
          `endpoints), or use PostgreSQL (DATABASE_URL). If no such process is running, delete ${file}.`,
      );
    }
    await rm(file, { force: true }); // left by a process that is gone
  }
  throw new DataDirInUseError(`Could not take ${file}; another process keeps creating it.`);
}
