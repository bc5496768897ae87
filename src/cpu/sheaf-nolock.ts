/**
 * kfree_nolock's deferred frees (policy sheafLocks 'try', the nolock preset; mm/slub.c
 * `defer_free`, kernel-2025.md §3.3): a free that finds no room in the CPU's sheaves without
 * waiting for a lock goes onto the CPU's deferred list, and the CPU gives that list to the slab
 * later — the kernel queues irq_work, which runs once the context that could not take the lock
 * has left; here the CPU drains at its next safe point (`poll()`, its doorbell, park and
 * detach, src/cpu/sheaf.ts) and, without waiting, whenever a batch has collected.
 *
 * The deferred list is the cache record's free list (C_FREE_HEAD / C_FREE_COUNT, a chain
 * through header word 0), which a sheaves CPU uses for nothing else. That makes a dead CPU's
 * deferred frees part of what crash recovery already returns (src/arena/recovery.ts flushes
 * every free list), and `stats()` counts them as the cache's `free` units.
 *
 * Who may call: the thread that attached the CPU. Shared words: the slab rows (through Slab,
 * under their mutexes). The list words and the headers of the units on the list are
 * owner-only and use plain accesses. A drain unlinks a chain before it offers it to the slab
 * and links it back if the row is busy: a thread killed in between loses the chain (a leak,
 * which recovery tolerates), never gives a unit to the slab twice.
 */
import type { Slab } from '../memory/slab.js';
import { C_FREE_COUNT, C_FREE_DEFERRED, C_FREE_HEAD, UNIT_FREE, UNIT_STATE_MASK } from '../shm/layout.js';

/** Units per slab return (PCS_BATCH_MAX, as sheaf flushes): also when a drain is tried without waiting. */
export const DEFER_BATCH = 32;

/**
 * defer_free: marks the ALLOCATED unit at header `h` FREE and pushes it on the deferred list of
 * cache record `c`; returns the list's length.
 */
export function deferFree(i32: Int32Array, c: number, h: number): number {
  i32[h + 1] = ((i32[h + 1] as number) & ~UNIT_STATE_MASK) | UNIT_FREE;
  i32[h] = i32[c + C_FREE_HEAD] as number;
  i32[c + C_FREE_HEAD] = h << 2;
  const count = (i32[c + C_FREE_COUNT] as number) + 1;
  i32[c + C_FREE_COUNT] = count;
  i32[c + C_FREE_DEFERRED] = (i32[c + C_FREE_DEFERRED] as number) + 1;
  return count;
}

/**
 * Gives the deferred list of cache record `c` (class `cls`) to the slab in chains of
 * DEFER_BATCH. With `allowSpin` false it stops at the first busy row and keeps the rest.
 * Returns the units still deferred.
 */
export function drainDeferred(
  i32: Int32Array,
  slab: Slab,
  cls: number,
  c: number,
  allowSpin: boolean,
): number {
  let count = i32[c + C_FREE_COUNT] as number;
  while (count !== 0) {
    const head = i32[c + C_FREE_HEAD] as number;
    const n = Math.min(count, DEFER_BATCH);
    let tail = head;
    for (let k = 1; k < n; k++) tail = i32[tail >> 2] as number;
    const rest = i32[tail >> 2] as number;
    i32[c + C_FREE_HEAD] = rest;
    i32[c + C_FREE_COUNT] = count - n;
    i32[tail >> 2] = 0;
    if (!slab.returnBatch(cls, head, tail, n, allowSpin)) {
      i32[tail >> 2] = rest;
      i32[c + C_FREE_HEAD] = head;
      i32[c + C_FREE_COUNT] = count;
      return count;
    }
    count -= n;
  }
  return 0;
}
