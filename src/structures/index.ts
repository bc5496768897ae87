/**
 * `percpu-arena/structures`: the kernel-model data structures built on the arena — the BPF hash
 * map, the qp-trie, the pack allocator (bpf_prog_pack), ref-counted objects (the bpf_cpumask
 * shape), generation-checked unit references and the pointer ring. Each is created in an arena
 * (`X.create(arena, options)` returns its ref) and opened by ref from any thread
 * (`X.open(cpuOrArena, ref)`).
 */

export type { HashMapRef, PackRef, QpTrieRef } from '../shm/refs.js';
export { type DirectMapStats, HUGE_BYTES } from './direct-map.js';
export { HashMap, type HashMapOptions, MapStatus, UpdateFlag } from './hash-map.js';
export { CHUNK_BYTES, PACK_BYTES, PackAllocator, type PackOptions, type PackStats } from './pack.js';
export { QpTrie, type QpTrieOptions, TrieStatus, type TrieStep, type TrieVersions } from './qp-trie.js';
export { REF_PAYLOAD_OFFSET, RefCounts } from './refcount.js';
export { PointerQueue } from './ring.js';
export { CheckedUnit, UnitRefs } from './unit-ref.js';
