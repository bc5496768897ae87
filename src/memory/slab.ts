/**
 * The slab: the global, shared backing store of every class. Each class has one row: a free
 * list of units returned by the CPUs and the carve frontier of its newest span. CPUs move units
 * between their caches and the slab a batch at a time (the kernel's alloc_bulk / free_bulk
 * against kmalloc), so the row mutex is taken once per batch, never per unit.
 *
 * Who may call: any thread with an attached CPU (its caches are the only source and destination
 * of batches), and the creating thread for the coordinator, recovery and `arena.trim()` (with a
 * non-blocking instance).
 * Shared words: the row's SLAB_X_LOCK (a robust futex mutex, src/shm/sync.ts: the word names the
 * thread inside, so src/arena/recovery.ts can repair the row and release it when that thread dies)
 * guards every other word of
 * the row, the links of the units on the row's free list and the unit-start map words of the
 * row's spans (read without the lock by `free()`: a caller that legitimately holds a pointer got
 * it, through some synchronising hand-off, from an allocation made after the bits were set; a
 * forged pointer may see a stale 0 and is rejected, which is the right answer); they are read and written plainly
 * inside the critical section, whose unlock publishes them. `stats()` reads the counters
 * without the lock (racy by design: a snapshot, exact only when the arena is quiet).
 * A batch handed out is an exclusively owned chain: its units' headers belong to the taker
 * from then on. The page-table words of a row's spans are the row's too (written when it takes
 * or releases a span, under its mutex).
 *
 * Empty spans go back to the page allocator (`releaseEmptySpans`, called by the coordinator
 * once a second, `arena.trim()` and the shrinker): a span all of whose units are on the row's
 * free list, unchanged since both flavors' GPs passed (the first call sees it and asks for the
 * GPs, a later one releases it), is unlinked from the list, its unit-start bits cleared (a
 * stale pointer into it is rejected by `free()` until the pages are reused) and its pages given
 * back. The wait matters under immediate policies: a unit freed to the slab may still be read
 * by a reader that found it before the free, and the pages may go to another class.
 *
 * The creating thread never blocks on a row mutex (`nonBlocking`): a worker that died holding
 * it is recovered from that thread's event loop (src/arena/recovery.ts), so waiting there could wait
 * forever. Its returns go to the row's lock-free return stack when the mutex is busy, and its
 * span releases skip a busy row.
 */

import { isExpired, readEpoch, requestEpoch } from '../epoch/grace-period.js';
import {
  CLS_SPAN_PAGES,
  CLS_SPAN_UNITS,
  CLS_UNIT_SIZE,
  classWord,
  FLAVOR_RCU,
  FLAVOR_TTRACE,
  type Layout,
  PAGE_SHIFT,
  SLAB_CARVE_END,
  SLAB_CARVE_GEN,
  SLAB_CARVE_NEXT,
  SLAB_FREE_COUNT,
  SLAB_FREE_HEAD,
  SLAB_SPANS,
  SLAB_UNITS,
  SLAB_X_LOCK,
  SLAB_X_RETURN_COUNT,
  SLAB_X_RETURNS,
  slabWord,
  UNIT_FREE,
  UNIT_GENERATION_STEP,
  UNIT_MAP_SHIFT,
  UNIT_MAP_WORDS_PER_PAGE,
  X_PAGES_NEXT,
  X_SPAN_GENERATIONS,
} from '../shm/layout.js';
import { type Chain, emptyChain, llistAdd, walkTaken } from '../shm/llist.js';
import { robustLock, robustTryLock, robustUnlock } from '../shm/sync.js';
import type { PageAllocator } from './page-allocator.js';
import { poisonBytes, poisonEnabled } from './poison.js';

/**
 * True if a unit of some slab span starts at byte `unit` (its unit-start bit is set). Read
 * without a lock: see the module comment.
 */
export function isUnitStart(i32: Int32Array, layout: Layout, unit: number): boolean {
  const offset = unit - layout.pagesBase;
  return ((i32[layout.unitMap + (offset >> UNIT_MAP_SHIFT)] as number) & (1 << ((offset >> 3) & 31))) !== 0;
}

/**
 * Calls `visit(unit)` for every unit start of every span in the carved pages (carved units and
 * the uncarved rest of the newest spans alike; the header of an uncarved unit is 0). For audits
 * and recovery on a quiet or claimed arena; O(pages).
 */
export function forEachUnitStart(i32: Int32Array, layout: Layout, visit: (unit: number) => void): void {
  const words = Atomics.load(i32, X_PAGES_NEXT) * UNIT_MAP_WORDS_PER_PAGE;
  for (let w = 0; w < words; w++) {
    let bits = i32[layout.unitMap + w] as number;
    while (bits !== 0) {
      const low = bits & -bits;
      bits ^= low;
      visit(layout.pagesBase + ((w * 32 + (31 - Math.clz32(low))) << 3));
    }
  }
}

/** A span seen with every unit free on the slab: the sum of its header words and the epochs then. */
interface EmptySpan {
  readonly signature: number;
  readonly rcu: number;
  readonly ttrace: number;
}

/** Span generation bases step by 2^10 and stay within the header's 30 generation bits. */
const kSpanGenerationShift = 10;
const kGenerationMask = (1 << 30) - 1;

export class Slab {
  readonly #i32: Int32Array;
  readonly #layout: Layout;
  readonly #pages: PageAllocator;
  /** The units the last `#carve` cut (its caller's scratch). */
  readonly #carved: Chain = emptyChain();

  /** Never wait for a row mutex (the creating thread; see the module comment). */
  readonly #nonBlocking: boolean;
  readonly #poison: boolean;
  readonly #bytes: Uint8Array;

  constructor(i32: Int32Array, layout: Layout, pages: PageAllocator, nonBlocking = false) {
    this.#i32 = i32;
    this.#layout = layout;
    this.#pages = pages;
    this.#nonBlocking = nonBlocking;
    this.#poison = poisonEnabled(i32);
    this.#bytes = new Uint8Array(i32.buffer);
  }

  /**
   * Takes up to `want` free units of class `cls` into `out`, a chain linked through header
   * word 0 (empty: the memory limit was reached). Units come from the row's free list first,
   * then from the carve frontier, then from a new span. With `allowSpin` false (kmalloc_nolock's
   * spin_trylock of the list lock) a busy row gives nothing, and a new span only tries the page
   * allocator's lock (alloc_frozen_pages_nolock's trylock of the zone lock): busy, no span.
   */
  takeBatch(cls: number, want: number, out: Chain, allowSpin = true): void {
    const i32 = this.#i32;
    const row = slabWord(this.#layout, cls);
    let head = 0;
    let tail = 0;
    let got = 0;
    if (!allowSpin) {
      if (!robustTryLock(i32, row + SLAB_X_LOCK)) {
        out.head = out.tail = out.count = 0;
        return;
      }
    } else robustLock(i32, row + SLAB_X_LOCK);
    try {
      if (Atomics.load(i32, row + SLAB_X_RETURNS) !== 0) this.#takeReturns(row);
      let unit = i32[row + SLAB_FREE_HEAD] as number;
      if (unit !== 0) {
        head = unit;
        got = 1;
        let next = i32[unit >> 2] as number;
        while (got < want && next !== 0) {
          unit = next;
          next = i32[unit >> 2] as number;
          got++;
        }
        tail = unit;
        i32[row + SLAB_FREE_HEAD] = next;
        i32[row + SLAB_FREE_COUNT] = (i32[row + SLAB_FREE_COUNT] as number) - got;
      }
      const carved = this.#carved;
      while (got < want) {
        this.#carve(cls, row, want - got, tail, carved, allowSpin);
        if (carved.head === 0) break;
        if (head === 0) head = carved.head;
        tail = carved.tail;
        got += carved.count;
      }
    } finally {
      robustUnlock(i32, row + SLAB_X_LOCK);
    }
    if (tail !== 0) i32[tail >> 2] = 0;
    out.head = head;
    out.tail = tail;
    out.count = got;
  }

  /**
   * Gives a chain of `count` free units (head … tail) back to the row of class `cls`. With
   * `allowSpin` false a busy row takes nothing and the result is false (the chain stays the
   * caller's); otherwise true. `transitWord` (if not -1) is the CPU's transit count, cleared
   * once the chain is linked, before the unlock (src/cpu/transit.ts); on the non-blocking
   * slab's return stack it is cleared after the push, as only the creating thread, which
   * recovery never has to finish for, uses that slab.
   */
  returnBatch(
    cls: number,
    head: number,
    tail: number,
    count: number,
    allowSpin = true,
    transitWord = -1,
  ): boolean {
    const i32 = this.#i32;
    const row = slabWord(this.#layout, cls);
    if (this.#nonBlocking) {
      if (!robustTryLock(i32, row + SLAB_X_LOCK)) {
        llistAdd(i32, row + SLAB_X_RETURNS, row + SLAB_X_RETURN_COUNT, head, tail, count);
        if (transitWord !== -1) i32[transitWord] = 0;
        return true;
      }
    } else if (!allowSpin) {
      if (!robustTryLock(i32, row + SLAB_X_LOCK)) return false;
    } else {
      robustLock(i32, row + SLAB_X_LOCK);
    }
    i32[tail >> 2] = i32[row + SLAB_FREE_HEAD] as number;
    // Count before head: a thread killed between leaves a list shorter than its count, which
    // recovery cuts to what is there (the chain stays in transit), never one holding the chain.
    i32[row + SLAB_FREE_COUNT] = (i32[row + SLAB_FREE_COUNT] as number) + count;
    i32[row + SLAB_FREE_HEAD] = head;
    if (transitWord !== -1) i32[transitWord] = 0;
    robustUnlock(i32, row + SLAB_X_LOCK);
    return true;
  }

  /**
   * Carves up to `want` fresh units off the frontier (taking a new span if it is used up),
   * initialises their headers as free, links them after `prevTail` and puts them in `out`
   * (empty at the memory limit, or when `allowSpin` is false and the page lock is busy).
   * Caller holds the row mutex.
   */
  #carve(cls: number, row: number, want: number, prevTail: number, out: Chain, allowSpin: boolean): void {
    const i32 = this.#i32;
    const klass = classWord(this.#layout, cls);
    const unitSize = i32[klass + CLS_UNIT_SIZE] as number;
    let next = i32[row + SLAB_CARVE_NEXT] as number;
    let end = i32[row + SLAB_CARVE_END] as number;
    if (next === end) {
      const pages = i32[klass + CLS_SPAN_PAGES] as number;
      const span = allowSpin ? this.#pages.allocSpan(pages) : this.#pages.tryAllocSpan(pages);
      if (span === 0) {
        out.head = 0;
        out.tail = 0;
        out.count = 0;
        return;
      }
      next = span;
      end = span + (i32[klass + CLS_SPAN_UNITS] as number) * unitSize;
      // Pages used before: the units' generations continue from a fresh base (see layout.ts).
      i32[row + SLAB_CARVE_GEN] = this.#pages.lastReused
        ? ((Atomics.add(i32, X_SPAN_GENERATIONS, 1) + 1) << kSpanGenerationShift) & kGenerationMask
        : 0;
      this.#markUnitStarts(span, end, unitSize);
      this.#setPageTable(span, pages, ((span - this.#layout.pagesBase) >> PAGE_SHIFT) + 1);
      i32[row + SLAB_SPANS] = (i32[row + SLAB_SPANS] as number) + 1;
    }
    const count = Math.min(want, (end - next) / unitSize);
    const first = next;
    let prev = prevTail;
    const header = ((i32[row + SLAB_CARVE_GEN] as number) * UNIT_GENERATION_STEP) | UNIT_FREE;
    for (let k = 0; k < count; k++, next += unitSize) {
      if (prev !== 0) i32[prev >> 2] = next;
      i32[(next >> 2) + 1] = header;
      // The poison option checks reused units for its byte; a fresh unit of reused (zeroed)
      // pages gets it here (generation 0 means never used, which the check skips).
      if (this.#poison && header !== UNIT_FREE) poisonBytes(this.#bytes, next, unitSize);
      prev = next;
    }
    i32[row + SLAB_CARVE_NEXT] = next;
    i32[row + SLAB_CARVE_END] = end;
    i32[row + SLAB_UNITS] = (i32[row + SLAB_UNITS] as number) + count;
    out.head = first;
    out.tail = prev;
    out.count = count;
  }

  /**
   * Gives the spans of class `cls` whose units are all on the row's free list back to the page
   * allocator (see the module comment); returns how many. O(units on the free list) under the
   * row mutex, so callers run it rarely; it does nothing unless a whole span's worth is free.
   */
  releaseEmptySpans(cls: number): number {
    const i32 = this.#i32;
    const layout = this.#layout;
    const row = slabWord(layout, cls);
    const klass = classWord(layout, cls);
    const spanUnits = i32[klass + CLS_SPAN_UNITS] as number;
    const spanPages = i32[klass + CLS_SPAN_PAGES] as number;
    if ((i32[row + SLAB_FREE_COUNT] as number) + Atomics.load(i32, row + SLAB_X_RETURN_COUNT) < spanUnits) {
      return 0;
    }
    if (this.#nonBlocking) {
      if (!robustTryLock(i32, row + SLAB_X_LOCK)) return 0;
    } else {
      robustLock(i32, row + SLAB_X_LOCK);
    }
    try {
      if (Atomics.load(i32, row + SLAB_X_RETURNS) !== 0) this.#takeReturns(row);
      const count = i32[row + SLAB_FREE_COUNT] as number;
      // Free units per span (keyed by the span's first page + 1) and the sum of their header
      // words (generations: any reuse in between changes it), walking by count.
      const perSpan = new Map<number, number>();
      const signature = new Map<number, number>();
      for (let unit = i32[row + SLAB_FREE_HEAD] as number, k = 0; k < count; k++) {
        const span = this.#spanOf(unit);
        perSpan.set(span, (perSpan.get(span) ?? 0) + 1);
        signature.set(span, ((signature.get(span) ?? 0) + (i32[(unit >> 2) + 1] as number)) | 0);
        unit = i32[unit >> 2] as number;
      }
      // A span goes only after both flavors' GPs since it was first seen empty and unchanged:
      // under an immediate policy a reader may still hold a unit freed to the slab a moment ago,
      // and the pages may become another class's (zeroed, generations restarted).
      const seen = this.#emptySince(cls);
      const epochRcu = readEpoch(i32, FLAVOR_RCU);
      const epochTtrace = readEpoch(i32, FLAVOR_TTRACE);
      const empty = new Set<number>();
      for (const [span, n] of perSpan) {
        if (n !== spanUnits) continue;
        const since = seen.get(span);
        if (since === undefined || since.signature !== signature.get(span)) {
          seen.set(span, { signature: signature.get(span) as number, rcu: epochRcu, ttrace: epochTtrace });
          requestEpoch(i32, FLAVOR_RCU, (epochRcu + 2) | 0, !this.#nonBlocking);
          requestEpoch(i32, FLAVOR_TTRACE, (epochTtrace + 2) | 0, !this.#nonBlocking);
        } else if (isExpired(since.rcu, epochRcu) && isExpired(since.ttrace, epochTtrace)) {
          empty.add(span);
        }
      }
      for (const span of seen.keys())
        if (perSpan.get(span) !== spanUnits || empty.has(span)) seen.delete(span);
      // Lock order: row, then pages; the pages are freed only after their units left the list.
      if (empty.size === 0 || !this.#pages.lock(this.#nonBlocking)) return 0;
      // Relink the free list without the empty spans' units.
      let head = 0;
      let tail = 0;
      let kept = 0;
      for (let unit = i32[row + SLAB_FREE_HEAD] as number, k = 0; k < count; k++) {
        const next = i32[unit >> 2] as number;
        if (!empty.has(this.#spanOf(unit))) {
          if (tail === 0) head = unit;
          else i32[tail >> 2] = unit;
          tail = unit;
          kept++;
        }
        unit = next;
      }
      if (tail !== 0) i32[tail >> 2] = 0;
      i32[row + SLAB_FREE_HEAD] = head;
      i32[row + SLAB_FREE_COUNT] = kept;
      i32[row + SLAB_UNITS] = (i32[row + SLAB_UNITS] as number) - empty.size * spanUnits;
      i32[row + SLAB_SPANS] = (i32[row + SLAB_SPANS] as number) - empty.size;
      for (const firstPage of empty) {
        const start = layout.pagesBase + ((firstPage - 1) << PAGE_SHIFT);
        // The unit-start map words of a span's pages are the span's alone.
        const map = layout.unitMap + (firstPage - 1) * UNIT_MAP_WORDS_PER_PAGE;
        i32.fill(0, map, map + spanPages * UNIT_MAP_WORDS_PER_PAGE);
        this.#setPageTable(start, spanPages, 0);
        // The carve frontier may still point at the end of this span: then it is used up.
        this.#pages.freeSpanLocked(start, spanPages);
      }
      this.#pages.unlock();
      return empty.size;
    } finally {
      robustUnlock(i32, row + SLAB_X_LOCK);
    }
  }

  /** Moves the row's return stack onto its free list. Caller holds the row mutex. */
  #takeReturns(row: number): void {
    const i32 = this.#i32;
    const head = Atomics.exchange(i32, row + SLAB_X_RETURNS, 0);
    if (head === 0) return;
    const end = this.#chainEnd;
    walkTaken(i32, head, Atomics.load(i32, row + SLAB_X_RETURN_COUNT), 'a slab return chain', end);
    const n = end.count;
    Atomics.sub(i32, row + SLAB_X_RETURN_COUNT, n);
    i32[end.tail >> 2] = i32[row + SLAB_FREE_HEAD] as number;
    i32[row + SLAB_FREE_HEAD] = head;
    i32[row + SLAB_FREE_COUNT] = (i32[row + SLAB_FREE_COUNT] as number) + n;
  }

  /** The last return chain `#takeReturns` walked. */
  readonly #chainEnd: Chain = emptyChain();

  /** Per class, the spans seen empty: when (both epochs) and with which signature. */
  readonly #empty = new Map<number, Map<number, EmptySpan>>();

  #emptySince(cls: number): Map<number, EmptySpan> {
    let seen = this.#empty.get(cls);
    if (seen === undefined) {
      seen = new Map();
      this.#empty.set(cls, seen);
    }
    return seen;
  }

  /** Page-table entry (first page + 1) of the span holding `unit`. */
  #spanOf(unit: number): number {
    return this.#i32[this.#layout.pageTable + ((unit - this.#layout.pagesBase) >> PAGE_SHIFT)] as number;
  }

  /** Sets the page-table words of the `pages` pages from byte `start` to `value`. */
  #setPageTable(start: number, pages: number, value: number): void {
    const first = this.#layout.pageTable + ((start - this.#layout.pagesBase) >> PAGE_SHIFT);
    this.#i32.fill(value, first, first + pages);
  }

  /**
   * Sets the unit-start bits of every unit in [start, end): from now on `free()` accepts a
   * pointer there if its header says allocated. Uncarved units have a zero header, so they are
   * still rejected. Caller holds the row mutex; the span's map words are this row's alone.
   */
  #markUnitStarts(start: number, end: number, unitSize: number): void {
    const i32 = this.#i32;
    const base = this.#layout.pagesBase;
    const map = this.#layout.unitMap;
    for (let unit = start; unit < end; unit += unitSize) {
      const bit = (unit - base) >> 3;
      const word = map + (bit >> 5);
      i32[word] = (i32[word] as number) | (1 << (bit & 31));
    }
  }
}
