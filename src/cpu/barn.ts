/**
 * The barn (policy cache 'sheaves'; mm/slub.c `struct node_barn`, kernel 6.18/7.0): per class
 * one shared store of whole sheaves that CPUs exchange with their main sheaf — at most
 * BARN_MAX_FULL (10) full and BARN_MAX_EMPTY (10) empty ones — plus the pool of unused sheaves
 * (the kernel allocates and frees sheaves with kmalloc: alloc_empty_sheaf / free_empty_sheaf;
 * here the pool starts as the H_SHEAVES sheaves after the barn record and, when it runs out,
 * grows a page of sheaves at a time from the page allocator: BARN_GROWN counts them; they stay
 * in the pool, counted as memory in use, for the arena's life). The arena has one barn per
 * class: one node.
 *
 * ```
 *  replaceEmpty(empty) → full | 0     barn_replace_empty_sheaf: empty in (limit ignored), full out; 0 = BARN_GET_FAIL
 *  replaceFull(full)   → empty | E2BIG | NO_EMPTY | BUSY   barn_replace_full_sheaf: refuses at nr_full ≥ 10 (-E2BIG) or with no empty (-ENOMEM)
 *  getEmpty()          → empty | 0    barn_get_empty_sheaf
 *  (the first three take allowSpin = false from kmalloc_nolock/kfree_nolock: spin_trylock, BUSY or 0 when held)
 *  putFull(full)       → bool         rcu_free_sheaf: only while nr_full < 10
 *  putReady(full)                     sheafReady 'cpu' beyond 10 full: onto the ready stack (no bound)
 *  takeAllReady()      → sheaves      the ready stack whole (a quiet class gives it to the slab)
 *  putEmpty(empty)                    barn_put_empty_sheaf, or back to the pool at the limit
 *  takeUnused() / putUnused(sheaf)    alloc_empty_sheaf / free_empty_sheaf (an empty pool grows by a page)
 * ```
 * Exchanges keep the number of sheaves constant (every sheaf of the pool is in exactly one
 * place: a CPU's main / spare / rcu_free / sealed FIFO, the barn's full, ready or empty stack,
 * or the unused stack). The ready stack is not the kernel's: under sheafReady 'cpu'
 * (arena-sheaves) a CPU that only frees would otherwise flush every sheaf past the tenth to the
 * slab, and the CPU that allocates would refill them from it; an alloc miss takes the full stack,
 * then the ready one. A thread killed holding sheaves taken from a stack leaks them (recovery
 * cannot see its locals), as in a cut exchange. As in 082942292109 ("determine barn status racily
 * outside of lock"), each operation first reads the count it needs without the lock and gives up
 * early; the decision is then re-checked under the lock.
 *
 * Who may call: any thread holding a CPU of the arena (and recovery for a dead one). Shared
 * words: BARN_X_LOCK, a robust mutex (src/shm/sync.ts: a thread that dies holding it is
 * recovered by src/arena/recovery.ts); every other barn word and the links of unused sheaves are
 * the lock holder's and use plain accesses (the mutex's Atomics order them). The racy count
 * reads are aligned 32-bit loads: they cannot tear, and a stale value only costs a wasted lock
 * or a missed exchange, never a wrong one. Growing takes the page lock before, never inside,
 * the barn's (lock order: slab row, then pages; the barn's is taken alone).
 */

import type { PageAllocator } from '../memory/page-allocator.js';
import {
  BARN_CAPACITY,
  BARN_EMPTY,
  BARN_FULL,
  BARN_GROWN,
  BARN_MAX_EMPTY,
  BARN_MAX_FULL,
  BARN_NR_EMPTY,
  BARN_NR_FULL,
  BARN_NR_READY,
  BARN_READY_HEAD,
  BARN_UNUSED_COUNT,
  BARN_UNUSED_HEAD,
  BARN_WORDS,
  BARN_X_LOCK,
  barnWord,
  type Layout,
  PAGE_BYTES,
  SHEAF_CAPACITY,
  SHEAF_MAX_CAPACITY,
  SHEAF_NEXT,
  SHEAF_SIZE,
  SHEAF_WORDS,
} from '../shm/layout.js';
import { robustLock, robustTryLock, robustUnlock } from '../shm/sync.js';

/** replaceFull: the barn already holds BARN_MAX_FULL full sheaves (the kernel's -E2BIG). */
export const BARN_E2BIG = -1;
/** replaceFull: the barn has no empty sheaf to give (the kernel's -ENOMEM). */
export const BARN_NO_EMPTY = -2;
/** replaceFull without spinning: another thread holds the barn's lock (spin_trylock failed). */
export const BARN_BUSY = -3;

/** Sheaves per class in the pool of an arena with `cpus` CPUs: main, spare, rcu_free and three in flight each, plus a full barn. */
export function sheafPoolSize(cpus: number): number {
  return cpus * 6 + BARN_MAX_FULL + BARN_MAX_EMPTY;
}

/**
 * The kernel's calculate_sheaf_capacity() for a unit of `unitSize` bytes (base 4 / 12 / 26 / 60
 * for sizes ≥ PAGE_SIZE / ≥ 1024 / ≥ 256 / smaller, raised to fill the sheaf's kmalloc bucket:
 * 4 / 12 / 28 / 60, kernel-2025.md §2.2), or `explicit` when it is not 0.
 */
export function sheafCapacityFor(unitSize: number, explicit: number): number {
  if (explicit !== 0) return explicit;
  return unitSize >= 4096 ? 4 : unitSize >= 1024 ? 12 : unitSize >= 256 ? 28 : 60;
}

/** Lays out every class's barn and pool (`Arena.create`, before the buffer is shared). */
export function initialiseBarns(
  i32: Int32Array,
  layout: Layout,
  unitSizes: readonly number[],
  explicit: number,
): void {
  if (layout.sheaves === 0) return;
  if (explicit < 0 || explicit > SHEAF_MAX_CAPACITY) throw new Error('sheaf capacity out of range');
  unitSizes.forEach((unitSize, cls) => {
    const b = barnWord(layout, cls);
    const capacity = sheafCapacityFor(unitSize, explicit);
    i32[b + BARN_CAPACITY] = capacity;
    let head = 0;
    for (let k = layout.sheaves - 1; k >= 0; k--) {
      const sheaf = b + BARN_WORDS + k * SHEAF_WORDS;
      i32[sheaf + SHEAF_CAPACITY] = capacity;
      i32[sheaf + SHEAF_NEXT] = head;
      head = sheaf;
    }
    i32[b + BARN_UNUSED_HEAD] = head;
    i32[b + BARN_UNUSED_COUNT] = layout.sheaves;
  });
}

/** Sheaves carved from one page when a pool grows. */
export const SHEAVES_PER_PAGE = PAGE_BYTES / (SHEAF_WORDS * 4);

export class Barn {
  readonly #i32: Int32Array;
  readonly #layout: Layout;
  /** Where an exhausted pool grows from; without it (recovery, stats) the pool stays as it is. */
  readonly #pages: PageAllocator | undefined;

  constructor(i32: Int32Array, layout: Layout, pages?: PageAllocator) {
    this.#i32 = i32;
    this.#layout = layout;
    this.#pages = pages;
  }

  /** Objects per sheaf of class `cls`. */
  capacity(cls: number): number {
    return this.#i32[barnWord(this.#layout, cls) + BARN_CAPACITY] as number;
  }

  /** Full sheaves in the barn of `cls` (racy read: stats, tests). */
  nrFull(cls: number): number {
    return this.#i32[barnWord(this.#layout, cls) + BARN_NR_FULL] as number;
  }

  /** Empty sheaves in the barn of `cls` (racy read). */
  nrEmpty(cls: number): number {
    return this.#i32[barnWord(this.#layout, cls) + BARN_NR_EMPTY] as number;
  }

  /** Unused sheaves of the pool of `cls` (racy read). */
  nrUnused(cls: number): number {
    return this.#i32[barnWord(this.#layout, cls) + BARN_UNUSED_COUNT] as number;
  }

  /** Sheaves of the pool of `cls`: the fixed ones and those grown from pages (racy read). */
  poolSize(cls: number): number {
    return this.#layout.sheaves + (this.#i32[barnWord(this.#layout, cls) + BARN_GROWN] as number);
  }

  /** Sheaves on the ready stack of `cls` (racy read). */
  nrReady(cls: number): number {
    return this.#i32[barnWord(this.#layout, cls) + BARN_NR_READY] as number;
  }

  /**
   * The full sheaves of the barn of `cls`, the full stack's then the ready stack's (their word
   * indices; racy unless the arena is quiet: the walk stops after the pool's size).
   */
  fullSheaves(cls: number): number[] {
    const i32 = this.#i32;
    const b = barnWord(this.#layout, cls);
    const n = Math.min(Math.max(i32[b + BARN_NR_FULL] as number, 0), BARN_MAX_FULL);
    const out = Array.from({ length: n }, (_, k) => i32[b + BARN_FULL + k] as number);
    const limit = this.poolSize(cls);
    for (
      let s = i32[b + BARN_READY_HEAD] as number;
      s > 0 && out.length < limit;
      s = i32[s + SHEAF_NEXT] as number
    )
      out.push(s);
    return out;
  }

  /**
   * barn_replace_empty_sheaf: gives `empty`, returns a full sheaf; 0 (nothing changed) if none,
   * or if `allowSpin` is false and another thread holds the lock.
   */
  replaceEmpty(cls: number, empty: number, allowSpin = true): number {
    const i32 = this.#i32;
    const b = barnWord(this.#layout, cls);
    if ((i32[b + BARN_NR_FULL] as number) === 0 && (i32[b + BARN_NR_READY] as number) === 0) return 0;
    if (!this.#lock(b, allowSpin)) return 0;
    let full = 0;
    const nrFull = i32[b + BARN_NR_FULL] as number;
    if (nrFull !== 0) {
      full = i32[b + BARN_FULL + nrFull - 1] as number;
      i32[b + BARN_NR_FULL] = nrFull - 1;
    } else if ((i32[b + BARN_NR_READY] as number) !== 0) {
      full = i32[b + BARN_READY_HEAD] as number;
      i32[b + BARN_READY_HEAD] = i32[full + SHEAF_NEXT] as number;
      i32[b + BARN_NR_READY] = (i32[b + BARN_NR_READY] as number) - 1;
      i32[full + SHEAF_NEXT] = 0;
    }
    if (full !== 0) this.#putEmptyLocked(b, empty);
    robustUnlock(i32, b + BARN_X_LOCK);
    return full;
  }

  /**
   * barn_replace_full_sheaf: gives `full`, returns an empty sheaf; BARN_E2BIG when the barn holds
   * BARN_MAX_FULL full ones, BARN_NO_EMPTY when it has no empty one, BARN_BUSY when `allowSpin`
   * is false and another thread holds the lock (nothing changed then).
   */
  replaceFull(cls: number, full: number, allowSpin = true): number {
    const i32 = this.#i32;
    const b = barnWord(this.#layout, cls);
    if ((i32[b + BARN_NR_FULL] as number) >= BARN_MAX_FULL) return BARN_E2BIG;
    if ((i32[b + BARN_NR_EMPTY] as number) === 0) return BARN_NO_EMPTY;
    if (!this.#lock(b, allowSpin)) return BARN_BUSY;
    let result: number;
    const nrFull = i32[b + BARN_NR_FULL] as number;
    const nrEmpty = i32[b + BARN_NR_EMPTY] as number;
    if (nrFull >= BARN_MAX_FULL) result = BARN_E2BIG;
    else if (nrEmpty === 0) result = BARN_NO_EMPTY;
    else {
      result = i32[b + BARN_EMPTY + nrEmpty - 1] as number;
      i32[b + BARN_NR_EMPTY] = nrEmpty - 1;
      i32[b + BARN_FULL + nrFull] = full;
      i32[b + BARN_NR_FULL] = nrFull + 1;
    }
    robustUnlock(i32, b + BARN_X_LOCK);
    return result;
  }

  /** barn_get_empty_sheaf: an empty sheaf, or 0 (also when `allowSpin` is false and the lock is held). */
  getEmpty(cls: number, allowSpin = true): number {
    const i32 = this.#i32;
    const b = barnWord(this.#layout, cls);
    if ((i32[b + BARN_NR_EMPTY] as number) === 0) return 0;
    if (!this.#lock(b, allowSpin)) return 0;
    let empty = 0;
    const nrEmpty = i32[b + BARN_NR_EMPTY] as number;
    if (nrEmpty !== 0) {
      empty = i32[b + BARN_EMPTY + nrEmpty - 1] as number;
      i32[b + BARN_NR_EMPTY] = nrEmpty - 1;
    }
    robustUnlock(i32, b + BARN_X_LOCK);
    return empty;
  }

  /** Puts a full sheaf in the barn if it holds fewer than BARN_MAX_FULL; false (unchanged) otherwise. */
  putFull(cls: number, full: number): boolean {
    const i32 = this.#i32;
    const b = barnWord(this.#layout, cls);
    if ((i32[b + BARN_NR_FULL] as number) >= BARN_MAX_FULL) return false;
    robustLock(i32, b + BARN_X_LOCK);
    const nrFull = i32[b + BARN_NR_FULL] as number;
    const ok = nrFull < BARN_MAX_FULL;
    if (ok) {
      i32[b + BARN_FULL + nrFull] = full;
      i32[b + BARN_NR_FULL] = nrFull + 1;
    }
    robustUnlock(i32, b + BARN_X_LOCK);
    return ok;
  }

  /** sheafReady 'cpu': a full sheaf past its GP onto the ready stack, whatever the barn holds. */
  putReady(cls: number, full: number): void {
    const i32 = this.#i32;
    const b = barnWord(this.#layout, cls);
    robustLock(i32, b + BARN_X_LOCK);
    i32[full + SHEAF_NEXT] = i32[b + BARN_READY_HEAD] as number;
    i32[b + BARN_READY_HEAD] = full;
    i32[b + BARN_NR_READY] = (i32[b + BARN_NR_READY] as number) + 1;
    robustUnlock(i32, b + BARN_X_LOCK);
  }

  /** Takes the whole ready stack of `cls` (the caller flushes its sheaves to the slab and gives them back). */
  takeAllReady(cls: number): number[] {
    const i32 = this.#i32;
    const b = barnWord(this.#layout, cls);
    if ((i32[b + BARN_NR_READY] as number) === 0) return [];
    robustLock(i32, b + BARN_X_LOCK);
    const out: number[] = [];
    for (let s = i32[b + BARN_READY_HEAD] as number; s !== 0; s = i32[s + SHEAF_NEXT] as number) out.push(s);
    i32[b + BARN_READY_HEAD] = 0;
    i32[b + BARN_NR_READY] = 0;
    robustUnlock(i32, b + BARN_X_LOCK);
    for (const sheaf of out) i32[sheaf + SHEAF_NEXT] = 0;
    return out;
  }

  /** barn_put_empty_sheaf (or free_empty_sheaf at the limit: the storage has BARN_MAX_EMPTY slots). */
  putEmpty(cls: number, empty: number): void {
    const i32 = this.#i32;
    const b = barnWord(this.#layout, cls);
    robustLock(i32, b + BARN_X_LOCK);
    this.#putEmptyLocked(b, empty);
    robustUnlock(i32, b + BARN_X_LOCK);
  }

  /**
   * alloc_empty_sheaf: a sheaf from the pool; an empty pool first grows by a page of sheaves
   * (with a page allocator); 0 when it cannot (the memory limit).
   */
  takeUnused(cls: number): number {
    const i32 = this.#i32;
    const b = barnWord(this.#layout, cls);
    if ((i32[b + BARN_UNUSED_COUNT] as number) === 0 && !this.#grow(cls, b)) return 0;
    robustLock(i32, b + BARN_X_LOCK);
    const sheaf = i32[b + BARN_UNUSED_HEAD] as number;
    if (sheaf !== 0) {
      i32[b + BARN_UNUSED_HEAD] = i32[sheaf + SHEAF_NEXT] as number;
      i32[b + BARN_UNUSED_COUNT] = (i32[b + BARN_UNUSED_COUNT] as number) - 1;
      i32[sheaf + SHEAF_SIZE] = 0;
      i32[sheaf + SHEAF_NEXT] = 0;
    }
    robustUnlock(i32, b + BARN_X_LOCK);
    return sheaf;
  }

  /** free_empty_sheaf: gives an empty sheaf back to the pool. */
  putUnused(cls: number, sheaf: number): void {
    const i32 = this.#i32;
    const b = barnWord(this.#layout, cls);
    robustLock(i32, b + BARN_X_LOCK);
    this.#putUnusedLocked(b, sheaf);
    robustUnlock(i32, b + BARN_X_LOCK);
  }

  /** Adds a page of sheaves to the pool of `cls`; false without a page allocator or a page. */
  #grow(cls: number, b: number): boolean {
    if (this.#pages === undefined) return false;
    const start = this.#pages.allocSpan(1);
    if (start === 0) return false;
    const i32 = this.#i32;
    const capacity = this.capacity(cls);
    robustLock(i32, b + BARN_X_LOCK);
    for (let k = 0; k < SHEAVES_PER_PAGE; k++) {
      const sheaf = (start >> 2) + k * SHEAF_WORDS;
      i32[sheaf + SHEAF_CAPACITY] = capacity;
      this.#putUnusedLocked(b, sheaf);
    }
    i32[b + BARN_GROWN] = (i32[b + BARN_GROWN] as number) + SHEAVES_PER_PAGE;
    robustUnlock(i32, b + BARN_X_LOCK);
    return true;
  }

  /** Takes the barn's lock (spin_lock), or only tries it (spin_trylock) when `allowSpin` is false. */
  #lock(b: number, allowSpin: boolean): boolean {
    if (!allowSpin) return robustTryLock(this.#i32, b + BARN_X_LOCK);
    robustLock(this.#i32, b + BARN_X_LOCK);
    return true;
  }

  #putEmptyLocked(b: number, empty: number): void {
    const i32 = this.#i32;
    const nrEmpty = i32[b + BARN_NR_EMPTY] as number;
    if (nrEmpty < BARN_MAX_EMPTY) {
      i32[b + BARN_EMPTY + nrEmpty] = empty;
      i32[b + BARN_NR_EMPTY] = nrEmpty + 1;
    } else {
      this.#putUnusedLocked(b, empty);
    }
  }

  #putUnusedLocked(b: number, sheaf: number): void {
    const i32 = this.#i32;
    i32[sheaf + SHEAF_SIZE] = 0;
    i32[sheaf + SHEAF_NEXT] = i32[b + BARN_UNUSED_HEAD] as number;
    i32[b + BARN_UNUSED_HEAD] = sheaf;
    i32[b + BARN_UNUSED_COUNT] = (i32[b + BARN_UNUSED_COUNT] as number) + 1;
  }
}
