/**
 * Stress test with real workers: no reuse inside a read-side section. A writer CPU replaces
 * published units and frees the old ones while reader CPUs hold them inside `readLock()` and
 * check generation, state and contents (src/lab/scenarios/reuse-oracle.ts). Under the presets that
 * reuse only after an rcu GP, and with `freeRcu` under any preset, nothing may change under a
 * reader; under kernel-6.6, whose `free` reuses at once, the same oracle must see reuse, which is
 * the proof that a green run means something. Not a benchmark. Sizes from the environment:
 * REUSE_SECTIONS (reader sections per run, 2 000 000), REUSE_CPUS (2: one writer, one reader).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Arena, type ArenaOptions, type PresetName } from '../src/index.js';
import type { ReuseOracleArgs, ReuseOracleResult } from '../src/lab/scenarios/reuse-oracle.js';
import { CpuPool } from '../src/service/pool.js';

const sections = Number(process.env.REUSE_SECTIONS ?? 2_000_000);
const cpus = Number(process.env.REUSE_CPUS ?? 2);
const oracleModule = new URL('../src/lab/scenarios/reuse-oracle.ts', import.meta.url);

let cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

interface Run {
  readonly arena: Arena;
  readonly pool: CpuPool;
  readonly control: Int32Array;
  readonly results: Promise<ReuseOracleResult[]>;
}

function startOracle(options: ArenaOptions, args: Partial<ReuseOracleArgs> = {}): Run {
  const arena = Arena.create(options);
  const pool = CpuPool.start(arena);
  cleanup.push(() => pool.close());
  const slots = args.slots ?? 16;
  const shared = new SharedArrayBuffer((2 + slots) * 4);
  const results = pool.run<ReuseOracleResult>(oracleModule, 'reuseOracle', {
    sections,
    slots,
    size: 48,
    free: 'free',
    checks: 2,
    shared,
    ...args,
  } satisfies ReuseOracleArgs);
  return { arena, pool, control: new Int32Array(shared), results };
}

function violationsOf(results: ReuseOracleResult[]): number {
  return results.reduce((n, r) => n + r.violations.generation + r.violations.contents + r.violations.free, 0);
}

describe('stress: a unit held inside readLock is never reused before readUnlock', () => {
  const safe: [PresetName, 'free' | 'freeRcu'][] = [
    ['reuse-after-gp', 'free'],
    ['free-after-gp', 'free'],
    ['kernel-free-rcu', 'free'],
    ['arena', 'free'],
    ['kernel-6.6', 'freeRcu'],
  ];
  it.each(safe)('%s with %s: no reader sees reuse', async (policy, free) => {
    const { arena, results } = startOracle({ cpus, policy }, { free });
    const all = await results;
    const readers = all.filter((r) => r.role === 'reader');
    expect(readers.flatMap((r) => r.samples)).toEqual([]);
    expect(violationsOf(all)).toBe(0);
    // The run did what it claims: every section ran, most found a unit, and the writer kept
    // replacing units all along (so units were freed under the readers).
    const done = readers.reduce((n, r) => n + r.sections, 0);
    expect(done).toBeGreaterThanOrEqual(sections);
    expect(readers.reduce((n, r) => n + r.held, 0)).toBeGreaterThan(done * 0.9);
    const writer = all.find((r) => r.role === 'writer') as ReuseOracleResult;
    expect(writer.writes).toBeGreaterThan(10_000);
    // Reclamation kept up: at most one failed allocation in 10 000 (a preempted reader).
    expect(writer.allocFailures).toBeLessThanOrEqual(writer.writes / 10_000);
    const stats = arena.stats();
    expect(stats.gp.rcu.completed).toBeGreaterThan(0);
    expect(stats.totals.reclaimed).toBeGreaterThan(0);
    const report = await arena.close();
    expect(report.leaked).toBe(0);
    expect(report.deferred).toBe(0);
  });

  it('kernel-6.6 with free: the oracle sees the immediate reuse (it can fail)', async () => {
    const { results } = startOracle({ cpus, policy: 'kernel-6.6' }, { free: 'free' });
    const all = await results;
    expect(violationsOf(all)).toBeGreaterThan(0);
    expect(all.flatMap((r) => r.samples).join('\n')).toMatch(/inside a read section/);
  });
});

describe('stress: grace periods advance while the main thread is blocked', () => {
  it('CPUs advance the epochs themselves, so freeRcu never runs the arena out of memory', async () => {
    // 32 MiB of pages: at most 524 288 units of 64 bytes. The writer frees far more than that
    // with freeRcu while the main thread (the coordinator's) is blocked in Atomics.wait for
    // 1.5 s. A reader preempted inside its section holds GPs back, as in the kernel, for as long
    // as the OS keeps it off its core: at ~5-10 M frees/s, 2 MiB lasted 3 ms of that on a loaded
    // 2-core machine, and 8 MiB (13 ms) still saw 1 189 failures in 7.1 M writes on Node 24 while
    // .ci/run's other test files shared the two cores; 32 MiB covers 50 ms, and a rare failure
    // is allowed (see below).
    //
    // The point shows only if the writer freed more than twice the arena's capacity while this
    // thread was blocked. A starved run (once: 159 428 writes in 1.5 s on a busy machine) proves
    // nothing either way: it is run again, blocking twice as long, up to three times. What must
    // hold in every run (no reader sees reuse, memory within the limit) is checked in every run.
    const maxBytes = 32 << 20;
    const starved: number[] = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      const run = startOracle(
        { cpus, policy: 'kernel-6.6', maxBytes },
        { free: 'freeRcu', sections: 50_000_000 },
      );
      // Wait (without blocking) until both CPUs run, then block this thread.
      while (Atomics.load(run.control, 0) < cpus) {
        const wait = Atomics.waitAsync(run.control, 0, Atomics.load(run.control, 0), 100);
        if (wait.async) await wait.value;
      }
      const before = run.arena.stats().gp.rcu;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500 * 2 ** attempt);
      const during = run.arena.stats().gp.rcu;
      // Stop the readers early: the test is about the blocked period.
      Atomics.store(run.control, 1, 1);
      const all = await run.results;
      const writer = all.find((r) => r.role === 'writer') as ReuseOracleResult;
      expect(violationsOf(all)).toBe(0);
      expect(run.arena.stats().peakBytes).toBeLessThanOrEqual(maxBytes);
      if (writer.writes <= (2 * maxBytes) / 64) {
        starved.push(writer.writes);
        continue;
      }
      // Nearly all writes happen while this thread is blocked (the run stops right after):
      // freeing more than twice the arena's capacity without a single failed allocation means
      // units were reclaimed, and only the CPUs could advance the epochs.
      expect(during.helpedAdvances - before.helpedAdvances).toBeGreaterThan(1);
      expect(during.epoch - before.epoch).toBeGreaterThan(1);
      // Reclamation kept up: at most one failed allocation in 10 000 (a preempted reader).
      expect(writer.allocFailures).toBeLessThanOrEqual(writer.writes / 10_000);
      return;
    }
    expect.fail(
      `every run was starved: the writer freed ${starved.join(', ')} units (not over ${(2 * maxBytes) / 64})`,
    );
  });
});
