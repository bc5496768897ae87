/**
 * The CPU side of `percpu-arena bench xmalloc`, the xmalloc-test shape (Lever & Boreham 2000, as
 * mimalloc-bench runs it: `xmalloc-test -w N -t 5 -s 64`): producer CPUs allocate batches of
 * objects and push each batch on a bounded shared queue; consumer CPUs pop batches and free
 * every object, so every free is remote. A batch is a chain through the objects' first word; the
 * queue carries only its head.
 *
 * Who may call: CPU pool workers; the first `producers` CPUs of the run produce, the rest consume.
 * Shared words (control buffer, Atomics): STOP (main thread), producers still running, and
 * per-CPU counters on their own lines (objects allocated or freed, allocation failures), written
 * by that CPU and read by the main thread. The queue is src/structures/ring.ts's.
 */
import type { CpuContext } from '../../service/cpu-context.js';
import type { Pointer } from '../../shm/refs.js';
import { PointerQueue } from '../../structures/ring.js';

export const XMALLOC_STOP = 0;
const PRODUCERS_LEFT = 1;
const LINE = 16;
/** Per-CPU line: objects (allocated by a producer, freed by a consumer), failed allocations. */
const OBJECTS = 0;
const FAILURES = 1;
/** How long a CPU naps when the queue is full (producer) or empty (consumer), in ms. */
const kBackoffMs = 0.05;

export function xmallocControlWords(cpus: number): number {
  return LINE * (1 + cpus);
}

export function objectCounterWord(index: number): number {
  return LINE * (1 + index) + OBJECTS;
}

export function initXmallocControl(control: Int32Array, producers: number): void {
  Atomics.store(control, PRODUCERS_LEFT, producers);
}

export interface XmallocArgs {
  readonly producers: number;
  readonly batch: number;
  readonly size: number;
  readonly queue: SharedArrayBuffer;
  readonly control: SharedArrayBuffer;
}

export interface XmallocResult {
  readonly index: number;
  readonly role: 'producer' | 'consumer';
  readonly objects: number;
  readonly allocFailures: number;
}

export function xmallocCpu(ctx: CpuContext<XmallocArgs>): XmallocResult {
  const { cpu, index, args } = ctx;
  const control = new Int32Array(args.control);
  const queue = new PointerQueue(args.queue);
  const i32 = cpu.i32;
  const line = LINE * (1 + index);
  const nap = new Int32Array(new SharedArrayBuffer(4));
  let objects = 0;
  let failures = 0;
  // A CPU with nothing to do runs its doorbell work (moves deferred lists whose GP has passed,
  // as the kernel runs RCU callbacks on an idle CPU), then naps.
  const idle = (): void => {
    cpu.poll();
    Atomics.wait(nap, 0, 0, kBackoffMs);
  };

  const freeChain = (first: number): number => {
    let n = 0;
    for (let head = first; head !== 0; n++) {
      const next = i32[head >> 2] as number;
      cpu.free(head as Pointer);
      head = next;
    }
    return n;
  };
  const stopped = (): boolean => Atomics.load(control, XMALLOC_STOP) !== 0;

  if (index < args.producers) {
    // Counted down however the producer ends, so consumers never wait for a dead one.
    try {
      produce();
    } finally {
      Atomics.sub(control, PRODUCERS_LEFT, 1);
    }
    return { index, role: 'producer', objects, allocFailures: failures };
  }

  for (;;) {
    const head = queue.pop();
    if (head !== 0) {
      objects += freeChain(head);
      Atomics.store(control, line + OBJECTS, objects);
    } else if (Atomics.load(control, PRODUCERS_LEFT) === 0) {
      // Done once every producer has ended and the queue is drained: nothing stays allocated.
      const last = queue.pop();
      if (last === 0) break;
      objects += freeChain(last);
      Atomics.store(control, line + OBJECTS, objects);
    } else {
      idle();
    }
  }
  return { index, role: 'consumer', objects, allocFailures: 0 };

  function produce(): void {
    while (!stopped()) {
      let head = 0;
      let made = 0;
      while (made < args.batch) {
        const ptr = cpu.alloc(args.size);
        if (ptr === 0) {
          failures++;
          Atomics.store(control, line + FAILURES, failures);
          break;
        }
        i32[ptr >> 2] = head;
        head = ptr;
        made++;
      }
      objects += made;
      Atomics.store(control, line + OBJECTS, objects);
      if (head === 0) {
        idle();
        continue;
      }
      while (!queue.push(head)) {
        if (stopped()) {
          // No consumer took it (they may have failed): free the batch here, leak nothing.
          freeChain(head);
          return;
        }
        idle();
      }
    }
  }
}
