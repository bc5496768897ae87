/**
 * `percpu-arena bench pack`: Aaron Lu's direct-map experiment (bpf list, 7 Nov 2022,
 * https://lore.kernel.org/all/Y2ioTodn+mBXdIqp@ziqianlu-desk2/) in the arena. N programs are
 * loaded and unloaded, once through an executable pack allocator (2 MiB packs, RO+X as a whole)
 * and once with a dedicated page-rounded region per program (as before bpf_prog_pack), each in an
 * arena of its own, side by side in one run. Two ways to say where their memory is:
 *
 * - `physical` (default, src/lab/benchmarks/pack-physical.ts): a simulated 8 GiB physical memory
 *   with the kernel's buddy allocator behind every pack and region, the loading processes'
 *   pages interleaved, and the direct map over physical memory (1G / 2M / 4k);
 * - `arena`: N programs of realistic sizes (src/lab/scenarios/pack-load.ts) loaded from several
 *   worker CPUs, the direct map simulated over the arena's own addresses
 *   (src/structures/direct-map.ts), whose pages are contiguous.
 *
 * Reported per side: DirectMap4k / 2M (/ 1G) and splits after each quarter of the programs,
 * memory taken, chunk fragmentation with half of the programs unloaded, load and unload rates,
 * and what is left after unloading.
 *
 * Who may call: any thread; it creates and closes its own arenas and pools.
 */
import { Arena } from '../../arena/arena.js';
import { CpuPool, siblingModule } from '../../service/pool.js';
import { PackAllocator, type PackStats } from '../../structures/pack.js';
import { checkOptions, type OptionSpec } from '../options-check.js';
import type { PackBenchArgs, PackBenchResult } from '../scenarios/pack-load.js';
import { blockBytes } from '../scenarios/pack-load.js';
import { type MachineConditions, MiB, machineConditions, round2 } from './measure.js';
import {
  KERNEL_DIRECT_MAP,
  PHYSICAL_DEFAULTS,
  type PhysicalModel,
  type PhysicalModelOptions,
  type PhysicalSideResult,
  PROGRAM_SIZES,
  runPhysicalSide,
} from './pack-physical.js';

export type PackMemory = 'physical' | 'arena';
export const PACK_MEMORIES: readonly PackMemory[] = ['physical', 'arena'];

export interface PackBenchOptions {
  /** Programs loaded and unloaded. @defaultValue 2048 */
  readonly programs?: number;
  /** CPUs loading them. @defaultValue 2 */
  readonly cpus?: number;
  /** Seed of the program sizes. @defaultValue 1 */
  readonly seed?: number;
  /** Map packs with huge mappings (VM_ALLOW_HUGE_VMAP). @defaultValue false */
  readonly hugeVmap?: boolean;
  /** Where the programs' memory is (module comment). @defaultValue 'physical' */
  readonly memory?: PackMemory;
  /** The physical model's parameters (src/benchmarks/pack-physical.ts). */
  readonly physical?: PhysicalModelOptions;
}

export interface PackStage {
  readonly programs: number;
  readonly directMap4kKiB: number;
  readonly directMap2MKiB: number;
  readonly splits: number;
  readonly reservedMiB: number;
  /** Physical mode: DirectMap1G (the arena mode has no 1 GiB mappings). */
  readonly directMap1GKiB?: number;
}

export interface PackSide {
  /** At the end of loading (all N programs loaded). */
  readonly directMap4kKiB: number;
  readonly directMap2MKiB: number;
  readonly splits: number;
  /** Physical mode: DirectMap1G, and the free blocks per order once memory was aged (buddyinfo). */
  readonly directMap1GKiB?: number;
  readonly agedFreeBlocks?: readonly number[];
  /** Memory the allocator took (packs, regions) and the blocks' rounded sizes, in MiB. */
  readonly reservedMiB: number;
  readonly inBlocksMiB: number;
  /** Bytes the programs asked for, in MiB. */
  readonly requestedMiB: number;
  readonly packs: number;
  readonly regions: number;
  readonly fragmentation: number;
  /** Mappings of the programs' memory in the allocator's address space (iTLB entries' view). */
  readonly vmapHuge: number;
  readonly vmapBase: number;
  /** Programs loaded (alloc + copyIn) and unloaded per second, all CPUs together. */
  readonly loadsPerSec: number;
  readonly unloadsPerSec: number;
  readonly failures: number;
  readonly corrupt: number;
  readonly stages: readonly PackStage[];
  /** After the odd-numbered programs were unloaded: scattered free chunks, packs kept. */
  readonly half: { readonly fragmentation: number; readonly reservedMiB: number; readonly packs: number };
  /** After every program was unloaded: splits stay, memory goes back. */
  readonly after: { readonly directMap4kKiB: number; readonly reservedMiB: number; readonly packs: number };
}

export interface PackBenchReport {
  readonly bench: 'pack';
  readonly memory: PackMemory;
  /** Physical mode: the model's parameters. */
  readonly physical?: PhysicalModel;
  /** Aaron Lu's DirectMap4k in kB (research/kernel.md §2.5), to print beside ours. */
  readonly kernel: typeof KERNEL_DIRECT_MAP;
  readonly programs: number;
  readonly cpus: number;
  readonly seed: number;
  readonly hugeVmap: boolean;
  readonly sizes: string;
  readonly withPack: PackSide;
  readonly withoutPack: PackSide;
  readonly conditions: MachineConditions;
}

export const PACK_SIZES_TEXT =
  'JIT image 64..499 B (50 %), 500..2047 B (25 %), 2..16 KiB (20 %), 16..128 KiB (5 %), + 20 B header and trap bytes';

function stageOf(programs: number, s: PackStats): PackStage {
  return {
    programs,
    directMap4kKiB: s.directMap.directMap4kKiB,
    directMap2MKiB: s.directMap.directMap2MKiB,
    splits: s.directMap.splits,
    reservedMiB: round2(s.bytesReserved / MiB),
  };
}

async function runSide(packs: boolean, options: Required<PackBenchOptions>): Promise<PackSide> {
  // A fixed 512 MiB arena: the OS commits its pages only as they are touched.
  const arena = Arena.create({ cpus: options.cpus, maxBytes: 512 * MiB, policy: 'arena' });
  const pool = CpuPool.start(arena);
  try {
    const ref = PackAllocator.create(arena, {
      exec: true,
      packs,
      hugeVmap: options.hugeVmap,
      maxRegions: 65536,
    });
    const args: PackBenchArgs = { ref, programs: options.programs, seed: options.seed };
    const results = await pool.run<PackBenchResult>(
      siblingModule(import.meta.url, '../scenarios/pack-load'),
      'loadPrograms',
      args,
    );
    const stages = results.flatMap((r) => r.stages).sort((a, b) => a.programs - b.programs);
    const peak = stages[stages.length - 1]?.stats;
    if (!peak) throw new Error('bench pack: no stage was recorded');
    const after = PackAllocator.open(arena, ref).stats();
    const half = results.find((r) => r.half !== undefined)?.half;
    if (!half) throw new Error('bench pack: the half-unloaded stats were not recorded');
    const loaded = results.reduce((n, r) => n + r.loaded, 0);
    const loadMs = Math.max(...results.map((r) => r.loadMs));
    const unloadMs = Math.max(...results.map((r) => r.unloadMs));
    let requested = 0;
    for (let id = 0; id < options.programs; id++) requested += blockBytes(id, options.seed);
    return {
      directMap4kKiB: peak.directMap.directMap4kKiB,
      directMap2MKiB: peak.directMap.directMap2MKiB,
      splits: peak.directMap.splits,
      reservedMiB: round2(peak.bytesReserved / MiB),
      inBlocksMiB: round2(peak.bytesInBlocks / MiB),
      requestedMiB: round2(requested / MiB),
      packs: peak.packs,
      regions: peak.regions,
      fragmentation: round2(peak.fragmentation),
      vmapHuge: peak.vmap.huge,
      vmapBase: peak.vmap.base,
      loadsPerSec: Math.round(loaded / (loadMs / 1000)),
      unloadsPerSec: Math.round(loaded / (unloadMs / 1000)),
      failures: results.reduce((n, r) => n + r.failures, 0),
      corrupt: results.reduce((n, r) => n + r.corrupt, 0),
      stages: stages.map((s) => stageOf(s.programs, s.stats)),
      half: {
        fragmentation: round2(half.fragmentation),
        reservedMiB: round2(half.bytesReserved / MiB),
        packs: half.packs,
      },
      after: {
        directMap4kKiB: after.directMap.directMap4kKiB,
        reservedMiB: round2(after.bytesReserved / MiB),
        packs: after.packs,
      },
    };
  } finally {
    await pool.close();
    await arena.close();
  }
}

const kPackBenchOptions: Readonly<Record<keyof PackBenchOptions, OptionSpec>> = {
  programs: { kind: 'integer', min: 1, max: 1 << 20, optional: true },
  cpus: { kind: 'integer', min: 1, max: 1024, optional: true },
  seed: { kind: 'integer', min: 0, max: 2 ** 32 - 1, optional: true },
  hugeVmap: { kind: 'boolean', optional: true },
  memory: { kind: 'oneOf', values: PACK_MEMORIES, optional: true },
  physical: {
    kind: 'object',
    optional: true,
    fields: {
      memoryGiB: { kind: 'integer', min: 1, max: 1024, optional: true },
      instancePages: { kind: 'integer', min: 0, max: 4096, optional: true },
      agingProcesses: { kind: 'integer', min: 0, max: 100_000, optional: true },
      agingAlive: { kind: 'integer', min: 0, max: 100_000, optional: true },
      sizes: { kind: 'oneOf', values: PROGRAM_SIZES, optional: true },
    },
  },
};

export const SOCKEX1_SIZES_TEXT =
  'samples/bpf/sockex1 as in the kernel experiment: 3 pages per program without packs, 320 B of a pack with them';

function physicalSide(r: PhysicalSideResult): PackSide {
  const { peak, half } = r;
  const stage = r.stages[r.stages.length - 1];
  if (!stage) throw new Error('bench pack: no stage was recorded');
  return {
    directMap4kKiB: stage.directMap.directMap4kKiB,
    directMap2MKiB: stage.directMap.directMap2MKiB,
    directMap1GKiB: stage.directMap.directMap1GKiB,
    splits: stage.directMap.splits,
    agedFreeBlocks: r.agedFreeBlocks,
    reservedMiB: round2(peak.bytesReserved / MiB),
    inBlocksMiB: round2(peak.bytesInBlocks / MiB),
    requestedMiB: round2(r.requestedBytes / MiB),
    packs: peak.packs,
    regions: peak.regions,
    fragmentation: round2(peak.fragmentation),
    vmapHuge: peak.vmap.huge,
    vmapBase: peak.vmap.base,
    loadsPerSec: Math.round(r.loaded / (r.loadMs / 1000)),
    unloadsPerSec: Math.round(r.loaded / (r.unloadMs / 1000)),
    failures: r.failures,
    corrupt: r.corrupt,
    stages: r.stages.map((s) => ({
      programs: s.programs,
      directMap4kKiB: s.directMap.directMap4kKiB,
      directMap2MKiB: s.directMap.directMap2MKiB,
      directMap1GKiB: s.directMap.directMap1GKiB,
      splits: s.directMap.splits,
      reservedMiB: round2(s.reservedBytes / MiB),
    })),
    half: {
      fragmentation: round2(half.fragmentation),
      reservedMiB: round2(half.bytesReserved / MiB),
      packs: half.packs,
    },
    after: {
      directMap4kKiB: r.after.directMap.directMap4kKiB,
      reservedMiB: round2(r.after.pack.bytesReserved / MiB),
      packs: r.after.pack.packs,
    },
  };
}

export async function runPackBench(options: PackBenchOptions = {}): Promise<PackBenchReport> {
  checkOptions('runPackBench', options, kPackBenchOptions);
  const full: Required<PackBenchOptions> = {
    programs: options.programs ?? 2048,
    cpus: options.cpus ?? 2,
    seed: options.seed ?? 1,
    hugeVmap: options.hugeVmap ?? false,
    memory: options.memory ?? 'physical',
    physical: { ...PHYSICAL_DEFAULTS, ...options.physical },
  };
  const conditions = machineConditions();
  if (full.memory === 'physical') {
    const model: PhysicalModel = { ...PHYSICAL_DEFAULTS, ...full.physical };
    const run = (packs: boolean) =>
      runPhysicalSide(packs, full.programs, full.seed, model, full.hugeVmap).then(physicalSide);
    const withPack = await run(true);
    const withoutPack = await run(false);
    return {
      bench: 'pack',
      memory: 'physical',
      physical: model,
      kernel: KERNEL_DIRECT_MAP,
      programs: full.programs,
      cpus: 1,
      seed: full.seed,
      hugeVmap: full.hugeVmap,
      sizes: model.sizes === 'sockex1' ? SOCKEX1_SIZES_TEXT : PACK_SIZES_TEXT,
      withPack,
      withoutPack,
      conditions,
    };
  }
  const withPack = await runSide(true, full);
  const withoutPack = await runSide(false, full);
  return {
    bench: 'pack',
    memory: 'arena',
    kernel: KERNEL_DIRECT_MAP,
    programs: full.programs,
    cpus: full.cpus,
    seed: full.seed,
    hugeVmap: full.hugeVmap,
    sizes: PACK_SIZES_TEXT,
    withPack,
    withoutPack,
    conditions,
  };
}
