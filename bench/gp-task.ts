/**
 * Worker side of bench/gp.bench.ts, run by the CPU pool on every CPU of a run at once.
 *
 * - `readSideRun`: timed loop of `readLock(); readUnlock()` (or the trace flavor, or an empty
 *   loop of the same shape as the baseline), in chunks; returns pairs and seconds.
 * - `busyRun`: what a busy CPU does while the main thread measures GP latency: read sections that
 *   each read 16 words of a unit, and every 8th section one alloc + freeRcu (so GPs are always
 *   wanted), until the main thread sets the stop word.
 *
 * Must not use top-level await: the pool loads this module with `require()`.
 */
import type { CpuHandle } from '../src/cpu/cpu.js';
import type { Pointer } from '../src/index.js';
import type { CpuContext } from '../src/service/cpu-context.js';

export interface ReadSideArgs {
  readonly seconds: number;
  readonly kind: 'rcu' | 'ttrace' | 'empty';
}

export interface ReadSideResult {
  readonly pairs: number;
  readonly seconds: number;
}

function rcuPairs(cpu: CpuHandle, n: number): void {
  for (let i = 0; i < n; i++) {
    cpu.readLock();
    cpu.readUnlock();
  }
}

function ttracePairs(cpu: CpuHandle, n: number): void {
  for (let i = 0; i < n; i++) {
    cpu.readLockTrace();
    cpu.readUnlockTrace();
  }
}

/** The loop with the handle's cheapest owner check in place of the section (baseline). */
function emptyPairs(cpu: CpuHandle, n: number): number {
  let k = 0;
  for (let i = 0; i < n; i++) if (cpu.attached) k++;
  return k;
}

export function readSideRun(ctx: CpuContext<ReadSideArgs>): ReadSideResult {
  const { cpu, args } = ctx;
  const step =
    args.kind === 'rcu'
      ? (n: number) => rcuPairs(cpu, n)
      : args.kind === 'ttrace'
        ? (n: number) => ttracePairs(cpu, n)
        : (n: number) => emptyPairs(cpu, n);
  const chunk = 1 << 16;
  // Warm-up: let V8 optimise the loop before timing.
  const w0 = performance.now();
  while (performance.now() - w0 < 200) step(chunk);
  ctx.barrier();
  let pairs = 0;
  const t0 = performance.now();
  let t = t0;
  do {
    step(chunk);
    pairs += chunk;
    t = performance.now();
  } while (t - t0 < args.seconds * 1000);
  return { pairs, seconds: (t - t0) / 1000 };
}

export interface BusyArgs {
  /** Word 0: CPUs that started; word 1: stop flag set by the main thread. */
  readonly control: SharedArrayBuffer;
}

export interface BusyResult {
  readonly sections: number;
  readonly freed: number;
  readonly allocFailures: number;
  /** Sum of the words read (returned so that the reads are not optimised away). */
  readonly checksum: number;
}

export function busyRun(ctx: CpuContext<BusyArgs>): BusyResult {
  const { cpu } = ctx;
  const control = new Int32Array(ctx.args.control);
  const i32 = cpu.i32;
  const unit = cpu.alloc(64) >> 2;
  Atomics.add(control, 0, 1);
  Atomics.notify(control, 0);
  let sections = 0;
  let freed = 0;
  let allocFailures = 0;
  let sum = 0;
  while (Atomics.load(control, 1) === 0) {
    for (let k = 0; k < 1024; k++) {
      cpu.readLock();
      for (let w = 0; w < 16; w++) sum += i32[unit + w] as number;
      cpu.readUnlock();
      if ((k & 7) === 0) {
        const p = cpu.alloc(48);
        if (p === 0) allocFailures++;
        else {
          cpu.freeRcu(p);
          freed++;
        }
      }
    }
    sections += 1024;
  }
  cpu.free((unit << 2) as Pointer);
  return { sections, freed, allocFailures, checksum: sum };
}
