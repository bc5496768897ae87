/**
 * A worker killed holding a robust mutex: it takes the lock at word `lock` of the arena the way
 * the structures do (src/shm/sync.ts `robustLock`, from the built dist/), says so, spins, and is
 * terminated while the arena watches it. Resolves once the arena has recovered the thread.
 * For the crash-recovery tests of the hash map and the pack allocator.
 */
import { Worker } from 'node:worker_threads';
import type { Arena } from '../../src/index.js';

export async function killWhileHolding(arena: Arena, lock: number): Promise<void> {
  const sync = new URL('../../dist/src/shm/sync.js', import.meta.url).href;
  const worker = new Worker(
    `const { workerData, parentPort } = require('node:worker_threads');
     import(${JSON.stringify(sync)}).then(({ robustLock }) => {
       robustLock(new Int32Array(workerData.buffer), workerData.lock);
       parentPort.postMessage('locked');
       for (;;) {}
     });`,
    { eval: true, workerData: { buffer: arena.shared.buffer, lock } },
  );
  arena.watch(worker);
  await new Promise((resolve) => worker.once('message', resolve));
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  await worker.terminate();
  await exited;
  // The arena's 'exit' listener runs the recovery; let it.
  await new Promise((resolve) => setImmediate(resolve));
}
