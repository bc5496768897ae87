/**
 * Size classes and watermarks against the kernel (kernel/bpf/memalloc.c: bpf_mem_cache_idx() with
 * the fix https://git.kernel.org/torvalds/c/36024d023d13, and init_refill_work()). The
 * expected values are computed here from the kernel's own code, transcribed independently of
 * src/memory/size-class.ts, so a slip in the table or the formula there cannot hide in both places.
 */
import { describe, expect, it } from 'vitest';
import { Arena } from '../src/index.js';
import { CLASS_UNIT_SIZES, classOfSize, MAX_ALLOC_BYTES, watermarksFor } from '../src/lab/index.js';

const HEADER = 8;

/** kernel/bpf/memalloc.c: sizes[], size_index[] and bpf_mem_cache_idx(), as in kernel.md §1.3. */
const KERNEL_SIZES = [96, 192, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];
const KERNEL_SIZE_INDEX = [3, 3, 4, 4, 5, 5, 5, 5, 1, 1, 1, 1, 6, 6, 6, 6, 2, 2, 2, 2, 2, 2, 2, 2];
/** fls(): 1-based index of the most significant set bit, 0 for 0. */
const fls = (x: number): number => (x === 0 ? 0 : 32 - Math.clz32(x));
function kernelCacheIdx(size: number): number {
  if (!size || size > 4096) return -1;
  if (size <= 192) return (KERNEL_SIZE_INDEX[Math.trunc((size - 1) / 8)] as number) - 1;
  return fls(size - 1) - 2;
}
/** Unit size the kernel's bpf_mem_alloc(ma, size) serves a non-percpu request from (V3: size += 8). */
function kernelUnitSize(size: number): number {
  const idx = kernelCacheIdx(size + HEADER);
  return idx < 0 ? -1 : (KERNEL_SIZES[idx] as number);
}

/** The kernel's watermark formula (init_refill_work), with C integer division. */
function kernelWatermarks(unitSize: number) {
  const div = (a: number, b: number) => Math.trunc(a / b);
  const low = unitSize <= 256 ? 32 : Math.max(div(32 * 256, unitSize), 1);
  const high = unitSize <= 256 ? 96 : Math.max(div(96 * 256, unitSize), 3);
  const batch = Math.max(div(high - low, 4) * 3, 1);
  return { low, high, batch, prefill: unitSize <= 256 ? 4 : 1, trimTo: div(high + low, 2) };
}

describe('classOfSize', () => {
  it('maps every size 1..4088 to the smallest class whose unit holds size + 8 bytes', () => {
    for (let size = 1; size <= MAX_ALLOC_BYTES; size++) {
      const smallest = CLASS_UNIT_SIZES.findIndex((unit) => unit >= size + HEADER);
      expect(classOfSize(size), `size ${size}`).toBe(smallest);
    }
  });

  it('agrees with the kernel bpf_mem_cache_idx mapping for every size', () => {
    for (let size = 1; size <= MAX_ALLOC_BYTES; size++) {
      expect(CLASS_UNIT_SIZES[classOfSize(size)], `size ${size}`).toBe(kernelUnitSize(size));
    }
    // Past the largest class the kernel returns NULL too.
    expect(kernelUnitSize(MAX_ALLOC_BYTES + 1)).toBe(-1);
  });

  it('follows the derived mapping table of kernel.md §1.3 (request sizes include the header)', () => {
    const table: Array<[first: number, last: number, unit: number]> = [
      [1, 16, 16],
      [17, 32, 32],
      [33, 64, 64],
      [65, 96, 96],
      [97, 128, 128],
      [129, 192, 192],
      [193, 256, 256],
      [257, 512, 512],
      [513, 1024, 1024],
      [1025, 2048, 2048],
      [2049, 4096, 4096],
    ];
    for (const [first, last, unit] of table) {
      // A request of `first..last` bytes including the header is a user size 8 bytes smaller.
      for (const request of [first, last]) {
        if (request - HEADER < 1) continue;
        expect(CLASS_UNIT_SIZES[classOfSize(request - HEADER)], `request ${request}`).toBe(unit);
      }
    }
  });

  it.each([0, -1, 4089, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('returns -1 for %s', (size) => {
    expect(classOfSize(size)).toBe(-1);
  });
});

describe('watermarksFor', () => {
  // kernel.md §1.5, row by row: unit size → low, high, batch, trim target.
  it.each([
    [16, 32, 96, 48, 64],
    [96, 32, 96, 48, 64],
    [256, 32, 96, 48, 64],
    [512, 16, 48, 24, 32],
    [1024, 8, 24, 12, 16],
    [2048, 4, 12, 6, 8],
    [4096, 2, 6, 3, 4],
    [8192, 1, 3, 1, 2],
  ])('reproduces the kernel table for unit size %i', (unit, low, high, batch, trimTo) => {
    const marks = watermarksFor(unit);
    expect({ low: marks.low, high: marks.high, batch: marks.batch }).toEqual({ low, high, batch });
    expect(Math.trunc((marks.low + marks.high) / 2)).toBe(trimTo);
    expect(marks.prefill).toBe(unit <= 256 ? 4 : 1);
  });

  it('matches the kernel formula for a fixed-size cache of 300-byte objects (unit 308)', () => {
    const { trimTo, ...expected } = kernelWatermarks(300 + HEADER);
    // Spelled out: low 8192/308 = 26, high 24576/308 = 79, batch (53/4)*3 = 39.
    expect(expected).toEqual({ low: 26, high: 79, batch: 39, prefill: 1 });
    expect(watermarksFor(308)).toEqual(expected);
    expect(trimTo).toBe(52);
  });

  it('matches the kernel formula for every unit size from 8 to 64 KiB', () => {
    for (let unit = 8; unit <= 65536; unit += 8) {
      const { trimTo: _, ...expected } = kernelWatermarks(unit);
      expect(watermarksFor(unit), `unit ${unit}`).toEqual(expected);
    }
  });
});

describe('classes through a real arena', () => {
  it('serves unit-8 bytes from a class and unit-7 from the next, with usableSize = unit-8', () => {
    const arena = Arena.create({ cpus: 1, maxBytes: 4 << 20 });
    const cpu = arena.attach(0);
    const liveOf = (cls: number) => arena.stats().classes[cls]?.live;
    CLASS_UNIT_SIZES.forEach((unit, cls) => {
      // The largest request that still fits the class.
      const before = liveOf(cls);
      const ptr = cpu.alloc(unit - HEADER);
      expect(ptr, `alloc(${unit - HEADER})`).not.toBe(0);
      expect(liveOf(cls)).toBe((before ?? 0) + 1);
      expect(cpu.usableSize(ptr)).toBe(unit - HEADER);
      // One byte more needs the next class (none after 4096).
      const next = cls + 1;
      const nextBefore = liveOf(next);
      const bigger = cpu.alloc(unit - HEADER + 1);
      if (next === CLASS_UNIT_SIZES.length) {
        expect(bigger).toBe(0);
      } else {
        expect(bigger, `alloc(${unit - HEADER + 1})`).not.toBe(0);
        expect(liveOf(next)).toBe((nextBefore ?? 0) + 1);
        expect(cpu.usableSize(bigger)).toBe((CLASS_UNIT_SIZES[next] as number) - HEADER);
        cpu.free(bigger);
      }
      cpu.free(ptr);
    });
    expect(arena.stats().liveUnits).toBe(0);
  });

  it('gives every size 1..4088 a unit of its class, 8-byte aligned', () => {
    const arena = Arena.create({ cpus: 1, maxBytes: 4 << 20 });
    const cpu = arena.attach(0);
    for (let size = 1; size <= MAX_ALLOC_BYTES; size++) {
      const ptr = cpu.alloc(size);
      expect(ptr % 8).toBe(0);
      expect(cpu.usableSize(ptr)).toBe((CLASS_UNIT_SIZES[classOfSize(size)] as number) - HEADER);
      cpu.free(ptr);
    }
  });
});
