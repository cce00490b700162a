import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Generous: a test that spawns several processes or opens several databases can take a minute on
    // a heavily loaded 2-core machine; a hang still fails, with the test's name.
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
  },
});
