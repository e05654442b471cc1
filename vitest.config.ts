import { defineConfig } from 'vitest/config';

// Fast default suite: unit + integration (real Postgres, Toxiproxy, k6, Chromium).
// The heavier suite (test/heavy) runs with CUTOVER_HEAVY=1 (npm run test:heavy).
const heavy = !!process.env.CUTOVER_HEAVY;

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts', 'examples/**/*.test.ts', ...(heavy ? ['test/heavy/**/*.test.ts'] : [])],
    testTimeout: 240_000,
    hookTimeout: 240_000,
    // Integration files start real servers; two cores do not like more than two at once.
    maxWorkers: 2,
    pool: 'forks',
    // Starts (and stops) a Docker engine for the docker provider's tests where one can be had.
    globalSetup: ['test/setup/docker-engine.ts'],
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
