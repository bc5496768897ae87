/**
 * The world the misuse table acts on (test/surface.test.ts): one arena with one of each
 * structure, pointers and refs of each kind, and things of another arena. Bad calls must leave
 * it exactly as it was, so one world serves every case of a run.
 */
import { Arena, type CpuHandle, CpuPool, SharedMap } from '../../src/index.js';
import {
  type CheckedUnit,
  HashMap,
  PackAllocator,
  PointerQueue,
  QpTrie,
  RefCounts,
  UnitRefs,
} from '../../src/structures/index.js';

// biome-ignore lint/suspicious/noExplicitAny: misuse from untyped callers is the point here.
export type Untyped = any;

/** Everything the cases act on: one arena with one of each structure, and things of another arena. */
export interface World {
  arena: Arena;
  cpu: CpuHandle;
  /** A second handle on this thread (the lifecycle cases detach or park `cpu` only). */
  spare: CpuHandle;
  ptr: number;
  freed: number;
  fixedPtr: number;
  map: HashMap;
  mapRef: number;
  trie: QpTrie;
  trieRef: number;
  pack: PackAllocator;
  packRef: number;
  block: number;
  shared: SharedMap;
  sharedRef: number;
  refs: RefCounts;
  object: number;
  unitRefs: UnitRefs;
  unitRef: number;
  checked: CheckedUnit;
  queue: PointerQueue;
  /** A pointer and refs of another arena (valid there, not here). */
  otherPtr: number;
  otherArena: Arena;
  /** A CpuPool on slot 2, started on first use (it starts a worker thread). */
  pool: () => CpuPool;
}

/** Pools the worlds started; the test closes them at the end. */
export const pools: CpuPool[] = [];

export const KEY = 8;
export const VALUE = 16;
export const keyOf = (n: number) => new Uint8Array(KEY).fill(n);
export const valueBytes = (n: number) => new Uint8Array(VALUE).fill(n);

export function makeWorld(): World {
  const arena = Arena.create({
    cpus: 4,
    maxBytes: 8 << 20,
    coordinator: 'manual',
    fixedSizes: [40],
    policy: 'arena',
  });
  const cpu = arena.attach(0);
  const spare = arena.attach(1);
  const ptr = cpu.alloc(100);
  cpu.alloc(100);
  const freed = cpu.alloc(100);
  cpu.free(freed);
  const fixedPtr = cpu.allocFixed(0);
  const mapRef = HashMap.create(arena, { keySize: KEY, valueSize: VALUE, maxEntries: 64 });
  const map = HashMap.open(cpu, mapRef);
  map.update(keyOf(1), valueBytes(1));
  const trieRef = QpTrie.create(arena, { maxKeyBytes: 16, maxValueBytes: 32 });
  const trie = QpTrie.open(cpu, trieRef);
  trie.update(Uint8Array.of(1, 2), Uint8Array.of(3));
  const packRef = PackAllocator.create(arena, { maxPacks: 2, maxRegions: 4 });
  const pack = PackAllocator.open(arena, packRef);
  const block = pack.alloc(200);
  const sharedRef = SharedMap.create(arena, { maxEntries: 64, maxKeyBytes: 16, maxValueBytes: 8192 });
  const shared = SharedMap.open(cpu, sharedRef);
  shared.set('a', 'one');
  shared.set(Uint8Array.of(7), { n: 2 });
  const refs = new RefCounts(cpu);
  const object = refs.create(24);
  const unitRefs = new UnitRefs(arena.shared);
  const unitRef = unitRefs.of(ptr);
  const checked = unitRefs.checked(unitRef);
  const queue = new PointerQueue(8);
  queue.push(ptr, 1);
  // A unit of a class this arena has not carved, so that it is no unit start here.
  const otherArena = Arena.create({ cpus: 1, maxBytes: 1 << 20, coordinator: 'manual' });
  const otherPtr = otherArena.attach(0).alloc(3000);
  let pool: CpuPool | undefined;
  return {
    pool: () => {
      if (pool === undefined) {
        pool = CpuPool.start(arena, { cpus: [2] });
        pools.push(pool);
      }
      return pool;
    },
    arena,
    cpu,
    spare,
    ptr,
    freed,
    fixedPtr,
    map,
    mapRef,
    trie,
    trieRef,
    pack,
    packRef,
    block,
    shared,
    sharedRef,
    refs,
    object,
    unitRefs,
    unitRef,
    checked,
    queue,
    otherPtr,
    otherArena,
  };
}
