/**
 * percpu-arena: a per-CPU slab allocator over one SharedArrayBuffer, modelled on the Linux BPF
 * memory allocator (kernel/bpf/memalloc.c). Each worker thread attaches a CPU slot and
 * allocates from its own caches without atomics on the fast path.
 */
export { Arena, type ArenaOptions, type CloseReport } from './arena.js';
export type { GpFlavorStats, GpStats, StallReport } from './coordinator.js';
export { type ArenaFaults, attach, attachFree, CpuHandle, type SharedArena } from './cpu.js';
export type { CpuContext, CpuFunction } from './cpu-context.js';
export { type DirectMapStats, HUGE_BYTES } from './direct-map.js';
export { ArenaError, type ArenaErrorCode } from './errors.js';
export type { Flavor } from './grace-period.js';
export { HashMap, type HashMapOptions, MapStatus, UpdateFlag } from './hash-map.js';
export { CHUNK_BYTES, PACK_BYTES, PackAllocator, type PackOptions, type PackStats } from './pack.js';
export {
  type CapacityChoice,
  DEFAULT_PRESET,
  type GpDriveChoice,
  type Policy,
  PRESET_NAMES,
  PRESETS,
  type PresetName,
  presetOf,
  type RemoteFreeChoice,
  type ReuseChoice,
  type SharingChoice,
} from './policy.js';
export { CpuPool, type CpuPoolOptions, watchPool } from './pool.js';
export { QpTrie, type QpTrieOptions, TrieStatus, type TrieStep, type TrieVersions } from './qp-trie.js';
export type { RecoveryReport } from './recovery.js';
export { REF_PAYLOAD_OFFSET, RefCounts } from './refcount.js';
export { PointerQueue } from './ring.js';
export {
  SharedMap,
  type SharedMapKey,
  type SharedMapOptions,
  type SharedMapStats,
  type SharedMapValue,
} from './shared-map.js';
export {
  CLASS_UNIT_SIZES,
  classOfSize,
  fixedUnitSize,
  MAX_ALLOC_BYTES,
  type Watermarks,
  watermarksFor,
} from './size-class.js';
export type { ArenaStats, CacheStats, ClassStats, CpuStats } from './stats.js';
export { CheckedUnit, UnitRefs } from './unit-ref.js';
