// Locates the project root the same way whether running from src/ (tsx) or dist/ (compiled).
import { existsSync } from 'node:fs';
import path from 'node:path';

function findRoot(start: string): string {
  let dir = start;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${start}`);
    dir = parent;
  }
  return dir;
}

export const PROJECT_ROOT = findRoot(import.meta.dirname);
export const PUBLIC_DIR = path.join(PROJECT_ROOT, 'public');
export const PRISMA_DIR = path.join(PROJECT_ROOT, 'prisma');
/** The client library's compiled modules (packages/client, built with the server), which the page loads. */
export const CLIENT_PACKAGE_DIST = path.join(PROJECT_ROOT, 'packages', 'client', 'dist');
