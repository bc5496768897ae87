/**
 * The depot (policy sharing 'depot'; tcmalloc's transfer cache, jemalloc's bins between tcache
 * and slab): per class a few slots of whole batches shared by all CPUs. A CPU over its high
 * watermark parks the batch it trims there (up to two refill batches: a larger one would
 * overshoot the taker's refill); a CPU under its low watermark takes parked batches before it
 * goes to the slab. Moving a batch costs a CAS and a store, whatever its length, and no mutex.
 *
 * ```
 *  slot: | head (0 empty · BUSY = -(threadId + 1) · chain head) | tail | count |
 *  park: CAS head 0 → BUSY, write tail and count, store head     (no empty slot: the caller uses the slab)
 *  take: CAS head h → BUSY, read tail and count, store 0         (no full slot: the caller uses the slab)
 * ```
 * BUSY names the claiming thread, so that recovery (src/arena/recovery.ts) frees a slot whose
 * claimant died in between (the batch it held is lost with it and reported).
 * A slot is only ever moved from 0 or from a chain head to BUSY by CAS, and back by its
 * claimant's store, so the claimant alone touches the tail and count words in between: no ABA
 * (a chain head that comes back is a whole new batch parked by a claimant that owned the slot).
 * Units parked here are reusable (they passed any GP the policy requires before they could be
 * trimmed); the coordinator's tick and the shrinker send parked batches back to the slab so that
 * empty spans can be released.
 *
 * Who may call: any thread holding a CPU (park, take), the coordinator and the shrinker
 * (`drainTo`). Shared words: the depot slots (heads by CAS and store, tail and count plainly
 * while the slot is BUSY; the release store publishes them), X_DEPOT_PARKS / X_DEPOT_TAKES.
 */

import { threadId } from 'node:worker_threads';
import type { Slab } from '../memory/slab.js';
import {
  DEPOT_COUNT,
  DEPOT_SLOTS,
  DEPOT_TAIL,
  DEPOT_X_HEAD,
  depotWord,
  type Layout,
  X_DEPOT_PARKS,
  X_DEPOT_TAKES,
} from '../shm/layout.js';
import { type Chain, emptyChain } from '../shm/llist.js';

/** A slot this thread has claimed. */
const kBusy = -(threadId + 1);

/**
 * Recovery: frees the depot slots thread `dead` had claimed (it died between the claim and the
 * release); returns the units their batches held as far as the slots say (lost with the thread).
 */
export function releaseDeadClaims(i32: Int32Array, layout: Layout, dead: number): number {
  let lost = 0;
  for (let cls = 0; cls < layout.classes; cls++) {
    for (let slot = 0; slot < DEPOT_SLOTS; slot++) {
      const w = depotWord(layout, cls, slot);
      if (Atomics.compareExchange(i32, w + DEPOT_X_HEAD, -(dead + 1), 0) === -(dead + 1)) {
        lost += i32[w + DEPOT_COUNT] as number;
      }
    }
  }
  return lost;
}

export class Depot {
  readonly #i32: Int32Array;
  readonly #layout: Layout;
  /** The batch `drainTo` is moving (its own scratch). */
  readonly #drained: Chain = emptyChain();

  constructor(i32: Int32Array, layout: Layout) {
    this.#i32 = i32;
    this.#layout = layout;
  }

  /** Parks a chain of `n` free units of class `cls`; false (nothing changed) if every slot is taken. */
  park(cls: number, head: number, tail: number, n: number): boolean {
    const i32 = this.#i32;
    for (let slot = 0; slot < DEPOT_SLOTS; slot++) {
      const w = depotWord(this.#layout, cls, slot);
      if (Atomics.load(i32, w + DEPOT_X_HEAD) !== 0) continue;
      if (Atomics.compareExchange(i32, w + DEPOT_X_HEAD, 0, kBusy) !== 0) continue;
      i32[tail >> 2] = 0;
      i32[w + DEPOT_TAIL] = tail;
      i32[w + DEPOT_COUNT] = n;
      Atomics.store(i32, w + DEPOT_X_HEAD, head);
      Atomics.add(i32, X_DEPOT_PARKS, 1);
      return true;
    }
    return false;
  }

  /**
   * Takes a parked batch of class `cls` into `out` (empty if none is parked).
   */
  take(cls: number, out: Chain): void {
    const i32 = this.#i32;
    for (let slot = 0; slot < DEPOT_SLOTS; slot++) {
      const w = depotWord(this.#layout, cls, slot);
      const head = Atomics.load(i32, w + DEPOT_X_HEAD);
      if (head <= 0) continue;
      if (Atomics.compareExchange(i32, w + DEPOT_X_HEAD, head, kBusy) !== head) continue;
      out.head = head;
      out.tail = i32[w + DEPOT_TAIL] as number;
      out.count = i32[w + DEPOT_COUNT] as number;
      Atomics.store(i32, w + DEPOT_X_HEAD, 0);
      Atomics.add(i32, X_DEPOT_TAKES, 1);
      return;
    }
    out.head = 0;
    out.tail = 0;
    out.count = 0;
  }

  /** Sends every batch parked for class `cls` to the slab; returns the units moved. */
  drainTo(slab: Slab, cls: number): number {
    let units = 0;
    // Bounded: CPUs may park new batches meanwhile; those wait for the next drain.
    const batch = this.#drained;
    for (let k = 0; k < DEPOT_SLOTS; k++) {
      this.take(cls, batch);
      if (batch.head === 0) break;
      slab.returnBatch(cls, batch.head, batch.tail, batch.count);
      units += batch.count;
    }
    return units;
  }

  /** Units parked for class `cls` now (racy: a snapshot for stats). */
  units(cls: number): number {
    const i32 = this.#i32;
    let n = 0;
    for (let slot = 0; slot < DEPOT_SLOTS; slot++) {
      const w = depotWord(this.#layout, cls, slot);
      if (Atomics.load(i32, w + DEPOT_X_HEAD) > 0) n += i32[w + DEPOT_COUNT] as number;
    }
    return n;
  }
}
