/**
 * The pack allocator (src/structures/pack.ts) and the simulated direct map (src/structures/direct-map.ts): a
 * fast-check model of the bitmaps (no overlap, first fit across packs in order, an empty pack
 * given back at once, large requests in page-rounded regions), the trap fill of fresh and freed
 * ranges, sealing, the direct map with and without packs, bad input that leaves everything as
 * it was, and concurrent loading from worker CPUs (the bench's scenario, every image checked).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Arena, ArenaError } from '../src/index.js';
import { runPackBench } from '../src/lab/benchmarks/pack-bench.js';
import { CHUNK_BYTES, HUGE_BYTES, PACK_BYTES, PackAllocator } from '../src/structures/index.js';
import { killWhileHolding } from './helpers/lock-holder.js';

const PAGE = 4096;
const CHUNKS = PACK_BYTES / CHUNK_BYTES;

function setup(options: Parameters<typeof PackAllocator.create>[1] = {}, maxBytes = 64 << 20) {
  const arena = Arena.create({ cpus: 1, maxBytes, coordinator: 'manual' });
  const pack = PackAllocator.open(arena, PackAllocator.create(arena, options));
  return { arena, pack };
}

const allTrap = (bytes: Uint8Array): boolean => bytes.every((b) => b === 0xcc);

/** The model: packs in table order, each a chunk map; large blocks by start. */
class Model {
  packs: (Uint8Array | undefined)[] = [];
  starts: (number | undefined)[] = [];
  blocks = new Map<number, { pack: number; chunk: number; chunks: number } | { pages: number }>();

  /** Where first fit must put `chunks` chunks: [pack index, chunk] (pack may be new). */
  firstFit(chunks: number): [number, number] {
    for (let p = 0; p < this.packs.length; p++) {
      const map = this.packs[p];
      if (!map) continue;
      let run = 0;
      for (let c = 0; c < CHUNKS; c++) {
        run = map[c] ? 0 : run + 1;
        if (run === chunks) return [p, c - chunks + 1];
      }
    }
    const empty = this.packs.indexOf(undefined);
    return [empty < 0 ? this.packs.length : empty, 0];
  }
}

describe('PackAllocator against a model', () => {
  const sizeArb = fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 1, max: 4096 }) },
    { weight: 3, arbitrary: fc.integer({ min: 4097, max: 300_000 }) },
    { weight: 1, arbitrary: fc.integer({ min: PACK_BYTES / 2 + 1, max: 3 * PACK_BYTES }) },
  );
  const opArb = fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('alloc' as const), size: sizeArb }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }) },
  );

  it('no overlap, first fit across packs, empty packs given back, large blocks in regions', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 10, maxLength: 150, size: 'max' }), (ops) => {
        const { pack } = setup();
        const model = new Model();
        const live: number[] = [];
        for (const op of ops) {
          if (op.kind === 'alloc') {
            const block = pack.alloc(op.size);
            expect(block).toBeGreaterThan(0);
            if (op.size > PACK_BYTES / 2) {
              expect(block % PAGE).toBe(0);
              expect(pack.sizeOf(block)).toBe(Math.ceil(op.size / PAGE) * PAGE);
              model.blocks.set(block, { pages: Math.ceil(op.size / PAGE) });
            } else {
              const chunks = Math.ceil(op.size / CHUNK_BYTES);
              const [p, c] = model.firstFit(chunks);
              if (model.packs[p] === undefined) {
                // A new pack: 2 MiB-aligned, the block at its start.
                expect(block % PACK_BYTES).toBe(0);
                model.packs[p] = new Uint8Array(CHUNKS);
                model.starts[p] = block;
              }
              expect(block).toBe((model.starts[p] as number) + c * CHUNK_BYTES);
              (model.packs[p] as Uint8Array).fill(1, c, c + chunks);
              expect(pack.sizeOf(block)).toBe(chunks * CHUNK_BYTES);
              model.blocks.set(block, { pack: p, chunk: c, chunks });
            }
            live.push(block);
          } else if (live.length > 0) {
            const block = live.splice(op.pick % live.length, 1)[0] as number;
            pack.free(block);
            const entry = model.blocks.get(block);
            model.blocks.delete(block);
            if (entry && 'pack' in entry) {
              const map = model.packs[entry.pack] as Uint8Array;
              map.fill(0, entry.chunk, entry.chunk + entry.chunks);
              if (map.every((b) => b === 0)) model.packs[entry.pack] = undefined;
            }
          }
          const s = pack.stats();
          expect(s.packs).toBe(model.packs.filter((m) => m !== undefined).length);
          expect(s.blocks).toBe(live.length);
        }
        // No two live blocks overlap.
        const ranges = live.map((b) => [b, b + pack.sizeOf(b)] as const).sort((a, b) => a[0] - b[0]);
        for (let i = 1; i < ranges.length; i++) {
          expect(ranges[i]?.[0]).toBeGreaterThanOrEqual(ranges[i - 1]?.[1] as number);
        }
        for (const b of live) pack.free(b);
        expect(pack.stats()).toMatchObject({ packs: 0, regions: 0, blocks: 0, bytesReserved: 0 });
      }),
      { numRuns: 40 },
    );
  });
});

describe('PackAllocator contents', () => {
  it('every byte of a fresh block, and of a freed range, is 0xCC', () => {
    const { arena, pack } = setup();
    const bytes = new Uint8Array(arena.shared.buffer);
    const small = pack.alloc(200);
    const large = pack.alloc(PACK_BYTES);
    expect(allTrap(pack.bytes(small))).toBe(true);
    expect(allTrap(pack.bytes(large))).toBe(true);
    // The rest of the fresh pack too (alloc_new_pack fills it all).
    const start = small - (small % PACK_BYTES);
    expect(allTrap(bytes.subarray(start, start + PACK_BYTES))).toBe(true);
    const keep = pack.alloc(64); // keeps the pack alive after `small` is freed
    pack.write(small, new Uint8Array(200).fill(7));
    expect(pack.bytes(small)[0]).toBe(7);
    pack.free(small);
    expect(allTrap(bytes.subarray(small, small + 256))).toBe(true);
    expect(pack.alloc(100)).toBe(small); // first fit takes the freed chunks again
    pack.free(keep);
  });

  it('an empty pack goes back to the arena at once', () => {
    const { arena, pack } = setup();
    const before = arena.stats().bytesInUse;
    const a = pack.alloc(1000);
    const b = pack.alloc(5000);
    expect(arena.stats().bytesInUse - before).toBeGreaterThanOrEqual(PACK_BYTES);
    pack.free(a);
    expect(pack.stats().packs).toBe(1);
    pack.free(b);
    expect(pack.stats()).toMatchObject({ packs: 0, bytesReserved: 0 });
    expect(arena.stats().bytesInUse).toBe(before);
  });

  it('sealing: writes through the normal API are refused, copyIn installs, nothing else changes', () => {
    const exec = setup({ exec: true }).pack;
    const prog = exec.alloc(300);
    expect(exec.isSealed(prog)).toBe(true);
    expect(() => exec.write(prog, Uint8Array.of(1, 2, 3))).toThrow(ArenaError);
    expect(allTrap(exec.bytes(prog))).toBe(true);
    exec.copyIn(prog, Uint8Array.of(1, 2, 3), 10);
    expect([...exec.bytes(prog).subarray(9, 14)]).toEqual([0xcc, 1, 2, 3, 0xcc]);

    const data = setup().pack;
    const value = data.alloc(100);
    data.write(value, Uint8Array.of(9));
    data.seal(value);
    let code: string | undefined;
    try {
      data.write(value, Uint8Array.of(8));
    } catch (e) {
      code = (e as ArenaError).code;
    }
    expect(code).toBe('EPERM');
    expect(data.bytes(value)[0]).toBe(9);
    const region = data.alloc(PACK_BYTES);
    data.seal(region);
    expect(() => data.write(region, Uint8Array.of(1))).toThrow(/sealed/);
    data.copyIn(region, Uint8Array.of(5), PACK_BYTES - 1);
    expect(data.bytes(region)[PACK_BYTES - 1]).toBe(5);
  });
});

describe('PackAllocator bad input: clear errors, nothing changed', () => {
  it('sizes, double frees, non-blocks, ranges, options', () => {
    const { arena, pack } = setup({ exec: true });
    const block = pack.alloc(1000);
    const region = pack.alloc(PACK_BYTES);
    const stats = JSON.stringify(pack.stats());
    const arenaStats = JSON.stringify(arena.stats());
    const code = (fn: () => unknown): string | undefined => {
      try {
        fn();
      } catch (e) {
        return e instanceof ArenaError ? e.code : 'not an ArenaError';
      }
      return undefined;
    };
    for (const size of [0, -1, 1.5, Number.NaN, '64', (64 << 20) * 2]) {
      expect(code(() => pack.alloc(size as number))).toBe('EINVAL');
    }
    for (const bad of [-64, block + CHUNK_BYTES, block + 1, region + PAGE, 12345, 1e12]) {
      expect(code(() => pack.free(bad))).toBe('EINVAL');
    }
    // free(0) is a no-op, as free(NULL) is.
    expect(code(() => pack.free(0))).toBe(undefined);
    expect(code(() => pack.copyIn(block, new Uint8Array(CHUNK_BYTES * 16 + 1)))).toBe('EINVAL');
    expect(code(() => pack.copyIn(block, Uint8Array.of(1), -1))).toBe('EINVAL');
    expect(code(() => pack.copyIn(block, [1] as unknown as Uint8Array))).toBe('EINVAL');
    expect(code(() => PackAllocator.create(arena, { maxPacks: 0 }))).toBe('EINVAL');
    expect(code(() => PackAllocator.create(arena, { exec: 'yes' as unknown as boolean }))).toBe('EINVAL');
    expect(code(() => PackAllocator.open(arena, 4096 as never))).toBe('EINVAL');
    expect(JSON.stringify(pack.stats())).toBe(stats);
    expect(JSON.stringify(arena.stats())).toBe(arenaStats);
    pack.free(block);
    expect(code(() => pack.free(block))).toBe('EINVAL');
    pack.free(region);
    expect(code(() => pack.free(region))).toBe('EINVAL');
  });

  it('packs alternating with slab growth keep finding aligned room (freed spans merge)', () => {
    // The review's pattern: a pack comes and goes, the slab takes a few pages each time.
    const arena = Arena.create({ cpus: 1, maxBytes: 32 << 20, policy: 'arena', coordinator: 'manual' });
    const cpu = arena.attach(0);
    const pack = PackAllocator.open(arena, PackAllocator.create(arena, { maxPacks: 4, maxRegions: 16 }));
    for (let round = 0; round < 60; round++) {
      const block = pack.alloc(5000);
      expect(block, `round ${round}`).toBeGreaterThan(0);
      pack.free(block);
      for (let k = 0; k < 3; k++) expect(cpu.alloc(4000)).toBeGreaterThan(0);
    }
  });

  it('out of memory returns 0 and counts a failure', () => {
    const { pack } = setup({}, 4 << 20);
    const first = pack.alloc(64);
    expect(first).toBeGreaterThan(0);
    expect(pack.alloc(3 << 20)).toBe(0);
    expect(pack.stats().failures).toBe(1);
  });
});

describe('the simulated direct map', () => {
  it('executable packs keep their huge mappings; a region per program splits them', () => {
    const packed = setup({ exec: true }).pack;
    const alone = setup({ exec: true, packs: false }).pack;
    const sizes = Array.from({ length: 200 }, (_, i) => 100 + ((i * 997) % 3000));
    for (const size of sizes) {
      packed.alloc(size);
      alone.alloc(size);
    }
    const p = packed.stats();
    const a = alone.stats();
    expect(p.directMap).toMatchObject({ splits: 0, directMap4kKiB: 0 });
    expect(a.directMap.splits).toBeGreaterThan(0);
    expect(a.directMap.directMap4kKiB).toBe(a.directMap.splits * (HUGE_BYTES / 1024));
    expect(a.regions).toBe(200);
    // A data allocator changes no permission.
    const data = setup({ packs: false }).pack;
    for (const size of sizes) data.alloc(size);
    expect(data.stats().directMap.splits).toBe(0);
  });

  it('a split stays split after the region is freed (VM_FLUSH_RESET_PERMS does not merge)', () => {
    const { pack } = setup({ exec: true, packs: false });
    const block = pack.alloc(100);
    const split = pack.stats().directMap;
    expect(split.splits).toBe(1);
    pack.free(block);
    expect(pack.stats().directMap.directMap4kKiB).toBe(split.directMap4kKiB);
  });

  it('huge vmap is opt-in: one 2 MiB mapping per pack instead of 512 4 KiB ones', () => {
    const base = setup({ exec: true }).pack;
    const huge = setup({ exec: true, hugeVmap: true }).pack;
    base.alloc(100);
    huge.alloc(100);
    expect(base.stats().vmap).toEqual({ huge: 0, base: 512 });
    expect(huge.stats().vmap).toEqual({ huge: 1, base: 0 });
  });
});

describe('PackAllocator and crash recovery', () => {
  it('a worker killed holding the allocator lock: recovery releases it and the allocator works on', async () => {
    const arena = Arena.create({ cpus: 1, maxBytes: 16 << 20, policy: 'arena' });
    const ref = PackAllocator.create(arena, { exec: true });
    const pack = PackAllocator.open(arena, ref);
    const block = pack.alloc(1000);
    // A worker takes the lock the way alloc and free do and is killed holding it.
    await killWhileHolding(arena, (ref >> 2) + 2);
    expect(arena.recoveries.at(-1)?.locksReleased).toBe(1);
    // The allocator serves again (before the fix this call waited forever on the dead holder).
    expect(pack.alloc(1000)).toBeGreaterThan(0);
    pack.free(block);
    expect(pack.stats().blocks).toBe(1);
    await arena.close();
  });
});

describe('PackAllocator from worker CPUs', () => {
  it('two CPUs load and unload 512 programs at once: every image intact, everything given back', async () => {
    const r = await runPackBench({ programs: 512, cpus: 2, memory: 'arena' });
    for (const side of [r.withPack, r.withoutPack]) {
      expect(side.failures).toBe(0);
      expect(side.corrupt).toBe(0);
      expect(side.after).toMatchObject({ reservedMiB: 0, packs: 0 });
      expect(side.stages.map((s) => s.programs)).toEqual([128, 256, 384, 512]);
    }
    // The shape of the kernel's experiment: DirectMap4k grows with N without packs, not with.
    expect(r.withPack.stages.every((s) => s.directMap4kKiB === 0)).toBe(true);
    const grows = r.withoutPack.stages.map((s) => s.directMap4kKiB);
    expect(grows[3]).toBeGreaterThan(grows[0] as number);
  });
});
