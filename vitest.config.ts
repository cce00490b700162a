import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Owner threads run a bundle of the sources, built once per run (see the setup file).
    globalSetup: ['test/support/owner-worker-bundle.setup.ts'],
    // Generous: a test that spawns several processes or opens several databases can take a minute on
    // a heavily loaded 2-core machine; a hang still fails, with the test's name.
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // Two test files at a time, even on 2 cores (vitest's default is one fewer than the cores): most
    // of a file's time is spent waiting on fsync, child processes and worker start-up, not computing.
    maxWorkers: 2,
  },
});
