/**
 * `percpu-arena bench pack`'s default (physical) mode: Aaron Lu's direct-map experiment
 * (research/kernel.md §2.5: N `samples/bpf/sockex1` instances on an 8 GiB x86-64 VM, `grep Direct
 * /proc/meminfo`) with the kernel's page sources modelled. The real pack allocator (src/pack.ts)
 * still decides where blocks go in the arena — which pack, which chunks, which region — but the
 * memory behind a pack or a region is taken from a simulated physical memory the way the kernel
 * takes it, and the permission changes land on the direct map of that memory:
 *
 * - every program is loaded by its own process, and that process's pages come from the same
 *   buddy allocator first (`instancePages` order-0 pages, kept while the instance runs);
 * - without packs (v5.17), a program is a vmalloc'd area: `module_alloc` → `__vmalloc_node_range`
 *   → `vm_area_alloc_pages`, order-0 pages (`alloc_pages_bulk`), then `set_memory_ro` +
 *   `set_memory_x`, whose alias step changes each page's direct mapping (src/physical-direct-map.ts);
 * - with packs (v6.1), `alloc_new_pack` calls `module_alloc(BPF_PROG_PACK_SIZE)`: 512 order-0
 *   pages by the same path (no VM_ALLOW_HUGE_VMAP: "bpf_prog_pack uses 512x 4kB pages instead of
 *   1x 2MB page", execmem v5 cover letter), then `set_memory_rox` on all of them; programs then
 *   take 64-byte chunks of the pack and change no permission;
 * - unloading frees the area (`module_memfree`, VM_FLUSH_RESET_PERMS resets the aliases page by
 *   page: nothing merges) and the instance's pages.
 *
 * Before the first program, memory is aged by a stated workload: `agingProcesses` processes of
 * `instancePages` pages each are started one after another and, whenever more than `agingAlive`
 * are alive, a random one exits — a booted system where processes came and went, leaving free
 * holes scattered below the boundary of fresh memory.
 *
 * Program sizes: `sockex1` is the kernel experiment's program: 3 pages changed to RO+X without
 * packs ("each such prog would cause 3 pages to change protection") and 320 bytes of a pack with
 * them ("64 * 2 + 192 bytes"), both from Aaron Lu's mail; `fleet` is the bench's fleet
 * distribution (src/lab/scenarios/pack-load.ts), a page-rounded area per program without packs.
 *
 * Who may call: any thread; it runs on the calling thread, one side after the other, each with
 * an arena, a simulated memory and a direct map of its own.
 */
import { Arena } from '../../arena/arena.js';
import { PACK_BYTES, PackAllocator, type PackStats } from '../../structures/pack.js';
import { BuddyAllocator, FRAME_BYTES } from '../physical/buddy-allocator.js';
import { PhysicalDirectMap, type PhysicalDirectMapStats } from '../physical/physical-direct-map.js';
import { blockBytes, imageBytes, PACK_STAGES } from '../scenarios/pack-load.js';
import { MiB, round2 } from './measure.js';

export type ProgramSizes = 'sockex1' | 'fleet';
export const PROGRAM_SIZES: readonly ProgramSizes[] = ['sockex1', 'fleet'];

export interface PhysicalModelOptions {
  /** Physical memory in GiB. @defaultValue 8 (Aaron Lu's VM) */
  readonly memoryGiB?: number;
  /**
   * Order-0 pages each loading process takes besides its program. @defaultValue 135: the drop
   * in MemFree per idle `sleep` process, `tools/process-pages.sh 500` on the 2-vCPU test machine
   * (134–135 pages in two quiet runs; docs/benchmarks.md).
   */
  readonly instancePages?: number;
  /** Processes started before the experiment (aging). @defaultValue 1000 */
  readonly agingProcesses?: number;
  /** Of those, how many are still alive when the experiment starts. @defaultValue 150 */
  readonly agingAlive?: number;
  /** @defaultValue 'sockex1' */
  readonly sizes?: ProgramSizes;
}

export type PhysicalModel = Required<PhysicalModelOptions>;

export const PHYSICAL_DEFAULTS: PhysicalModel = {
  memoryGiB: 8,
  instancePages: 135,
  agingProcesses: 1000,
  agingAlive: 150,
  sizes: 'sockex1',
};

/** Aaron Lu's runs (research/kernel.md §2.5, first table): `grep Direct /proc/meminfo`, kB. */
export const KERNEL_DIRECT_MAP = Object.freeze([
  { programs: 0, v5_17: 87_900, v6_1: 22_364 },
  { programs: 512, v5_17: 462_684, v6_1: 22_364 },
  { programs: 1024, v5_17: 884_572, v6_1: 22_364 },
  { programs: 2048, v5_17: 1_654_620, v6_1: 22_364 },
] as const);

export interface PhysicalStage {
  readonly programs: number;
  readonly directMap: PhysicalDirectMapStats;
  readonly reservedBytes: number;
}

export interface PhysicalSideResult {
  readonly stages: readonly PhysicalStage[];
  /** Pack allocator stats with all programs loaded, and with the odd-numbered ones unloaded. */
  readonly peak: PackStats;
  readonly half: PackStats;
  /** After unloading everything: the direct map (splits stay) and the allocator. */
  readonly after: { readonly directMap: PhysicalDirectMapStats; readonly pack: PackStats };
  /** Free blocks per order after aging, before the first program (/proc/buddyinfo's line). */
  readonly agedFreeBlocks: readonly number[];
  readonly loadMs: number;
  readonly unloadMs: number;
  readonly loaded: number;
  readonly failures: number;
  readonly corrupt: number;
  readonly requestedBytes: number;
}

/** mulberry32: the aging workload's choices, reproducible from the seed. */
function rng(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
}

/** Order-0 pages one after another (a process's pages, `vm_area_alloc_pages`); -1 if out. */
function takePages(buddy: BuddyAllocator, pages: number): Int32Array | undefined {
  const frames = new Int32Array(pages);
  for (let i = 0; i < pages; i++) {
    const pfn = buddy.alloc(0);
    if (pfn < 0) {
      for (let j = 0; j < i; j++) buddy.free(frames[j] as number, 0);
      return undefined;
    }
    frames[i] = pfn;
  }
  return frames;
}

function givePages(buddy: BuddyAllocator, frames: Int32Array): void {
  for (const pfn of frames) buddy.free(pfn, 0);
}

/** The aging workload (module comment); the processes still alive keep their pages. */
function age(buddy: BuddyAllocator, model: PhysicalModel, seed: number): void {
  const next = rng(seed ^ 0x2545f491);
  const alive: Int32Array[] = [];
  for (let p = 0; p < model.agingProcesses; p++) {
    const frames = takePages(buddy, model.instancePages);
    if (frames) alive.push(frames);
    if (alive.length > model.agingAlive) {
      const [gone] = alive.splice(Math.floor(next() * alive.length), 1);
      if (gone) givePages(buddy, gone);
    }
  }
}

/** What program `id` asks the pack allocator for, on the side with or without packs. */
function programBytes(model: PhysicalModel, packs: boolean, id: number, seed: number): number {
  if (model.sizes === 'fleet') return blockBytes(id, seed);
  return packs ? 320 : 3 * FRAME_BYTES;
}

function image(id: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (id * 31 + i * 7) & 0xff;
  return bytes;
}

/** A vmalloc'd area (a pack, or a program's own) by its start in the arena, and its frames. */
interface Area {
  readonly start: number;
  /** Its order-0 frames, or the first frame of one order-9 block (`huge`). */
  readonly frames: Int32Array;
  readonly huge: boolean;
  blocks: number;
}

interface Loaded {
  readonly id: number;
  readonly block: number;
  readonly length: number;
  /** The loading process's pages. */
  readonly instance: Int32Array;
  readonly area: Area;
}

export async function runPhysicalSide(
  packs: boolean,
  programs: number,
  seed: number,
  model: PhysicalModel,
  hugeVmap = false,
): Promise<PhysicalSideResult> {
  const buddy = new BuddyAllocator(model.memoryGiB * 1024 * MiB);
  const directMap = new PhysicalDirectMap(buddy.frames);
  age(buddy, model, seed);
  const agedFreeBlocks = buddy.buddyinfo();
  const arena = Arena.create({ cpus: 1, maxBytes: 512 * MiB, policy: 'arena' });
  try {
    const pack = PackAllocator.open(
      arena,
      PackAllocator.create(arena, { exec: true, packs, hugeVmap, maxRegions: 65536 }),
    );
    /** vmalloc areas by their start in the arena (a pack's or a region's), with their frames. */
    const areas = new Map<number, Area>();
    const loadedPrograms: Loaded[] = [];
    const stages: PhysicalStage[] = [];
    let failures = 0;
    let requestedBytes = 0;
    /** set_memory_rox (and the reset on free): every frame's alias, one page at a time. */
    const changeAliases = (area: Area): void => {
      if (area.huge) directMap.changeHugePage(area.frames[0] as number);
      else for (const pfn of area.frames) directMap.changePage(pfn);
    };
    /**
     * module_alloc: a pack's 512 pages (with VM_ALLOW_HUGE_VMAP one order-9 block first, as
     * `__vmalloc_area_node` tries, falling back to order 0), or the program's own area.
     */
    const moduleAlloc = (start: number, pages: number): Area | undefined => {
      if (hugeVmap && pages === PACK_BYTES / FRAME_BYTES) {
        const pfn = buddy.alloc(9);
        if (pfn >= 0) return { start, frames: Int32Array.of(pfn), huge: true, blocks: 0 };
      }
      const frames = takePages(buddy, pages);
      return frames ? { start, frames, huge: false, blocks: 0 } : undefined;
    };
    const started = performance.now();
    for (let stage = 1; stage <= PACK_STAGES; stage++) {
      const upTo = Math.round((programs * stage) / PACK_STAGES);
      for (let id = Math.round((programs * (stage - 1)) / PACK_STAGES); id < upTo; id++) {
        const instance = takePages(buddy, model.instancePages);
        const size = programBytes(model, packs, id, seed);
        requestedBytes += size;
        const block = instance ? pack.alloc(size) : 0;
        if (block === 0 || !instance) {
          if (instance) givePages(buddy, instance);
          failures++;
          continue;
        }
        const packed = packs && size <= PACK_BYTES / 2;
        const start = packed ? block - (block % PACK_BYTES) : block;
        let area = areas.get(start);
        if (!area) {
          area = moduleAlloc(start, packed ? PACK_BYTES / FRAME_BYTES : Math.ceil(size / FRAME_BYTES));
          if (!area) {
            pack.free(block);
            givePages(buddy, instance);
            failures++;
            continue;
          }
          changeAliases(area);
          areas.set(start, area);
        }
        area.blocks++;
        const length = model.sizes === 'fleet' ? imageBytes(id, seed) : 300;
        pack.copyIn(block, image(id, length), 20);
        loadedPrograms.push({ id, block, length, instance, area });
      }
      stages.push({
        programs: upTo,
        directMap: directMap.stats(),
        reservedBytes: pack.stats().bytesReserved,
      });
    }
    const loadMs = performance.now() - started;
    const peak = pack.stats();
    let corrupt = 0;
    for (const p of loadedPrograms) {
      const bytes = pack.bytes(p.block);
      const want = image(p.id, p.length);
      for (let i = 0; i < p.length; i++) {
        if (bytes[20 + i] !== want[i]) {
          corrupt++;
          break;
        }
      }
    }
    const unload = (p: Loaded): void => {
      pack.free(p.block);
      if (--p.area.blocks === 0) {
        // module_memfree with VM_FLUSH_RESET_PERMS: the aliases go back to RW, page by page.
        changeAliases(p.area);
        if (p.area.huge) buddy.free(p.area.frames[0] as number, 9);
        else givePages(buddy, p.area.frames);
        areas.delete(p.area.start);
      }
      givePages(buddy, p.instance);
    };
    const unloadStarted = performance.now();
    for (const p of loadedPrograms) if ((p.id & 1) === 1) unload(p);
    const half = pack.stats();
    for (const p of loadedPrograms) if ((p.id & 1) === 0) unload(p);
    const unloadMs = performance.now() - unloadStarted;
    return {
      stages,
      peak,
      half,
      after: { directMap: directMap.stats(), pack: pack.stats() },
      agedFreeBlocks,
      loadMs,
      unloadMs,
      loaded: loadedPrograms.length,
      failures,
      corrupt,
      requestedBytes,
    };
  } finally {
    await arena.close();
  }
}

/** MiB of a byte count, two decimals. */
export const mib = (bytes: number): number => round2(bytes / MiB);
