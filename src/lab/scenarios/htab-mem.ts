/**
 * The producer side of `percpu-arena bench htab-mem`, the kernel's htab-mem benchmark
 * (tools/testing/selftests/bpf/benchs/bench_htab_mem.c and progs/htab_mem_bench.c): every
 * producer CPU runs "programs" of 64 map operations, each program one read-side section, until
 * the main thread raises the stop word, and counts its runs as the BPF side counts op_cnt.
 *
 * - overwrite: 64 updates (flag ANY) of keys cpu, cpu + n, cpu + 2n, ... (n producers); +1.
 * - batch_add_batch_del: the same 64 updates, then 64 deletes of the same keys; +2.
 * - add_del_on_diff_cpu: producers pair up (2k adds, 2k + 1 deletes, keys from k stepping by
 *   n / 2); the adder runs 64 NOEXIST updates, the deleter then 64 deletes, in turn through a
 *   two-party barrier as the kernel bench's pthread barriers; +1 each.
 *
 * Who may call: CPU pool workers, one per producer. Shared words (the control buffer, all
 * through Atomics): STOP written by the main thread; each producer's run counter on its own
 * cache line, written by that producer and read by the main thread; per pair a barrier (src/shm/sync.ts)
 * and a stop word written by the adder before the barrier the deleter passes.
 */
import type { CpuContext } from '../../service/cpu-context.js';
import type { HashMapRef } from '../../shm/refs.js';
import { barrierInit, barrierWait } from '../../shm/sync.js';
import { HashMap, MapStatus, UpdateFlag } from '../../structures/hash-map.js';

export const HTAB_USE_CASES = ['overwrite', 'batch_add_batch_del', 'add_del_on_diff_cpu'] as const;
export type HtabUseCase = (typeof HTAB_USE_CASES)[number];

/** OP_BATCH of the BPF programs. */
const OP_BATCH = 64;
/** Control buffer words: stop, then one cache line per producer, then one per pair. */
export const CONTROL_STOP = 0;
const LINE = 16;
const PAIR_BARRIER = 0;
const PAIR_STOP = 4;
const kBarrierTimeoutMs = 60_000;

/** Int32 words the control buffer needs for `producers`. */
export function controlWords(producers: number): number {
  return LINE * (1 + producers + Math.ceil(producers / 2));
}

/** Word of producer `i`'s run counter. */
export function runCounterWord(i: number): number {
  return LINE * (1 + i);
}

/** Sets up the pairs' barriers (main thread, before the run). */
export function initControl(control: Int32Array, producers: number): void {
  for (let pair = 0; pair < Math.ceil(producers / 2); pair++) {
    barrierInit(control, pairWord(producers, pair) + PAIR_BARRIER, 2);
  }
}

function pairWord(producers: number, pair: number): number {
  return LINE * (1 + producers + pair);
}

export interface HtabMemArgs {
  readonly ref: HashMapRef;
  readonly useCase: HtabUseCase;
  readonly valueSize: number;
  readonly control: SharedArrayBuffer;
}

export interface HtabMemResult {
  readonly index: number;
  /** Updates that returned FULL or NO_MEMORY (the kernel bench ignores them; we count them). */
  readonly failedUpdates: number;
}

export function htabMemProducer(ctx: CpuContext<HtabMemArgs>): HtabMemResult {
  const { cpu, index, cpus: producers, args } = ctx;
  const map = HashMap.open(cpu, args.ref);
  const control = new Int32Array(args.control);
  const counter = runCounterWord(index);
  const key = new Uint8Array(4);
  const keyView = new DataView(key.buffer);
  const zeroedValue = new Uint8Array(args.valueSize);
  let failedUpdates = 0;

  const write = (from: number, step: number, flags: UpdateFlag): void => {
    for (let i = 0; i < OP_BATCH; i++) {
      keyView.setUint32(0, from + i * step, true);
      const status = map.update(key, zeroedValue, flags);
      if (status === MapStatus.FULL || status === MapStatus.NO_MEMORY) failedUpdates++;
    }
  };
  const remove = (from: number, step: number): void => {
    for (let i = 0; i < OP_BATCH; i++) {
      keyView.setUint32(0, from + i * step, true);
      map.delete(key);
    }
  };

  if (args.useCase !== 'add_del_on_diff_cpu') {
    const both = args.useCase === 'batch_add_batch_del';
    while (Atomics.load(control, CONTROL_STOP) === 0) {
      cpu.readLock();
      write(index, producers, UpdateFlag.ANY);
      if (both) remove(index, producers);
      cpu.readUnlock();
      Atomics.add(control, counter, both ? 2 : 1);
    }
    return { index, failedUpdates };
  }

  const pair = pairWord(producers, index >> 1);
  const from = index >> 1;
  const step = producers >> 1;
  if ((index & 1) === 0) {
    for (;;) {
      const stop = Atomics.load(control, CONTROL_STOP);
      if (stop === 0) {
        cpu.readLock();
        write(from, step, UpdateFlag.NOEXIST);
        cpu.readUnlock();
        Atomics.add(control, counter, 1);
      }
      // The deleter reads the pair's stop word only after this barrier.
      Atomics.store(control, pair + PAIR_STOP, stop);
      barrierWait(control, pair + PAIR_BARRIER, kBarrierTimeoutMs);
      if (stop !== 0) break;
      barrierWait(control, pair + PAIR_BARRIER, kBarrierTimeoutMs);
    }
  } else {
    for (;;) {
      barrierWait(control, pair + PAIR_BARRIER, kBarrierTimeoutMs);
      if (Atomics.load(control, pair + PAIR_STOP) !== 0) break;
      cpu.readLock();
      remove(from, step);
      cpu.readUnlock();
      Atomics.add(control, counter, 1);
      barrierWait(control, pair + PAIR_BARRIER, kBarrierTimeoutMs);
    }
  }
  return { index, failedUpdates };
}
