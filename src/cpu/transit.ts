/**
 * A chain in transit: the units a CPU moves from one of its lists to the slab (a trim, an
 * offline flush, a batch past its GP) or onto its free list, published in the CPU's record
 * while they are in no list, so that crash recovery can finish the move for a thread killed
 * halfway (src/arena/recovery.ts). V8 stops a terminated thread at function entries, loop
 * back-edges and around Atomics calls, so between unlinking a chain and linking it elsewhere —
 * the slab row's lock alone is two Atomics calls — the chain would otherwise live only in the
 * dying thread's locals, lost with them (piscina ending an idle worker while it served its
 * doorbell lost 24 units that way once in .ci/run).
 *
 * The protocol: `beginTransit` before the chain leaves its list (count written last, so a
 * non-zero count means the other three words are whole); the move; `endTransit` once it is on
 * its new list — for the slab, inside the row's lock, before the unlock (src/memory/slab.ts
 * `returnBatch`), so that no other thread can have taken a unit of it while the record still
 * names it. Recovery then finds the chain in one of three places: still at the head of the list
 * it was leaving, at the head of the free list it was going to, or at the head of the slab
 * row's free list (the row's lock was the dead thread's, so nobody took from the row since);
 * anywhere else it is in no list, and recovery gives it to the slab.
 *
 * Not covered: a trim into the depot or into a ttrace list (another CPU's inbox may have taken
 * it by a CAS the record cannot be cleared with), which stay as before: lost with the thread.
 *
 * Who may call: the thread that holds the CPU (its owner, or a drainer that claimed it); one
 * chain in transit per CPU at a time. Shared words: none; CPU_TRANSIT_* are owner-only and
 * plain, read by recovery only once the thread has exited.
 */
import { CPU_TRANSIT_CLASS, CPU_TRANSIT_COUNT, CPU_TRANSIT_FROM, CPU_TRANSIT_HEAD } from '../shm/layout.js';

/**
 * Publishes in the CPU record at word `rec` that the `count` units from `head` of class `cls`
 * are leaving the list whose head is at cache word `from` (an absolute word index).
 */
export function beginTransit(
  i32: Int32Array,
  rec: number,
  head: number,
  count: number,
  cls: number,
  from: number,
): void {
  i32[rec + CPU_TRANSIT_HEAD] = head;
  i32[rec + CPU_TRANSIT_CLASS] = cls;
  i32[rec + CPU_TRANSIT_FROM] = from;
  i32[rec + CPU_TRANSIT_COUNT] = count;
}

/** The chain of the CPU record at `rec` has arrived (or never left): nothing is in transit. */
export function endTransit(i32: Int32Array, rec: number): void {
  i32[rec + CPU_TRANSIT_COUNT] = 0;
}

/** The word `returnBatch` clears under the row lock for the CPU record at `rec`. */
export function transitCountWord(rec: number): number {
  return rec + CPU_TRANSIT_COUNT;
}

/**
 * Test fault `stallInTransit`: blocks the thread forever with its chain in transit, so that a
 * test can terminate it exactly there (it waits on the count word, which nobody changes).
 */
export function stallInTransit(i32: Int32Array, rec: number): void {
  Atomics.wait(i32, rec + CPU_TRANSIT_COUNT, i32[rec + CPU_TRANSIT_COUNT] as number);
}
