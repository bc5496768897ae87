/**
 * The shrinker (src/cpu/shrinker.ts): at the memory limit a refill that finds nothing drains the
 * parked CPUs and tries an urgent GP before `alloc` returns 0; `alloc` never throws there and
 * succeeds again once memory is back. In the deterministic mode with a coordinator nobody steps,
 * so only the shrinker can make the units come back; and a reader still inside its section keeps
 * its units from being reused even at the limit.
 */
import { describe, expect, it } from 'vitest';
import type { Pointer } from '../src/index.js';
import { Arena, type ArenaOptions, type CpuHandle } from '../src/index.js';
import { PRESETS } from '../src/lab/index.js';

const SIZE = 24;

/** Allocates until alloc returns 0; the pointers. */
function fill(cpu: CpuHandle): number[] {
  const ptrs: number[] = [];
  for (;;) {
    const ptr = cpu.alloc(SIZE);
    if (ptr === 0) return ptrs;
    ptrs.push(ptr);
  }
}

function setup(policy: NonNullable<ArenaOptions['policy']>, gpMinMs?: ArenaOptions['gpMinMs']) {
  const arena = Arena.create({
    cpus: 2,
    maxBytes: 48 * 4096,
    coordinator: 'manual',
    policy,
    ...(gpMinMs ? { gpMinMs } : {}),
  });
  return { arena, a: arena.attach(0), b: arena.attach(1) };
}

describe('shrinker at the memory limit', () => {
  it("takes a parked CPU's cached units back: every unit of the arena can be allocated", () => {
    const { arena, a, b } = setup({ ...PRESETS['kernel-6.6'], trimVia: 'slab' });
    const all = fill(b);
    expect(all.length).toBeGreaterThan(1000);
    for (const ptr of all) b.free(ptr as Pointer);
    expect(arena.stats().cpus[1]?.classes[1]?.free).toBeGreaterThan(0); // cached on b
    b.park();
    // a gets every unit of the class, including those b had cached, then a clean 0.
    fill(a);
    const stats = arena.stats();
    expect(stats.classes[1]?.live).toBe(stats.classes[1]?.units);
    expect(stats.reclaim.drainedCpus).toBeGreaterThan(0);
    expect(stats.reclaim.succeeded).toBeGreaterThan(0);
    expect(stats.cpus[1]?.classes[1]?.free).toBe(0);
    expect(a.alloc(SIZE)).toBe(0);
    // b comes back and finds memory as soon as some is freed to the slab.
    b.unpark();
    expect(b.alloc(SIZE)).toBe(0);
  });

  it('runs an urgent GP for deferred frees nobody else would advance', () => {
    const { arena, a } = setup('reuse-after-gp');
    const first = fill(a);
    for (const ptr of first) a.free(ptr as Pointer);
    // (The CPU's own help may already have passed some of them.)
    expect(arena.stats().totals.deferred).toBeGreaterThan(first.length / 2);
    // No coordinator steps the epochs (manual mode): only the shrinker's advances bring them back.
    expect(fill(a).length).toBe(first.length);
    const reclaim = arena.stats().reclaim;
    expect(reclaim.gpAdvances).toBeGreaterThanOrEqual(2);
    expect(reclaim.succeeded).toBeGreaterThan(0);
  });

  it('never reuses a unit under a reader, even at the limit', () => {
    const { arena, a, b } = setup('reuse-after-gp');
    const ptrs = fill(a);
    b.readLock(); // pinned at the current epoch
    for (const ptr of ptrs) a.free(ptr as Pointer);
    // The shrinker may advance once (b saw the current epoch), not twice: nothing comes back.
    expect(a.alloc(SIZE)).toBe(0);
    expect(arena.stats().totals.deferred).toBe(ptrs.length);
    b.readUnlock();
    expect(a.alloc(SIZE)).not.toBe(0);
  });

  it('respects the emulated GP duration', () => {
    const { arena, a } = setup('reuse-after-gp', { rcu: 60_000, ttrace: 60_000 });
    const ptrs = fill(a);
    for (const ptr of ptrs) a.free(ptr as Pointer);
    expect(a.alloc(SIZE)).toBe(0);
    expect(arena.stats().reclaim.runs).toBeGreaterThan(0);
    expect(arena.stats().reclaim.gpAdvances).toBe(0);
  });
});
