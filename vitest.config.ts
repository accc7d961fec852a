import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['server/**/*.test.ts', 'web/src/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          environment: 'node',
          // Servers under test run agents from dist/agent and serve the helper downloads of dist/: built first if stale.
          globalSetup: ['test/support/build-artifacts.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          // Tests that start engines and browsers share one machine of 2 cores.
          fileParallelism: false,
        },
      },
    ],
  },
});
