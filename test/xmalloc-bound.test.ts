/**
 * The xmalloc shape (every free remote) against its memory bound (src/lab/benchmarks/xmalloc.ts
 * `memoryBound`: live objects + caches + depot + nine epochs of frees), with kernel-like GP
 * timing (10 ms rcu / 300 ms ttrace epochs): the `arena` preset stays within it;
 * `kernel-6.1`, whose remote frees wait on the freeing CPU's ttrace lists, goes far above it —
 * so the check can fail. Real workers, 1 producer and 1 consumer, 1 s measured.
 */
import { describe, expect, it } from 'vitest';
import { runXmalloc } from '../src/lab/benchmarks/xmalloc.js';

describe('xmalloc memory bound', () => {
  it.each([
    ['arena', true],
    ['kernel-6.1', false],
  ] as const)('%s: peak memory within the bound: %s', async (policy, within) => {
    const r = await runXmalloc({
      producers: 1,
      policy,
      warmupS: 0.5,
      durationS: 1,
      // A long ttrace epoch keeps kernel-6.1 far above the bound even on a loaded machine (its
      // remote frees wait on the consumer's ttrace lists); the bound depends on rcu epochs only.
      gpMinMs: { rcu: 10, ttrace: 300 },
    });
    expect(r.objectsPerSec).toBeGreaterThan(0);
    expect(
      r.peakMiB <= r.boundMiB,
      `peak ${r.peakMiB} MiB, bound ${r.boundMiB} MiB, ${r.objectsPerSec} objects/s`,
    ).toBe(within);
  });
});
