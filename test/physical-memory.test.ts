/**
 * The pack bench's physical model: the buddy allocator (src/buddy-allocator.ts), the direct map
 * over physical memory (src/physical-direct-map.ts), and the shape of Aaron Lu's experiment that
 * `bench pack` reproduces with them in its default mode (src/benchmarks/pack-physical.ts):
 * without packs DirectMap4k grows linearly with the programs, within 2x of the kernel's
 * magnitude; with packs it stays flat. Everything here is seeded and runs on one thread.
 */
import { describe, expect, it } from 'vitest';
import { runPackBench } from '../src/lab/benchmarks/pack-bench.js';
import { KERNEL_DIRECT_MAP } from '../src/lab/benchmarks/pack-physical.js';
import { BuddyAllocator, MAX_ORDER } from '../src/lab/physical/buddy-allocator.js';
import { PhysicalDirectMap } from '../src/lab/physical/physical-direct-map.js';
import { ArenaError } from '../src/shm/errors.js';

const MiB = 1024 * 1024;
const TOP = 1 << (MAX_ORDER - 1);

describe('BuddyAllocator', () => {
  it('boots with every block of the top order, hands out the lowest address first and walks a block upwards', () => {
    const buddy = new BuddyAllocator(64 * MiB);
    expect(buddy.buddyinfo()).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (64 * MiB) / 4096 / TOP]);
    const pages = Array.from({ length: 600 }, () => buddy.alloc(0));
    expect(pages).toEqual(Array.from({ length: 600 }, (_, i) => i));
    // expand() left one free block per order below the one being walked.
    expect(buddy.freeFrames).toBe((64 * MiB) / 4096 - 600);
  });

  it('merges freed buddies back into top-order blocks, whatever the order of the frees', () => {
    const buddy = new BuddyAllocator(16 * MiB);
    const all = buddy.freeFrames;
    const taken: number[] = [];
    for (let order = 0; order < MAX_ORDER; order++) {
      for (let i = 0; i < 3; i++) {
        const pfn = buddy.alloc(order);
        if (pfn >= 0) {
          expect(pfn % (1 << order)).toBe(0);
          taken.push(pfn, order);
        }
      }
    }
    // Free in a scrambled order: odd pairs first, then even ones.
    for (const pass of [1, 0]) {
      for (let i = 0; i < taken.length; i += 2)
        if ((i / 2) % 2 === pass) buddy.free(taken[i] as number, taken[i + 1] as number);
    }
    expect(buddy.freeFrames).toBe(all);
    expect(buddy.buddyinfo()).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, all / TOP]);
  });

  it('returns -1 when memory is out, and rejects a size that is not whole top-order blocks', () => {
    const buddy = new BuddyAllocator(4 * MiB);
    expect(buddy.alloc(MAX_ORDER - 1)).toBe(0);
    expect(buddy.alloc(0)).toBe(-1);
    expect(() => new BuddyAllocator(3 * MiB)).toThrow(ArenaError);
  });
});

describe('PhysicalDirectMap', () => {
  it('splits the 1 GiB and the 2 MiB mapping of a changed page once, and a huge change keeps the 2 MiB one', () => {
    const map = new PhysicalDirectMap((2048 * MiB) / 4096);
    map.changePage(0);
    map.changePage(511);
    map.changePage(512);
    expect(map.stats()).toMatchObject({ splits: 2, gigSplits: 1, directMap4kKiB: 4096 });
    expect(map.stats().directMap2MKiB).toBe(1024 * 1024 - 4096);
    expect(map.stats().directMap1GKiB).toBe(1024 * 1024);
    map.changeHugePage(262144);
    expect(map.stats()).toMatchObject({ splits: 2, gigSplits: 2, directMap1GKiB: 0 });
  });
});

describe('bench pack, physical mode: the shape of the kernel experiment', () => {
  const growth = async (instancePages?: number) => {
    const r = await runPackBench({
      programs: 2048,
      seed: 3,
      physical: instancePages === undefined ? {} : { instancePages },
    });
    for (const side of [r.withPack, r.withoutPack]) {
      // Enough work first: every program loaded and intact.
      expect(side.failures).toBe(0);
      expect(side.corrupt).toBe(0);
      expect(side.stages.map((s) => s.programs)).toEqual([512, 1024, 1536, 2048]);
    }
    return r;
  };

  it('without packs DirectMap4k grows linearly (±25 %) and within 2x of the kernel at 2048; with packs it is flat', async () => {
    const r = await growth();
    const without = r.withoutPack.stages.map((s) => s.directMap4kKiB);
    const perProgram = without.map((kib, i) => kib / (r.withoutPack.stages[i]?.programs as number));
    const last = perProgram[3] as number;
    for (const p of perProgram) expect(Math.abs(p / last - 1)).toBeLessThanOrEqual(0.25);
    const kernel = KERNEL_DIRECT_MAP.find((k) => k.programs === 2048)?.v5_17 as number;
    expect(without[3]).toBeGreaterThanOrEqual(kernel / 2);
    expect(without[3]).toBeLessThanOrEqual(kernel * 2);
    const withPacks = r.withPack.stages.map((s) => s.directMap4kKiB);
    expect(new Set(withPacks).size).toBe(1);
    expect(r.withPack.packs).toBe(1);
    // Splits stay after unloading; memory goes back.
    expect(r.withoutPack.after.directMap4kKiB).toBe(without[3]);
    expect(r.withoutPack.after.reservedMiB).toBe(0);
  });

  it('the magnitude check fails when the programs do not interleave with their processes (contiguous pages)', async () => {
    const r = await growth(0);
    const kernel = KERNEL_DIRECT_MAP.find((k) => k.programs === 2048)?.v5_17 as number;
    expect(r.withoutPack.stages[3]?.directMap4kKiB).toBeLessThan(kernel / 2);
  });
});
