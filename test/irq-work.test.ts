/**
 * Policy refillWork 'irq-work' (src/cpu.ts): the refill a pop below the low watermark needs, and
 * the trim a push above the high watermark needs, are raised, not run; they run on the same CPU
 * before its next allocation or free of that class (or at its next poll), and decide from the
 * count they find then, as the kernel's bpf_mem_refill does. Deterministic mode (CPU handles on
 * the main thread, manual coordinator), 64-byte class (low 32, high 96, batch 48, trim to 64).
 */
import { describe, expect, it } from 'vitest';
import { Arena, type CpuHandle, type Pointer } from '../src/index.js';
import { PRESETS } from '../src/lab/index.js';

const CLS_64 = 2;

function setup(refillWork: 'inline' | 'irq-work') {
  const arena = Arena.create({
    cpus: 1,
    maxBytes: 8 << 20,
    coordinator: 'manual',
    policy: { ...PRESETS['kernel-6.4'], trimVia: 'slab', refillWork },
  });
  return { arena, cpu: arena.attach(0) };
}

function cache(arena: Arena) {
  const c = arena.stats().cpus[0]?.classes[CLS_64];
  if (!c) throw new Error('no cache');
  return c;
}

function allocMany(cpu: CpuHandle, n: number): Pointer[] {
  return Array.from({ length: n }, () => {
    const ptr = cpu.alloc(56);
    expect(ptr).not.toBe(0);
    return ptr;
  });
}

describe("refillWork 'irq-work'", () => {
  it('defers the refill to the next call and the trim to the next free, where inline runs them at once', async () => {
    for (const mode of ['inline', 'irq-work'] as const) {
      const { arena, cpu } = setup(mode);
      // Prefill 4: the first pop refills (the list is below low), inline or at the next call.
      const held = allocMany(cpu, 1);
      const afterFirst = cache(arena).refills;
      allocMany(cpu, 1);
      const afterSecond = cache(arena).refills;
      if (mode === 'inline') {
        expect(afterSecond).toBe(afterFirst);
      } else {
        // The crossing pop only raised the work; the second call ran it.
        expect(afterSecond).toBe(afterFirst + 1);
      }
      // Fill the free list above high: free 100 units allocated meanwhile.
      const many = allocMany(cpu, 100);
      const trimsBefore = cache(arena).trims;
      for (const p of many) cpu.free(p);
      const countAfterFrees = cache(arena).free;
      if (mode === 'inline') {
        expect(cache(arena).trims).toBeGreaterThan(trimsBefore);
        expect(countAfterFrees).toBeLessThanOrEqual(96);
      } else {
        // Raised at the 97th unit, and every later free ran the pending trim first.
        expect(cache(arena).trims).toBeGreaterThan(trimsBefore);
        expect(countAfterFrees).toBeGreaterThan(64);
      }
      for (const p of held) cpu.free(p);
      cpu.detach();
      await arena.close();
    }
  });

  it('runs a pending trim at poll(), and decides from the count it finds then', async () => {
    const { arena, cpu } = setup('irq-work');
    const units = allocMany(cpu, 200);
    cpu.poll(); // runs a refill the last pops may have raised
    const start = cache(arena).free;
    expect(start).toBeLessThan(97);
    const crossing = 97 - start;
    for (const p of units.slice(0, crossing)) cpu.free(p);
    // The free that took the list to 97 (above high) raised the trim and did not run it.
    const trims = cache(arena).trims;
    expect(cache(arena).free).toBe(97);
    cpu.poll();
    expect(cache(arena)).toMatchObject({ free: 64, trims: trims + 1 });
    // Nothing raised now: another poll changes nothing.
    cpu.poll();
    expect(cache(arena)).toMatchObject({ free: 64, trims: trims + 1 });
    for (const p of units.slice(crossing)) cpu.free(p);
    cpu.detach();
    await arena.close();
  });

  it('is refused with a deferring reuse policy', () => {
    expect(() =>
      Arena.create({ cpus: 1, maxBytes: 8 << 20, policy: { ...PRESETS.arena, refillWork: 'irq-work' } }),
    ).toThrow(/refillWork 'irq-work'/);
  });
});
