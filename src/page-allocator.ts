/**
 * The page allocator: hands contiguous runs of pages (spans) to the slabs and the hash maps and
 * accounts for the arena's memory in use, the figure every benchmark reports (like a cgroup's
 * memory.current and memory.peak). A span comes from the list of spans given back (first fit,
 * split if larger; zeroed, as fresh pages are) or is carved off the top of the page region up
 * to the memory limit; with a growable SharedArrayBuffer the buffer grows (doubling, capped at
 * the limit) as pages are carved. Spans given back are not merged with their neighbours: a slab
 * class asks for the same span size again, so exact fits are the common case.
 *
 * Who may call: any thread, through a slab that holds its row mutex (lock order: slab row, then
 * the page lock) or a hash map being created.
 * Shared words: X_PAGE_LOCK (a robust mutex: its word names the thread inside) guards X_PAGES_NEXT, X_PAGES_IN_USE, X_PEAK_PAGES, X_PAGE_LIMIT_HITS,
 * the free-span list (X_FREE_SPANS and the first two words of each free span, plain), its page
 * count and growing the buffer; the counters are written with Atomics so `stats()` may read
 * them unlocked.
 */
import { addShared, publish, raiseShared, readShared } from './atomics.js';
import {
  type Layout,
  PAGE_BYTES,
  X_FREE_SPAN_PAGES,
  X_FREE_SPANS,
  X_PAGE_LIMIT_HITS,
  X_PAGE_LOCK,
  X_PAGES_IN_USE,
  X_PAGES_NEXT,
  X_PEAK_PAGES,
  X_SPANS_RELEASED,
} from './layout.js';
import { robustLock, robustTryLock, robustUnlock } from './sync.js';

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
   * memory limit leaves no room (counted in X_PAGE_LIMIT_HITS).
   */
  allocSpan(pages: number): number {
    const i32 = this.#i32;
    const layout = this.#layout;
    robustLock(i32, X_PAGE_LOCK);
    try {
      const reused = this.#takeFreeSpan(pages);
      this.lastReused = reused !== 0;
      if (reused !== 0) {
        raiseShared(i32, X_PEAK_PAGES, addShared(i32, X_PAGES_IN_USE, pages));
        return reused;
      }
      const first = readShared(i32, X_PAGES_NEXT);
      if (first + pages > layout.maxPages) {
        addShared(i32, X_PAGE_LIMIT_HITS, 1);
        return 0;
      }
      const start = layout.pagesBase + first * PAGE_BYTES;
      if (!this.#ensureLength(start + pages * PAGE_BYTES)) {
        addShared(i32, X_PAGE_LIMIT_HITS, 1);
        return 0;
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
    const i32 = this.#i32;
    i32[start >> 2] = readShared(i32, X_FREE_SPANS);
    i32[(start >> 2) + 1] = pages;
    publish(i32, X_FREE_SPANS, start);
    addShared(i32, X_FREE_SPAN_PAGES, pages);
    addShared(i32, X_PAGES_IN_USE, -pages);
    addShared(i32, X_SPANS_RELEASED, 1);
  }

  /** First fit on the free-span list, split if larger, zeroed; 0 if none fits. Caller holds the page lock. */
  #takeFreeSpan(pages: number): number {
    const i32 = this.#i32;
    let link = X_FREE_SPANS;
    for (let span = readShared(i32, X_FREE_SPANS); span !== 0; span = i32[span >> 2] as number) {
      const size = i32[(span >> 2) + 1] as number;
      if (size >= pages) {
        let next = i32[span >> 2] as number;
        if (size > pages) {
          // Keep the tail on the list.
          const rest = span + pages * PAGE_BYTES;
          i32[rest >> 2] = next;
          i32[(rest >> 2) + 1] = size - pages;
          next = rest;
        }
        if (link === X_FREE_SPANS) publish(i32, X_FREE_SPANS, next);
        else i32[link] = next;
        addShared(i32, X_FREE_SPAN_PAGES, -pages);
        new Uint8Array(this.#buffer, span, pages * PAGE_BYTES).fill(0);
        return span;
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
