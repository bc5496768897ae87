/**
 * percpu-arena: a per-CPU slab allocator over one SharedArrayBuffer, modelled on the Linux BPF
 * memory allocator (kernel/bpf/memalloc.c). Each worker thread attaches a CPU slot and
 * allocates from its own caches without atomics on the fast path.
 *
 * The root holds what a service needs: the arena, its CPU handles, the shared map, the worker
 * pool and their types. The kernel-model structures are at `percpu-arena/structures`, the
 * presets and the use-after-free lab at `percpu-arena/lab`, the Prometheus metrics at
 * `percpu-arena/metrics`, fault injection for tests at `percpu-arena/testing`.
 */
export { Arena, type ArenaOptions, type CloseReport } from './arena/arena.js';
export type { RecoveryReport } from './arena/recovery.js';
export type { ArenaStats } from './arena/stats.js';
export { attach, attachFree } from './cpu/attach.js';
export { CpuHandle } from './cpu/cpu.js';
export type { PresetName } from './epoch/policy.js';
export type { CpuContext, CpuFunction } from './service/cpu-context.js';
export { CpuPool, type CpuPoolOptions, watchPool } from './service/pool.js';
export {
  SharedMap,
  type SharedMapKey,
  type SharedMapOptions,
  type SharedMapSetOptions,
  type SharedMapStats,
  type SharedMapValue,
} from './service/shared-map.js';
export type { ArenaRef, SharedArena } from './shm/arena-ref.js';
export { ArenaError, type ArenaErrorCode } from './shm/errors.js';
export type { Branded, Pointer, SharedMapRef } from './shm/refs.js';
