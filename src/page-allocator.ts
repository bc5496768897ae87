/**
 * The page allocator: hands contiguous runs of pages (spans) to the slabs and accounts for the
 * arena's memory in use, the figure every benchmark reports (like a cgroup's memory.current and
 * memory.peak). Pages are carved off the top of the page region up to the memory limit; with a
 * growable SharedArrayBuffer the buffer grows (doubling, capped at the limit) as pages are carved.
 *
 * Who may call: any thread, through a slab that holds its row mutex (lock order: slab row, then
 * the page lock).
 * Shared words: X_PAGE_LOCK guards X_PAGES_NEXT, X_PAGES_IN_USE, X_PEAK_PAGES, X_PAGE_LIMIT_HITS
 * and growing the buffer; the counters are written with Atomics so `stats()` may read them unlocked.
 */
import { addShared, publish, raiseShared, readShared } from './atomics.js';
import {
  type Layout,
  PAGE_BYTES,
  X_PAGE_LIMIT_HITS,
  X_PAGE_LOCK,
  X_PAGES_IN_USE,
  X_PAGES_NEXT,
  X_PEAK_PAGES,
} from './layout.js';
import { mutexLock, mutexUnlock } from './sync.js';

export class PageAllocator {
  readonly #i32: Int32Array;
  readonly #layout: Layout;
  readonly #buffer: SharedArrayBuffer;

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
    mutexLock(i32, X_PAGE_LOCK);
    try {
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
      mutexUnlock(i32, X_PAGE_LOCK);
    }
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
