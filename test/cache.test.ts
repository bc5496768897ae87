/**
 * Per-CPU caches and the slab behind them, in the deterministic mode (several CPU handles on
 * the main thread): prefill, refill below the low watermark, trim above the high watermark,
 * cross-CPU frees, detach, page accounting, the memory limit, fixed-size caches and the
 * generation counter in the unit header. Expected watermarks come from the kernel table
 * (kernel/bpf/memalloc.c, init_refill_work()), written out here rather than read back from src/.
 */
import { describe, expect, it } from 'vitest';
import type { Pointer } from '../src/index.js';
import { Arena, type ArenaOptions, type CpuHandle } from '../src/index.js';
import { CLASS_UNIT_SIZES } from '../src/lab/index.js';
import {
  C_FREE_HEAD,
  CLS_SPAN_PAGES,
  cacheWord,
  classWord,
  PAGE_BYTES,
  readLayout,
} from '../src/shm/layout.js';

/** Kernel §1.5 per general class: [unit, low, high, batch, trim target, prefill]. */
const KERNEL_MARKS: ReadonlyArray<readonly [number, number, number, number, number, number]> = [
  [16, 32, 96, 48, 64, 4],
  [32, 32, 96, 48, 64, 4],
  [64, 32, 96, 48, 64, 4],
  [96, 32, 96, 48, 64, 4],
  [128, 32, 96, 48, 64, 4],
  [192, 32, 96, 48, 64, 4],
  [256, 32, 96, 48, 64, 4],
  [512, 16, 48, 24, 32, 1],
  [1024, 8, 24, 12, 16, 1],
  [2048, 4, 12, 6, 8, 1],
  [4096, 2, 6, 3, 4, 1],
];

/**
 * A deterministic-mode arena with CPUs 0 and 1 of 2; 8 MiB is plenty for every test here. The
 * default policy trims straight to the slab (the kernel's free_bulk into kmalloc, as before the
 * ttrace lists existed), so that slab counts show every move; the watermark test also runs the
 * kernel-6.1 preset, whose trims wait on the ttrace lists.
 */
function setup(options: Omit<ArenaOptions, 'cpus'> = {}) {
  const arena = Arena.create({
    cpus: 2,
    maxBytes: 8 << 20,
    coordinator: 'manual',
    policy: { remoteFree: 'local', trimVia: 'slab', refillFromTtrace: 'none' },
    ...options,
  });
  const a = arena.attach(0);
  return { arena, a };
}

/** Cache counters of (cpu, cls) and slab counters of cls, read through stats(). */
function cacheOf(arena: Arena, cpu: number, cls: number) {
  const stats = arena.stats();
  const cache = stats.cpus[cpu]?.classes[cls];
  const klass = stats.classes[cls];
  if (!cache || !klass) throw new Error(`no cache (${cpu}, ${cls})`);
  return { ...cache, slabFree: klass.slabFree, deferred: klass.deferred, live: klass.live };
}

/** Allocates `n` units of user size `size` on `cpu`, failing the test on a null. */
function allocMany(cpu: CpuHandle, size: number, n: number): Pointer[] {
  return Array.from({ length: n }, () => {
    const ptr = cpu.alloc(size);
    expect(ptr).not.toBe(0);
    return ptr;
  });
}

describe.each([
  ['the slab', 'slabFree', {}],
  ['the ttrace lists (kernel-6.1)', 'deferred', { policy: 'kernel-6.1' }],
] as const)('watermarks, trims to %s', (_, trimmedTo, options) => {
  it.each(KERNEL_MARKS)(
    'prefills, refills and trims the %i-byte class as the kernel does',
    (unit, low, high, batch, trimTo, prefill) => {
      const cls = CLASS_UNIT_SIZES.indexOf(unit);
      const size = unit - 8;
      const { arena, a } = setup(options);
      // CPU online: the kernel's prefill, nothing live.
      expect(cacheOf(arena, 0, cls)).toMatchObject({ free: prefill, refills: 1, live: 0 });

      // The first alloc leaves prefill-1 < low units, so one batch is refilled at once.
      const first = a.alloc(size);
      expect(cacheOf(arena, 0, cls)).toMatchObject({ free: prefill - 1 + batch, refills: 2, live: 1 });

      // Allocate plenty more: each alloc takes one unit, and the one that leaves fewer than low
      // refills exactly one batch.
      const held = [first];
      let previous = cacheOf(arena, 0, cls);
      let refills = 0;
      for (let n = 0; n < 3 * high; n++) {
        held.push(...allocMany(a, size, 1));
        const now = cacheOf(arena, 0, cls);
        const below = previous.free - 1 < low;
        expect(now.free).toBe(previous.free - 1 + (below ? batch : 0));
        expect(now.refills).toBe(previous.refills + (below ? 1 : 0));
        if (below) refills++;
        previous = now;
      }
      expect(refills).toBeGreaterThan(0);

      // Then free them one by one: the count climbs to high, and the free that would make it
      // high + 1 trims it to (low + high) / 2 in one batch (free_bulk), to the slab or, under
      // kernel-6.1, to the ttrace lists, where it waits for a GP that nothing advances here.
      previous = cacheOf(arena, 0, cls);
      let trims = 0;
      for (const ptr of held) {
        a.free(ptr);
        const now = cacheOf(arena, 0, cls);
        if (previous.free + 1 > high) {
          expect(now.free).toBe(trimTo);
          expect(now.trims).toBe(previous.trims + 1);
          // Exactly the overflow went there.
          expect(now[trimmedTo]).toBe(previous[trimmedTo] + previous.free + 1 - trimTo);
          trims++;
        } else {
          expect(now.free).toBe(previous.free + 1);
          expect(now.trims).toBe(previous.trims);
          expect(now[trimmedTo]).toBe(previous[trimmedTo]);
        }
        expect(now.free).toBeLessThanOrEqual(high);
        previous = now;
      }
      expect(trims).toBeGreaterThan(0);
      expect(arena.stats().liveUnits).toBe(0);
    },
  );
});

describe('cross-CPU free', () => {
  it('puts a unit freed on another CPU into that CPU cache, at the head of its list', () => {
    const { arena, a } = setup();
    const b = arena.attach(1);
    const cls = CLASS_UNIT_SIZES.indexOf(64);
    const ptr = a.alloc(50);
    const aBefore = cacheOf(arena, 0, cls);
    const bBefore = cacheOf(arena, 1, cls);
    b.free(ptr);
    expect(cacheOf(arena, 0, cls).free).toBe(aBefore.free);
    expect(cacheOf(arena, 1, cls)).toMatchObject({ free: bBefore.free + 1, frees: bBefore.frees + 1 });
    const layout = readLayout(b.i32);
    expect(b.i32[cacheWord(layout, 1, cls) + C_FREE_HEAD]).toBe(ptr - 8);
  });

  it('hands the unit freed last out next, even when that alloc refills (LIFO, as the kernel)', () => {
    // b's cache holds only its prefill plus the freed unit (5 <= low 32), so b's next alloc
    // refills. The kernel pops first (unit_alloc: __llist_del_first, then the irq_work refill),
    // so the unit freed last is reused at once even then: immediate LIFO reuse is what the
    // reuse policies and use-after-free scenarios of this project are about.
    const { arena, a } = setup();
    const b = arena.attach(1);
    const ptr = a.alloc(50);
    b.free(ptr);
    expect(b.alloc(50)).toBe(ptr);
  });
});

describe('detach', () => {
  it('returns every cached unit of the CPU to the slab and leaves live units alone', () => {
    const { arena, a } = setup();
    const held = [a.alloc(10), a.alloc(100), a.alloc(1000), a.alloc(4000)];
    const before = arena.stats();
    a.detach();
    const after = arena.stats();
    expect(before.cpus[0]).toMatchObject({ online: true, threadId: 0 }); // the main thread
    expect(after.cpus[0]).toMatchObject({ online: false, threadId: -1 });
    after.classes.forEach((klass, cls) => {
      const cached = before.cpus[0]?.classes[cls]?.free ?? -1;
      expect(after.cpus[0]?.classes[cls]?.free).toBe(0);
      expect(klass.slabFree).toBe((before.classes[cls]?.slabFree ?? -1) + cached);
      expect(klass.live).toBe(before.classes[cls]?.live);
    });
    expect(after.liveUnits).toBe(held.length);
    // The units can still be freed by another CPU.
    const b = arena.attach(1);
    for (const ptr of held) b.free(ptr);
    expect(arena.stats().liveUnits).toBe(0);
  });
});

describe('page accounting', () => {
  it('counts whole pages: bytesInUse is the sum of spans × span pages, never above the peak', () => {
    const { arena, a } = setup();
    const b = arena.attach(1);
    for (const size of [1, 24, 56, 88, 120, 184, 248, 504, 1016, 2040, 4088]) allocMany(a, size, 40);
    allocMany(b, 300, 70);
    const stats = arena.stats();
    const layout = readLayout(a.i32);
    const expected = stats.classes.reduce((bytes, klass, cls) => {
      const spanPages = a.i32[classWord(layout, cls) + CLS_SPAN_PAGES] ?? 0;
      // A span holds at least one unit.
      expect(spanPages * PAGE_BYTES).toBeGreaterThanOrEqual(klass.unitSize);
      return bytes + klass.spans * spanPages * PAGE_BYTES;
    }, 0);
    expect(stats.bytesInUse % PAGE_BYTES).toBe(0);
    expect(stats.bytesInUse).toBe(expected);
    // The per-class page counts the stats report add up to the same figure.
    expect(stats.classes.reduce((pages, klass) => pages + klass.pages, 0) * PAGE_BYTES).toBe(expected);
    // Totals are the sums over CPUs.
    expect(stats.totals.allocs).toBe(stats.cpus.reduce((n, c) => n + c.allocs, 0));
    expect(stats.totals.allocs).toBe(11 * 40 + 70);
    expect(stats.peakBytes).toBeGreaterThanOrEqual(stats.bytesInUse);
    expect(stats.bytesInUse).toBeLessThanOrEqual(stats.maxBytes);
  });
});

describe('memory limit', () => {
  it('accepts the smallest limit, one page, and still attaches a CPU', () => {
    const arena = Arena.create({ cpus: 1, maxBytes: PAGE_BYTES });
    arena.attach(0);
    expect(arena.stats().bytesInUse).toBeLessThanOrEqual(PAGE_BYTES);
  });

  it('returns 0 instead of throwing at the limit, counts the hit, and recovers after frees', () => {
    const { arena, a } = setup({ maxBytes: 64 * 1024 });
    const held: number[] = [];
    let ptr = 0;
    // 64 KiB of 256-byte units is at most 256 of them; 10 000 tries must hit the limit.
    for (let n = 0; n < 10_000; n++) {
      ptr = a.alloc(200);
      if (ptr === 0) break;
      held.push(ptr);
    }
    expect(ptr).toBe(0);
    const stats = arena.stats();
    expect(stats.limitHits).toBeGreaterThan(0);
    expect(stats.bytesInUse).toBeLessThanOrEqual(64 * 1024);
    expect(stats.cpus[0]?.classes[CLASS_UNIT_SIZES.indexOf(256)]?.refillsShort).toBeGreaterThan(0);
    // Still at the limit: a second try fails the same way, without throwing.
    expect(a.alloc(200)).toBe(0);
    // Free a few: they land in the cache, and the next allocations reuse them.
    for (const p of held.splice(0, 5)) a.free(p as Pointer);
    const again = allocMany(a, 200, 5);
    expect(again.every((p) => p !== 0)).toBe(true);
    expect(arena.stats().liveUnits).toBe(held.length + 5);
  });
});

describe('growable arena', () => {
  it('starts small and grows its buffer as pages are carved, up to the limit', () => {
    const maxBytes = 4 << 20;
    const arena = Arena.create({ cpus: 1, maxBytes, growable: true });
    const buffer = arena.shared.buffer;
    const initial = buffer.byteLength;
    const a = arena.attach(0);
    const total = readLayout(a.i32).totalBytes;
    expect(initial).toBeLessThan(total);
    // Fill memory with 4088-byte allocations until the limit; each gets written end to end.
    const held: number[] = [];
    for (let ptr = a.alloc(4088); ptr !== 0; ptr = a.alloc(4088)) {
      a.bytes.fill(0xa5, ptr, ptr + 4088);
      held.push(ptr);
    }
    expect(buffer.byteLength).toBeGreaterThan(initial);
    expect(buffer.byteLength).toBeLessThanOrEqual(total);
    // The handle's views track the grown buffer: the last unit's bytes are really there.
    const last = held[held.length - 1] ?? 0;
    expect(last + 4088).toBeLessThanOrEqual(buffer.byteLength);
    expect(a.bytes[last + 4087]).toBe(0xa5);
    expect(arena.stats().bytesInUse).toBeLessThanOrEqual(maxBytes);
    expect(held.length).toBeGreaterThan(maxBytes / 4096 / 2);
  });
});

describe('fixed-size caches', () => {
  it('serves allocFixed(id) from a class of its own with the object size as usable size', () => {
    const { arena, a } = setup({ fixedSizes: [300, 40] });
    const fixed = CLASS_UNIT_SIZES.length; // class of fixed cache 0
    const klass = arena.stats().classes[fixed];
    // Unit = object + 8 header, rounded up to 8 so user pointers stay 8-byte aligned.
    expect(klass).toMatchObject({ unitSize: 312, objectSize: 300 });
    expect(cacheOf(arena, 0, fixed).free).toBe(1); // prefill of a unit > 256 bytes
    // Watermarks come from the kernel's unit_size = object + 8 = 308 (low 26, high 79), not
    // from the layout's rounded 312 (which would give high 78).
    expect(cacheOf(arena, 0, fixed)).toMatchObject({ low: 26, high: 79 });
    const ptr = a.allocFixed(0);
    expect(ptr).not.toBe(0);
    expect(ptr % 8).toBe(0);
    expect(a.usableSize(ptr)).toBe(300);
    // The kernel formula for a ~300-byte unit: batch 39, so the refill after the first
    // alloc (0 left < low 26) brings the cache to 39.
    expect(cacheOf(arena, 0, fixed)).toMatchObject({ live: 1, allocs: 1, free: 39 });
    const small = a.allocFixed(1);
    expect(a.usableSize(small)).toBe(40);
    expect(arena.stats().classes[fixed + 1]).toMatchObject({ unitSize: 48, live: 1 });
    a.free(ptr);
    a.free(small);
    expect(arena.stats().liveUnits).toBe(0);
  });

  it.each([2, -1, 1.5, Number.NaN, 1e9])('returns 0 for the unknown fixed cache id %s', (id) => {
    const { arena, a } = setup({ fixedSizes: [300, 40] });
    const before = arena.stats().liveUnits;
    expect(a.allocFixed(id)).toBe(0);
    expect(arena.stats().liveUnits).toBe(before);
  });
});

describe('unit header generation', () => {
  it('increments each time the same unit is handed out again', () => {
    const { a } = setup();
    const generationOf = (ptr: number) => (a.i32[((ptr - 8) >> 2) + 1] ?? 0) >>> 2;
    const ptr = a.alloc(32);
    const first = generationOf(ptr);
    for (let reuse = 1; reuse <= 5; reuse++) {
      a.free(ptr);
      // Freeing keeps the generation; only the state bits change.
      expect(generationOf(ptr)).toBe(first + reuse - 1);
      // LIFO cache: the next alloc of the class is the same unit, one generation on.
      expect(a.alloc(32)).toBe(ptr);
      expect(generationOf(ptr)).toBe(first + reuse);
    }
  });
});
