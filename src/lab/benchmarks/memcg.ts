/**
 * A model of how a memory cgroup counts kernel memory (mm/memcontrol.c, v6.1–v6.4), for the
 * htab-mem bench: the kernel's bench reports the cgroup's `memory.current` and `memory.peak`
 * (bench_htab_mem.c runs in cgroup "/htab_mem"), which is not the memory in use but the cgroup's
 * page counter, and that counter runs ahead of the memory in use by per-CPU charge stocks:
 *
 * - `try_charge_memcg(nr_pages)`: take the pages from this CPU's stock (`consume_stock`) if it
 *   holds enough; else charge max(MEMCG_CHARGE_BATCH = 64, nr_pages) pages to the counter at
 *   once and put the surplus in the stock (`refill_stock`);
 * - `refill_stock(n)`: the stock grows by n; above 64 pages it is drained (`drain_stock`: the
 *   counter gives the whole stock back);
 * - kmalloc'd objects (`__GFP_ACCOUNT`, as bpf_mem_alloc's) are charged in bytes through a
 *   per-CPU object stock (`obj_cgroup_charge`): bytes left in it are used first; else the size is
 *   rounded up to pages, charged as above, and the rest of the last page goes to the object
 *   stock; a free (`refill_obj_stock`) adds the bytes back and, past a page, uncharges the whole
 *   pages into the CPU's page stock. An object costs its size plus the obj_cgroup pointer (8).
 *
 * So every CPU that ever charged holds up to 64 pages (256 KiB) of charge that no object uses,
 * and memory.current ≈ objects + map + 256 KiB × CPUs that allocated. Each stock is assumed to
 * cache this cgroup only (nothing else charges on those CPUs; another cgroup's charge would
 * drain it).
 *
 * Who may call: one thread (the bench's main thread); plain state.
 */

/** MEMCG_CHARGE_BATCH (include/linux/memcontrol.h). */
export const MEMCG_CHARGE_BATCH = 64;
const PAGE = 4096;
/** sizeof(struct obj_cgroup *), added to every accounted slab object (obj_full_size). */
const OBJCG_POINTER = 8;

export class MemcgModel {
  /** Per CPU: pages precharged in memcg_stock, bytes in the object stock. */
  readonly #stockPages: Int32Array;
  readonly #objBytes: Int32Array;
  /** The page counter (memory.current in pages) and its high-water mark (memory.peak). */
  #counter = 0;
  #peak = 0;

  constructor(cpus: number) {
    this.#stockPages = new Int32Array(cpus);
    this.#objBytes = new Int32Array(cpus);
  }

  /** memory.current, bytes. */
  get currentBytes(): number {
    return this.#counter * PAGE;
  }

  /** memory.peak, bytes. */
  get peakBytes(): number {
    return this.#peak * PAGE;
  }

  /** Pages held in the CPUs' stocks: charged, used by nothing. */
  get stockBytes(): number {
    let pages = 0;
    for (const p of this.#stockPages) pages += p;
    return pages * PAGE;
  }

  /** Accounted pages (a vmalloc'd map area, __GFP_ACCOUNT page allocations) on `cpu`. */
  chargePages(cpu: number, pages: number): void {
    const stock = this.#stockPages[cpu] as number;
    if (pages <= MEMCG_CHARGE_BATCH && stock >= pages) {
      this.#stockPages[cpu] = stock - pages;
      return;
    }
    const batch = Math.max(MEMCG_CHARGE_BATCH, pages);
    this.#counter += batch;
    if (this.#counter > this.#peak) this.#peak = this.#counter;
    if (batch > pages) this.#refillStock(cpu, batch - pages);
  }

  /** Pages given back (vfree of an accounted area) on `cpu`. */
  unchargePages(cpu: number, pages: number): void {
    this.#refillStock(cpu, pages);
  }

  /** `count` kmalloc'd objects of `size` bytes charged on `cpu` (obj_cgroup_charge each). */
  chargeObjects(cpu: number, count: number, size: number): void {
    const bytes = size + OBJCG_POINTER;
    for (let i = 0; i < count; i++) {
      const have = this.#objBytes[cpu] as number;
      if (have >= bytes) {
        this.#objBytes[cpu] = have - bytes;
        continue;
      }
      const rest = bytes % PAGE;
      this.chargePages(cpu, Math.floor(bytes / PAGE) + (rest === 0 ? 0 : 1));
      // refill_obj_stock(..., allow_uncharge false): the page's remainder, no uncharge.
      if (rest !== 0) this.#objBytes[cpu] = (this.#objBytes[cpu] as number) + PAGE - rest;
    }
  }

  /** `count` objects of `size` bytes freed on `cpu` (refill_obj_stock with uncharge). */
  unchargeObjects(cpu: number, count: number, size: number): void {
    const bytes = size + OBJCG_POINTER;
    for (let i = 0; i < count; i++) {
      let have = (this.#objBytes[cpu] as number) + bytes;
      if (have > PAGE) {
        const pages = Math.floor(have / PAGE);
        have -= pages * PAGE;
        this.#refillStock(cpu, pages);
      }
      this.#objBytes[cpu] = have;
    }
  }

  #refillStock(cpu: number, pages: number): void {
    const stock = (this.#stockPages[cpu] as number) + pages;
    if (stock > MEMCG_CHARGE_BATCH) {
      this.#counter -= stock;
      this.#stockPages[cpu] = 0;
    } else {
      this.#stockPages[cpu] = stock;
    }
  }
}
