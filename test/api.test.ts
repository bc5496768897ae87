/**
 * The public surface: handles and arenas end with `using` / `await using` (Symbol.dispose,
 * Symbol.asyncDispose), and pointers and structure refs are distinct types (the
 * `@ts-expect-error` lines fail the typecheck if a mix-up compiles).
 */
import { describe, expect, it } from 'vitest';
import { Arena, CpuPool, type Pointer } from '../src/index.js';
import { HashMap, type HashMapRef, PackAllocator, QpTrie } from '../src/structures/index.js';

describe('public API', () => {
  it('a CPU handle detaches at the end of its `using` block, an arena closes at the end of `await using`', async () => {
    let outer: Arena | undefined;
    let handle: { attached: boolean } | undefined;
    {
      await using arena = Arena.create({ cpus: 1, maxBytes: 4 << 20 });
      outer = arena;
      {
        using cpu = arena.attach(0);
        handle = cpu;
        cpu.free(cpu.alloc(8));
        expect(cpu.attached).toBe(true);
      }
      expect(handle.attached).toBe(false);
      // The slot is free again.
      using again = arena.attach(0);
      expect(again.attached).toBe(true);
    }
    expect(outer.closed).toBe(true);
  });

  it('a pool stops at the end of `await using`', async () => {
    const arena = Arena.create({ cpus: 1, maxBytes: 4 << 20 });
    {
      await using pool = CpuPool.start(arena);
      expect(pool.cpus.length).toBe(1);
    }
    expect((await arena.close()).leaked).toBe(0);
  });

  it('refs and pointers do not mix', async () => {
    await using arena = Arena.create({ cpus: 1, maxBytes: 4 << 20 });
    using cpu = arena.attach(0);
    const mapRef: HashMapRef = HashMap.create(arena, { keySize: 4, valueSize: 4, maxEntries: 4 });
    const trieRef = QpTrie.create(cpu, { maxKeyBytes: 4, maxValueBytes: 4 });
    const packRef = PackAllocator.create(cpu);
    const ptr: Pointer = cpu.alloc(16);
    // Each is a number at run time: a wrong one is refused by the run-time check as well.
    // @ts-expect-error a hash map's ref is not a qp-trie's
    expect(() => QpTrie.open(cpu, mapRef)).toThrow(/not a trie/);
    // @ts-expect-error a pointer is not a ref
    expect(() => HashMap.open(cpu, ptr)).toThrow(/not a map/);
    // @ts-expect-error a ref is not a pointer
    expect(() => cpu.free(packRef)).toThrow();
    // @ts-expect-error nor is a plain number
    expect(() => cpu.free(8)).toThrow();
    expect(HashMap.open(cpu, mapRef).size).toBe(0);
    expect(QpTrie.open(cpu, trieRef).size).toBe(0);
    expect(PackAllocator.open(cpu, packRef).stats().blocks).toBe(0);
    cpu.free(ptr);
  });
});
