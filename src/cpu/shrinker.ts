/**
 * The shrinker: what a CPU does when a refill finds nothing at all — its deferred lists hold
 * nothing that passed a GP, and the slab cannot carve because the arena is at `maxBytes` — before
 * its alloc returns 0. Two steps, each counted in the header (X_RECLAIM_*):
 *
 * 1. Drain the CPUs nobody runs: a parked CPU's deferred lists move on and its cached free units
 *    go back to the slab; an offline CPU's deferred lists move on. Each is claimed through its
 *    state word (IDLE/OFFLINE → DRAINING, by CAS) exactly as the coordinator does, and put back.
 *    Then the depot's parked batches go to the slab and the slabs' empty spans go back to the
 *    page allocator (another class's empty spans become this class's pages).
 * 2. An urgent GP: try to advance both flavors twice (the same rule as the coordinator; it fails
 *    while a reader pinned at an older epoch holds it, and respects the minimum epoch duration of
 *    the GP timing emulation), so the caller's own deferred batches may pass their GP.
 *
 * The caller then moves its own lists and asks the slab again. Online CPUs' caches are their
 * owners': units cached on a busy CPU stay there (the depot holds only what their trims parked).
 *
 * Who may call: a CPU's slow path, on its owner's thread, with the arena open.
 * Shared words: the X_RECLAIM_* counters (Atomics.add); other CPUs' state words (CAS) and, while
 * claimed, their cache words (plain: the claim's CAS and the release store order them, as in
 * src/arena/coordinator.ts); the GP words through src/epoch/grace-period.ts.
 */

import { ADVANCED, RACED, tryAdvance } from '../epoch/grace-period.js';
import type { Slab } from '../memory/slab.js';
import {
  FLAVORS,
  type Layout,
  X_RECLAIM_ADVANCES,
  X_RECLAIM_DRAINED,
  X_RECLAIM_RUNS,
  X_RECLAIM_SUCCEEDED,
} from '../shm/layout.js';
import { drainIfIdle } from './cpu-slot.js';
import type { ListsByCpu } from './deferred.js';

export class Shrinker {
  readonly #i32: Int32Array;
  readonly #layout: Layout;
  readonly #lists: ListsByCpu;
  readonly #slab: Slab;
  readonly #self: number;
  readonly #birthMs: number;

  constructor(i32: Int32Array, layout: Layout, lists: ListsByCpu, slab: Slab, self: number, birthMs: number) {
    this.#i32 = i32;
    this.#layout = layout;
    this.#lists = lists;
    this.#slab = slab;
    this.#self = self;
    this.#birthMs = birthMs;
  }

  /** Runs both steps (see the module comment). */
  reclaim(): void {
    const i32 = this.#i32;
    Atomics.add(i32, X_RECLAIM_RUNS, 1);
    for (let cpu = 0; cpu < this.#layout.cpus; cpu++) {
      if (cpu !== this.#self && drainIfIdle(i32, this.#layout, cpu, (offline) => this.#drain(cpu, offline))) {
        Atomics.add(i32, X_RECLAIM_DRAINED, 1);
      }
    }
    const depot = this.#lists.of(this.#self).depot;
    for (let cls = 0; cls < this.#layout.classes; cls++) {
      depot?.drainTo(this.#slab, cls);
      this.#slab.releaseEmptySpans(cls);
    }
    for (let flavor = 0; flavor < FLAVORS; flavor++) {
      for (let k = 0; k < 2; k++) {
        const result = tryAdvance(i32, this.#layout, flavor, this.#birthMs);
        if (result === ADVANCED) Atomics.add(i32, X_RECLAIM_ADVANCES, 1);
        else if (result !== RACED) break;
      }
    }
  }

  /** Counts a run after which the refill got units. */
  succeeded(): void {
    Atomics.add(this.#i32, X_RECLAIM_SUCCEEDED, 1);
  }

  /** The work on a claimed CPU: its deferred lists move on; a parked CPU's cached units go back. */
  #drain(cpu: number, offline: boolean): void {
    const lists = this.#lists.of(cpu);
    lists.pollAll(offline);
    // A parked CPU refills when it is unparked.
    if (!offline) for (let cls = 0; cls < this.#layout.classes; cls++) lists.flushFreeList(cls);
  }
}
