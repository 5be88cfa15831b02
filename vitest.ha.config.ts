// The failover suite: Redis under Sentinel and as a Cluster, PostgreSQL behind PgBouncer, each started by the test
// (tests/support/topologies.ts), with built instances behind nginx driven over HTTP. Also runs the shared-store
// contracts on a Sentinel primary and on a Cluster (tests/ha/global-setup.ts starts them).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/ha/**/*.ha.ts', 'tests/contracts/{budget-store,cache-store,challenges,failure-lockout,revocation}.contract.test.ts'],
    globalSetup: ['tests/ha/global-setup.ts'],
    setupFiles: ['tests/support/setup.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    fileParallelism: false,
    expect: { poll: { timeout: 15_000 } },
    env: { NODE_ENV: 'test' },
  },
});
