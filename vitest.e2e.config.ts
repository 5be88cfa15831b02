// End-to-end tests: the browser page driven in a real headless Chromium against a live server.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/e2e/**/*.e2e.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // A page's answer is awaited, not timed: a loaded machine only makes it slower (1 s by default).
    expect: { poll: { timeout: 10_000 } },
    env: { NODE_ENV: 'test' },
  },
});
