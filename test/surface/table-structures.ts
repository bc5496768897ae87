/**
 * The misuse table, part two: the kernel-model structures (hash map, qp-trie, pack allocator),
 * the shared map, reference counts, generation references and the pointer queue.
 */
import { SharedMap } from '../../src/index.js';
import {
  CheckedUnit,
  HashMap,
  PackAllocator,
  PointerQueue,
  QpTrie,
  RefCounts,
  UnitRefs,
} from '../../src/structures/index.js';
import { type Entry, none, v, w } from './kinds.js';
import { keyOf, type Untyped, VALUE, valueBytes } from './world.js';

export const STRUCTURE_ENTRIES: Entry[] = [
  // --- HashMap ---
  {
    name: 'HashMap.create',
    args: (x) => [x.arena, { keySize: 4, valueSize: 4, maxEntries: 8 }],
    call: (_, [a, o]) => HashMap.create(a as Untyped, o as Untyped),
    kinds: ['arena', 'options'],
    extra: [
      [],
      [
        v('keySize 0', { keySize: 0, valueSize: 4, maxEntries: 8 }),
        v('valueSize 1.5', { keySize: 4, valueSize: 1.5, maxEntries: 8 }),
        v('maxEntries -1', { keySize: 4, valueSize: 4, maxEntries: -1 }),
        v('maxEntries 2^31', { keySize: 4, valueSize: 4, maxEntries: 2 ** 31 }),
        v("prealloc 'yes'", { keySize: 4, valueSize: 4, maxEntries: 8, prealloc: 'yes' }),
      ],
    ],
    lifecycle: 'arena',
  },
  {
    name: 'HashMap.elementBytes',
    args: () => [4, 4],
    call: (_, [k, val]) => HashMap.elementBytes(k as number, val as number),
    kinds: ['count', 'count'],
    lifecycle: 'none',
  },
  {
    name: 'HashMap.open',
    args: (x) => [x.cpu, x.mapRef],
    call: (_, [c, r]) => HashMap.open(c as Untyped, r as Untyped),
    kinds: ['handle', 'structureRef'],
    extra: [[], [w('a trie ref', (x) => x.trieRef), w('a shared-map ref', (x) => x.sharedRef)]],
    lifecycle: 'handle',
  },
  {
    name: 'HashMap.lookup',
    args: () => [keyOf(1)],
    call: (x, [k]) => {
      x.cpu.readLock();
      try {
        return x.map.lookup(k as Untyped);
      } finally {
        x.cpu.readUnlock();
      }
    },
    kinds: ['mapKey'],
    lifecycle: 'handle',
  },
  {
    name: 'HashMap.get',
    args: () => [keyOf(1), new Uint8Array(VALUE)],
    call: (x, [k, o]) => x.map.get(k as Untyped, o as Untyped),
    kinds: ['mapKey', 'mapOut'],
    lifecycle: 'handle',
  },
  {
    name: 'HashMap.update',
    args: () => [keyOf(2), valueBytes(2), 0, new Uint8Array(VALUE)],
    call: (x, [k, val, f, p]) => x.map.update(k as Untyped, val as Untyped, f as Untyped, p as Untyped),
    kinds: ['mapKey', 'mapValue', 'updateFlag', 'mapOut'],
    lifecycle: 'handle',
  },
  {
    name: 'HashMap.delete',
    args: () => [keyOf(1), new Uint8Array(VALUE)],
    call: (x, [k, p]) => x.map.delete(k as Untyped, p as Untyped),
    kinds: ['mapKey', 'mapOut'],
    lifecycle: 'handle',
  },
  { name: 'HashMap.size', args: none, call: (x) => x.map.size, kinds: [], lifecycle: 'handle' },
  { name: 'HashMap.keys', args: none, call: (x) => x.map.keys(), kinds: [], lifecycle: 'handle' },

  // --- QpTrie ---
  {
    name: 'QpTrie.create',
    args: (x) => [x.arena, { maxKeyBytes: 8, maxValueBytes: 8 }],
    call: (_, [a, o]) => QpTrie.create(a as Untyped, o as Untyped),
    kinds: ['arena', 'options'],
    extra: [
      [],
      [
        v('maxKeyBytes 0', { maxKeyBytes: 0, maxValueBytes: 8 }),
        v('maxKeyBytes 256', { maxKeyBytes: 256, maxValueBytes: 8 }),
        v('maxValueBytes NaN', { maxKeyBytes: 8, maxValueBytes: Number.NaN }),
        v("versions 'x'", { maxKeyBytes: 8, maxValueBytes: 8, versions: 'x' }),
      ],
    ],
    lifecycle: 'arena',
  },
  {
    name: 'QpTrie.open',
    args: (x) => [x.cpu, x.trieRef],
    call: (_, [c, r]) => QpTrie.open(c as Untyped, r as Untyped),
    kinds: ['handle', 'structureRef'],
    extra: [[], [w('a hash-map ref', (x) => x.mapRef)]],
    lifecycle: 'handle',
  },
  { name: 'QpTrie.size', args: none, call: (x) => x.trie.size, kinds: [], lifecycle: 'handle' },
  {
    name: 'QpTrie.lookup',
    args: () => [Uint8Array.of(1, 2)],
    call: (x, [k]) => {
      x.cpu.readLock();
      try {
        return x.trie.lookup(k as Untyped);
      } finally {
        x.cpu.readUnlock();
      }
    },
    kinds: ['trieKey'],
    lifecycle: 'handle',
  },
  {
    name: 'QpTrie.read',
    args: () => [Uint8Array.of(1, 2), new Uint8Array(32)],
    call: (x, [k, o]) => x.trie.read(k as Untyped, o as Untyped),
    kinds: ['trieKey', 'trieOut'],
    lifecycle: 'handle',
  },
  {
    name: 'QpTrie.get',
    args: () => [Uint8Array.of(1, 2)],
    call: (x, [k]) => x.trie.get(k as Untyped),
    kinds: ['trieKey'],
    lifecycle: 'handle',
  },
  {
    name: 'QpTrie.has',
    args: () => [Uint8Array.of(1, 2)],
    call: (x, [k]) => x.trie.has(k as Untyped),
    kinds: ['trieKey'],
    lifecycle: 'handle',
  },
  {
    name: 'QpTrie.update',
    args: () => [Uint8Array.of(5), Uint8Array.of(6)],
    call: (x, [k, val]) => x.trie.update(k as Untyped, val as Untyped),
    kinds: ['trieKey', 'trieValue'],
    lifecycle: 'handle',
  },
  {
    name: 'QpTrie.delete',
    args: () => [Uint8Array.of(1, 2)],
    call: (x, [k]) => x.trie.delete(k as Untyped),
    kinds: ['trieKey'],
    lifecycle: 'handle',
  },
  { name: 'QpTrie.keys', args: none, call: (x) => x.trie.keys(), kinds: [], lifecycle: 'handle' },

  // --- PackAllocator ---
  {
    name: 'PackAllocator.create',
    args: (x) => [x.arena, { maxPacks: 1, maxRegions: 1 }],
    call: (_, [a, o]) => PackAllocator.create(a as Untyped, o as Untyped),
    kinds: ['arena', 'options'],
    extra: [
      [],
      [
        v('maxPacks 0', { maxPacks: 0 }),
        v('maxPacks 1025', { maxPacks: 1025 }),
        v('maxRegions 1.5', { maxRegions: 1.5 }),
        v("exec 'yes'", { exec: 'yes' }),
        v('packs 1', { packs: 1 }),
        v('hugeVmap null', { hugeVmap: null }),
      ],
    ],
    lifecycle: 'arena',
  },
  {
    name: 'PackAllocator.open',
    args: (x) => [x.arena, x.packRef],
    call: (_, [a, r]) => PackAllocator.open(a as Untyped, r as Untyped),
    kinds: ['arena', 'structureRef'],
    extra: [[], [w('a hash-map ref', (x) => x.mapRef)]],
    lifecycle: 'arena',
  },
  {
    name: 'PackAllocator.alloc',
    args: () => [100],
    call: (x, [n]) => x.pack.alloc(n as number),
    kinds: ['count'],
    extra: [[v('past the arena', 1 << 30)]],
    lifecycle: 'arena',
  },
  {
    name: 'PackAllocator.free',
    args: (x) => [x.block],
    call: (x, [b]) => x.pack.free(b as number),
    kinds: ['block'],
    extra: [[v('0 (null: a no-op)', 0, { returns: undefined })]],
    lifecycle: 'arena',
  },
  {
    name: 'PackAllocator.copyIn',
    args: (x) => [x.block, Uint8Array.of(1, 2), 0],
    call: (x, [b, d, o]) => x.pack.copyIn(b as number, d as Untyped, o as number),
    kinds: ['block', 'bytes', 'offset'],
    lifecycle: 'arena',
  },
  {
    name: 'PackAllocator.write',
    args: (x) => [x.block, Uint8Array.of(1, 2), 0],
    call: (x, [b, d, o]) => x.pack.write(b as number, d as Untyped, o as number),
    kinds: ['block', 'bytes', 'offset'],
    lifecycle: 'arena',
  },
  {
    name: 'PackAllocator.seal',
    args: (x) => [x.block],
    call: (x, [b]) => x.pack.seal(b as number),
    kinds: ['block'],
    lifecycle: 'arena',
  },
  {
    name: 'PackAllocator.isSealed',
    args: (x) => [x.block],
    call: (x, [b]) => x.pack.isSealed(b as number),
    kinds: ['block'],
    lifecycle: 'arena',
  },
  {
    name: 'PackAllocator.sizeOf',
    args: (x) => [x.block],
    call: (x, [b]) => x.pack.sizeOf(b as number),
    kinds: ['block'],
    lifecycle: 'arena',
  },
  {
    name: 'PackAllocator.bytes',
    args: (x) => [x.block],
    call: (x, [b]) => x.pack.bytes(b as number),
    kinds: ['block'],
    lifecycle: 'arena',
  },
  { name: 'PackAllocator.stats', args: none, call: (x) => x.pack.stats(), kinds: [], lifecycle: 'arena' },

  // --- SharedMap ---
  {
    name: 'SharedMap.create',
    args: (x) => [x.arena, { maxEntries: 4 }],
    call: (_, [a, o]) => SharedMap.create(a as Untyped, o as Untyped),
    kinds: ['arena', 'options'],
    extra: [
      [],
      [
        v('no maxEntries', {}),
        v('maxEntries 0', { maxEntries: 0 }),
        v('maxKeyBytes 510', { maxEntries: 4, maxKeyBytes: 510 }),
        v('maxValueBytes -1', { maxEntries: 4, maxValueBytes: -1 }),
      ],
    ],
    lifecycle: 'arena',
  },
  {
    name: 'SharedMap.open',
    args: (x) => [x.cpu, x.sharedRef],
    call: (_, [c, r]) => SharedMap.open(c as Untyped, r as Untyped),
    kinds: ['cpuOrArena', 'structureRef'],
    extra: [[], [w('a hash-map ref', (x) => x.mapRef)]],
    lifecycle: 'handle',
  },
  {
    // Given the arena, open attaches a free CPU slot: a bad ref must be refused before that.
    name: 'SharedMap.open on an arena',
    args: (x) => [x.arena.shared, x.sharedRef],
    call: (_, [s, r]) => SharedMap.open(s as Untyped, r as Untyped),
    kinds: ['cpuOrArena', 'structureRef'],
    extra: [[], [w('a hash-map ref', (x) => x.mapRef)]],
    lifecycle: 'arena',
  },
  { name: 'SharedMap.size', args: none, call: (x) => x.shared.size, kinds: [], lifecycle: 'handle' },
  {
    name: 'SharedMap.get',
    args: () => ['a'],
    call: (x, [k]) => x.shared.get(k as Untyped),
    kinds: ['sharedKey'],
    lifecycle: 'handle',
  },
  {
    name: 'SharedMap.has',
    args: () => ['a'],
    call: (x, [k]) => x.shared.has(k as Untyped),
    kinds: ['sharedKey'],
    lifecycle: 'handle',
  },
  {
    name: 'SharedMap.set',
    args: () => ['b', 'two'],
    call: (x, [k, val]) => x.shared.set(k as Untyped, val as Untyped),
    kinds: ['sharedKey', 'sharedValue'],
    lifecycle: 'handle',
  },
  {
    name: 'SharedMap.delete',
    args: () => ['a'],
    call: (x, [k]) => x.shared.delete(k as Untyped),
    kinds: ['sharedKey'],
    lifecycle: 'handle',
  },
  { name: 'SharedMap.keys', args: none, call: (x) => x.shared.keys(), kinds: [], lifecycle: 'handle' },
  {
    name: 'SharedMap.entries',
    args: none,
    call: (x) => [...x.shared.entries()],
    kinds: [],
    lifecycle: 'handle',
  },
  { name: 'SharedMap.reclaim', args: none, call: (x) => x.shared.reclaim(), kinds: [], lifecycle: 'handle' },
  {
    name: 'SharedMap.getInto',
    args: () => ['a', new Uint8Array(16)],
    call: (x, [k, t]) => x.shared.getInto(k as Untyped, t as Untyped),
    kinds: ['sharedKey', 'byteTarget'],
    lifecycle: 'handle',
  },
  {
    name: 'SharedMap.read',
    args: () => ['a', (bytes: Uint8Array) => bytes.length],
    call: (x, [k, f]) => x.shared.read(k as Untyped, f as Untyped),
    kinds: ['sharedKey', 'callback'],
    lifecycle: 'handle',
  },
  { name: 'SharedMap.stats', args: none, call: (x) => x.shared.stats(), kinds: [], lifecycle: 'handle' },
  {
    name: 'SharedMap.values',
    args: none,
    call: (x) => [...x.shared.values()],
    kinds: [],
    lifecycle: 'handle',
  },
  {
    name: 'SharedMap.forEach',
    args: () => [() => undefined],
    call: (x, [f]) => x.shared.forEach(f as Untyped),
    kinds: ['callback'],
    lifecycle: 'handle',
  },
  { name: 'SharedMap.clear', args: none, call: (x) => x.shared.clear(), kinds: [], lifecycle: 'handle' },
  { name: 'SharedMap.destroy', args: none, call: (x) => x.shared.destroy(), kinds: [], lifecycle: 'handle' },

  // --- RefCounts, UnitRefs, CheckedUnit, PointerQueue ---
  {
    name: 'RefCounts',
    args: (x) => [x.cpu],
    call: (_, [c]) => new RefCounts(c as Untyped),
    kinds: ['handle'],
    lifecycle: 'handle',
  },
  {
    name: 'RefCounts.create',
    args: () => [16],
    call: (x, [n]) => x.refs.create(n as number),
    kinds: ['payloadSize'],
    lifecycle: 'handle',
  },
  {
    name: 'RefCounts.acquire',
    args: (x) => [x.object],
    call: (x, [p]) => x.refs.acquire(p as number),
    kinds: ['objectPtr'],
    lifecycle: 'handle',
  },
  {
    name: 'RefCounts.release',
    args: (x) => [x.object],
    call: (x, [p]) => x.refs.release(p as number),
    kinds: ['objectPtr'],
    extra: [[w('a freed unit', (x) => x.freed)]],
    lifecycle: 'handle',
  },
  {
    name: 'RefCounts.count',
    args: (x) => [x.object],
    call: (x, [p]) => x.refs.count(p as number),
    kinds: ['objectPtr'],
    lifecycle: 'handle',
  },
  {
    name: 'UnitRefs',
    args: (x) => [x.arena.shared],
    call: (_, [s]) => new UnitRefs(s as Untyped),
    kinds: ['shared'],
    lifecycle: 'none',
  },
  {
    name: 'UnitRefs.of',
    args: (x) => [x.ptr],
    call: (x, [p]) => x.unitRefs.of(p as number),
    kinds: ['ptr'],
    // A pointer into the middle of a unit is 8-aligned and allocated-looking only by accident.
    lifecycle: 'none',
  },
  {
    name: 'UnitRefs.pointer',
    args: (x) => [x.unitRef],
    call: (x, [r]) => x.unitRefs.pointer(r as number),
    kinds: ['unitRef'],
    lifecycle: 'none',
  },
  {
    name: 'UnitRefs.isCurrent',
    args: (x) => [x.unitRef],
    call: (x, [r]) => x.unitRefs.isCurrent(r as number),
    kinds: ['unitRef'],
    onBad: { returns: false },
    lifecycle: 'none',
  },
  {
    name: 'UnitRefs.deref',
    args: (x) => [x.unitRef],
    call: (x, [r]) => x.unitRefs.deref(r as number),
    kinds: ['unitRef'],
    onBad: { returns: 0 },
    lifecycle: 'none',
  },
  {
    name: 'UnitRefs.checked',
    args: (x) => [x.unitRef],
    call: (x, [r]) => x.unitRefs.checked(r as number),
    kinds: ['unitRef'],
    lifecycle: 'none',
  },
  {
    name: 'CheckedUnit',
    args: (x) => [
      Symbol('UnitRefs.checked'),
      x.unitRefs,
      x.unitRef,
      8,
      x.cpu.bytes,
      new DataView(x.cpu.bytes.buffer),
    ],
    call: (_, a) => new (CheckedUnit as Untyped)(...a),
    kinds: ['token'],
    lifecycle: 'none',
  },
  {
    name: 'CheckedUnit.getUint8',
    args: () => [0],
    call: (x, [o]) => x.checked.getUint8(o as number),
    kinds: ['checkedOffset'],
    lifecycle: 'none',
  },
  {
    name: 'CheckedUnit.setUint8',
    args: () => [0, 1],
    call: (x, [o, val]) => x.checked.setUint8(o as number, val as number),
    kinds: ['checkedOffset', 'byteValue'],
    lifecycle: 'none',
  },
  {
    name: 'CheckedUnit.getUint32',
    args: () => [0],
    call: (x, [o]) => x.checked.getUint32(o as number),
    kinds: ['checkedOffset32'],
    lifecycle: 'none',
  },
  {
    name: 'CheckedUnit.setUint32',
    args: () => [0, 1],
    call: (x, [o, val]) => x.checked.setUint32(o as number, val as number),
    kinds: ['checkedOffset32', 'u32Value'],
    lifecycle: 'none',
  },
  {
    name: 'PointerQueue',
    args: () => [4],
    call: (_, [c]) => new PointerQueue(c as Untyped),
    kinds: ['count'],
    extra: [
      [
        v('3 (not a power of two)', 3),
        v('an ArrayBuffer', new ArrayBuffer(64)),
        v('a short SharedArrayBuffer', new SharedArrayBuffer(8)),
      ],
    ],
    lifecycle: 'none',
  },
  {
    name: 'PointerQueue.push',
    args: () => [8, 0],
    call: (x, [p, t]) => x.queue.push(p as number, t as number),
    kinds: ['int32', 'int32'],
    lifecycle: 'none',
  },
  { name: 'PointerQueue.pop', args: none, call: (x) => x.queue.pop(), kinds: [], lifecycle: 'none' },
];
