/**
 * Adaptive capacity (policy choice `capacity: 'adaptive'`), in the deterministic mode: bursts
 * larger than a cache's watermarks make refills and trims alternate; the watermarks then double
 * (up to 8 × the kernel's) until a burst fits in the cache, and fall back when the CPU parks or
 * stays quiet for a second. The per-CPU overflow/underflow ratio shows the circulation.
 */
import { describe, expect, it } from 'vitest';
import { Arena, type CpuHandle, PRESETS } from '../src/index.js';

/** The 32-byte class (user size 24): kernel watermarks low 32, high 96. */
const CLS = 1;
const SIZE = 24;

function setup(capacity: 'fixed' | 'adaptive') {
  const arena = Arena.create({
    cpus: 1,
    maxBytes: 8 << 20,
    coordinator: 'manual',
    policy: { ...PRESETS['kernel-6.6'], trimVia: 'slab', capacity },
  });
  return { arena, cpu: arena.attach(0) };
}

const cache = (arena: Arena) =>
  arena.stats().cpus[0]?.classes[CLS] as {
    refills: number;
    trims: number;
    free: number;
    high: number;
    low: number;
  };

function burst(cpu: CpuHandle, n: number): void {
  const ptrs = Array.from({ length: n }, () => cpu.alloc(SIZE));
  expect(ptrs.every((p) => p !== 0)).toBe(true);
  for (const ptr of ptrs) cpu.free(ptr);
}

/** Refills + trims of `rounds` bursts of `n`, after `warm` bursts to let the capacity settle. */
function slowPathsPerBurst(capacity: 'fixed' | 'adaptive', n: number) {
  const { arena, cpu } = setup(capacity);
  for (let k = 0; k < 20; k++) burst(cpu, n);
  const before = cache(arena);
  for (let k = 0; k < 50; k++) burst(cpu, n);
  const after = cache(arena);
  return {
    perBurst: (after.refills - before.refills + after.trims - before.trims) / 50,
    high: after.high,
    ratio: arena.stats().cpus[0]?.overflowUnderflowRatio as number,
  };
}

describe('adaptive capacity', () => {
  it('grows while refills and trims alternate, until a burst fits in the cache', () => {
    const fixed = slowPathsPerBurst('fixed', 400);
    const adaptive = slowPathsPerBurst('adaptive', 400);
    // Fixed watermarks: every 400-unit burst refills ~8 batches of 48 and trims as often.
    expect(fixed.high).toBe(96);
    expect(fixed.perBurst).toBeGreaterThan(8);
    expect(fixed.ratio).toBeGreaterThan(0.7);
    // Adaptive: the watermarks grew (a power of two times the kernel's, at most 8×) and a burst
    // now costs a refill or two and no trim.
    expect([192, 384, 768]).toContain(adaptive.high);
    expect(adaptive.perBurst).toBeLessThan(fixed.perBurst / 3);
  });

  it('never holds more than 8 × the kernel watermark', () => {
    const { arena, cpu } = setup('adaptive');
    for (let k = 0; k < 40; k++) burst(cpu, 3000);
    const c = cache(arena);
    expect(c.high).toBe(8 * 96);
    expect(c.free).toBeLessThanOrEqual(8 * 96);
  });

  it('gives the capacity back when the CPU parks, or after a quiet second at its doorbell', async () => {
    const { arena, cpu } = setup('adaptive');
    for (let k = 0; k < 20; k++) burst(cpu, 400);
    expect(cache(arena).high).toBeGreaterThan(96);
    cpu.park();
    expect(cache(arena).high).toBe(96);
    expect(cache(arena).free).toBeLessThanOrEqual(96);
    cpu.unpark();
    for (let k = 0; k < 20; k++) burst(cpu, 400);
    const grown = cache(arena).high;
    expect(grown).toBeGreaterThan(96);
    cpu.poll(); // not quiet yet: nothing changes
    expect(cache(arena).high).toBe(grown);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    cpu.poll();
    expect(cache(arena).high).toBe(grown / 2);
    expect(cache(arena).free).toBeLessThanOrEqual(grown / 2);
    cpu.detach();
    expect((await arena.close()).leaked).toBe(0);
  });

  it('is refused with a deferring reuse choice (their trims do not report to it yet)', () => {
    expect(() =>
      Arena.create({ cpus: 1, policy: { ...PRESETS['reuse-after-gp'], capacity: 'adaptive' } }),
    ).toThrow(/EINVAL.*capacity 'adaptive' needs reuse 'immediate'/);
  });
});
