/**
 * The page allocator: hands contiguous runs of pages (spans) to the slabs, the maps and packs and
 * accounts for the arena's memory in use, the figure every benchmark reports (like a cgroup's
 * memory.current and memory.peak). A span comes from the list of spans given back (first fit,
 * split if larger; zeroed, as fresh pages are) or is carved off the top of the page region up
 * to the memory limit; with a growable SharedArrayBuffer the buffer grows (doubling, capped at
 * the limit) as pages are carved. A span given back is merged with the free spans right before
 * and after it (one walk of the list; spans come back about once a second), so that 2 MiB-
 * aligned pack spans can be found again after slabs took pieces of freed ones.
 *
 * Who may call: any thread, through a slab that holds its row mutex (lock order: slab row, then
 * the page lock) or a hash map being created.
 * Shared words: X_PAGE_LOCK (a robust mutex: its word names the thread inside) guards X_PAGES_NEXT, X_PAGES_IN_USE, X_PEAK_PAGES, X_PAGE_LIMIT_HITS,
 * the free-span list (X_FREE_SPANS and the first two words of each free span, plain), its page
 * count and growing the buffer; the counters are written with Atomics so `stats()` may read
 * them unlocked. X_PAGE_LOCK_BUSY (an Atomics counter, no lock) counts `tryAllocSpan` calls that
 * found the lock busy.
 */
import { addShared, publish, raiseShared, readShared } from '../shm/atomics.js';
import {
  type Layout,
  PAGE_BYTES,
  X_FREE_SPAN_PAGES,
  X_FREE_SPANS,
  X_PAGE_LIMIT_HITS,
  X_PAGE_LOCK,
  X_PAGE_LOCK_BUSY,
  X_PAGES_IN_USE,
  X_PAGES_NEXT,
  X_PEAK_PAGES,
  X_SPANS_RELEASED,
} from '../shm/layout.js';
import { robustLock, robustTryLock, robustUnlock } from '../shm/sync.js';

export class PageAllocator {
  readonly #i32: Int32Array;
  readonly #layout: Layout;
  readonly #buffer: SharedArrayBuffer;
  /** Whether the last span `allocSpan` returned came from the free-span list (pages used before). */
  lastReused = false;

  constructor(i32: Int32Array, layout: Layout, buffer: SharedArrayBuffer) {
    this.#i32 = i32;
    this.#layout = layout;
    this.#buffer = buffer;
  }

  /**
   * Takes `pages` contiguous pages and returns the byte offset of the first, or 0 when the
   * memory limit leaves no room (counted in X_PAGE_LIMIT_HITS). With `alignBytes` (a multiple
   * of the page size) the span starts at a multiple of it in the arena (the pack allocator's
   * 2 MiB packs); pages skipped to get there go on the free-span list.
   */
  allocSpan(pages: number, alignBytes = PAGE_BYTES): number {
    robustLock(this.#i32, X_PAGE_LOCK);
    return this.#allocSpanLocked(pages, alignBytes);
  }

  /**
   * `allocSpan` for a caller that must not wait (kmalloc_nolock's alloc_frozen_pages_nolock,
   * which only tries the zone lock): 0 when the page lock is busy, counted in
   * X_PAGE_LOCK_BUSY rather than as a limit hit.
   */
  tryAllocSpan(pages: number): number {
    if (!robustTryLock(this.#i32, X_PAGE_LOCK)) {
      addShared(this.#i32, X_PAGE_LOCK_BUSY, 1);
      return 0;
    }
    return this.#allocSpanLocked(pages, PAGE_BYTES);
  }

  /** The body of `allocSpan` once the page lock is held; releases it. */
  #allocSpanLocked(pages: number, alignBytes: number): number {
    const i32 = this.#i32;
    const layout = this.#layout;
    try {
      const reused = this.#takeFreeSpan(pages, alignBytes);
      this.lastReused = reused !== 0;
      if (reused !== 0) {
        raiseShared(i32, X_PEAK_PAGES, addShared(i32, X_PAGES_IN_USE, pages));
        return reused;
      }
      let first = readShared(i32, X_PAGES_NEXT);
      const skip =
        ((alignBytes - ((layout.pagesBase + first * PAGE_BYTES) % alignBytes)) % alignBytes) / PAGE_BYTES;
      if (first + skip + pages > layout.maxPages) {
        addShared(i32, X_PAGE_LIMIT_HITS, 1);
        return 0;
      }
      const start = layout.pagesBase + (first + skip) * PAGE_BYTES;
      if (!this.#ensureLength(start + pages * PAGE_BYTES)) {
        addShared(i32, X_PAGE_LIMIT_HITS, 1);
        return 0;
      }
      if (skip > 0) {
        this.#listFreeSpan(layout.pagesBase + first * PAGE_BYTES, skip);
        first += skip;
      }
      publish(i32, X_PAGES_NEXT, first + pages);
      raiseShared(i32, X_PEAK_PAGES, addShared(i32, X_PAGES_IN_USE, pages));
      return start;
    } finally {
      robustUnlock(i32, X_PAGE_LOCK);
    }
  }

  /**
   * Takes the page lock for `freeSpanLocked` calls (only trying, for a caller that must not
   * block); false if it is busy.
   */
  lock(tryOnly: boolean): boolean {
    if (tryOnly) return robustTryLock(this.#i32, X_PAGE_LOCK);
    robustLock(this.#i32, X_PAGE_LOCK);
    return true;
  }

  unlock(): void {
    robustUnlock(this.#i32, X_PAGE_LOCK);
  }

  /**
   * Takes back a span of `pages` pages starting at byte `start` (no unit or map of it is in use
   * any more): it goes on the free-span list and no longer counts as memory in use. Caller
   * holds the page lock (`lock`).
   */
  freeSpanLocked(start: number, pages: number): void {
    addShared(this.#i32, X_PAGES_IN_USE, -pages);
    addShared(this.#i32, X_SPANS_RELEASED, 1);
    addShared(this.#i32, X_FREE_SPAN_PAGES, pages);
    // Merge with the free spans right before and after it: a freed 2 MiB pack and the rest of
    // a span a slab took the front of come back as one run, which can hold the next pack.
    const i32 = this.#i32;
    let link = X_FREE_SPANS;
    for (let span = readShared(i32, X_FREE_SPANS); span !== 0; ) {
      const next = i32[span >> 2] as number;
      const size = i32[(span >> 2) + 1] as number;
      if (span + size * PAGE_BYTES === start || start + pages * PAGE_BYTES === span) {
        if (link === X_FREE_SPANS) publish(i32, X_FREE_SPANS, next);
        else i32[link] = next;
        if (span < start) start = span;
        pages += size;
      } else {
        link = span >> 2;
      }
      span = next;
    }
    i32[start >> 2] = readShared(i32, X_FREE_SPANS);
    i32[(start >> 2) + 1] = pages;
    publish(i32, X_FREE_SPANS, start);
  }

  /** Puts a span on the free-span list. Caller holds the page lock. */
  #listFreeSpan(start: number, pages: number): void {
    const i32 = this.#i32;
    i32[start >> 2] = readShared(i32, X_FREE_SPANS);
    i32[(start >> 2) + 1] = pages;
    publish(i32, X_FREE_SPANS, start);
    addShared(i32, X_FREE_SPAN_PAGES, pages);
  }

  /**
   * First fit on the free-span list (the first span holding `pages` pages from a multiple of
   * `alignBytes`), split if larger — the pages before and after stay on the list — and zeroed;
   * 0 if none fits. Caller holds the page lock.
   */
  #takeFreeSpan(pages: number, alignBytes: number): number {
    const i32 = this.#i32;
    let link = X_FREE_SPANS;
    for (let span = readShared(i32, X_FREE_SPANS); span !== 0; span = i32[span >> 2] as number) {
      const size = i32[(span >> 2) + 1] as number;
      const head = ((alignBytes - (span % alignBytes)) % alignBytes) / PAGE_BYTES;
      if (size >= head + pages) {
        let next = i32[span >> 2] as number;
        const start = span + head * PAGE_BYTES;
        const tail = size - head - pages;
        if (tail > 0) {
          // Keep the tail on the list.
          const rest = start + pages * PAGE_BYTES;
          i32[rest >> 2] = next;
          i32[(rest >> 2) + 1] = tail;
          next = rest;
        }
        if (head > 0) {
          // Keep the head in place on the list, shortened.
          i32[span >> 2] = next;
          i32[(span >> 2) + 1] = head;
        } else if (link === X_FREE_SPANS) publish(i32, X_FREE_SPANS, next);
        else i32[link] = next;
        addShared(i32, X_FREE_SPAN_PAGES, -pages);
        new Uint8Array(this.#buffer, start, pages * PAGE_BYTES).fill(0);
        return start;
      }
      link = span >> 2;
    }
    return 0;
  }

  /** Grows a growable buffer so that `end` bytes exist (a fixed buffer has them all); false if it cannot. */
  #ensureLength(end: number): boolean {
    const buffer = this.#buffer;
    if (end <= buffer.byteLength) return true;
    const target = Math.min(this.#layout.totalBytes, Math.max(end, buffer.byteLength * 2));
    try {
      buffer.grow(target);
    } catch {
      // The system refused the memory: the caller treats it like the memory limit.
      return end <= buffer.byteLength;
    }
    return true;
  }
}
