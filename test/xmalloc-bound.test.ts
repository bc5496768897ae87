/**
 * The xmalloc shape (every free remote) against its memory bound (src/lab/benchmarks/xmalloc.ts
 * `memoryBound`: live objects + caches + depot + nine epochs of frees), with kernel-like GP
 * timing (10 ms rcu / 300 ms ttrace epochs): the `arena` preset stays within it;
 * `kernel-6.1`, whose remote frees wait on the freeing CPU's ttrace lists, goes far above it —
 * so the check can fail. Real workers, 1 producer and 1 consumer, 1 s measured.
 *
 * The shape shows only if the run moved enough memory: a run starved by a busy machine (once:
 * 4107 objects/s, 2.38 MiB peak against a 50 MiB bound) frees too little for any policy to pile
 * up past the bound. Such a run proves nothing either way, so it is not judged: the test runs
 * again, twice as long, up to three times, and judges only a run that did enough work; when none
 * did, the test is skipped with the runs' figures (it cannot say anything on such a machine).
 */
import { describe, expect, it } from 'vitest';
import { runXmalloc, type XmallocReport } from '../src/lab/benchmarks/xmalloc.js';

/** Bytes of one 64-byte object's unit (96-byte class: 64 + the 8-byte header, rounded up). */
const kUnitBytes = 96;

/**
 * Enough work: the run freed at least twice the bound's bytes, and fast enough that the frees
 * waiting for grace periods are a real part of the bound. The bound is the live objects (the
 * queue full: about 51 MiB whatever the rate) plus the frees of nine epochs at the run's rate; a
 * run slowed tenfold by other processes (once in .ci/run: 677 228 objects/s, a 57.8 MiB bound of
 * which 5.8 MiB of frees, peak 61.7 MiB) makes that second part too small for the bound to say
 * anything about piling up. Such a run is not judged: at the minimum rcu epoch its frees must be
 * at least a quarter of the bound.
 */
function didEnoughWork(r: XmallocReport): boolean {
  const bound = r.boundMiB * 2 ** 20;
  const waiting = r.objectsPerSec * 9 * (r.gpMinMs.rcu / 1000) * kUnitBytes;
  return r.objectsPerSec * r.durationS * kUnitBytes >= 2 * bound && waiting >= bound / 4;
}

describe('xmalloc memory bound', () => {
  for (const [policy, within] of [
    ['arena', true],
    ['kernel-6.1', false],
  ] as const)
    it(`${policy}: peak memory within the bound: ${within}`, async (ctx) => {
      const starved: string[] = [];
      for (let attempt = 0; attempt < 3; attempt++) {
        const r = await runXmalloc({
          producers: 1,
          policy,
          warmupS: 0.5,
          durationS: 2 ** attempt,
          // A long ttrace epoch keeps kernel-6.1 far above the bound even on a loaded machine (its
          // remote frees wait on the consumer's ttrace lists); the bound depends on rcu epochs only.
          gpMinMs: { rcu: 10, ttrace: 300 },
        });
        const summary = `peak ${r.peakMiB} MiB, bound ${r.boundMiB} MiB, ${r.objectsPerSec} objects/s over ${r.durationS} s`;
        if (!didEnoughWork(r)) {
          starved.push(summary);
          continue;
        }
        expect(r.peakMiB <= r.boundMiB, summary).toBe(within);
        return;
      }
      // Three runs too slow to show the shape say nothing about it: not judged, and said so.
      ctx.skip(`every run was too slow to judge (other processes took the CPUs): ${starved.join('; ')}`);
    });

  it('does not judge a starved run', () => {
    const gpMinMs = { rcu: 10, ttrace: 300 };
    const starved = { objectsPerSec: 4107, durationS: 1, boundMiB: 50.3, gpMinMs } as XmallocReport;
    const slowed = { objectsPerSec: 677_228, durationS: 2, boundMiB: 57.84, gpMinMs } as XmallocReport;
    const busy = { objectsPerSec: 5_878_243, durationS: 1, boundMiB: 110.6, gpMinMs } as XmallocReport;
    expect(didEnoughWork(starved)).toBe(false);
    expect(didEnoughWork(slowed)).toBe(false);
    expect(didEnoughWork(busy)).toBe(true);
  });
});
