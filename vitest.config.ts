// Test runner settings: integration tests against real or embedded backends, one database per test file.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    globalSetup: ['tests/support/global-setup.ts'],
    setupFiles: ['tests/support/setup.ts'],
    pool: 'forks',
    testTimeout: 20_000,
    hookTimeout: 60_000,
    // Two cores: more workers only queue behind each other.
    maxWorkers: 2,
    env: { NODE_ENV: 'test' },
  },
});
