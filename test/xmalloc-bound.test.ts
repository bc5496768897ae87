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
 * again, twice as long, up to three times, and fails only on a run that did enough work (or
 * says that none did).
 */
import { describe, expect, it } from 'vitest';
import { runXmalloc, type XmallocReport } from '../src/lab/benchmarks/xmalloc.js';

/** Bytes of one 64-byte object's unit (96-byte class: 64 + the 8-byte header, rounded up). */
const kUnitBytes = 96;

/** Enough work: the run freed at least twice the bound's bytes (so piling up would show). */
function didEnoughWork(r: XmallocReport): boolean {
  return r.objectsPerSec * r.durationS * kUnitBytes >= 2 * r.boundMiB * 2 ** 20;
}

describe('xmalloc memory bound', () => {
  it.each([
    ['arena', true],
    ['kernel-6.1', false],
  ] as const)('%s: peak memory within the bound: %s', async (policy, within) => {
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
    expect.fail(`every run was starved (freed less than twice the bound): ${starved.join('; ')}`);
  });

  it('does not judge a starved run', () => {
    const starved = { objectsPerSec: 4107, durationS: 1, boundMiB: 50.3 } as XmallocReport;
    const busy = { objectsPerSec: 2_000_000, durationS: 1, boundMiB: 50.3 } as XmallocReport;
    expect(didEnoughWork(starved)).toBe(false);
    expect(didEnoughWork(busy)).toBe(true);
  });
});
