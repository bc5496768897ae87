/**
 * Does running refill and trim as the kernel's irq_work explain why batch_add_batch_del runs at
 * 0.66× of overwrite in the kernel's htab-mem table A ("normal bpf ma": 83.37 against 126.59k
 * per-prod-op/s, research/kernel.md §1.12)? Runs both use cases under one immediate-reuse preset
 * (kernel-6.4, the allocator table A was measured on), with refills and trims inline and as
 * irq_work (policy refillWork 'irq-work', src/cpu.ts), interleaved in every round, and reports
 * the ratio batch ÷ overwrite per variant per round, next to the kernel's.
 *
 *   npm run bench:irq-work [-- --json]
 *   BENCH_ROUNDS=3 BENCH_SECONDS=2 BENCH_PRESET=kernel-6.4 node dist/bench/irq-work.bench.js
 *
 * Progress goes to stderr, the report to stdout (a table, or one JSON object with `--json`).
 */
import { parseArgs } from 'node:util';
import Table from 'cli-table3';
import { type HtabMemReport, runHtabMem } from '../src/benchmarks/htab-mem.js';
import { PRESET_NAMES, PRESETS, type PresetName } from '../src/policy.js';
import { endRound, envNumber, loadMark, printConditions, runConditions, summarize } from './bench-common.js';

const { values: flags } = parseArgs({ options: { json: { type: 'boolean', default: false } } });
const rounds = envNumber('BENCH_ROUNDS', 3, (v) => Number.isInteger(v) && v >= 1);
const seconds = envNumber('BENCH_SECONDS', 2, (v) => v >= 1 && v <= 60);
const preset = (process.env.BENCH_PRESET ?? 'kernel-6.4') as PresetName;
if (!PRESET_NAMES.includes(preset) || PRESETS[preset].reuse !== 'immediate') {
  throw new Error(`BENCH_PRESET=${preset} is not an immediate-reuse preset`);
}

/** The kernel's table A, normal bpf ma: batch_add_batch_del ÷ overwrite per-prod-op. */
const KERNEL_RATIO = 83.37 / 126.59;
const VARIANTS = [
  { name: 'inline', irqWork: false },
  { name: 'irq-work', irqWork: true },
] as const;
const CASES = ['overwrite', 'batch_add_batch_del'] as const;

interface Cell {
  readonly kops: number;
  readonly refillsPerRun: number;
  readonly trimsPerRun: number;
}

const conditions = runConditions({ preset, rounds, seconds, producers: 2 });
const cells = new Map<string, Cell[]>();
const ratios = new Map<string, number[]>();
const otherLoads: number[] = [];
for (let round = 1; round <= rounds; round++) {
  const mark = loadMark();
  // Alternate the variants' order from round to round: neither always runs first.
  const order = round % 2 === 1 ? VARIANTS : [...VARIANTS].reverse();
  for (const variant of order) {
    const got: Record<string, HtabMemReport> = {};
    for (const useCase of CASES) {
      got[useCase] = await runHtabMem({
        useCase,
        producers: 2,
        policy: preset,
        irqWork: variant.irqWork,
        warmupS: 0.5,
        durationS: seconds,
      });
      const r = got[useCase];
      const key = `${variant.name}/${useCase}`;
      cells.set(key, [
        ...(cells.get(key) ?? []),
        {
          kops: r.perProdKops,
          refillsPerRun: r.cacheEvents.refillsPerRun,
          trimsPerRun: r.cacheEvents.trimsPerRun,
        },
      ]);
    }
    const ratio = (got.batch_add_batch_del?.perProdKops ?? 0) / (got.overwrite?.perProdKops ?? 1);
    ratios.set(variant.name, [...(ratios.get(variant.name) ?? []), ratio]);
  }
  endRound(round, rounds, mark, otherLoads);
}

const r2 = (x: number): number => Math.round(x * 100) / 100;
const report = {
  bench: 'irq-work',
  conditions,
  kernelRatio: r2(KERNEL_RATIO),
  otherLoad: otherLoads.length === 0 ? undefined : summarize(otherLoads),
  variants: VARIANTS.map((v) => ({
    name: v.name,
    ratios: (ratios.get(v.name) ?? []).map(r2),
    ratio: summarize(ratios.get(v.name) ?? []),
    cases: CASES.map((useCase) => {
      const list = cells.get(`${v.name}/${useCase}`) ?? [];
      return {
        useCase,
        kops: summarize(list.map((c) => c.kops)),
        refillsPerRun: summarize(list.map((c) => c.refillsPerRun)).median,
        trimsPerRun: summarize(list.map((c) => c.trimsPerRun)).median,
      };
    }),
  })),
};

if (flags.json) {
  process.stdout.write(`${JSON.stringify(report)}\n`);
} else {
  printConditions(
    `irq-work: batch_add_batch_del ÷ overwrite under ${preset}, refill/trim inline vs irq_work`,
    conditions,
  );
  if (report.otherLoad) {
    console.log(
      `Other processes used ${r2(report.otherLoad.min)}–${r2(report.otherLoad.max)} CPUs (median ${r2(report.otherLoad.median)})`,
    );
  }
  const table = new Table({
    head: [
      'variant',
      'overwrite k/s',
      'batch k/s',
      'refills / trims per batch run',
      'batch ÷ overwrite per round',
      'median',
    ],
  });
  for (const v of report.variants) {
    const [over, batch] = v.cases;
    table.push([
      v.name,
      `${r2(over?.kops.median ?? 0)} (${r2(over?.kops.min ?? 0)}–${r2(over?.kops.max ?? 0)})`,
      `${r2(batch?.kops.median ?? 0)} (${r2(batch?.kops.min ?? 0)}–${r2(batch?.kops.max ?? 0)})`,
      `${batch?.refillsPerRun ?? 0} / ${batch?.trimsPerRun ?? 0}`,
      v.ratios.map((x) => `${x.toFixed(2)}×`).join(', '),
      `${v.ratio.median.toFixed(2)}×`,
    ]);
  }
  table.push(['kernel (table A)', '126.59', '83.37', '', '', `${report.kernelRatio.toFixed(2)}×`]);
  console.log(table.toString());
}
