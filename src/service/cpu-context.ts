/**
 * What a function run by the CPU pool receives: its attached CPU, the run's arguments and the
 * arena's barrier. Scenario modules import only this type; `runCpuTask` is the worker side.
 *
 * Who may call `runCpuTask`: a pool worker, once per task. It owns the CPU slot named in the
 * task from attach to detach; the barrier words (X_BARRIER) are shared and used through
 * src/shm/sync.ts only.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { attach } from '../cpu/attach.js';
import type { CpuHandle } from '../cpu/cpu.js';
import type { SharedArena } from '../shm/arena-ref.js';
import { fail } from '../shm/errors.js';
import { X_BARRIER } from '../shm/layout.js';
import { barrierWait } from '../shm/sync.js';
import type { CpuTask } from './pool.js';

/** The argument of a function run on every CPU of a pool. */
export interface CpuContext<A = unknown> {
  /** This worker's attached CPU. */
  readonly cpu: CpuHandle;
  /** Position of this CPU in the run (0 .. cpus-1) and the number of CPUs in the run. */
  readonly index: number;
  readonly cpus: number;
  /** The `args` given to `pool.run`. */
  readonly args: A;
  /** The arena's `shared` object (for `UnitRefs`, or to open more views of it). */
  readonly shared: SharedArena;
  /** Waits until every CPU of the run reaches the barrier; true in the last to arrive. */
  barrier(): boolean;
}

/** A function a pool runs on every CPU. */
export type CpuFunction<A = unknown, R = unknown> = (ctx: CpuContext<A>) => R | Promise<R>;

const require = createRequire(import.meta.url);

/** Attaches the task's CPU, lines up with the other CPUs, runs the function, detaches. */
export async function runCpuTask(task: CpuTask): Promise<unknown> {
  const exports = require(fileURLToPath(task.module)) as Record<string, unknown>;
  const fn = exports[task.fn];
  if (typeof fn !== 'function') fail('EINVAL', `${task.module} has no exported function ${task.fn}`);
  const cpu = attach(task.shared, task.cpu);
  try {
    const i32 = new Int32Array(task.shared.buffer);
    const ctx: CpuContext = {
      cpu,
      index: task.index,
      cpus: task.cpus,
      args: task.args,
      shared: task.shared,
      barrier: () => barrierWait(i32, X_BARRIER, task.barrierTimeoutMs),
    };
    ctx.barrier();
    return await (fn as CpuFunction)(ctx);
  } finally {
    if (cpu.attached) cpu.detach();
  }
}
