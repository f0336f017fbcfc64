import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One embedded PostgreSQL for the run; each test file clones its own database from a migrated template.
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
    // Integration files mostly wait on PostgreSQL and timers, so a few run side by side even on 2 cores.
    maxWorkers: 3,
    testTimeout: 30_000,
    hookTimeout: 120_000,
    allowOnly: false,
  },
});
