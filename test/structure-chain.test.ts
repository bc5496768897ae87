/**
 * The structure chain (src/shm/structure-chain.ts): structures of every kind join one chain, and
 * recovery hands each region to the recoverer of its magic; a magic nobody registered throws.
 */
import { describe, expect, it } from 'vitest';
import { Arena, SharedMap } from '../src/index.js';
import { X_STRUCT_CHAIN } from '../src/shm/layout.js';
import {
  joinStructureChain,
  recovererTable,
  recoverStructures,
  type StructureRecoverer,
} from '../src/shm/structure-chain.js';
import { HashMap, PackAllocator, QpTrie } from '../src/structures/index.js';
import { STRUCTURE_RECOVERERS } from '../src/structures/recoverers.js';

describe('structure chain', () => {
  it('holds every structure created, newest first, each with a registered magic', () => {
    const arena = Arena.create({ cpus: 1, maxBytes: 8 << 20 });
    try {
      const map = HashMap.create(arena, { keySize: 4, valueSize: 8, maxEntries: 16 });
      const pack = PackAllocator.create(arena);
      const trie = QpTrie.create(arena, { maxKeyBytes: 8, maxValueBytes: 8 });
      const i32 = new Int32Array(arena.shared.buffer);
      const seen: number[] = [];
      for (let ref = Atomics.load(i32, X_STRUCT_CHAIN); ref !== 0; ) {
        seen.push(ref);
        const recoverer = STRUCTURE_RECOVERERS.get(i32[ref >> 2] as number);
        expect(recoverer).toBeDefined();
        ref = i32[(ref >> 2) + (recoverer as StructureRecoverer).nextWord] as number;
      }
      expect(seen).toEqual([trie, pack, map]);
      expect(recoverStructures(i32, STRUCTURE_RECOVERERS, 12345)).toEqual({ released: 0, unlinked: 0 });
    } finally {
      arena.close();
    }
  });

  it("a shared map's table joins the chain, and stays on it, passed over, once the map is destroyed", () => {
    const arena = Arena.create({ cpus: 1, maxBytes: 8 << 20, policy: 'arena' });
    try {
      const ref = SharedMap.create(arena, { maxEntries: 16 });
      const cpu = arena.attach(0);
      const map = SharedMap.open(cpu, ref);
      map.set('k', 'v');
      const i32 = new Int32Array(arena.shared.buffer);
      const chained = (): string[] => {
        const names: string[] = [];
        for (let at = Atomics.load(i32, X_STRUCT_CHAIN); at !== 0; ) {
          const recoverer = STRUCTURE_RECOVERERS.get(i32[at >> 2] as number) as StructureRecoverer;
          expect(recoverer).toBeDefined();
          names.push(recoverer.name);
          at = i32[(at >> 2) + recoverer.nextWord] as number;
        }
        return names;
      };
      expect(chained()).toEqual(['shared-map table']);
      map.destroy();
      // Its pages but the first are free; the first keeps the link under a magic of its own.
      HashMap.create(arena, { keySize: 4, valueSize: 8, maxEntries: 16 });
      expect(chained()).toEqual(['hash map', 'destroyed shared-map table']);
      expect(recoverStructures(i32, STRUCTURE_RECOVERERS, 12345)).toEqual({ released: 0, unlinked: 0 });
      cpu.detach();
    } finally {
      arena.close();
    }
  });

  it('recovery throws on a region whose magic no recoverer registered', () => {
    const i32 = new Int32Array(new SharedArrayBuffer(64 << 10));
    const region = 4096;
    i32[region >> 2] = 0x0badf00d;
    joinStructureChain(i32, region, 1);
    expect(() => recoverStructures(i32, STRUCTURE_RECOVERERS, 1)).toThrow(
      /magic 0xbadf00d that no recoverer/,
    );
    const known: StructureRecoverer = {
      magic: 0x0badf00d,
      name: 'test structure',
      nextWord: 1,
      recover: () => ({ released: 1, unlinked: 2 }),
    };
    expect(recoverStructures(i32, recovererTable([known]), 1)).toEqual({ released: 1, unlinked: 2 });
    expect(() => recovererTable([known, { ...known, name: 'twin' }])).toThrow(/share magic/);
  });
});
