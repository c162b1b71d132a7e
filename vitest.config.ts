import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration suites start their own daemons on private sockets; run files in
    // parallel processes but keep each file's tests in order.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2 } },
    reporters: ['default'],
  },
});
