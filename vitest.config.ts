import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // The examples import the package by name, as an app does; in the repository that is src/
  // (tsconfig.json's paths say the same for tsc and tsx).
  resolve: {
    alias: {
      'percpu-arena/structures': fileURLToPath(new URL('./src/structures/index.ts', import.meta.url)),
      'percpu-arena/lab': fileURLToPath(new URL('./src/lab/index.ts', import.meta.url)),
      'percpu-arena/metrics': fileURLToPath(new URL('./src/service/metrics.ts', import.meta.url)),
      'percpu-arena/testing': fileURLToPath(new URL('./src/testing.ts', import.meta.url)),
      'percpu-arena': fileURLToPath(new URL('./src/index.ts', import.meta.url)),
    },
  },
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // Two files at a time even on 2 cores: most files wait on grace periods, worker starts and
    // child processes rather than compute (the suite: 214 s one at a time, 140 s two at a time,
    // on a loaded 2-core machine), and .ci/run runs the suite on three Node lines.
    maxWorkers: Math.max(2, os.availableParallelism() - 1),
    // Tests that start real workers run the compiled dist/ (built once here).
    globalSetup: ['./test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
