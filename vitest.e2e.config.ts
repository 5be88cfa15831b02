// End-to-end tests: the browser page driven in a real headless Chromium against a live server.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/e2e/**/*.e2e.ts'],
    // A screen group is a person's whole visit: each screen checked at two widths (full-page screenshots, axe-core in
    // light and dark) on a 2-core machine that may be busy; the slowest took 50 s under load.
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // A page's answer is awaited, not timed: a loaded machine only makes it slower (1 s by default).
    expect: { poll: { timeout: 10_000 } },
    env: { NODE_ENV: 'test' },
  },
});
