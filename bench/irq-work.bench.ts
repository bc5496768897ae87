/**
 * Does running refill and trim as the kernel's irq_work explain why batch_add_batch_del runs at
 * 0.66× of overwrite in the kernel's htab-mem table A ("normal bpf ma": 83.37 against 126.59k
 * per-prod-op/s, research/kernel.md §1.12)? Two parts, each interleaved per round, under one
 * immediate-reuse preset (kernel-6.4, the allocator table A was measured on), with refills and
 * trims inline and as irq_work (policy refillWork 'irq-work', src/cpu.ts):
 *
 * 1. `bench htab-mem` itself: both use cases, per variant, with BENCH_PRODUCERS producers (1 by
 *    default: on a shared 2-vCPU machine two producers measure mostly the other jobs);
 * 2. the allocator alone, on this thread: 64 allocations then 64 frees (batch_add_batch_del's
 *    allocator traffic) against 64 × (allocate, free the element it replaces) (overwrite's),
 *    ns per operation, in slices of BENCH_SLICE_MS alternating shape and variant.
 *
 * Reported: batch ÷ overwrite per operation for each variant and round (the htab-mem ratio is
 * per-prod-op as the kernel counts it), refills and trims per batch run, next to the kernel's.
 *
 *   npm run bench:irq-work [-- --json]
 *   BENCH_ROUNDS=5 BENCH_SECONDS=2 BENCH_PRODUCERS=1 BENCH_SLICE_MS=200 BENCH_PRESET=kernel-6.4 \
 *     node dist/bench/irq-work.bench.js
 *
 * Progress goes to stderr, the report to stdout (a table, or one JSON object with `--json`).
 */

import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import Table from 'cli-table3';
import { Arena } from '../src/arena/arena.js';
import type { CpuHandle } from '../src/cpu/cpu.js';
import { PRESET_NAMES, PRESETS, type PresetName } from '../src/epoch/policy.js';
import { type HtabMemReport, runHtabMem } from '../src/lab/benchmarks/htab-mem.js';
import type { Pointer } from '../src/shm/refs.js';
import { endRound, envNumber, loadMark, printConditions, runConditions, summarize } from './bench-common.js';

const { values: flags } = parseArgs({ options: { json: { type: 'boolean', default: false } } });
const rounds = envNumber('BENCH_ROUNDS', 3, (v) => Number.isInteger(v) && v >= 1);
const seconds = envNumber('BENCH_SECONDS', 2, (v) => v >= 1 && v <= 60);
const producers = envNumber('BENCH_PRODUCERS', 1, (v) => Number.isInteger(v) && v >= 1 && v <= 64);
const sliceMs = envNumber('BENCH_SLICE_MS', 200, (v) => v >= 10 && v <= 10_000);
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

const kScratch = new Int32Array(64);

/**
 * 64 allocations then 64 frees, `runs` times: batch_add_batch_del's allocator traffic (in a
 * scratch array: `live`, overwrite's elements, stays allocated).
 */
function batchShape(cpu: CpuHandle, _live: Int32Array, runs: number): void {
  const scratch = kScratch;
  for (let r = 0; r < runs; r++) {
    for (let i = 0; i < 64; i++) scratch[i] = cpu.allocFixed(0);
    for (let i = 0; i < 64; i++) cpu.free(scratch[i] as Pointer);
  }
}

/** 64 × (allocate the new element, free the one it replaces), `runs` times: overwrite's. */
function overwriteShape(cpu: CpuHandle, live: Int32Array, runs: number): void {
  for (let r = 0; r < runs; r++) {
    for (let i = 0; i < 64; i++) {
      const fresh = cpu.allocFixed(0);
      cpu.free(live[i] as Pointer);
      live[i] = fresh;
    }
  }
}

/** ns per allocator operation (an alloc or a free) of `shape` over about `sliceMs`. */
function timeSlice(shape: typeof batchShape, cpu: CpuHandle, live: Int32Array): number {
  let runs = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < sliceMs) {
    shape(cpu, live, 256);
    runs += 256;
    t = performance.now();
  }
  return ((t - t0) * 1e6) / (runs * 128);
}

const conditions = runConditions({ preset, rounds, seconds, producers, sliceMs });
const cells = new Map<string, Cell[]>();
const ratios = new Map<string, number[]>();
const allocNs = new Map<string, number[]>();
const allocRatios = new Map<string, number[]>();
const otherLoads: number[] = [];
// Part 2's arenas: one per variant, an element-sized fixed cache (htab-mem's 24-byte element).
const alone = VARIANTS.map((v) => {
  const arena = Arena.create({
    cpus: 1,
    maxBytes: 64 << 20,
    policy: v.irqWork ? { ...PRESETS[preset], refillWork: 'irq-work' } : preset,
    fixedSizes: [24],
  });
  const cpu = arena.attach(0);
  const live = new Int32Array(64);
  for (let i = 0; i < 64; i++) live[i] = cpu.allocFixed(0);
  return { variant: v, arena, cpu, live };
});
for (let round = 1; round <= rounds; round++) {
  const mark = loadMark();
  for (const { variant, cpu, live } of round % 2 === 1 ? alone : [...alone].reverse()) {
    const over = timeSlice(overwriteShape, cpu, live);
    await yieldToLoop(); // the coordinator runs GPs on this thread
    const batch = timeSlice(batchShape, cpu, live);
    await yieldToLoop();
    allocNs.set(`${variant.name}/overwrite`, [...(allocNs.get(`${variant.name}/overwrite`) ?? []), over]);
    allocNs.set(`${variant.name}/batch`, [...(allocNs.get(`${variant.name}/batch`) ?? []), batch]);
    // Throughput ratio per operation: the inverse of the time ratio.
    allocRatios.set(variant.name, [...(allocRatios.get(variant.name) ?? []), over / batch]);
  }
  // Alternate the variants' order from round to round: neither always runs first.
  const order = round % 2 === 1 ? VARIANTS : [...VARIANTS].reverse();
  for (const variant of order) {
    const got: Record<string, HtabMemReport> = {};
    for (const useCase of CASES) {
      got[useCase] = await runHtabMem({
        useCase,
        producers,
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
for (const { cpu, arena } of alone) {
  cpu.detach();
  await arena.close();
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
    allocator: {
      overwriteNs: summarize(allocNs.get(`${v.name}/overwrite`) ?? []),
      batchNs: summarize(allocNs.get(`${v.name}/batch`) ?? []),
      ratios: (allocRatios.get(v.name) ?? []).map(r2),
      ratio: summarize(allocRatios.get(v.name) ?? []),
    },
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
  console.log(`1. bench htab-mem, ${producers} producer(s), ${seconds} s per case`);
  console.log(table.toString());
  const t2 = new Table({
    head: ['variant', 'overwrite ns/op', 'batch ns/op', 'batch ÷ overwrite per round (per op)', 'median'],
  });
  for (const v of report.variants) {
    const a = v.allocator;
    t2.push([
      v.name,
      `${a.overwriteNs.median.toFixed(1)} (${a.overwriteNs.min.toFixed(1)}–${a.overwriteNs.max.toFixed(1)})`,
      `${a.batchNs.median.toFixed(1)} (${a.batchNs.min.toFixed(1)}–${a.batchNs.max.toFixed(1)})`,
      a.ratios.map((x) => `${x.toFixed(2)}×`).join(', '),
      `${a.ratio.median.toFixed(2)}×`,
    ]);
  }
  t2.push(['kernel (table A, whole map op)', '123', '187', '', `${report.kernelRatio.toFixed(2)}×`]);
  console.log(`2. the allocator alone on this thread, ${sliceMs} ms slices`);
  console.log(t2.toString());
}
