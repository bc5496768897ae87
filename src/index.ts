/**
 * percpu-arena: a per-CPU slab allocator over one SharedArrayBuffer, modelled on the Linux BPF
 * memory allocator (kernel/bpf/memalloc.c). Each worker thread attaches a CPU slot and
 * allocates from its own caches without atomics on the fast path.
 */
export { Arena, type ArenaOptions, type CloseReport } from './arena/arena.js';
export type { GpFlavorStats, GpStats, StallReport } from './arena/coordinator.js';
export type { RecoveryReport } from './arena/recovery.js';
export type { ArenaStats, CacheStats, ClassStats, CpuStats } from './arena/stats.js';
export { attach, attachFree, CpuHandle } from './cpu/cpu.js';
export type { Flavor } from './epoch/grace-period.js';
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
} from './epoch/policy.js';
export {
  CLASS_UNIT_SIZES,
  classOfSize,
  fixedUnitSize,
  MAX_ALLOC_BYTES,
  type Watermarks,
  watermarksFor,
} from './memory/size-class.js';
export type { CpuContext, CpuFunction } from './service/cpu-context.js';
export { CpuPool, type CpuPoolOptions, watchPool } from './service/pool.js';
export {
  SharedMap,
  type SharedMapKey,
  type SharedMapOptions,
  type SharedMapValue,
} from './service/shared-map.js';
export type { ArenaFaults, ArenaRef, SharedArena } from './shm/arena-ref.js';
export { ArenaError, type ArenaErrorCode } from './shm/errors.js';
export { type DirectMapStats, HUGE_BYTES } from './structures/direct-map.js';
export { HashMap, type HashMapOptions, MapStatus, UpdateFlag } from './structures/hash-map.js';
export {
  CHUNK_BYTES,
  PACK_BYTES,
  PackAllocator,
  type PackOptions,
  type PackStats,
} from './structures/pack.js';
export {
  QpTrie,
  type QpTrieOptions,
  TrieStatus,
  type TrieStep,
  type TrieVersions,
} from './structures/qp-trie.js';
export { REF_PAYLOAD_OFFSET, RefCounts } from './structures/refcount.js';
export { PointerQueue } from './structures/ring.js';
export { CheckedUnit, UnitRefs } from './structures/unit-ref.js';
