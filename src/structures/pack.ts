/**
 * The pack allocator (the kernel's bpf_prog_pack, kernel/bpf/core.c since 57631054fae6,
 * https://git.kernel.org/torvalds/c/57631054fae6), also the arena's
 * allocator for blocks larger than a slab unit. Small blocks share 2 MiB packs of 64-byte chunks,
 * tracked by a bitmap and found first-fit across the packs under one lock; a block larger than
 * half a pack gets a dedicated page-rounded region; a pack is given back as soon as it is empty.
 * Fresh packs and freed ranges are filled with the trap byte 0xCC (INT3: d88bb5eed04c,
 * `bpf_arch_text_invalidate`).
 *
 * Executable allocators (`exec: true`, for BPF programs) set every pack and region RO+X in the
 * simulated direct map (src/structures/direct-map.ts), as `set_memory_rox` does: a whole 2 MiB pack keeps
 * its huge mapping, a program's own region splits the one it lies in — the fragmentation packs
 * were made to remove (`percpu-arena bench pack`). Their blocks are sealed from the start and
 * written only through `copyIn` (`bpf_arch_text_copy`, the text_poke path). Data allocators
 * (a service's large values) give writable blocks that `seal` makes read-only to this API.
 * Sealing guards the API, not the memory: `bytes(block)` is a plain view.
 *
 * ```
 * region: | header (32 words) | packs [maxPacks]: data, bitmaps, used chunks, flags | regions [maxRegions]: start, pages, flags, - | direct map |
 * a pack's bitmap span (3 pages): | chunk in use (32768 bits) | block starts here | block sealed (at its start) |
 * ```
 *
 * Who may call: any thread holding the arena (`PackAllocator.open(arena.shared, ref)`); blocks
 * are visible to every thread. Shared words: everything in the region and the packs' bitmaps is
 * guarded by the allocator's robust mutex (its word names the thread inside, so crash recovery
 * releases it: `recoverPackLocks`), as `pack_mutex` guards `pack_list`; the allocator's link in
 * the structure chain is written once at creation; `stats` reads counters with Atomics and tables plainly (aligned 32-bit
 * reads: recent values). Block bytes belong to whoever holds the block; `copyIn`, `write` and
 * the trap fill of a freed range take the lock to check the block first, so they cannot write
 * into a range freed under them.
 */
import { PageAllocator } from '../memory/page-allocator.js';
import { type ArenaRef, arenaBuffer, checkArenaOpen } from '../shm/arena-ref.js';
import { fail, show } from '../shm/errors.js';
import { PAGE_BYTES, readLayout } from '../shm/layout.js';
import type { PackRef } from '../shm/refs.js';
import {
  joinStructureChain,
  type StructureRecoverer,
  type StructureRecovery,
} from '../shm/structure-chain.js';
import { mutexRecover, robustLock, robustUnlock } from '../shm/sync.js';
import { checkInteger, checkStructureRef } from './arguments.js';
import { DirectMap, type DirectMapStats, HUGE_BYTES, Perm } from './direct-map.js';

/** Options of `PackAllocator.create`. */
export interface PackOptions {
  /**
   * Executable blocks (BPF programs): RO+X in the direct map, sealed from the start, written
   * only through `copyIn`. Otherwise data blocks, writable until `seal`. @defaultValue false
   */
  readonly exec?: boolean;
  /**
   * Share 2 MiB packs among blocks up to half a pack; false gives every block its own
   * page-rounded region, as BPF programs had before bpf_prog_pack. @defaultValue true
   */
  readonly packs?: boolean;
  /**
   * VM_ALLOW_HUGE_VMAP: map a pack (and the whole 2 MiB parts of a large region) with huge
   * mappings in the allocator's own address space instead of 4 KiB ones. @defaultValue false
   */
  readonly hugeVmap?: boolean;
  /** Packs that may exist at once, 1..1024. @defaultValue 64 */
  readonly maxPacks?: number;
  /** Dedicated regions that may exist at once, 1..65536. @defaultValue 4096 */
  readonly maxRegions?: number;
}

export interface PackStats {
  readonly packs: number;
  readonly regions: number;
  readonly blocks: number;
  /** Chunks in use over all packs, and chunks the packs hold. */
  readonly chunksUsed: number;
  readonly chunksTotal: number;
  /**
   * 1 − (longest free run in any pack ÷ free chunks of all packs): near 0 when the free chunks
   * are mostly one run, near 1 when they are scattered. 0 without packs.
   */
  readonly fragmentation: number;
  /** Bytes of packs and regions (without the allocator's tables and the packs' bitmap pages). */
  readonly bytesReserved: number;
  /** Bytes of the blocks handed out, rounded to chunks (packs) or pages (regions). */
  readonly bytesInBlocks: number;
  readonly directMap: DirectMapStats;
  /** Mappings in the allocator's own address space (the iTLB's view): huge and 4 KiB. */
  readonly vmap: { readonly huge: number; readonly base: number };
  readonly allocs: number;
  readonly frees: number;
  /** Allocations that returned 0 (no memory, or no table entry left). */
  readonly failures: number;
}

export const PACK_BYTES = HUGE_BYTES;
export const CHUNK_BYTES = 64;
const CHUNKS = PACK_BYTES / CHUNK_BYTES;
const BITMAP_WORDS = CHUNKS / 32;
const BITMAP_PAGES = (3 * BITMAP_WORDS * 4) / PAGE_BYTES;
/** Blocks above this get a dedicated region (the rule: more than half a pack). */
const MAX_PACKED = PACK_BYTES / 2;

const H_MAGIC = 0;
const H_FLAGS = 1;
const H_LOCK = 2;
const H_MAX_PACKS = 3;
const H_MAX_REGIONS = 4;
const H_PACKS = 5;
const H_REGIONS = 6;
const H_BLOCKS = 7;
const H_CHUNKS_USED = 8;
const H_REGION_PAGES = 9;
const H_ALLOCS = 10;
const H_FREES = 11;
const H_FAILURES = 12;
/** The pack allocator created before this one (the structure chain, X_STRUCT_CHAIN), 0 for the first. */
const H_NEXT = 13;
const HEADER_WORDS = 32;
const ENTRY_WORDS = 4;
/** Pack entry: data start (0: free entry), bitmap span start, chunks used, flags. */
const E_START = 0;
const E_BITMAPS = 1;
const E_USED = 2;
/** Region entry: start (0: free entry), pages, flags. */
const E_PAGES = 1;
const E_FLAGS = 2;
const F_SEALED = 1;

const PACK_MAGIC = 0x5041434b; // "PACK"
const FLAG_EXEC = 1;
const FLAG_PACKS = 2;
const FLAG_HUGE_VMAP = 4;
const TRAP = 0xcc;

function checkBoolean(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') fail('EINVAL', `PackAllocator: ${name} must be a boolean`);
  return value;
}

/** Where a block lives: a pack entry and its first chunk, or a region entry (chunk -1). */
interface Found {
  readonly entry: number;
  readonly chunk: number;
  readonly chunks: number;
}

export class PackAllocator {
  /** Byte offset of the allocator in its arena: what `open` takes on another thread. */
  readonly ref: PackRef;
  readonly exec: boolean;
  readonly packs: boolean;
  readonly hugeVmap: boolean;
  readonly #i32: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #h: number;
  readonly #packTable: number;
  readonly #regionTable: number;
  readonly #maxPacks: number;
  readonly #maxRegions: number;
  readonly #pages: PageAllocator;
  readonly #directMap: DirectMap;
  readonly #arenaBytes: number;

  private constructor(buffer: SharedArrayBuffer, ref: PackRef) {
    const i32 = new Int32Array(buffer);
    const h = ref >> 2;
    this.ref = ref;
    this.#i32 = i32;
    this.#bytes = new Uint8Array(buffer);
    this.#h = h;
    const flags = i32[h + H_FLAGS] as number;
    this.exec = (flags & FLAG_EXEC) !== 0;
    this.packs = (flags & FLAG_PACKS) !== 0;
    this.hugeVmap = (flags & FLAG_HUGE_VMAP) !== 0;
    this.#maxPacks = i32[h + H_MAX_PACKS] as number;
    this.#maxRegions = i32[h + H_MAX_REGIONS] as number;
    this.#packTable = h + HEADER_WORDS;
    this.#regionTable = this.#packTable + this.#maxPacks * ENTRY_WORDS;
    const layout = readLayout(i32);
    this.#arenaBytes = layout.totalBytes;
    this.#pages = new PageAllocator(i32, layout, buffer);
    this.#directMap = new DirectMap(
      i32,
      this.#regionTable + this.#maxRegions * ENTRY_WORDS,
      layout.totalBytes,
    );
  }

  /**
   * Lays out a new allocator in pages of its own and returns its `ref`. Throws `EINVAL` for bad
   * options and `ENOMEM` when the arena has no room for its tables; nothing is allocated then.
   */
  static create(arena: ArenaRef, options: PackOptions = {}): PackRef {
    const buffer = arenaBuffer(arena, 'PackAllocator');
    if (options === null || typeof options !== 'object')
      fail('EINVAL', 'PackAllocator.create: options must be an object');
    const exec = checkBoolean(options.exec, 'exec', false);
    const packs = checkBoolean(options.packs, 'packs', true);
    const hugeVmap = checkBoolean(options.hugeVmap, 'hugeVmap', false);
    const maxPacks = checkInteger('PackAllocator', 'maxPacks', options.maxPacks ?? 64, 1, 1024);
    const maxRegions = checkInteger('PackAllocator', 'maxRegions', options.maxRegions ?? 4096, 1, 65536);
    const i32 = new Int32Array(buffer);
    const layout = readLayout(i32);
    const words = HEADER_WORDS + (maxPacks + maxRegions) * ENTRY_WORDS + DirectMap.words(layout.totalBytes);
    const region = new PageAllocator(i32, layout, buffer).allocSpan(Math.ceil((words * 4) / PAGE_BYTES));
    if (region === 0) fail('ENOMEM', 'PackAllocator.create: no room in the arena for its tables');
    const h = region >> 2;
    i32.fill(0, h, h + words);
    i32[h + H_FLAGS] = (exec ? FLAG_EXEC : 0) | (packs ? FLAG_PACKS : 0) | (hugeVmap ? FLAG_HUGE_VMAP : 0);
    i32[h + H_MAX_PACKS] = maxPacks;
    i32[h + H_MAX_REGIONS] = maxRegions;
    Atomics.store(i32, h + H_MAGIC, PACK_MAGIC);
    joinStructureChain(i32, region, H_NEXT);
    return region as PackRef;
  }

  /** Opens allocator `ref` of the arena (any thread). Throws `EINVAL` for a bad ref. */
  static open(arena: ArenaRef, ref: PackRef): PackAllocator {
    const buffer = arenaBuffer(arena, 'PackAllocator');
    checkStructureRef(new Int32Array(buffer), ref, PACK_MAGIC, 'PackAllocator.open', 'pack allocator');
    return new PackAllocator(buffer, ref);
  }

  /**
   * A block of at least `size` bytes filled with 0xCC (sealed if the allocator is `exec`), or 0
   * when memory (or a table entry) is out. Throws `EINVAL` for a size that is not an integer
   * from 1 to the arena's size.
   */
  alloc(size: number): number {
    checkArenaOpen(this.#i32, 'PackAllocator.alloc');
    if (!Number.isInteger(size) || size < 1 || size > this.#arenaBytes) {
      fail(
        'EINVAL',
        `PackAllocator.alloc: size must be an integer from 1 to ${this.#arenaBytes}, got ${show(size)}`,
      );
    }
    const i32 = this.#i32;
    robustLock(i32, this.#h + H_LOCK);
    try {
      const block = this.packs && size <= MAX_PACKED ? this.#allocPacked(size) : this.#allocRegion(size);
      Atomics.add(i32, this.#h + (block === 0 ? H_FAILURES : H_ALLOCS), 1);
      if (block !== 0) Atomics.add(i32, this.#h + H_BLOCKS, 1);
      return block;
    } finally {
      robustUnlock(i32, this.#h + H_LOCK);
    }
  }

  /**
   * Frees `block`: its chunks are filled with 0xCC and cleared (the pack is given back once
   * empty), or its region goes back to the arena's pages. Throws `EINVAL` for anything that is
   * not a block of this allocator (including a double free), changing nothing; `free(0)` does
   * nothing, as `bpf_prog_pack_free` of nothing would.
   */
  free(block: number): void {
    const i32 = this.#i32;
    checkArenaOpen(i32, 'PackAllocator.free');
    if (block === 0) return;
    robustLock(i32, this.#h + H_LOCK);
    try {
      const found = this.#find(block, 'free');
      if (found.chunk >= 0) this.#freePacked(found);
      else this.#freeRegion(found.entry);
      Atomics.add(i32, this.#h + H_FREES, 1);
      Atomics.sub(i32, this.#h + H_BLOCKS, 1);
    } finally {
      robustUnlock(i32, this.#h + H_LOCK);
    }
  }

  /**
   * Installs `data` at `offset` in `block`, sealed or not: the one way into an executable block
   * (`bpf_arch_text_copy`). Throws `EINVAL` for a non-block or a range outside the block.
   */
  copyIn(block: number, data: Uint8Array, offset = 0): void {
    checkArenaOpen(this.#i32, 'PackAllocator.copyIn');
    this.#store(block, data, offset, 'copyIn', true);
  }

  /** Writes `data` at `offset` in a block that is not sealed; `EPERM` if it is. */
  write(block: number, data: Uint8Array, offset = 0): void {
    checkArenaOpen(this.#i32, 'PackAllocator.write');
    this.#store(block, data, offset, 'write', false);
  }

  /** Makes `block` read-only to `write` (executable blocks are sealed from the start). */
  seal(block: number): void {
    const i32 = this.#i32;
    checkArenaOpen(i32, 'PackAllocator.seal');
    robustLock(i32, this.#h + H_LOCK);
    try {
      const found = this.#find(block, 'seal');
      if (found.chunk >= 0) {
        const bitmaps = this.#entry(found.entry) + E_BITMAPS;
        setBit(i32, ((i32[bitmaps] as number) >> 2) + 2 * BITMAP_WORDS, found.chunk);
      } else {
        const flags = this.#regionEntry(found.entry) + E_FLAGS;
        i32[flags] = (i32[flags] as number) | F_SEALED;
      }
    } finally {
      robustUnlock(i32, this.#h + H_LOCK);
    }
  }

  /** Whether `block` is sealed. Throws `EINVAL` for a non-block. */
  isSealed(block: number): boolean {
    checkArenaOpen(this.#i32, 'PackAllocator.isSealed');
    return this.#locked(block, 'isSealed', (found) => this.#sealed(found));
  }

  /** Usable bytes of `block` (its size rounded up to chunks, or to pages for a region). */
  sizeOf(block: number): number {
    checkArenaOpen(this.#i32, 'PackAllocator.sizeOf');
    return this.#locked(block, 'sizeOf', (found) => this.#lengthOf(found));
  }

  /** A view of `block`'s bytes (read it; writes through it bypass sealing). */
  bytes(block: number): Uint8Array {
    const length = this.sizeOf(block);
    return this.#bytes.subarray(block, block + length);
  }

  stats(): PackStats {
    const i32 = this.#i32;
    checkArenaOpen(i32, 'PackAllocator.stats');
    const h = this.#h;
    let chunksTotal = 0;
    let freeChunks = 0;
    let largestRun = 0;
    let huge = 0;
    let base = 0;
    for (let p = 0; p < this.#maxPacks; p++) {
      const e = this.#entry(p);
      if ((i32[e + E_START] as number) === 0) continue;
      chunksTotal += CHUNKS;
      const used = (i32[e + E_BITMAPS] as number) >> 2;
      const [free, run] = freeRuns(i32, used);
      freeChunks += free;
      largestRun = Math.max(largestRun, run);
      if (this.hugeVmap) huge++;
      else base += PACK_BYTES / PAGE_BYTES;
    }
    for (let r = 0; r < this.#maxRegions; r++) {
      const e = this.#regionEntry(r);
      if ((i32[e + E_START] as number) === 0) continue;
      const pages = i32[e + E_PAGES] as number;
      const hugeParts = this.hugeVmap ? Math.floor((pages * PAGE_BYTES) / HUGE_BYTES) : 0;
      huge += hugeParts;
      base += pages - (hugeParts * HUGE_BYTES) / PAGE_BYTES;
    }
    const packs = Atomics.load(i32, h + H_PACKS);
    const regionPages = Atomics.load(i32, h + H_REGION_PAGES);
    const chunksUsed = Atomics.load(i32, h + H_CHUNKS_USED);
    return {
      packs,
      regions: Atomics.load(i32, h + H_REGIONS),
      blocks: Atomics.load(i32, h + H_BLOCKS),
      chunksUsed,
      chunksTotal,
      fragmentation: freeChunks === 0 ? 0 : 1 - largestRun / freeChunks,
      bytesReserved: packs * PACK_BYTES + regionPages * PAGE_BYTES,
      bytesInBlocks: chunksUsed * CHUNK_BYTES + regionPages * PAGE_BYTES,
      directMap: this.#directMap.stats(),
      vmap: { huge, base },
      allocs: Atomics.load(i32, h + H_ALLOCS),
      frees: Atomics.load(i32, h + H_FREES),
      failures: Atomics.load(i32, h + H_FAILURES),
    };
  }

  #entry(pack: number): number {
    return this.#packTable + pack * ENTRY_WORDS;
  }

  #regionEntry(region: number): number {
    return this.#regionTable + region * ENTRY_WORDS;
  }

  /** First fit across the packs in order; a new pack when none has room. Lock held. */
  #allocPacked(size: number): number {
    const i32 = this.#i32;
    const chunks = Math.ceil(size / CHUNK_BYTES);
    let empty = -1;
    for (let p = 0; p < this.#maxPacks; p++) {
      const e = this.#entry(p);
      const start = i32[e + E_START] as number;
      if (start === 0) {
        if (empty < 0) empty = p;
        continue;
      }
      if ((i32[e + E_USED] as number) + chunks > CHUNKS) continue;
      const at = findZeroRun(i32, (i32[e + E_BITMAPS] as number) >> 2, chunks);
      if (at >= 0) return this.#claim(p, at, chunks);
    }
    if (empty < 0) return 0;
    const data = this.#pages.allocSpan(PACK_BYTES / PAGE_BYTES, PACK_BYTES);
    if (data === 0) return 0;
    const bitmaps = this.#pages.allocSpan(BITMAP_PAGES);
    if (bitmaps === 0) {
      this.#givePages(data, PACK_BYTES / PAGE_BYTES);
      return 0;
    }
    // alloc_new_pack: trap-fill the whole pack, then make it RO+X (the pages are zeroed).
    this.#bytes.fill(TRAP, data, data + PACK_BYTES);
    if (this.exec) this.#directMap.setPermission(data, PACK_BYTES, Perm.ROX);
    const e = this.#entry(empty);
    i32[e + E_BITMAPS] = bitmaps;
    i32[e + E_USED] = 0;
    Atomics.store(i32, e + E_START, data);
    Atomics.add(i32, this.#h + H_PACKS, 1);
    return this.#claim(empty, 0, chunks);
  }

  #claim(pack: number, at: number, chunks: number): number {
    const i32 = this.#i32;
    const e = this.#entry(pack);
    const bits = (i32[e + E_BITMAPS] as number) >> 2;
    for (let c = at; c < at + chunks; c++) setBit(i32, bits, c);
    setBit(i32, bits + BITMAP_WORDS, at);
    if (this.exec) setBit(i32, bits + 2 * BITMAP_WORDS, at);
    i32[e + E_USED] = (i32[e + E_USED] as number) + chunks;
    Atomics.add(i32, this.#h + H_CHUNKS_USED, chunks);
    return (i32[e + E_START] as number) + at * CHUNK_BYTES;
  }

  /** A dedicated page-rounded region (2 MiB-aligned when huge mappings may map it). Lock held. */
  #allocRegion(size: number): number {
    const i32 = this.#i32;
    let slot = -1;
    for (let r = 0; r < this.#maxRegions && slot < 0; r++)
      if (i32[this.#regionEntry(r) + E_START] === 0) slot = r;
    if (slot < 0) return 0;
    const pages = Math.ceil(size / PAGE_BYTES);
    const align = this.hugeVmap && pages * PAGE_BYTES >= HUGE_BYTES ? HUGE_BYTES : PAGE_BYTES;
    const start = this.#pages.allocSpan(pages, align);
    if (start === 0) return 0;
    this.#bytes.fill(TRAP, start, start + pages * PAGE_BYTES);
    if (this.exec) this.#directMap.setPermission(start, pages * PAGE_BYTES, Perm.ROX);
    const e = this.#regionEntry(slot);
    i32[e + E_PAGES] = pages;
    i32[e + E_FLAGS] = this.exec ? F_SEALED : 0;
    Atomics.store(i32, e + E_START, start);
    Atomics.add(i32, this.#h + H_REGIONS, 1);
    Atomics.add(i32, this.#h + H_REGION_PAGES, pages);
    return start;
  }

  /** bitmap_clear after the trap fill; an empty pack goes back at once. Lock held. */
  #freePacked(found: Found): void {
    const i32 = this.#i32;
    const e = this.#entry(found.entry);
    const start = i32[e + E_START] as number;
    const bits = (i32[e + E_BITMAPS] as number) >> 2;
    const at = start + found.chunk * CHUNK_BYTES;
    this.#bytes.fill(TRAP, at, at + found.chunks * CHUNK_BYTES);
    for (let c = found.chunk; c < found.chunk + found.chunks; c++) clearBit(i32, bits, c);
    clearBit(i32, bits + BITMAP_WORDS, found.chunk);
    clearBit(i32, bits + 2 * BITMAP_WORDS, found.chunk);
    const used = (i32[e + E_USED] as number) - found.chunks;
    i32[e + E_USED] = used;
    Atomics.sub(i32, this.#h + H_CHUNKS_USED, found.chunks);
    if (used > 0) return;
    if (this.exec) this.#directMap.setPermission(start, PACK_BYTES, Perm.RW);
    Atomics.store(i32, e + E_START, 0);
    Atomics.sub(i32, this.#h + H_PACKS, 1);
    this.#givePages(start, PACK_BYTES / PAGE_BYTES);
    this.#givePages(i32[e + E_BITMAPS] as number, BITMAP_PAGES);
  }

  /** module_memfree with VM_FLUSH_RESET_PERMS: RW again (a split stays split). Lock held. */
  #freeRegion(region: number): void {
    const i32 = this.#i32;
    const e = this.#regionEntry(region);
    const start = i32[e + E_START] as number;
    const pages = i32[e + E_PAGES] as number;
    if (this.exec) this.#directMap.setPermission(start, pages * PAGE_BYTES, Perm.RW);
    Atomics.store(i32, e + E_START, 0);
    Atomics.sub(i32, this.#h + H_REGIONS, 1);
    Atomics.sub(i32, this.#h + H_REGION_PAGES, pages);
    this.#givePages(start, pages);
  }

  #givePages(start: number, pages: number): void {
    this.#pages.lock(false);
    try {
      this.#pages.freeSpanLocked(start, pages);
    } finally {
      this.#pages.unlock();
    }
  }

  /** The pack or region holding block `block`, or EINVAL (lock held; the caller unlocks). */
  #find(block: number, call: string): Found {
    const i32 = this.#i32;
    if (Number.isInteger(block) && block > 0) {
      for (let p = 0; p < this.#maxPacks; p++) {
        const e = this.#entry(p);
        const start = i32[e + E_START] as number;
        if (start === 0 || block < start || block >= start + PACK_BYTES) continue;
        const offset = block - start;
        const bits = (i32[e + E_BITMAPS] as number) >> 2;
        const chunk = offset / CHUNK_BYTES;
        if (offset % CHUNK_BYTES !== 0 || !getBit(i32, bits + BITMAP_WORDS, chunk)) break;
        let end = chunk + 1;
        while (end < CHUNKS && getBit(i32, bits, end) && !getBit(i32, bits + BITMAP_WORDS, end)) end++;
        return { entry: p, chunk, chunks: end - chunk };
      }
      for (let r = 0; r < this.#maxRegions; r++) {
        const e = this.#regionEntry(r);
        if (i32[e + E_START] === block) return { entry: r, chunk: -1, chunks: 0 };
      }
    }
    fail('EINVAL', `PackAllocator.${call}: ${show(block)} is not a block of this allocator (freed already?)`);
  }

  #lengthOf(found: Found): number {
    if (found.chunk >= 0) return found.chunks * CHUNK_BYTES;
    return (this.#i32[this.#regionEntry(found.entry) + E_PAGES] as number) * PAGE_BYTES;
  }

  #sealed(found: Found): boolean {
    const i32 = this.#i32;
    if (found.chunk < 0) return ((i32[this.#regionEntry(found.entry) + E_FLAGS] as number) & F_SEALED) !== 0;
    const bits = (i32[this.#entry(found.entry) + E_BITMAPS] as number) >> 2;
    return getBit(i32, bits + 2 * BITMAP_WORDS, found.chunk);
  }

  #locked<T>(block: number, call: string, then: (found: Found) => T): T {
    const i32 = this.#i32;
    robustLock(i32, this.#h + H_LOCK);
    try {
      return then(this.#find(block, call));
    } finally {
      robustUnlock(i32, this.#h + H_LOCK);
    }
  }

  #store(block: number, data: Uint8Array, offset: number, call: string, poke: boolean): void {
    if (!(data instanceof Uint8Array)) fail('EINVAL', `PackAllocator.${call}: data must be a Uint8Array`);
    this.#locked(block, call, (found) => {
      const length = this.#lengthOf(found);
      if (!Number.isInteger(offset) || offset < 0 || offset + data.length > length) {
        fail(
          'EINVAL',
          `PackAllocator.${call}: ${data.length} bytes at ${show(offset)} do not fit a block of ${length}`,
        );
      }
      if (!poke && this.#sealed(found))
        fail('EPERM', `PackAllocator.write: block ${block} is sealed (use copyIn)`);
      this.#bytes.set(data, block + offset);
    });
  }
}

/**
 * Crash recovery (src/arena/recovery.ts, through `packRecoverer`): releases the mutex of pack
 * allocator `ref` if its word names the dead thread, after recounting what its bitmaps hold (a thread killed inside `alloc` or
 * `free` may have set or cleared part of a block's bits: those chunks may leak, nothing is handed
 * out twice). Returns the locks released.
 */
export function recoverPackLocks(i32: Int32Array, ref: number, deadThreadId: number): StructureRecovery {
  let released = 0;
  const h = ref >> 2;
  const repair = (): void => {
    const packs = h + HEADER_WORDS;
    let chunksUsed = 0;
    let blocks = 0;
    for (let p = 0; p < (i32[h + H_MAX_PACKS] as number); p++) {
      const e = packs + p * ENTRY_WORDS;
      if ((i32[e + E_START] as number) === 0) continue;
      const bits = (i32[e + E_BITMAPS] as number) >> 2;
      const [free] = freeRuns(i32, bits);
      i32[e + E_USED] = CHUNKS - free;
      chunksUsed += CHUNKS - free;
      for (let c = 0; c < CHUNKS; c++) if (getBit(i32, bits + BITMAP_WORDS, c)) blocks++;
    }
    const regions = packs + (i32[h + H_MAX_PACKS] as number) * ENTRY_WORDS;
    let liveRegions = 0;
    let regionPages = 0;
    for (let r = 0; r < (i32[h + H_MAX_REGIONS] as number); r++) {
      const e = regions + r * ENTRY_WORDS;
      if ((i32[e + E_START] as number) === 0) continue;
      liveRegions++;
      regionPages += i32[e + E_PAGES] as number;
    }
    let livePacks = 0;
    for (let p = 0; p < (i32[h + H_MAX_PACKS] as number); p++) {
      if ((i32[packs + p * ENTRY_WORDS + E_START] as number) !== 0) livePacks++;
    }
    Atomics.store(i32, h + H_CHUNKS_USED, chunksUsed);
    Atomics.store(i32, h + H_BLOCKS, blocks + liveRegions);
    Atomics.store(i32, h + H_PACKS, livePacks);
    Atomics.store(i32, h + H_REGIONS, liveRegions);
    Atomics.store(i32, h + H_REGION_PAGES, regionPages);
  };
  if (mutexRecover(i32, h + H_LOCK, deadThreadId, repair)) released++;
  return { released, unlinked: 0 };
}

/** The structure chain's entry for pack allocators (src/shm/structure-chain.ts). */
export const packRecoverer: StructureRecoverer = {
  magic: PACK_MAGIC,
  name: 'pack allocator',
  nextWord: H_NEXT,
  recover: recoverPackLocks,
};

function getBit(i32: Int32Array, words: number, bit: number): boolean {
  return ((i32[words + (bit >>> 5)] as number) & (1 << (bit & 31))) !== 0;
}

function setBit(i32: Int32Array, words: number, bit: number): void {
  i32[words + (bit >>> 5)] = (i32[words + (bit >>> 5)] as number) | (1 << (bit & 31));
}

function clearBit(i32: Int32Array, words: number, bit: number): void {
  i32[words + (bit >>> 5)] = (i32[words + (bit >>> 5)] as number) & ~(1 << (bit & 31));
}

/** bitmap_find_next_zero_area: the first run of `n` clear bits, or -1; full words are skipped. */
function findZeroRun(i32: Int32Array, words: number, n: number): number {
  let run = 0;
  for (let bit = 0; bit < CHUNKS; ) {
    const word = i32[words + (bit >>> 5)] as number;
    if ((bit & 31) === 0 && word === -1) {
      run = 0;
      bit += 32;
      continue;
    }
    if ((word & (1 << (bit & 31))) === 0) {
      if (++run === n) return bit - n + 1;
    } else {
      run = 0;
    }
    bit++;
  }
  return -1;
}

/** Free chunks of a pack's bitmap and its longest free run. */
function freeRuns(i32: Int32Array, words: number): [number, number] {
  let free = 0;
  let run = 0;
  let longest = 0;
  for (let bit = 0; bit < CHUNKS; bit++) {
    if (getBit(i32, words, bit)) {
      run = 0;
    } else {
      free++;
      if (++run > longest) longest = run;
    }
  }
  return [free, longest];
}
