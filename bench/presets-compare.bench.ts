/**
 * Issue 17 item 4: bpf_mem_alloc's immediate reuse (`kernel-6.6`), `bpf_mem_free_rcu` everywhere
 * (`kernel-free-rcu`), SLUB sheaves (`sheaves`: kfree into the main sheaf; `sheaves-rcu`: every
 * free through the rcu_free sheaf), kmalloc_nolock on sheaves (`nolock`), and ours (`arena` on
 * lists, `arena-sheaves` on sheaves), side by side in one run: htab-mem's
 * three use cases with 2 producers and xmalloc with 1 producer + 1 consumer, under two GP timings
 * (kernel-like epochs: rcu ≥ 10 ms, ttrace ≥ 100 ms; and as fast as safe: no minimum). Every cell
 * runs BENCH_ROUNDS times, the presets interleaved round by round; the table quotes medians and
 * each preset's ratio to kernel-6.6 in the same rounds.
 *
 *   npm run build && node dist/bench/presets-compare.bench.js [--json]
 *   BENCH_ROUNDS=3 BENCH_SECONDS=3 BENCH_PRESETS=kernel-6.6,sheaves node dist/bench/presets-compare.bench.js
 *
 * The memory floor of a preset that reuses only after a GP: kernel-6.6's peak + the bytes freed
 * during 3 rcu epochs (frees/s × 3 × epoch × unit size; issue 17's target is arena ≤ 1.25× it).
 * The last column is the main thread's CPU time over each cell's wall time: it runs the GP
 * coordinator, and what it uses a 2-core machine takes from the two workers.
 * Not a test: it checks nothing but that runs complete.
 */

import { PRESETS, type PresetName } from '../src/epoch/policy.js';
import { runHtabMem } from '../src/lab/benchmarks/htab-mem.js';
import { runXmalloc } from '../src/lab/benchmarks/xmalloc.js';
import { envNumber, mainThreadCpuSeconds, summarize } from './bench-common.js';

const median = (xs: readonly number[]): number => summarize(xs).median;

const rounds = envNumber('BENCH_ROUNDS', 2, (v) => Number.isInteger(v) && v >= 1);
const seconds = envNumber('BENCH_SECONDS', 2, (v) => v > 0 && v <= 60);
const presets = (
  process.env.BENCH_PRESETS ?? 'kernel-6.6,kernel-free-rcu,sheaves,sheaves-rcu,nolock,arena,arena-sheaves'
).split(',') as PresetName[];
const json = process.argv.includes('--json');
const workloads = ['overwrite', 'batch_add_batch_del', 'add_del_on_diff_cpu', 'xmalloc'] as const;
const timings = [
  { name: 'kernel-like (rcu ≥ 10 ms, ttrace ≥ 100 ms)', gpMinMs: { rcu: 10, ttrace: 100 } },
  { name: 'as fast as safe (no minimum)', gpMinMs: { rcu: 0, ttrace: 0 } },
] as const;

interface Cell {
  readonly kops: number;
  readonly peakMiB: number;
  readonly freesPerS: number;
  readonly waitMs: number;
  readonly heldMiB: number;
  /** Bytes of one unit of the workload's class. */
  readonly unitBytes: number;
  readonly rcuEpochMs: number;
  /**
   * Sheaves only: objects moved between the CPUs and the slab per allocation (sheaf_refill +
   * sheaf_flush, and under nolock single-unit allocations and deferred frees).
   */
  readonly slabPerAlloc: number;
  /** Allocations that returned 0 (htab-mem: updates that failed), per million operations. */
  readonly failedPerM: number;
  /** CPU time of the main thread (the coordinator and the driver) over the cell's wall time, %. */
  readonly mainCpuPct: number;
}

/** What one run reports; the driver adds the main thread's CPU share. */
type RunFigures = Omit<Cell, 'mainCpuPct'>;

/** Mean rcu epoch of a run: its seconds over its epoch advances, at least the minimum. */
const epochMs = (advances: number, runS: number, minMs: number): number =>
  Math.max(minMs, advances > 0 ? (runS * 1000) / advances : 0);

/** The figures every report has, with the workload's unit size and its sheaf↔slab traffic. */
function cellOf(
  r: {
    readonly perProdKops: number;
    readonly peakMiB: number;
    readonly freesPerS: number;
    readonly gpWait: { readonly meanWaitMs: number; readonly heldMiB: number };
    readonly gp: { readonly rcu: { readonly advances: number } };
  },
  gpMinMs: { rcu: number },
  unitBytes: number,
  slabPerAlloc: number,
  failed: number,
  producers: number,
): RunFigures {
  const ops = r.perProdKops * 1000 * producers * seconds;
  return {
    failedPerM: ops > 0 ? (failed / ops) * 1e6 : Number.NaN,
    kops: r.perProdKops,
    peakMiB: r.peakMiB,
    freesPerS: r.freesPerS,
    waitMs: r.gpWait.meanWaitMs,
    heldMiB: r.gpWait.heldMiB,
    unitBytes,
    rcuEpochMs: epochMs(r.gp.rcu.advances, 0.5 + seconds, gpMinMs.rcu),
    slabPerAlloc,
  };
}

async function runCell(
  workload: (typeof workloads)[number],
  policy: PresetName,
  gpMinMs: { rcu: number; ttrace: number },
): Promise<RunFigures> {
  if (workload === 'xmalloc') {
    const r = await runXmalloc({ producers: 1, policy, warmupS: 0.5, durationS: seconds, gpMinMs });
    // 64-byte objects + the 8-byte header: the 96-byte class.
    return cellOf(r, gpMinMs, 96, Number.NaN, r.allocFailures, 1);
  }
  const r = await runHtabMem({
    useCase: workload,
    producers: 2,
    policy,
    warmupS: 0.5,
    durationS: seconds,
    gpMinMs,
  });
  const sheaf = r.sheafEvents;
  // htab-mem's element (HashMap.elementBytes(4, 8) = 24) + the 8-byte header: the 32-byte class.
  // Slab traffic per allocation: whole-sheaf refills and flushes, and under nolock the units
  // allocated one at a time from the slab and the deferred frees drained to it.
  const allocs = sheaf.alloc_fastpath + sheaf.alloc_slowpath;
  const perAlloc =
    allocs === 0
      ? Number.NaN
      : (sheaf.sheaf_refill + sheaf.sheaf_flush + sheaf.alloc_slowpath + sheaf.free_deferred) / allocs;
  return cellOf(r, gpMinMs, 32, perAlloc, r.failedUpdates, 2);
}

const results: Record<string, Cell[]> = {};
const key = (t: number, w: string, p: string) => `${t}|${w}|${p}`;
const started = performance.now();
for (const [t, timing] of timings.entries()) {
  for (const workload of workloads) {
    for (let round = 0; round < rounds; round++) {
      for (const policy of presets) {
        process.stderr.write(
          `\r${timing.name.split(' ')[0]} ${workload} round ${round + 1} ${policy}          `,
        );
        const cpu0 = mainThreadCpuSeconds();
        const wall0 = performance.now();
        const cell = {
          ...(await runCell(workload, policy, timing.gpMinMs)),
          mainCpuPct: ((mainThreadCpuSeconds() - cpu0) * 1e5) / (performance.now() - wall0),
        };
        const cells = results[key(t, workload, policy)] ?? [];
        cells.push(cell);
        results[key(t, workload, policy)] = cells;
      }
    }
  }
}
process.stderr.write('\n');

const med = (cells: Cell[], f: (c: Cell) => number) => median(cells.map(f));
const rows: Record<string, unknown>[] = [];
for (const [t, timing] of timings.entries()) {
  for (const workload of workloads) {
    const base = results[key(t, workload, 'kernel-6.6')];
    for (const policy of presets) {
      const cells = results[key(t, workload, policy)] as Cell[];
      // Ratio round by round against kernel-6.6 of the same round, then the median.
      const ratio = base
        ? median(cells.map((c, i) => c.kops / ((base[i] as Cell).kops || Number.NaN)))
        : Number.NaN;
      // The floor is that of reuse after a GP: for an immediate-reuse preset it means nothing.
      const floorMiB =
        base && PRESETS[policy].reuse !== 'immediate'
          ? med(base, (c) => c.peakMiB) +
            (med(cells, (c) => c.freesPerS) *
              3 *
              (med(cells, (c) => c.rcuEpochMs) / 1000) *
              (cells[0] as Cell).unitBytes) /
              2 ** 20
          : Number.NaN;
      const mainCpuPct = med(cells, (c) => c.mainCpuPct);
      const r2 = (x: number) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : null);
      rows.push({
        timing: timing.name,
        workload,
        policy,
        perProdKops: r2(med(cells, (c) => c.kops)),
        ratio: r2(ratio),
        peakMiB: r2(med(cells, (c) => c.peakMiB)),
        floorMiB: r2(floorMiB),
        peakOverFloor: r2(med(cells, (c) => c.peakMiB) / floorMiB),
        freesPerS: Math.round(med(cells, (c) => c.freesPerS)),
        meanWaitMs: r2(med(cells, (c) => c.waitMs)),
        heldMiB: r2(med(cells, (c) => c.heldMiB)),
        sheafSlabPerAlloc: r2(med(cells, (c) => c.slabPerAlloc)),
        failedPerM: r2(med(cells, (c) => c.failedPerM)),
        // NaN off Linux (no /proc): shown as '—' like the other figures a run lacks.
        mainCpuPct: Number.isFinite(mainCpuPct) ? Math.round(mainCpuPct) : null,
      });
    }
  }
}

const conditions = {
  node: process.version,
  rounds,
  seconds,
  minutes: Math.round((performance.now() - started) / 600) / 100,
};
if (json) {
  console.log(JSON.stringify({ bench: 'presets-compare', conditions, rows }, null, 2));
} else {
  console.log(`Node ${conditions.node}, ${rounds} rounds × ${seconds} s per cell, ${conditions.minutes} min`);
  console.log(
    '| GP timing | workload | preset | per-producer k ops/s | ÷ kernel-6.6 | peak MiB | floor MiB | peak ÷ floor | frees/s | mean wait ms | held MiB | sheaf↔slab per alloc | failed per M ops | main thread CPU % |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${[r.timing, r.workload, r.policy, r.perProdKops, r.ratio, r.peakMiB, r.floorMiB, r.peakOverFloor, r.freesPerS, r.meanWaitMs, r.heldMiB, r.sheafSlabPerAlloc, r.failedPerM, r.mainCpuPct].map((v) => v ?? '—').join(' | ')} |`,
    );
  }
}
