/**
 * Stress test with real workers: CPUs churn random-size units, free locally and on other CPUs
 * (through a shared queue), and check every unit's stamp and contents before freeing it. Not a
 * benchmark. Sizes come from the environment, with small defaults for CI:
 * STRESS_CPUS (3), STRESS_OPS (allocations per CPU, 60000), STRESS_LIVE (units each CPU keeps, 500).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ChurnArgs, ChurnResult } from '../src/lab/scenarios/churn.js';
import { CpuPool } from '../src/service/pool.js';
import { PointerQueue } from '../src/structures/ring.js';
import { createTestArena, type TestArenaOptions } from '../src/testing.js';

const cpus = Number(process.env.STRESS_CPUS ?? 3);
const ops = Number(process.env.STRESS_OPS ?? 60_000);
const live = Number(process.env.STRESS_LIVE ?? 500);
const churnModule = new URL('../src/lab/scenarios/churn.ts', import.meta.url);

let cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

async function runChurn(options: TestArenaOptions, args: Partial<ChurnArgs> = {}) {
  const arena = createTestArena(options);
  const pool = CpuPool.start(arena);
  cleanup.push(() => pool.close());
  const queue = new PointerQueue(4096);
  const results = await pool.run<ChurnResult>(churnModule, 'churn', {
    ops,
    live,
    maxSize: 4088,
    remoteFraction: 0.25,
    queue: queue.buffer,
    seed: 42,
    ...args,
  } satisfies ChurnArgs);
  return { arena, results };
}

const sum = (results: ChurnResult[], key: keyof ChurnResult): number =>
  results.reduce((acc, r) => acc + (r[key] as number), 0);

describe('stress: churn across worker CPUs', () => {
  it(`${cpus} CPUs allocate, free locally and remotely, and corrupt nothing`, async () => {
    const { arena, results } = await runChurn({ cpus });
    const allErrors = results.flatMap((r) => r.errorSamples);
    expect(allErrors).toEqual([]);
    expect(sum(results, 'errors')).toBe(0);
    expect(sum(results, 'allocs')).toBe(cpus * ops);
    // Units really crossed CPUs, and every unit came back.
    expect(sum(results, 'remoteFrees')).toBeGreaterThan(0);
    expect(sum(results, 'remoteFrees')).toBe(sum(results, 'handedOff'));
    expect(sum(results, 'localFrees') + sum(results, 'remoteFrees')).toBe(sum(results, 'allocs'));
    const stats = arena.stats();
    expect(stats.liveUnits).toBe(0);
    expect(stats.cpus.every((c) => !c.online)).toBe(true);
    const report = await arena.close();
    expect(report.leaked).toBe(0);
  });

  it('runs within a memory limit: allocation fails with 0, never corrupts, and recovers', async () => {
    const { arena, results } = await runChurn({ cpus, maxBytes: 1 << 20 }, { live: 2000 });
    expect(sum(results, 'errors')).toBe(0);
    expect(sum(results, 'allocFailures')).toBeGreaterThan(0);
    expect(arena.stats().limitHits).toBeGreaterThan(0);
    expect(arena.stats().peakBytes).toBeLessThanOrEqual(1 << 20);
    expect(arena.stats().liveUnits).toBe(0);
    expect((await arena.close()).leaked).toBe(0);
  });

  it('nolock (trylocks only): CPUs that never wait corrupt nothing; allocations that found every lock busy return 0', async () => {
    const { arena, results } = await runChurn({ cpus, policy: 'nolock' });
    expect(results.flatMap((r) => r.errorSamples)).toEqual([]);
    expect(sum(results, 'errors')).toBe(0);
    expect(sum(results, 'allocs') + sum(results, 'allocFailures')).toBe(cpus * ops);
    expect(sum(results, 'remoteFrees')).toBeGreaterThan(0);
    expect(sum(results, 'localFrees') + sum(results, 'remoteFrees')).toBe(sum(results, 'allocs'));
    // The no-wait paths ran: frees that found no room were deferred, allocation misses took
    // single units from the slab (the memory limit is never hit, so a 0 is a busy lock).
    const sheaf = arena.stats().totals.sheaf;
    expect(sheaf.free_deferred).toBeGreaterThan(0);
    expect(sheaf.alloc_slowpath).toBeGreaterThan(0);
    expect(sheaf.alloc_fail).toBe(sum(results, 'allocFailures'));
    expect(arena.stats().limitHits).toBe(0);
    expect(arena.stats().liveUnits).toBe(0);
    expect((await arena.close()).leaked).toBe(0);
  });

  it('oracle check: detects units handed out twice (injected allocator fault)', async () => {
    // Every slow-path allocation hands its unit out a second time while the first holder still
    // uses it; the stamp check must see it (a clean run would mean the oracle is blind).
    const { results } = await runChurn(
      { cpus, faults: { handOutTwice: true } },
      { ops: Math.min(ops, 20_000) },
    );
    expect(sum(results, 'errors')).toBeGreaterThan(0);
    expect(results.flatMap((r) => r.errorSamples).some((m) => m.includes('stamp'))).toBe(true);
  });
});
