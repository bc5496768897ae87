import os from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
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
