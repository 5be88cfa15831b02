import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/core/db.js';
import { DataDirInUseError } from '../src/core/db/data-dir-lock.js';

// Each test creates and opens fresh PGlite databases (an initdb each): seconds of work that a busy machine stretches.
describe('the embedded database’s data directory', { timeout: 90_000 }, () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });
  async function dataDir(): Promise<string> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'authkit-lock-'));
    dirs.push(dir);
    return dir;
  }

  it('when a second opener comes while it is open, then it is refused with what to do, and admitted once it is closed', async () => {
    const dir = await dataDir();
    const first = await openDatabase({ dataDir: dir, migrate: false });

    const second = openDatabase({ dataDir: dir, migrate: false });
    await expect(second).rejects.toBeInstanceOf(DataDirInUseError);
    await expect(second).rejects.toThrow(new RegExp(`in use by process ${process.pid}.*stop that process first`));
    await first.close();
    const third = await openDatabase({ dataDir: dir, migrate: false });
    await third.close();
  });

  it('when the lock was left by a process that is gone, then it is taken over', async () => {
    const dir = await dataDir();
    // Above any Linux pid_max, so no such process can exist.
    await writeFile(path.join(dir, 'embedded-db.lock'), '99999999');

    const db = await openDatabase({ dataDir: dir, migrate: false });

    await expect(db.ping()).resolves.toBeUndefined();
    await db.close();
  });
});
