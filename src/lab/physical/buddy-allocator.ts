/**
 * A simulated physical memory and the kernel's buddy page allocator over it (mm/page_alloc.c,
 * v5.17–v6.1), for the pack bench's physical mode (src/benchmarks/pack-physical.ts): where the
 * pages of a vmalloc'd BPF program come from decides which 2 MiB direct mappings its
 * `set_memory_ro` splits.
 *
 * What is modelled, as the kernel does it:
 * - free blocks of 2^order frames, orders 0..MAX_ORDER-1 (MAX_ORDER 11 until v6.4: 4 MiB blocks),
 *   one free list per order, a block aligned to its size;
 * - boot: memblock hands every free range to the allocator in MAX_ORDER-1 blocks, lowest address
 *   first, each added at the tail of its list (`__free_pages_core` passes FPI_TO_TAIL since v5.10),
 *   so the lowest addresses are handed out first;
 * - allocation (`__rmqueue_smallest`): the head of the first non-empty list from `order` up; a
 *   larger block is split (`expand`), its upper halves going to the heads of the lower lists, so
 *   order-0 allocations walk a fresh block upwards page by page;
 * - free (`__free_one_page`): merge with the buddy (`pfn ^ (1 << order)`) while it is free and of
 *   the same order, then add at the head of the list.
 *
 * Not modelled (stated in docs/benchmarks.md): migratetypes and pageblock stealing (one stream
 * for every allocation), the per-CPU page lists (`pcp`, refilled in batches of 63 pages: a
 * batch is a run of consecutive pages, so order-0 allocations stay consecutive), zones and
 * holes (one range from address 0), `buddy_merge_likely`'s add-to-tail, compaction, reclaim.
 *
 * Who may call: one thread (the bench's main thread); it holds the allocator in plain arrays.
 */
import { fail } from '../../shm/errors.js';

export const FRAME_BYTES = 4096;
/** Orders 0..MAX_ORDER-1 (include/linux/mmzone.h before v6.4's MAX_PAGE_ORDER). */
export const MAX_ORDER = 11;
const NONE = -1;

export class BuddyAllocator {
  /** Frames of physical memory. */
  readonly frames: number;
  /** Free-list links of the block starting at a frame (only for a free block's first frame). */
  readonly #next: Int32Array;
  readonly #prev: Int32Array;
  /** Order of the free block starting at a frame, NONE if no free block starts there. */
  readonly #orderAt: Int8Array;
  readonly #heads = new Int32Array(MAX_ORDER).fill(NONE);
  readonly #tails = new Int32Array(MAX_ORDER).fill(NONE);
  readonly #blocks = new Int32Array(MAX_ORDER);
  #freeFrames = 0;

  /** `bytes` of memory from address 0, a whole number of MAX_ORDER-1 blocks, all free (booted). */
  constructor(bytes: number) {
    const top = FRAME_BYTES << (MAX_ORDER - 1);
    if (!Number.isInteger(bytes) || bytes < top || bytes % top !== 0 || bytes / FRAME_BYTES > 2 ** 28) {
      fail(
        'EINVAL',
        `BuddyAllocator: memory must be a multiple of ${top} bytes up to 1 TiB, got ${String(bytes)}`,
      );
    }
    this.frames = bytes / FRAME_BYTES;
    this.#next = new Int32Array(this.frames);
    this.#prev = new Int32Array(this.frames);
    this.#orderAt = new Int8Array(this.frames).fill(NONE);
    for (let pfn = 0; pfn < this.frames; pfn += 1 << (MAX_ORDER - 1)) {
      this.#addTail(pfn, MAX_ORDER - 1);
      this.#freeFrames += 1 << (MAX_ORDER - 1);
    }
  }

  /** The first frame of a free block of 2^order frames, or -1 when none is left. */
  alloc(order: number): number {
    for (let current = order; current < MAX_ORDER; current++) {
      const pfn = this.#heads[current] as number;
      if (pfn === NONE) continue;
      this.#remove(pfn, current);
      // expand(): keep the low half, give the high halves back, largest first.
      for (let high = current; high > order; ) {
        high--;
        this.#addHead(pfn + (1 << high), high);
      }
      this.#freeFrames -= 1 << order;
      return pfn;
    }
    return NONE;
  }

  /** Gives back the block of 2^order frames at `pfn`, merging it with free buddies. */
  free(pfn: number, order: number): void {
    let at = pfn;
    let o = order;
    this.#freeFrames += 1 << order;
    while (o < MAX_ORDER - 1) {
      const buddy = at ^ (1 << o);
      if (buddy >= this.frames || this.#orderAt[buddy] !== o) break;
      this.#remove(buddy, o);
      at &= buddy;
      o++;
    }
    this.#addHead(at, o);
  }

  get freeFrames(): number {
    return this.#freeFrames;
  }

  /** Free blocks per order, as one zone's line of /proc/buddyinfo. */
  buddyinfo(): number[] {
    return Array.from(this.#blocks);
  }

  #addHead(pfn: number, order: number): void {
    const head = this.#heads[order] as number;
    this.#next[pfn] = head;
    this.#prev[pfn] = NONE;
    if (head === NONE) this.#tails[order] = pfn;
    else this.#prev[head] = pfn;
    this.#heads[order] = pfn;
    this.#orderAt[pfn] = order;
    this.#blocks[order] = (this.#blocks[order] as number) + 1;
  }

  #addTail(pfn: number, order: number): void {
    const tail = this.#tails[order] as number;
    this.#prev[pfn] = tail;
    this.#next[pfn] = NONE;
    if (tail === NONE) this.#heads[order] = pfn;
    else this.#next[tail] = pfn;
    this.#tails[order] = pfn;
    this.#orderAt[pfn] = order;
    this.#blocks[order] = (this.#blocks[order] as number) + 1;
  }

  #remove(pfn: number, order: number): void {
    const next = this.#next[pfn] as number;
    const prev = this.#prev[pfn] as number;
    if (prev === NONE) this.#heads[order] = next;
    else this.#next[prev] = next;
    if (next === NONE) this.#tails[order] = prev;
    else this.#prev[next] = prev;
    this.#orderAt[pfn] = NONE;
    this.#blocks[order] = (this.#blocks[order] as number) - 1;
  }
}
