/**
 * `percpu-arena/lab`: the reuse policies and the runs that compare them — the presets (each a
 * kernel version's or a proposal's choice of when freed memory may be reused), the torture run
 * (rcutorture for the arena), the kernel's htab-mem and xmalloc benchmarks, the pack bench, and
 * the statistics and size-class tables they report.
 */
export type { GpFlavorStats, GpStats, StallReport } from '../arena/coordinator.js';
export type { CacheStats, ClassStats, CpuStats } from '../arena/stats.js';
export type { Flavor } from '../epoch/grace-period.js';
export {
  type CapacityChoice,
  DEFAULT_PRESET,
  type GpDriveChoice,
  type Policy,
  PRESET_NAMES,
  PRESETS,
  presetOf,
  type RemoteFreeChoice,
  type ReuseChoice,
  type SharingChoice,
} from '../epoch/policy.js';
export {
  CLASS_UNIT_SIZES,
  classOfSize,
  fixedUnitSize,
  MAX_ALLOC_BYTES,
  type Watermarks,
  watermarksFor,
} from '../memory/size-class.js';
export {
  type GpSummary,
  HTAB_USE_CASES,
  type HtabMemOptions,
  type HtabMemReport,
  type HtabUseCase,
  runHtabMem,
} from './benchmarks/htab-mem.js';
export type { MachineConditions } from './benchmarks/measure.js';
export {
  type PackBenchOptions,
  type PackBenchReport,
  type PackMemory,
  type PackSide,
  type PackStage,
  runPackBench,
} from './benchmarks/pack-bench.js';
export type { PhysicalModelOptions, ProgramSizes } from './benchmarks/pack-physical.js';
export { runXmalloc, type XmallocOptions, type XmallocReport } from './benchmarks/xmalloc.js';
export type { TortureStructure } from './scenarios/torture-common.js';
export { runTorture, type TortureOptions, type TortureReport } from './torture-run.js';
