/**
 * The kernel's direct map (x86-64's linear mapping of all physical memory) over a simulated
 * physical memory (src/buddy-allocator.ts), for the pack bench's physical mode. At boot it maps
 * the memory with 1 GiB mappings; a permission change of a page inside a larger mapping splits
 * that mapping — a 1 GiB one into 512 2 MiB ones, then the 2 MiB one holding the page into 512
 * 4 KiB ones — and a split mapping stays split (v5.17–v6.1 never merge them back: "Once a split
 * happened, it remains happened", research/kernel.md §2.5).
 *
 * Why one page at a time: `set_memory_ro`/`set_memory_rox` on a vmalloc'd range changes the
 * range's own 4 KiB mappings one page per step (`__change_page_attr` sets `numpages = 1` for a
 * 4 KiB entry), and `cpa_process_alias` then changes that page's direct-map alias with the same
 * count of 1 (arch/x86/mm/pat/set_memory.c). One page never covers a 2 MiB mapping, so the
 * mapping is split even when all 512 of its pages belong to the range (a bpf_prog_pack on
 * consecutive frames splits the 2 MiB mapping it lies in, or the two it straddles).
 * `VM_FLUSH_RESET_PERMS` on free resets the aliases page by page: no merge either.
 *
 * Who may call: one thread (the bench's main thread).
 */
import { FRAME_BYTES } from './buddy-allocator.js';

const PMD_FRAMES = 512;
const PUD_FRAMES = 512 * 512;

export interface PhysicalDirectMapStats {
  /** /proc/meminfo's DirectMap4k, DirectMap2M and DirectMap1G for this memory, in KiB. */
  readonly directMap4kKiB: number;
  readonly directMap2MKiB: number;
  readonly directMap1GKiB: number;
  /** 2 MiB mappings split into 4 KiB ones, and 1 GiB mappings split into 2 MiB ones. */
  readonly splits: number;
  readonly gigSplits: number;
  /** Pages whose alias changed permission. */
  readonly pageChanges: number;
}

export class PhysicalDirectMap {
  /** Per 2 MiB of memory: 1 once split into 4 KiB mappings. */
  readonly #split4k: Uint8Array;
  /** Per 1 GiB of memory: 1 once split into 2 MiB mappings. */
  readonly #split2M: Uint8Array;
  #splits = 0;
  #gigSplits = 0;
  #pageChanges = 0;

  /** The boot direct map of `frames` frames (a whole number of 1 GiB). */
  constructor(frames: number) {
    this.#split4k = new Uint8Array(Math.ceil(frames / PMD_FRAMES));
    this.#split2M = new Uint8Array(Math.ceil(frames / PUD_FRAMES));
  }

  /** The alias of frame `pfn` changes permission (cpa_process_alias with numpages 1). */
  changePage(pfn: number): void {
    this.#pageChanges++;
    const gig = Math.floor(pfn / PUD_FRAMES);
    if (this.#split2M[gig] === 0) {
      this.#split2M[gig] = 1;
      this.#gigSplits++;
    }
    const pmd = Math.floor(pfn / PMD_FRAMES);
    if (this.#split4k[pmd] === 0) {
      this.#split4k[pmd] = 1;
      this.#splits++;
    }
  }

  /**
   * The aliases of the 2 MiB-aligned block of 512 frames at `pfn` change at once, as when a huge
   * vmalloc mapping (VM_ALLOW_HUGE_VMAP) of it changes: `numpages` is 512, the 2 MiB mapping is
   * preserved (`try_preserve_large_page`), only a 1 GiB mapping around it is split.
   */
  changeHugePage(pfn: number): void {
    this.#pageChanges += PMD_FRAMES;
    const gig = Math.floor(pfn / PUD_FRAMES);
    if (this.#split2M[gig] === 0) {
      this.#split2M[gig] = 1;
      this.#gigSplits++;
    }
  }

  stats(): PhysicalDirectMapStats {
    const pmdKiB = (PMD_FRAMES * FRAME_BYTES) / 1024;
    const gigs = this.#split2M.length;
    return {
      directMap4kKiB: this.#splits * pmdKiB,
      directMap2MKiB: (this.#gigSplits * (PUD_FRAMES / PMD_FRAMES) - this.#splits) * pmdKiB,
      directMap1GKiB: (gigs - this.#gigSplits) * (PUD_FRAMES / PMD_FRAMES) * pmdKiB,
      splits: this.#splits,
      gigSplits: this.#gigSplits,
      pageChanges: this.#pageChanges,
    };
  }
}
