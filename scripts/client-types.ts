// Generates the client library's types (packages/client/src/generated) from the OpenAPI document the server serves,
// so a change to the server that breaks the client fails `npm run typecheck` (which runs this first).
// Usage: npm run client:types [-- <output directory>]
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient } from '@hey-api/openapi-ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const output = path.resolve(process.argv[2] ?? path.join(ROOT, 'packages/client/src/generated'));
const scratch = await mkdtemp(path.join(os.tmpdir(), 'authkit-client-types-'));
try {
  const document = path.join(scratch, 'openapi.json');
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), path.join(ROOT, 'scripts/openapi-export.ts'), document], {
    stdio: 'inherit',
  });
  await createClient({ input: document, output, plugins: ['@hey-api/typescript'], logs: { level: 'silent' } });
} finally {
  await rm(scratch, { recursive: true, force: true });
}
