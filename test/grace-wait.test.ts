/**
 * The benchmarks' grace-period wait (src/lab/benchmarks/grace-wait.ts): the arithmetic on
 * scripted samples, then real htab-mem runs — under immediate reuse (`sheaves`) no freed unit
 * waits; when every free goes through the rcu_free sheaf (`sheaves-rcu`) a unit waits at least
 * about one rcu epoch (10 ms minimum here), and freesPerS agrees with xmalloc's own count.
 */
import { describe, expect, it } from 'vitest';
import { GraceWaitAccumulator } from '../src/lab/benchmarks/grace-wait.js';
import { runHtabMem } from '../src/lab/benchmarks/htab-mem.js';
import { runXmalloc } from '../src/lab/benchmarks/xmalloc.js';

describe('GraceWaitAccumulator', () => {
  it("Little's law on scripted samples: 1000 units waiting, 10 000 frees/s → 100 ms", () => {
    const acc = new GraceWaitAccumulator();
    for (let k = 0; k <= 20; k++) acc.add(k * 50, k * 500, 1000, 1000 * 96);
    const r = acc.result();
    expect(r.freesPerS).toBe(10_000);
    expect(r.meanWaitingUnits).toBe(1000);
    expect(r.meanWaitMs).toBe(100);
    expect(r.heldMiB).toBeCloseTo((1000 * 96) / 2 ** 20, 2);
  });

  it('integrates a changing backlog (trapezoids) and reports nothing for fewer than two samples', () => {
    const acc = new GraceWaitAccumulator();
    expect(acc.result().freesPerS).toBe(0);
    acc.add(0, 0, 0, 0);
    expect(acc.result().meanWaitMs).toBe(0);
    acc.add(1000, 1000, 200, 0); // backlog rises linearly 0 → 200 over 1 s: mean 100
    const r = acc.result();
    expect(r.meanWaitingUnits).toBe(100);
    expect(r.meanWaitMs).toBe(100);
  });
});

/** Runs until the measured seconds freed at least `minFrees` units (a starved run says nothing). */
async function htabUntilWork(policy: 'sheaves' | 'sheaves-rcu', minFrees: number) {
  for (let durationS = 1; ; durationS *= 2) {
    const r = await runHtabMem({
      useCase: 'overwrite',
      producers: 2,
      policy,
      warmupS: 0.3,
      durationS,
      gpMinMs: { rcu: 10, ttrace: 100 },
    });
    if (r.freesPerS * durationS >= minFrees || durationS >= 4) return r;
  }
}

describe('benchmark JSON: freesPerS and the grace-period wait', () => {
  it('immediate reuse waits for nothing; the rcu_free sheaf makes every unit wait about an epoch or more', async () => {
    const immediate = await htabUntilWork('sheaves', 50_000);
    const deferred = await htabUntilWork('sheaves-rcu', 50_000);
    // Enough work first.
    expect(immediate.freesPerS * immediate.durationS).toBeGreaterThanOrEqual(50_000);
    expect(deferred.freesPerS * deferred.durationS).toBeGreaterThanOrEqual(50_000);
    expect(immediate.gpWait.meanWaitingUnits).toBe(0);
    expect(immediate.gpWait.meanWaitMs).toBe(0);
    // A GP is at least one 10 ms rcu epoch (the minimum these runs set).
    expect(deferred.gpWait.meanWaitMs).toBeGreaterThanOrEqual(10);
    expect(deferred.gpWait.heldMiB).toBeGreaterThan(0);
  });

  it("xmalloc's freesPerS (the allocator's counters) agrees with its consumers' own count within 10 %", async () => {
    for (let durationS = 1; ; durationS *= 2) {
      const r = await runXmalloc({ producers: 1, policy: 'kernel-6.6', warmupS: 0.3, durationS });
      if (r.objectsPerSec * durationS < 100_000 && durationS < 4) continue;
      expect(r.objectsPerSec * durationS).toBeGreaterThanOrEqual(100_000);
      expect(Math.abs(r.freesPerS - r.objectsPerSec) / r.objectsPerSec).toBeLessThan(0.1);
      return;
    }
  });
});
