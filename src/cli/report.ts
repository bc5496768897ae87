/**
 * `percpu-arena report`: every htab-mem use case and the xmalloc shape under every preset, one
 * run after another (one arena and pool per run), with a progress bar on stderr; then a table in
 * the terminal and, in the folder the user names, index.html (self-contained, charts inline),
 * one SVG per chart and results.json.
 *
 * Who may call: the CLI (main thread).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { PRESET_NAMES, type PresetName } from '../epoch/policy.js';
import { HTAB_USE_CASES, runHtabMem } from '../lab/benchmarks/htab-mem.js';
import { KERNEL_LIKE_GP_MS, machineConditions } from '../lab/benchmarks/measure.js';
import { type PackBenchReport, runPackBench } from '../lab/benchmarks/pack-bench.js';
import { runXmalloc } from '../lab/benchmarks/xmalloc.js';
import type { BarChart, TradeoffChart } from '../lab/report/charts.js';
import { type CaseReport, type PackSection, type ReportSection, reportHtml } from '../lab/report/html.js';
import { type PresetSafety, tortureEachPreset, verdictRows } from '../lab/report/verdict.js';
import { packMemoryText, packRows, packTable } from './bench-pack.js';
import { loadOptional, loadTable, type TableClass } from './optional-deps.js';
import {
  defaultCpus,
  evenCount,
  gpTimingOptions,
  gpTimingParseOptions,
  integerOption,
  numberOption,
  outputFolder,
  parseCommand,
  UsageError,
  xmallocProducers,
} from './options.js';
import { reportProgress } from './progress.js';

const CASES = [...HTAB_USE_CASES, 'xmalloc', 'pack'] as const;
type CaseName = (typeof CASES)[number];
/** Cases run once per preset; 'pack' runs once (the pack allocator has no reuse policy). */
type PresetCase = Exclude<CaseName, 'pack'>;

/** The report's GP timing unless told otherwise: the benchmarks' kernel-like default. */
export const REPORT_GP_MS = KERNEL_LIKE_GP_MS;

const kUsage = `Usage: percpu-arena report [options]

Runs every htab-mem use case and the xmalloc shape under every preset, and the pack bench
(2048 programs with and without packs), and writes an HTML page with charts (and the SVGs and
results.json) to a folder.

  --out DIR           folder to write (default percpu-arena-report)
  --producers N       htab-mem producers (default: the machine's cores, ${defaultCpus});
                      xmalloc runs N/2 producers and as many consumers
  --duration S        measured seconds per run, 1..600 (default 2)
  --warmup S          seconds before measuring, 0..60 (default 0.5)
  --rcu-gp-ms N       minimum rcu epoch in ms (default ${REPORT_GP_MS.rcu})
  --ttrace-gp-ms N    minimum ttrace epoch in ms (default ${REPORT_GP_MS.ttrace})
  --torture-seconds S seconds of the use-after-free torture per preset for the verdict, 0..60
                      (default 1; 0 skips it and the verdict judges no safety)
  --presets LIST      comma-separated presets (default all: ${PRESET_NAMES.join(',')})
  --cases LIST        comma-separated cases (default all: ${CASES.join(',')})
  --json              print all results as one JSON object instead of the table
  -h, --help          show this help
`;

function listOption<T extends string>(value: string | undefined, name: string, all: readonly T[]): T[] {
  if (value === undefined) return [...all];
  const items = value.split(',').map((s) => s.trim());
  for (const item of items) {
    if (!all.includes(item as T))
      throw new UsageError(`--${name}: '${item}' is not one of ${all.join(', ')}`);
  }
  if (items.length === 0 || new Set(items).size !== items.length) {
    throw new UsageError(`--${name} must name each item once`);
  }
  return items as T[];
}

const kDescriptions: Record<PresetCase, string> = {
  overwrite:
    'Each producer overwrites its own 64 keys per program run (flag ANY): every update allocates a new element and frees the old one on the same CPU.',
  batch_add_batch_del:
    'Each producer adds 64 keys, then deletes them (2 ops counted per run): batches of frees push the free list over its high watermark.',
  add_del_on_diff_cpu:
    'Pairs of CPUs: one adds 64 keys (NOEXIST), the other deletes them, in turn: every element is freed on a CPU other than the one that allocated it.',
  xmalloc:
    'Producers allocate batches of 4096 × 64-byte objects and hand them through a queue of 128 batches to consumers that free them: all frees remote.',
};

export async function report(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    out: { type: 'string' },
    producers: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    ...gpTimingParseOptions,
    presets: { type: 'string' },
    cases: { type: 'string' },
    'torture-seconds': { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    process.stdout.write(kUsage);
    return 0;
  }
  const outArg = values.out ?? 'percpu-arena-report';
  const producers = integerOption(values.producers, 'producers', defaultCpus, 1, 64);
  const durationS = numberOption(values.duration, 'duration', 2, 1, 600);
  const warmupS = numberOption(values.warmup, 'warmup', 0.5, 0, 60);
  const gpMinMs = gpTimingOptions(values, REPORT_GP_MS);
  const presets = listOption<PresetName>(values.presets, 'presets', PRESET_NAMES);
  const cases = listOption<CaseName>(values.cases, 'cases', CASES);
  const tortureOption = numberOption(values['torture-seconds'], 'torture-seconds', 1, 0, 60);
  const out = outputFolder(outArg, 'out');

  const presetCases = cases.filter((name): name is PresetCase => name !== 'pack');
  const withPack = cases.includes('pack');
  const runs = presetCases.flatMap((name) => presets.map((policy) => ({ name, policy })));
  // The verdict's torture runs, one per preset (only when presets are benchmarked).
  const tortureSeconds = presetCases.length > 0 ? tortureOption : 0;
  const tortured = tortureSeconds > 0 ? presets.length : 0;
  const total = tortured + runs.length + (withPack ? 1 : 0);
  // The optional packages the report needs, before minutes of runs rather than after them.
  const { barChartSvg, tradeoffChartSvg } = await loadOptional(
    'echarts',
    "percpu-arena report's charts",
    () => import('../lab/report/charts.js'),
  );
  const Table = values.json ? undefined : await loadTable("percpu-arena report's tables");
  const started = performance.now();
  const progress = await reportProgress(total);
  const results: CaseReport[] = [];
  let pack: PackBenchReport | undefined;
  let safety: PresetSafety[] = [];
  try {
    if (tortured > 0) {
      progress.update(0, `torture ${presets[0]}`);
      safety = await tortureEachPreset(presets, tortureSeconds, (i, s) => {
        progress.finished(
          i,
          `torture ${s.policy}: ${s.verdict} (${s.errors} errors in ${s.readerSections} reader sections, ${s.seconds} s)`,
        );
        progress.update(i + 1, `torture ${presets[i + 1] ?? ''}`);
      });
    }
    for (const [j, { name, policy }] of runs.entries()) {
      const i = tortured + j;
      const label = `${name} ${policy}`;
      const onProgress = (fraction: number): void => progress.update(i + fraction, label);
      onProgress(0);
      const timing = { durationS, warmupS, gpMinMs, onProgress };
      const result =
        name === 'xmalloc'
          ? await runXmalloc({ producers: xmallocProducers(producers), policy, ...timing })
          : await runHtabMem({
              useCase: name,
              policy,
              producers: name === 'add_del_on_diff_cpu' ? evenCount(producers) : producers,
              ...timing,
            });
      results.push(result);
      progress.finished(i, `${label}: ${throughputText(result)}, peak ${result.peakMiB.toFixed(2)} MiB`);
    }
    if (withPack) {
      progress.update(total - 1, 'pack');
      pack = await runPackBench();
      progress.finished(total - 1, `pack: ${pack.programs} programs, ${pack.withPack.corrupt} corrupt`);
    }
    progress.update(total, '');
  } finally {
    progress.stop();
  }
  const wallS = (performance.now() - started) / 1000;

  const safeOf = (policy: PresetName): boolean | undefined => {
    const verdict = safety.find((s) => s.policy === policy)?.verdict;
    return verdict === 'safe' ? true : verdict === 'unsafe' ? false : undefined;
  };
  const sections = presetCases.map((name) =>
    section(
      { barChartSvg, tradeoffChartSvg },
      name,
      results.filter((r) => r.useCase === name),
      safeOf,
    ),
  );
  for (const s of sections) {
    writeFileSync(path.join(out, `${s.id}-tradeoff.svg`), s.tradeoffSvg);
    writeFileSync(path.join(out, `${s.id}-throughput.svg`), s.throughputSvg);
    writeFileSync(path.join(out, `${s.id}-memory.svg`), s.memorySvg);
  }
  const packSection = pack ? packReportSection(barChartSvg, pack) : undefined;
  if (packSection) {
    writeFileSync(path.join(out, 'pack-directmap.svg'), packSection.directMapSvg);
    writeFileSync(path.join(out, 'pack-memory.svg'), packSection.memorySvg);
  }
  const command = ['percpu-arena', 'report', ...argv].join(' ');
  const page = {
    conditions: machineConditions(),
    gpMinMs,
    producers,
    xmallocProducers: xmallocProducers(producers),
    durationS,
    warmupS,
    command,
    sections,
    pack: packSection,
    wallS,
    verdict: presetCases.length > 0 ? verdictRows(presets, safety, results) : [],
    tortureSeconds,
  };
  writeFileSync(path.join(out, 'index.html'), reportHtml(page));
  const json = { ...page, sections: undefined, pack: undefined, results, packBench: pack, torture: safety };
  writeFileSync(path.join(out, 'results.json'), `${JSON.stringify(json, null, 2)}\n`);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(json)}\n`);
  } else if (Table) {
    printTable(results, Table);
    if (pack) console.log(packTable(pack, Table));
    console.log(`Report written to ${path.join(out, 'index.html')} (${wallS.toFixed(0)} s)`);
  }
  return 0;
}

function section(
  charts: { barChartSvg: (chart: BarChart) => string; tradeoffChartSvg: (chart: TradeoffChart) => string },
  name: PresetCase,
  rows: CaseReport[],
  safeOf: (policy: PresetName) => boolean | undefined,
): ReportSection {
  const { barChartSvg } = charts;
  const categories = rows.map((r) => r.policy);
  const xmalloc = name === 'xmalloc';
  const tradeoffSvg = charts.tradeoffChartSvg({
    title: `${name}: throughput against peak memory (up and left is better)`,
    yName: xmalloc ? 'M objects/s' : 'k ops/s per producer',
    points: rows.map((r) => ({
      name: r.policy,
      peakMiB: r.peakMiB,
      throughput: r.bench === 'xmalloc' ? r.objectsPerSec / 1e6 : r.perProdKops,
      safe: safeOf(r.policy),
    })),
  });
  const throughputSvg = barChartSvg({
    title: `${name}: ${xmalloc ? 'objects freed per second (millions)' : 'per-producer k ops/s'}`,
    categories,
    yName: xmalloc ? 'M objects/s' : 'k ops/s',
    series: [
      xmalloc
        ? {
            name: 'objects/s',
            values: rows.map((r) => (r.bench === 'xmalloc' ? r.objectsPerSec / 1e6 : 0)),
            spread: rows.map((r) => (r.bench === 'xmalloc' ? r.objectsPerSecStddev / 1e6 : 0)),
          }
        : {
            name: 'k ops/s',
            values: rows.map((r) => r.perProdKops),
            spread: rows.map((r) => (r.bench === 'htab-mem' ? r.perProdKopsStddev : 0)),
          },
    ],
  });
  const memorySvg = barChartSvg({
    title: `${name}: arena memory in use (MiB)`,
    categories,
    yName: 'MiB',
    series: [
      { name: 'average', values: rows.map((r) => r.avgMiB) },
      { name: 'peak', values: rows.map((r) => r.peakMiB) },
    ],
  });
  return {
    id: name,
    title: name,
    description: kDescriptions[name],
    tradeoffSvg,
    throughputSvg,
    memorySvg,
    rows,
  };
}

function packReportSection(barChartSvg: (chart: BarChart) => string, r: PackBenchReport): PackSection {
  const MiBof = (kib: number): number => kib / 1024;
  const directMapSvg = barChartSvg({
    title: 'pack: DirectMap4k as programs are loaded (MiB)',
    categories: r.withPack.stages.map((s) => `${s.programs} programs`),
    yName: 'MiB',
    series: [
      { name: 'with packs', values: r.withPack.stages.map((s) => MiBof(s.directMap4kKiB)) },
      { name: 'without packs', values: r.withoutPack.stages.map((s) => MiBof(s.directMap4kKiB)) },
    ],
  });
  const memorySvg = barChartSvg({
    title: 'pack: memory taken from the arena (MiB)',
    categories: ['all loaded', 'half unloaded', 'all unloaded'],
    yName: 'MiB',
    series: [r.withPack, r.withoutPack].map((side, i) => ({
      name: i === 0 ? 'with packs' : 'without packs',
      values: [side.reservedMiB, side.half.reservedMiB, side.after.reservedMiB],
    })),
  });
  return {
    description:
      `${r.programs} programs loaded into an executable pack allocator (2 MiB packs, RO+X as a whole) ` +
      `and, side by side, each into a page-rounded region of its own (before bpf_prog_pack); ${packMemoryText(r)} ` +
      `(docs/benchmarks.md); the kernel's rows are Aaron Lu's. Sizes: ${r.sizes}.`,
    directMapSvg,
    memorySvg,
    rows: packRows(r),
  };
}

/** A run's throughput in the units of its bench. */
function throughputText(r: CaseReport): string {
  return r.bench === 'xmalloc'
    ? `${(r.objectsPerSec / 1e6).toFixed(2)} ± ${(r.objectsPerSecStddev / 1e6).toFixed(2)} M obj/s`
    : `${r.perProdKops.toFixed(2)} ± ${r.perProdKopsStddev.toFixed(2)}k/s per producer`;
}

function printTable(results: CaseReport[], Table: TableClass): void {
  const table = new Table({
    head: ['case', 'preset', 'throughput', 'avg MiB', 'peak MiB', 'epoch advances rcu/ttrace', 'failed'],
    style: { head: [], border: [] },
  });
  for (const r of results) {
    table.push([
      r.useCase,
      r.policy,
      throughputText(r),
      `${r.avgMiB.toFixed(2)} ± ${r.avgMiBStddev.toFixed(2)}`,
      r.peakMiB.toFixed(2),
      `${r.gp.rcu.advances} / ${r.gp.ttrace.advances}`,
      r.bench === 'xmalloc' ? r.allocFailures : r.failedUpdates,
    ]);
  }
  console.log(table.toString());
}
