// Runs `prisma generate` without the schema-engine download it does not need (see docs/operations.md, "Database and migrations").
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const prismaCli = createRequire(import.meta.url).resolve('prisma/build/index.js');
const result = spawnSync(process.execPath, [prismaCli, 'generate'], {
  cwd: root,
  stdio: 'inherit',
  env: {
    // generate never runs the schema engine, but the CLI insists on one existing; any file satisfies it.
    PRISMA_SCHEMA_ENGINE_BINARY: path.join(root, 'package.json'),
    CHECKPOINT_DISABLE: '1',
    PRISMA_HIDE_UPDATE_MESSAGE: '1',
    ...process.env,
  },
});
process.exit(result.status ?? 1);
