/**
 * The memcg model (src/memcg.ts) against the kernel's charging rules, and what it changes in
 * `bench htab-mem`: the kernel bench reads the cgroup's memory.current, where every CPU that
 * charged holds up to MEMCG_CHARGE_BATCH pages of stock, so the normal map (whose producer CPUs
 * allocate) reads above the pre-allocated one (whose elements were allocated once, at creation)
 * although it holds fewer pages: table A's order (research/kernel.md §1.12).
 */
import { describe, expect, it } from 'vitest';
import { runHtabMem } from '../src/lab/benchmarks/htab-mem.js';
import { MEMCG_CHARGE_BATCH, MemcgModel } from '../src/lab/benchmarks/memcg.js';

const PAGE = 4096;

describe('MemcgModel', () => {
  it('charges a batch of 64 pages per CPU and serves the next charges from that CPU’s stock', () => {
    const m = new MemcgModel(2);
    m.chargePages(0, 1);
    expect(m.currentBytes).toBe(MEMCG_CHARGE_BATCH * PAGE);
    expect(m.stockBytes).toBe((MEMCG_CHARGE_BATCH - 1) * PAGE);
    for (let i = 0; i < MEMCG_CHARGE_BATCH - 1; i++) m.chargePages(0, 1);
    expect(m.currentBytes).toBe(MEMCG_CHARGE_BATCH * PAGE);
    expect(m.stockBytes).toBe(0);
    // Another CPU has a stock of its own.
    m.chargePages(1, 1);
    expect(m.currentBytes).toBe(2 * MEMCG_CHARGE_BATCH * PAGE);
    // A charge above the batch goes to the counter as it is.
    m.chargePages(1, 100);
    expect(m.currentBytes).toBe((2 * MEMCG_CHARGE_BATCH + 100) * PAGE);
  });

  it('drains a stock that grows above 64 pages, and keeps the high-water mark', () => {
    const m = new MemcgModel(1);
    for (let i = 0; i < 74; i++) m.chargePages(0, 1); // two batches: 128 charged, 54 in stock
    expect(m.currentBytes).toBe(128 * PAGE);
    m.unchargePages(0, 10); // stock 64: kept
    expect(m.currentBytes).toBe(128 * PAGE);
    m.unchargePages(0, 1); // 65 > 64: the whole stock goes back
    expect(m.currentBytes).toBe(63 * PAGE);
    expect(m.stockBytes).toBe(0);
    expect(m.peakBytes).toBe(128 * PAGE);
  });

  it('charges objects in bytes through the object stock (size + 8 per object)', () => {
    const m = new MemcgModel(1);
    m.chargeObjects(0, 1, 32); // 40 bytes: one page charged (a batch of 64), 4056 bytes left
    expect(m.currentBytes).toBe(MEMCG_CHARGE_BATCH * PAGE);
    m.chargeObjects(0, 101, 32); // 4040 more bytes: from the object stock
    expect(m.stockBytes).toBe((MEMCG_CHARGE_BATCH - 1) * PAGE);
    m.chargeObjects(0, 1, 32); // 16 bytes left: the next page comes from the page stock
    expect(m.stockBytes).toBe((MEMCG_CHARGE_BATCH - 2) * PAGE);
    // Freeing them all gives whole pages back to the page stock, not to the counter.
    m.unchargeObjects(0, 103, 32);
    expect(m.currentBytes).toBe(MEMCG_CHARGE_BATCH * PAGE);
    expect(m.stockBytes).toBeGreaterThanOrEqual((MEMCG_CHARGE_BATCH - 1) * PAGE);
  });
});

describe('bench htab-mem through the memcg model', () => {
  it('reads the normal map above the pre-allocated one, where the arena’s pages say the opposite', async () => {
    // A starved run (a loaded machine) counts no program: run it again, longer.
    const run = async (policy: 'prealloc' | 'kernel-6.4') => {
      for (let durationS = 1; ; durationS *= 2) {
        const r = await runHtabMem({ useCase: 'overwrite', producers: 2, policy, warmupS: 0.5, durationS });
        if (r.perProdKops > 0 || durationS >= 8) return r;
      }
    };
    const prealloc = await run('prealloc');
    const normal = await run('kernel-6.4');
    // Enough work first: both maps served programs.
    expect(prealloc.perProdKops).toBeGreaterThan(0);
    expect(normal.perProdKops).toBeGreaterThan(0);
    // The arena's pages: the pre-allocated pool is the larger.
    expect(prealloc.peakMiB).toBeGreaterThan(normal.peakMiB);
    // What the cgroup reads: each producer CPU's stock puts the normal map above it.
    expect(normal.memcg.peakMiB).toBeGreaterThan(prealloc.memcg.peakMiB);
    expect(normal.memcg.stocksMiB).toBeGreaterThan(prealloc.memcg.stocksMiB);
  }, 120_000);
});
