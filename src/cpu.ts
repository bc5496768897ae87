/**
 * A CPU handle: one numbered CPU slot of an arena, owned by the thread that attached it, with
 * its per-class caches (the kernel's `struct bpf_mem_cache`, one per CPU and class).
 *
 * ```
 *  alloc(size) ─ class = SIZE_TO_CLASS[(size + 15) >> 3] ─ pop cache.free ─┬─ count < low?  refill a batch from the slab
 *  free(ptr)   ─ unit-start bit, header state, class from hint ─ push cache.free ─┴─ count > high? trim to (low+high)/2
 *
 *  unit:  | word 0: next free unit (free) / hint = cpu << 8 | class (allocated) | word 1: generation << 2 | state | user bytes … |
 *         ^ unit                                                                                           ^ ptr = unit + 8
 * ```
 * Watermarks per unit size (kernel formula): ≤ 256 B → low 32, high 96, batch 48; 512 → 16/48/24;
 * 1024 → 8/24/12; 2048 → 4/12/6; 4096 → 2/6/3. A CPU coming online is prefilled with 4 units
 * (≤ 256 B) or 1. The kernel refills from irq_work and returns NULL on an empty list; we refill
 * synchronously. A free goes to the freeing CPU's cache (kernel v6.1) and a trim returns the
 * overflow to the slab at once (the grace-period paths of later issues change where it goes).
 *
 * Who may call: only the thread that attached the CPU, one call at a time (a JS thread is never
 * preempted by itself, so there is no `active` re-entry counter as in the kernel).
 * Shared words: the CPU's state and owner words (CPU_X_STATE, claimed on attach and released on
 * detach; CPU_X_OWNER) and,
 * through src/slab.ts, the slab rows. The cache records are owner-only and use plain accesses:
 * no atomics on the alloc/free fast path. Unit headers belong to whoever holds the unit; a
 * pointer handed to another CPU must travel through a synchronising channel (postMessage, an
 * Atomics-published queue), which orders the header writes before the free. `stats()` on another
 * thread reads cache words racily; an aligned 32-bit read cannot tear, so it sees a recent value.
 */
import { threadId } from 'node:worker_threads';
import { claim, publish, readShared } from './atomics.js';
import { ArenaError, fail } from './errors.js';
import {
  C_ALLOCS,
  C_BATCH,
  C_FREE_COUNT,
  C_FREE_HEAD,
  C_FREES,
  C_HIGH,
  C_LOW,
  C_REFILL_SHORT,
  C_REFILLS,
  C_TRIM_TO,
  C_TRIMS,
  CLS_BATCH,
  CLS_HIGH,
  CLS_LOW,
  CLS_OBJECT_SIZE,
  CLS_PREFILL,
  CLS_UNIT_SIZE,
  CPU_OFFLINE,
  CPU_ONLINE,
  CPU_X_OWNER,
  CPU_X_STATE,
  cacheWord,
  classWord,
  cpuWord,
  HINT_CLASS_BITS,
  HINT_CLASS_MASK,
  type Layout,
  RECORD_SHIFT,
  readLayout,
  UNIT_ALLOCATED,
  UNIT_FREE,
  UNIT_GENERATION_STEP,
  UNIT_MAP_SHIFT,
  UNIT_STATE_MASK,
  X_CLOSED,
} from './layout.js';
import { PageAllocator } from './page-allocator.js';
import { GENERAL_CLASS_COUNT, MAX_ALLOC_BYTES, SIZE_TO_CLASS, trimTarget } from './size-class.js';
import { Slab } from './slab.js';

/** Faults a test may inject to prove that its oracle detects them; never set in normal use. */
export interface ArenaFaults {
  /**
   * A slow-path allocation returns the unit the previous slow-path allocation of that class
   * returned, if it is still allocated: a second holder for a live unit, the use-after-free an
   * allocator bug would cause, without corrupting the arena's own lists.
   */
  readonly handOutTwice?: boolean;
}

/** What `arena.shared` holds: everything another thread needs to attach. Structured-cloneable. */
export interface SharedArena {
  readonly buffer: SharedArrayBuffer;
  /** Test-only fault injection, carried to every thread (see `ArenaOptions.faults`). */
  readonly faults?: ArenaFaults;
}

/**
 * The fast path (alloc, free and what they inline) spells the layout constants below as
 * literals, each marked with its name: V8 on Node 20 does not fold imported or module-level
 * constants in optimised code (measured: 30 → 58 M LIFO pairs/s). This table ties each literal
 * to its definition when the module loads.
 */
const kFastPathLiterals: ReadonlyArray<readonly [name: string, literal: number, actual: number]> = [
  ['C_FREE_HEAD', 0, C_FREE_HEAD],
  ['C_FREE_COUNT', 1, C_FREE_COUNT],
  ['C_ALLOCS', 2, C_ALLOCS],
  ['C_FREES', 3, C_FREES],
  ['C_LOW', 7, C_LOW],
  ['C_HIGH', 8, C_HIGH],
  ['C_BATCH', 9, C_BATCH],
  ['RECORD_SHIFT', 4, RECORD_SHIFT],
  ['UNIT_STATE_MASK', 3, UNIT_STATE_MASK],
  ['UNIT_ALLOCATED', 1, UNIT_ALLOCATED],
  ['UNIT_FREE', 2, UNIT_FREE],
  ['UNIT_GENERATION_STEP', 4, UNIT_GENERATION_STEP],
  ['UNIT_MAP_SHIFT', 8, UNIT_MAP_SHIFT],
  ['HINT_CLASS_BITS', 8, HINT_CLASS_BITS],
  ['HINT_CLASS_MASK', 0xff, HINT_CLASS_MASK],
  ['MAX_ALLOC_BYTES', 4088, MAX_ALLOC_BYTES],
];
for (const [name, literal, actual] of kFastPathLiterals) {
  if (literal !== actual)
    throw new Error(`percpu-arena: fast-path literal ${name} = ${literal} but layout says ${actual}`);
}

/**
 * Attaches CPU slot `cpu` of the arena described by `shared` to the calling thread and returns
 * its handle. Throws `EBUSY` if another handle owns the slot, `EINVAL` for a slot number out of
 * range, `EBADARENA` for a buffer that is not an arena, `ECLOSED` after `close()`.
 */
export function attach(shared: SharedArena, cpu: number): CpuHandle {
  if (shared === null || typeof shared !== 'object' || !(shared.buffer instanceof SharedArrayBuffer)) {
    fail('EINVAL', 'attach(shared, cpu) needs the `arena.shared` object of an arena');
  }
  return new CpuHandle(shared, cpu);
}

export class CpuHandle {
  /** This handle's CPU slot. */
  readonly cpu: number;
  /** The whole arena as bytes: the usable bytes of `ptr = alloc(size)` are `bytes[ptr .. ptr + size)`. */
  readonly bytes: Uint8Array;
  /** The whole arena as 32-bit words (for callers that lay out their own records). */
  readonly i32: Int32Array;
  readonly #layout: Layout;
  readonly #slab: Slab;
  /** SIZE_TO_CLASS, held by the instance so the fast path does not load a module binding. */
  readonly #sizeToClass: Uint8Array = SIZE_TO_CLASS;
  /** Number of general + fixed classes; fixed cache `id` is class GENERAL_CLASS_COUNT + id. */
  readonly #classes: number;
  /** Word index of this CPU's cache of class 0; class c is at `#cacheBase + (c << RECORD_SHIFT)`. */
  readonly #cacheBase: number;
  /** Owner hint of this CPU without the class bits. */
  readonly #hintBase: number;
  readonly #pagesBase: number;
  readonly #pagesEnd: number;
  readonly #unitMap: number;
  readonly #handOutTwice: boolean;
  /** With the handOutTwice fault: the unit the last slow-path allocation returned. */
  #faultUnit = 0;
  #attached = false;

  /** Use `attach(shared, cpu)` or `arena.attach(cpu)`. */
  constructor(shared: SharedArena, cpu: number) {
    const i32 = new Int32Array(shared.buffer);
    const layout = readLayout(i32);
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= layout.cpus) {
      fail('EINVAL', `CPU ${cpu} is not a slot of this arena (0..${layout.cpus - 1})`);
    }
    if (readShared(i32, X_CLOSED) !== 0) fail('ECLOSED', 'the arena is closed');
    this.cpu = cpu;
    this.i32 = i32;
    this.bytes = new Uint8Array(shared.buffer);
    this.#layout = layout;
    this.#slab = new Slab(i32, layout, new PageAllocator(i32, layout, shared.buffer));
    this.#handOutTwice = shared.faults?.handOutTwice === true;
    this.#classes = layout.classes;
    this.#cacheBase = cacheWord(layout, cpu, 0);
    this.#hintBase = cpu << HINT_CLASS_BITS;
    this.#pagesBase = layout.pagesBase;
    this.#pagesEnd = layout.totalBytes;
    this.#unitMap = layout.unitMap;
    const rec = cpuWord(layout, cpu);
    if (!claim(i32, rec + CPU_X_STATE, CPU_OFFLINE, CPU_ONLINE)) {
      const owner = readShared(i32, rec + CPU_X_OWNER) - 1;
      fail('EBUSY', `CPU ${cpu} is already attached (by thread ${owner})`);
    }
    publish(i32, rec + CPU_X_OWNER, threadId + 1);
    this.#attached = true;
    this.#prefill();
  }

  /** True until `detach()` (or the arena's `close()` on this thread). */
  get attached(): boolean {
    return this.#attached;
  }

  /**
   * Allocates `size` usable bytes (1..4088) and returns the byte offset of the first, or 0 when
   * `size` is not such an integer or memory is exhausted. Never throws for a size or for memory;
   * throws `ECLOSED` on a detached handle, or when a refill finds the arena closed.
   */
  alloc(size: number): number {
    if (!this.#attached) this.#closedError();
    if ((size | 0) !== size || size < 1 || size > /* MAX_ALLOC_BYTES */ 4088) return 0;
    return this.#unitAlloc(this.#sizeToClass[(size + 15) >> 3] as number);
  }

  /**
   * Allocates one object from fixed-size cache `id` (an index into `ArenaOptions.fixedSizes`),
   * like `bpf_mem_cache_alloc`; returns 0 for an unknown id or when memory is exhausted.
   */
  allocFixed(id: number): number {
    if (!this.#attached) this.#closedError();
    const cls = GENERAL_CLASS_COUNT + id;
    if ((id | 0) !== id || id < 0 || cls >= this.#classes) return 0;
    return this.#unitAlloc(cls);
  }

  /**
   * Frees a pointer returned by `alloc` or `allocFixed` on any CPU of this arena; the unit goes
   * to this CPU's cache. Throws `EINVAL` for anything that is not an allocated unit (including a
   * double free) and leaves the arena unchanged then.
   */
  free(ptr: number): void {
    if (!this.#attached) this.#closedError();
    const h = this.#allocatedHeader(ptr);
    const i32 = this.i32;
    // Literals: see kFastPathLiterals (class mask 0xff, record shift 4, cache word high 8).
    const cls = (i32[h] as number) & 0xff;
    const c = this.#cacheBase + (cls << 4);
    const count = (i32[c + 1] as number) + 1;
    if (count > (i32[c + 8] as number)) {
      // This push goes above the high watermark and trims into the slab: check that the arena
      // is open before anything changes.
      this.#checkOpen();
      this.#push(h, c, count);
      this.#freeBulk(cls);
      return;
    }
    this.#push(h, c, count);
  }

  /** Marks the unit at header `h` free and pushes it on the cache at `c` (new count `count`). */
  #push(h: number, c: number, count: number): void {
    const i32 = this.i32;
    // Literals: see kFastPathLiterals (header: state mask 3, FREE 2; cache words: head 0,
    // count 1, frees 3).
    i32[h + 1] = ((i32[h + 1] as number) & ~3) | 2;
    i32[h] = i32[c] as number;
    i32[c] = h << 2;
    i32[c + 1] = count;
    i32[c + 3] = (i32[c + 3] as number) + 1;
  }

  /**
   * Usable bytes of the unit at `ptr` (its unit size minus the header, or the object size of a
   * fixed-size cache), like `ksize()`; throws `EINVAL` if `ptr` is not an allocated unit.
   */
  usableSize(ptr: number): number {
    const h = this.#allocatedHeader(ptr);
    const w = classWord(this.#layout, (this.i32[h] as number) & HINT_CLASS_MASK);
    const objectSize = this.i32[w + CLS_OBJECT_SIZE] as number;
    return objectSize !== 0 ? objectSize : (this.i32[w + CLS_UNIT_SIZE] as number) - 8;
  }

  /**
   * Returns every cached unit to the slab and releases the CPU slot; the handle is dead after.
   * After the arena was closed (by another thread) it only releases the slot: the close report
   * has already counted the cached units as free.
   */
  detach(): void {
    if (!this.#attached) this.#closedError();
    if (readShared(this.i32, X_CLOSED) === 0) this.#flushAll();
    this.#attached = false;
    const rec = cpuWord(this.#layout, this.cpu);
    publish(this.i32, rec + CPU_X_OWNER, 0);
    publish(this.i32, rec + CPU_X_STATE, CPU_OFFLINE);
  }

  #unitAlloc(cls: number): number {
    const i32 = this.i32;
    // Literals: see kFastPathLiterals (cache words: head 0, count 1, allocs 2, low 7, batch 9;
    // record shift 4; header: generation step 4, state mask 3, ALLOCATED 1).
    const c = this.#cacheBase + (cls << 4);
    const count = i32[c + 1] as number;
    if (count <= (i32[c + 7] as number)) return this.#unitAllocSlow(cls);
    const unit = i32[c] as number;
    const h = unit >> 2;
    i32[c] = i32[h] as number;
    i32[c + 1] = count - 1;
    i32[c + 2] = (i32[c + 2] as number) + 1;
    i32[h] = this.#hintBase | cls;
    i32[h + 1] = (((i32[h + 1] as number) + 4) & ~3) | 1;
    return unit + 8;
  }

  /**
   * The pop that leaves the cache below its low watermark: refill first if it is empty (the
   * kernel would return NULL and refill from irq_work), pop, then refill a batch as the
   * kernel's irq_work does. The open check comes before any change.
   */
  #unitAllocSlow(cls: number): number {
    this.#checkOpen();
    if (this.#handOutTwice) {
      const again = this.#faultUnit;
      this.#faultUnit = 0;
      const h = again >> 2;
      if (
        again !== 0 &&
        ((this.i32[h] as number) & HINT_CLASS_MASK) === cls &&
        ((this.i32[h + 1] as number) & UNIT_STATE_MASK) === UNIT_ALLOCATED
      ) {
        return again + 8;
      }
    }
    const i32 = this.i32;
    const c = this.#cacheBase + (cls << RECORD_SHIFT);
    if ((i32[c + C_FREE_COUNT] as number) === 0) this.#allocBulk(cls, i32[c + C_BATCH] as number);
    const unit = i32[c + C_FREE_HEAD] as number;
    if (unit === 0) return 0;
    const h = unit >> 2;
    i32[c + C_FREE_HEAD] = i32[h] as number;
    const count = (i32[c + C_FREE_COUNT] as number) - 1;
    i32[c + C_FREE_COUNT] = count;
    i32[c + C_ALLOCS] = (i32[c + C_ALLOCS] as number) + 1;
    i32[h] = this.#hintBase | cls;
    i32[h + 1] = (((i32[h + 1] as number) + UNIT_GENERATION_STEP) & ~UNIT_STATE_MASK) | UNIT_ALLOCATED;
    if (count < (i32[c + C_LOW] as number)) this.#allocBulk(cls, i32[c + C_BATCH] as number);
    if (this.#handOutTwice) this.#faultUnit = unit;
    return unit + 8;
  }

  /**
   * Word index of the header of the allocated unit whose user pointer is `ptr`, or throws
   * EINVAL. O(1): the unit-start map says whether a unit begins there (so the header is
   * genuine, not user bytes), then the header's state must be ALLOCATED.
   */
  #allocatedHeader(ptr: number): number {
    const unit = ptr - 8;
    const base = this.#pagesBase;
    // `(ptr | 0) !== ptr` also rejects every non-number (a string '4104' would subtract fine).
    if ((ptr | 0) !== ptr || unit < base || unit >= this.#pagesEnd) this.#notAUnit(ptr);
    const i32 = this.i32;
    // Literal: UNIT_MAP_SHIFT 8 (one map word per 256 bytes, one bit per 8).
    const bits = i32[this.#unitMap + ((unit - base) >> 8)] as number;
    if ((bits & (1 << ((unit - base) >> 3))) === 0 || (unit & 7) !== 0) this.#notAUnit(ptr);
    const h = unit >> 2;
    const word = i32[h + 1] as number;
    if ((word & 3) !== 1) this.#notAllocated(ptr, word);
    return h;
  }

  /**
   * Refills the cache of `cls` with up to `want` units from the slab (the kernel's alloc_bulk).
   * Callers have checked that the arena is open.
   */
  #allocBulk(cls: number, want: number): void {
    const i32 = this.i32;
    const c = this.#cacheBase + (cls << RECORD_SHIFT);
    const head = this.#slab.takeBatch(cls, want);
    const got = this.#slab.lastCount;
    i32[c + C_REFILLS] = (i32[c + C_REFILLS] as number) + 1;
    if (got < want) i32[c + C_REFILL_SHORT] = (i32[c + C_REFILL_SHORT] as number) + 1;
    if (head === 0) return;
    i32[this.#slab.lastTail >> 2] = i32[c + C_FREE_HEAD] as number;
    i32[c + C_FREE_HEAD] = head;
    i32[c + C_FREE_COUNT] = (i32[c + C_FREE_COUNT] as number) + got;
  }

  /** Trims the cache of `cls` to (low + high) / 2 in one batch to the slab (the kernel's free_bulk). */
  #freeBulk(cls: number): void {
    const i32 = this.i32;
    const c = this.#cacheBase + (cls << RECORD_SHIFT);
    this.#returnUnits(cls, (i32[c + C_FREE_COUNT] as number) - (i32[c + C_TRIM_TO] as number));
    i32[c + C_TRIMS] = (i32[c + C_TRIMS] as number) + 1;
  }

  /** Pops `n` units off the cache of `cls` and returns them to the slab as one chain. */
  #returnUnits(cls: number, n: number): void {
    if (n <= 0) return;
    const i32 = this.i32;
    const c = this.#cacheBase + (cls << RECORD_SHIFT);
    const head = i32[c + C_FREE_HEAD] as number;
    let tail = head;
    for (let k = 1; k < n; k++) tail = i32[tail >> 2] as number;
    i32[c + C_FREE_HEAD] = i32[tail >> 2] as number;
    i32[c + C_FREE_COUNT] = (i32[c + C_FREE_COUNT] as number) - n;
    this.#slab.returnBatch(cls, head, tail, n);
  }

  /** Brings the CPU online: watermarks from the class table, then the kernel's prefill. */
  #prefill(): void {
    const i32 = this.i32;
    for (let cls = 0; cls < this.#classes; cls++) {
      const w = classWord(this.#layout, cls);
      const c = this.#cacheBase + (cls << RECORD_SHIFT);
      const low = i32[w + CLS_LOW] as number;
      const high = i32[w + CLS_HIGH] as number;
      i32[c + C_LOW] = low;
      i32[c + C_HIGH] = high;
      i32[c + C_BATCH] = i32[w + CLS_BATCH] as number;
      i32[c + C_TRIM_TO] = trimTarget({ low, high, batch: 0, prefill: 0 });
      this.#allocBulk(cls, i32[w + CLS_PREFILL] as number);
    }
  }

  #flushAll(): void {
    for (let cls = 0; cls < this.#classes; cls++) {
      const c = this.#cacheBase + (cls << RECORD_SHIFT);
      this.#returnUnits(cls, this.i32[c + C_FREE_COUNT] as number);
    }
  }

  #checkOpen(): void {
    if (readShared(this.i32, X_CLOSED) !== 0) {
      this.#attached = false;
      fail('ECLOSED', `CPU ${this.cpu}: the arena was closed`);
    }
  }

  #closedError(): never {
    fail('ECLOSED', `CPU ${this.cpu}: this handle was detached or its arena closed`);
  }

  #notAUnit(ptr: number): never {
    throw new ArenaError('EINVAL', `free(${String(ptr)}): not a pointer to a unit of this arena`);
  }

  #notAllocated(ptr: number, word: number): never {
    throw new ArenaError(
      'EINVAL',
      (word & UNIT_STATE_MASK) === UNIT_FREE
        ? `free(${ptr}): double free (the unit is already free)`
        : `free(${ptr}): not an allocated unit`,
    );
  }
}
