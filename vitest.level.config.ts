import { defineConfig } from 'vitest/config';

// Level's conformance suite (abstract-level/test) opens about a thousand databases, each starting an
// owner worker: minutes even on an idle machine, so it runs on its own (`npm run test:level`), not in
// `npm test`.
export default defineConfig({
  test: {
    include: ['test/**/*.suite.ts'],
    testTimeout: 3_600_000,
    pool: 'forks',
  },
});
