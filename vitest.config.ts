// Test runner settings: integration tests against real or embedded backends, one database per test file.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // The client library's examples import it by its package name, as an app would.
  resolve: { alias: { '@authkit/client': new URL('./packages/client/src/index.ts', import.meta.url).pathname } },
  test: {
    include: ['tests/**/*.test.ts'],
    globalSetup: ['tests/support/global-setup.ts'],
    setupFiles: ['tests/support/setup.ts'],
    pool: 'forks',
    // A worker process runs file after file: what is slow to warm (the password threads' dictionaries, the migration
    // engine's WebAssembly, the app's module graph) is loaded once per worker, not once per file. Files keep no state
    // of their own between them: each opens its own database and builds its own apps.
    isolate: false,
    testTimeout: 20_000,
    hookTimeout: 60_000,
    // Two cores: more workers only queue behind each other.
    maxWorkers: 2,
    env: { NODE_ENV: 'test' },
  },
});
