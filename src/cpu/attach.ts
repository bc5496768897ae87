/**
 * Attaching a CPU slot: the one place that picks the handle class from the arena's policy — the
 * list handle (src/cpu/cpu.ts) or, for policy cache 'sheaves', the sheaf handle (src/cpu/sheaf.ts,
 * made from CpuHandle on first use). A module of its own so that cpu.ts and sheaf.ts do not
 * import each other.
 *
 * Who may call: any thread (the handle belongs to the caller's thread).
 */
import { readPolicyWord } from '../epoch/policy.js';
import type { SharedArena } from '../shm/arena-ref.js';
import { ArenaError, fail } from '../shm/errors.js';
import { H_POLICY, readLayout } from '../shm/layout.js';
import { CpuHandle } from './cpu.js';
import { defineSheafHandle, type SheafHandleClasses } from './sheaf.js';

/**
 * Attaches CPU slot `cpu` of the arena described by `shared` to the calling thread and returns
 * its handle. Throws `EBUSY` if another handle owns the slot, `EINVAL` for a slot number out of
 * range, `EBADARENA` for a buffer that is not an arena, `ECLOSED` after `close()`.
 */
export function attach(shared: SharedArena, cpu: number): CpuHandle {
  if (shared === null || typeof shared !== 'object' || !(shared.buffer instanceof SharedArrayBuffer)) {
    fail('EINVAL', 'attach(shared, cpu) needs the `arena.shared` object of an arena');
  }
  return newHandle(shared, cpu);
}

let sheafClasses: SheafHandleClasses | undefined;

/** The sheaf handle classes (src/cpu/sheaf.ts), made from CpuHandle on first use. */
export function sheafHandleClasses(): SheafHandleClasses {
  sheafClasses ??= defineSheafHandle(CpuHandle);
  return sheafClasses;
}

/** A list handle, or a sheaf handle when the arena's policy says so: the one branch, at attach. */
function newHandle(shared: SharedArena, cpu: number): CpuHandle {
  const i32 = new Int32Array(shared.buffer);
  const layout = readLayout(i32);
  const policy = readPolicyWord(i32[H_POLICY] as number);
  if (!policy.sheaves) return new CpuHandle(shared, cpu);
  const { SheafCpuHandle, RcuSheafCpuHandle } = sheafHandleClasses();
  // Under a deferring reuse every free is a freeRcu, wherever the unit came from.
  const Handle = policy.deferring ? RcuSheafCpuHandle : SheafCpuHandle;
  return new Handle(shared, cpu, layout, policy.sheafRemoteToSlab && !policy.deferring);
}

/**
 * Attaches the first CPU slot of the arena that nobody holds (a worker of a pool that grows
 * and shrinks takes whichever slot is free; watch the worker with `arena.watch` so that its
 * slot comes back when it exits). Throws `EBUSY` when every slot is held, and as `attach`.
 */
export function attachFree(shared: SharedArena): CpuHandle {
  if (shared === null || typeof shared !== 'object' || !(shared.buffer instanceof SharedArrayBuffer)) {
    fail('EINVAL', 'attachFree(shared) needs the `arena.shared` object of an arena');
  }
  const cpus = readLayout(new Int32Array(shared.buffer)).cpus;
  for (let cpu = 0; cpu < cpus; cpu++) {
    try {
      return newHandle(shared, cpu);
    } catch (error) {
      if (!(error instanceof ArenaError) || error.code !== 'EBUSY') throw error;
    }
  }
  // The usual cause: more threads attach than the arena has slots (piscina's default maxThreads
  // is 1.5 × the cores, and a main thread that attaches takes a slot too).
  fail(
    'EBUSY',
    `every one of the arena's ${cpus} CPU slots is attached: create the arena with a slot for every ` +
      "thread that attaches (each pool worker, and the main thread if it attaches; piscina's default " +
      'maxThreads is 1.5 × the cores), or cap the pool (maxThreads) and watch it (watchPool) so that ' +
      'exited workers give their slots back',
  );
}
