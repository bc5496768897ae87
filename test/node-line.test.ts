/**
 * .ci/run runs this suite once per supported Node line (20, 22, 24) with that line's bin folder
 * first on PATH and EXPECT_NODE_MAJOR set. This checks that the line under test really is the
 * one everything runs on: the test process, a worker thread (workers use the parent's binary),
 * a `node` child process found on PATH (what `npm`, `npx` and the installed CLI's
 * `#!/usr/bin/env node` start) and a piscina worker. Without EXPECT_NODE_MAJOR (a plain
 * `npm test`) they must all agree with the test process.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { describe, expect, it } from 'vitest';

const expected = process.env.EXPECT_NODE_MAJOR;

async function workerVersion(): Promise<string> {
  const worker = new Worker("require('node:worker_threads').parentPort.postMessage(process.version)", {
    eval: true,
  });
  const [version] = (await once(worker, 'message')) as [string];
  await worker.terminate();
  return version;
}

async function piscinaVersion(): Promise<string> {
  const pool = new Piscina({
    filename: new URL('./fixtures/version-task.mjs', import.meta.url).href,
    maxThreads: 1,
  });
  try {
    return (await pool.run(null)) as string;
  } finally {
    await pool.destroy();
  }
}

describe('the Node line under test', () => {
  it('is the one the test process, worker threads, piscina and PATH children run on', async () => {
    const own = process.version;
    if (expected !== undefined) expect(own.split('.')[0]).toBe(`v${expected}`);
    expect(await workerVersion()).toBe(own);
    expect(await piscinaVersion()).toBe(own);
    const child = execFileSync('node', ['-p', 'process.version'], { encoding: 'utf8' }).trim();
    expect(child).toBe(own);
  });
});
