/**
 * Micro benchmark of the own-CPU fast path: 64-byte alloc+free (LIFO, and random churn with 1024
 * live units) on the arena's CPU handle, next to its baselines in the same run: a plain free list
 * in a typed array, `new` of a small JS object, @thi.ng/malloc, and the arena behind one global
 * futex mutex. Each with 1 and 2 workers (CPU pool of one arena with 2 CPU slots).
 *
 *   npm run bench:fastpath [-- --json]
 *   BENCH_ROUNDS=5 BENCH_SECONDS=0.3 node --import tsx bench/fastpath.bench.ts [--json]
 *   BENCH_VS=sheaves ...   adds the variant `arena:sheaves`: the same loops on a second arena
 *                          of that preset (its own CPU pool), interleaved with the others
 *
 * Variants run round-robin, R rounds; the report gives the median and min–max of each cell and
 * ratios computed from the medians of this same run. Progress goes to stderr, the report to
 * stdout (a table, or with `--json` one JSON object).
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import Table from 'cli-table3';
import { Arena } from '../src/arena/arena.js';
import type { PresetName } from '../src/epoch/policy.js';
import { CpuPool, siblingModule } from '../src/service/pool.js';
import { endRound, envNumber, loadMark, printConditions, runConditions, summarize } from './bench-common.js';
import type { FastpathArgs, FastpathResult } from './fastpath-task.js';

/** A second preset to run the arena loops on, side by side (BENCH_VS). */
const vsPolicy = process.env.BENCH_VS;
interface Variant {
  readonly name: string;
  readonly lifo: string;
  readonly churn: string;
  /** Runs on the BENCH_VS arena's pool. */
  readonly vs?: boolean;
}
const VARIANTS: readonly Variant[] = [
  { name: 'arena', lifo: 'arenaLifoRun', churn: 'arenaChurnRun' },
  ...(vsPolicy === undefined
    ? []
    : [{ name: `arena:${vsPolicy}`, lifo: 'arenaLifoRun', churn: 'arenaChurnRun', vs: true }]),
  { name: 'freelist', lifo: 'freelistLifoRun', churn: 'freelistChurnRun' },
  { name: 'freelist+header', lifo: 'headerLifoRun', churn: 'headerChurnRun' },
  { name: 'js-object', lifo: 'objectLifoRun', churn: 'objectChurnRun' },
  { name: 'thi.ng', lifo: 'thingLifoRun', churn: 'thingChurnRun' },
  { name: 'arena+global-mutex', lifo: 'mutexLifoRun', churn: 'mutexChurnRun' },
];
type VariantName = string;
const PATTERNS = ['lifo', 'churn'] as const;
type Pattern = (typeof PATTERNS)[number];
const WORKERS = [1, 2] as const;

/** Targets of the issue, in M pairs/s and as a 2-CPU / 1-CPU ratio. */
const TARGET_LIFO_1W = 100;
const TARGET_CHURN_1W = 50;
const TARGET_SCALING = 1.8;
/** Issue 17: the public API's own-CPU LIFO pair ≥ this × the header-writing free list's. */
const TARGET_VS_HEADER_LIST = 0.55;

const { values: flags } = parseArgs({ options: { json: { type: 'boolean', default: false } } });
const rounds = envNumber('BENCH_ROUNDS', 5, (v) => Number.isInteger(v) && v >= 1);
const seconds = envNumber('BENCH_SECONDS', 0.3, (v) => v > 0 && v <= 60);
const warmupPairs = envNumber('BENCH_WARMUP_PAIRS', 2_000_000, (v) => Number.isInteger(v) && v >= 0);
const warmupSeconds = 0.25;

interface Cell {
  readonly variant: VariantName;
  readonly pattern: Pattern;
  readonly workers: number;
  /** Aggregate M pairs/s of each round (sum over the run's workers). */
  readonly samples: number[];
  /** Per-worker M pairs/s of each round. */
  readonly perWorker: number[][];
}

const key = (variant: string, pattern: string, workers: number): string => `${variant}/${pattern}/${workers}`;

async function main(): Promise<void> {
  const policy = process.env.BENCH_POLICY ?? 'kernel-6.6';
  const conditions = runConditions({
    policy,
    rounds,
    seconds,
    warmup: `up to ${warmupPairs} pairs or ${warmupSeconds} s per run`,
  });
  if (!flags.json) {
    printConditions(
      'Fast path (own CPU): 64-byte alloc+free, M pairs/s (one pair = one alloc + one free)',
      conditions,
    );
    console.log(
      `Rounds:  ${rounds} (variants interleaved round-robin), ${seconds} s timed per run, warm-up ${conditions.warmup}`,
    );
    console.log(`Policy:  ${policy} (BENCH_POLICY)`);
    console.log('');
  }

  const arena = Arena.create({ cpus: 2, policy: policy as PresetName });
  const lock = new SharedArrayBuffer(64);
  const args: FastpathArgs = { seconds, warmupPairs, warmupSeconds, lock };
  const pools = new Map<number, CpuPool>();
  for (const w of WORKERS) pools.set(w, CpuPool.start(arena, { cpus: w }));
  const vsArena =
    vsPolicy === undefined ? undefined : Arena.create({ cpus: 2, policy: vsPolicy as PresetName });
  const vsPools = new Map<number, CpuPool>();
  if (vsArena !== undefined) for (const w of WORKERS) vsPools.set(w, CpuPool.start(vsArena, { cpus: w }));
  // The task module next to this file: .ts from sources (workers load it through tsx), .js if compiled.
  const task = siblingModule(import.meta.url, './fastpath-task');

  const cells = new Map<string, Cell>();
  for (const v of VARIANTS) {
    for (const pattern of PATTERNS) {
      for (const workers of WORKERS) {
        cells.set(key(v.name, pattern, workers), {
          variant: v.name,
          pattern,
          workers,
          samples: [],
          perWorker: [],
        });
      }
    }
  }

  /** CPU control (pure ALU loop), M iterations/s summed over workers, per worker count. */
  const control = new Map<number, number[]>(WORKERS.map((w) => [w, []]));

  /** Per round: CPUs' worth of other processes' work during the round (Linux only). */
  const otherLoads: number[] = [];

  try {
    for (let round = 1; round <= rounds; round++) {
      const mark = loadMark();
      for (const workers of WORKERS) {
        const pool = pools.get(workers) as CpuPool;
        const ctl = await pool.run<FastpathResult>(task, 'controlRun', args);
        (control.get(workers) as number[]).push(ctl.reduce((a, r) => a + r.pairs / r.seconds / 1e6, 0));
      }
      // 1 and 2 workers of one cell run back to back, so their ratio sees the same machine load.
      for (const pattern of PATTERNS) {
        for (const v of VARIANTS) {
          for (const workers of WORKERS) {
            const pool = (v.vs === true ? vsPools : pools).get(workers) as CpuPool;
            const results = await pool.run<FastpathResult>(task, v[pattern], args);
            const rates = results.map((r) => r.pairs / r.seconds / 1e6);
            const cell = cells.get(key(v.name, pattern, workers)) as Cell;
            cell.samples.push(rates.reduce((a, b) => a + b, 0));
            cell.perWorker.push(rates);
          }
        }
      }
      endRound(round, rounds, mark, otherLoads);
    }
  } finally {
    for (const pool of pools.values()) await pool.close();
    for (const pool of vsPools.values()) await pool.close();
  }
  const report = await arena.close();
  if (report.leaked !== 0) throw new Error(`the arena leaked ${report.leaked} units`);
  const vsReport = await vsArena?.close();
  if (vsReport !== undefined && vsReport.leaked !== 0)
    throw new Error(`the ${vsPolicy} arena leaked ${vsReport.leaked} units`);

  const med = (variant: string, pattern: string, workers: number): number =>
    summarize((cells.get(key(variant, pattern, workers)) as Cell).samples).median;

  const rows = [...cells.values()].map((c) => ({
    variant: c.variant,
    pattern: c.pattern,
    workers: c.workers,
    ...summarize(c.samples),
    samples: c.samples,
    perWorker: c.perWorker,
  }));
  const ratios: Record<string, number> = {};
  for (const pattern of PATTERNS) {
    for (const workers of WORKERS) {
      for (const v of VARIANTS) {
        if (v.name === 'arena') continue;
        ratios[`arena/${v.name} ${pattern} ${workers}w`] =
          med('arena', pattern, workers) / med(v.name, pattern, workers);
      }
    }
    for (const v of VARIANTS)
      ratios[`${v.name} ${pattern} 2w/1w`] = med(v.name, pattern, 2) / med(v.name, pattern, 1);
    for (const workers of WORKERS) {
      if (vsPolicy !== undefined) {
        ratios[`${vsPolicy}/${policy} ${pattern} ${workers}w`] =
          med(`arena:${vsPolicy}`, pattern, workers) / med('arena', pattern, workers);
      }
    }
  }
  const controlScaling =
    summarize(control.get(2) as number[]).median / summarize(control.get(1) as number[]).median;
  const controlSummary = {
    unit: 'M iterations/s of a pure ALU loop (no memory)',
    oneWorker: summarize(control.get(1) as number[]),
    twoWorkers: summarize(control.get(2) as number[]),
    scaling: controlScaling,
  };
  const targets = [
    {
      target: `arena LIFO, 1 CPU ≥ ${TARGET_LIFO_1W} M pairs/s`,
      measured: med('arena', 'lifo', 1),
      met: med('arena', 'lifo', 1) >= TARGET_LIFO_1W,
    },
    {
      target: `arena churn, 1 CPU ≥ ${TARGET_CHURN_1W} M pairs/s`,
      measured: med('arena', 'churn', 1),
      met: med('arena', 'churn', 1) >= TARGET_CHURN_1W,
    },
    ...PATTERNS.map((pattern) => {
      const r = med('arena', pattern, 2) / med('arena', pattern, 1);
      return {
        target: `arena ${pattern === 'lifo' ? 'LIFO' : 'churn'}, 2 CPUs ≥ ${TARGET_SCALING}× 1 CPU`,
        measured: r,
        met: r >= TARGET_SCALING,
      };
    }),
    ...PATTERNS.map((pattern) => {
      const r = med('arena', pattern, 1) / med('freelist+header', pattern, 1);
      return {
        target: `arena ${pattern === 'lifo' ? 'LIFO' : 'churn'}, 1 CPU ≥ ${TARGET_VS_HEADER_LIST}× freelist+header`,
        measured: r,
        met: r >= TARGET_VS_HEADER_LIST,
      };
    }),
  ];

  if (flags.json) {
    const loadavgEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);
    console.log(
      JSON.stringify(
        {
          conditions: { ...conditions, loadavgEnd, otherCpusPerRound: otherLoads },
          unit: 'M alloc+free pairs/s',
          rows,
          ratios,
          control: controlSummary,
          targets,
        },
        null,
        2,
      ),
    );
    return;
  }

  const fmt = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toPrecision(2));
  const cellText = (variant: string, pattern: string, workers: number): string => {
    const s = summarize((cells.get(key(variant, pattern, workers)) as Cell).samples);
    return `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;
  };
  const ratioText = (x: number): string => `${x >= 10 ? x.toFixed(0) : x.toFixed(2)}×`;

  const table = new Table({
    head: ['pattern', 'variant', '1 worker', '2 workers', '2w / 1w', 'arena ÷ this, 1w', 'arena ÷ this, 2w'],
    style: { head: [], border: [] },
  });
  for (const pattern of PATTERNS) {
    for (const v of VARIANTS) {
      table.push([
        pattern === 'lifo' ? 'LIFO' : 'churn 1024',
        v.name,
        cellText(v.name, pattern, 1),
        cellText(v.name, pattern, 2),
        ratioText(med(v.name, pattern, 2) / med(v.name, pattern, 1)),
        v.name === 'arena' ? '—' : ratioText(med('arena', pattern, 1) / med(v.name, pattern, 1)),
        v.name === 'arena' ? '—' : ratioText(med('arena', pattern, 2) / med(v.name, pattern, 2)),
      ]);
    }
  }
  console.log(
    'M alloc+free pairs/s: median (min–max) over rounds; 2 workers = sum of both; ratios from medians',
  );
  console.log(table.toString());
  if (vsPolicy !== undefined) {
    for (const pattern of PATTERNS) {
      const r = (w: number): string =>
        ratioText(med(`arena:${vsPolicy}`, pattern, w) / med('arena', pattern, w));
      console.log(
        `${vsPolicy} ÷ ${policy}, ${pattern === 'lifo' ? 'LIFO' : 'churn 1024'}: 1 worker ${r(1)}, 2 workers ${r(2)}`,
      );
    }
  }

  const c1 = controlSummary.oneWorker;
  const c2 = controlSummary.twoWorkers;
  console.log(
    `CPU control (pure ALU loop, no memory), M iterations/s: 1 worker ${fmt(c1.median)} (${fmt(c1.min)}–${fmt(c1.max)}), ` +
      `2 workers ${fmt(c2.median)} (${fmt(c2.min)}–${fmt(c2.max)}), 2w / 1w ${ratioText(controlScaling)}` +
      (controlScaling < 1.8
        ? '  ← the second CPU was not fully available (other load): read 2w / 1w against this'
        : ''),
  );
  if (otherLoads.length > 0) {
    const o = summarize(otherLoads);
    console.log(
      `Other processes used ${o.median.toFixed(2)} CPUs (median of rounds; ${o.min.toFixed(2)}–${o.max.toFixed(2)}) ` +
        'while this ran (/proc/stat busy time minus this process)',
    );
  }
  console.log(
    `Load average at the end: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  console.log('');
  console.log('Targets (issue):');
  for (const t of targets) {
    const shown = t.target.includes('×') ? ratioText(t.measured) : `${fmt(t.measured)} M pairs/s`;
    console.log(`  ${t.met ? 'met    ' : 'NOT met'}  ${t.target}: measured ${shown}`);
  }
}

await main();
