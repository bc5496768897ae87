/**
 * `percpu-arena bench htab-mem` and `percpu-arena bench xmalloc`: parse the kernel bench's
 * options, run src/benchmarks/*, print the kernel's summary line (or one JSON object);
 * `bench pack` is src/cli/bench-pack.ts.
 *
 * Who may call: the CLI (main thread).
 */
import { DEFAULT_PRESET, PRESET_NAMES } from '../epoch/policy.js';
import {
  HTAB_USE_CASES,
  type HtabMemReport,
  type HtabUseCase,
  htabMemProblem,
  runHtabMem,
} from '../lab/benchmarks/htab-mem.js';
import { KERNEL_LIKE_GP_MS } from '../lab/benchmarks/measure.js';
import { runXmalloc, type XmallocReport } from '../lab/benchmarks/xmalloc.js';
import { benchPack, PACK_USAGE } from './bench-pack.js';
import {
  defaultCpus,
  evenCount,
  gpTimingOptions,
  gpTimingParseOptions,
  integerOption,
  numberOption,
  parseCommand,
  presetOption,
  UsageError,
  xmallocProducers,
} from './options.js';

const kHtabUsage = `htab-mem   the kernel's htab-mem benchmark on the arena's hash map: producer CPUs run programs
           of 64 map operations, each in a read-side section; reports per-producer k ops/s
           (mean ± stddev over 1-second intervals) and the arena's memory (avg, peak).
  --use-case NAME     ${HTAB_USE_CASES.join(' | ')} (default overwrite)
  --value-size N      value bytes, 1..4096 (default 8)
  --producers N       producer CPUs (default: the machine's cores, ${defaultCpus};
                      add_del_on_diff_cpu needs an even count and defaults to
                      the largest even count not above them)
  --preallocated      pre-allocated map (the prealloc preset)
  --irq-work          run refills and trims as the kernel's irq_work (deferred to the CPU's next
                      allocator call), immediate-reuse presets only

`;

const kXmallocUsage = `xmalloc    the xmalloc-test shape: N producer CPUs allocate batches, a bounded queue carries
           them, N consumer CPUs free them (every free remote); reports objects/s and memory.
  --producers N       producer CPUs, as many consumers (default ${xmallocProducers(defaultCpus)})
  --batch N           objects per batch, 1..65536 (default 4096)
  --size N            object bytes, 1..4088 (default 64)

`;

const kCommonUsage = `Common options (htab-mem, xmalloc):
  --policy NAME       reuse policy preset (default ${DEFAULT_PRESET}): ${PRESET_NAMES.join(', ')}
  --duration S        measured seconds, 1..3600 (default 5)
  --warmup S          seconds before measuring, 0..600 (default 1)
  --rcu-gp-ms N       minimum duration of an rcu epoch in ms, 0..60000 (default ${KERNEL_LIKE_GP_MS.rcu},
                      as the report: the order of the kernel's grace periods)
  --ttrace-gp-ms N    minimum duration of a ttrace epoch in ms, 0..60000 (default ${KERNEL_LIKE_GP_MS.ttrace})
  --json              print one JSON object
  -h, --help          show this help
`;

const kUsage = `Usage: percpu-arena bench <htab-mem|xmalloc|pack> [options]

${kHtabUsage}${kXmallocUsage}${PACK_USAGE}
${kCommonUsage}`;

const common = {
  policy: { type: 'string' },
  duration: { type: 'string' },
  warmup: { type: 'string' },
  ...gpTimingParseOptions,
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

function timing(values: { duration?: string | undefined; warmup?: string | undefined }) {
  return {
    durationS: numberOption(values.duration, 'duration', 5, 1, 3600),
    warmupS: numberOption(values.warmup, 'warmup', 1, 0, 600),
  };
}

export async function bench(argv: string[]): Promise<number> {
  const [which, ...rest] = argv;
  if (which === 'htab-mem') return htabMem(rest);
  if (which === 'xmalloc') return xmalloc(rest);
  if (which === 'pack') return benchPack(rest);
  if (which === '-h' || which === '--help') {
    process.stdout.write(kUsage);
    return 0;
  }
  throw new UsageError(`bench needs htab-mem, xmalloc or pack, got '${which ?? ''}'`);
}

async function htabMem(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    ...common,
    'use-case': { type: 'string' },
    'value-size': { type: 'string' },
    producers: { type: 'string' },
    preallocated: { type: 'boolean', default: false },
    'irq-work': { type: 'boolean', default: false },
  });
  if (values.help) {
    process.stdout.write(`Usage: percpu-arena bench htab-mem [options]\n\n${kHtabUsage}\n${kCommonUsage}`);
    return 0;
  }
  if (values.preallocated && values.policy !== undefined && values.policy !== 'prealloc') {
    throw new UsageError(
      `--preallocated is the prealloc preset; it cannot be combined with --policy ${values.policy}`,
    );
  }
  const useCase = (values['use-case'] ?? 'overwrite') as HtabUseCase;
  const options = {
    useCase,
    valueSize: integerOption(values['value-size'], 'value-size', 8, 1, 4096),
    producers: integerOption(
      values.producers,
      'producers',
      useCase === 'add_del_on_diff_cpu' ? evenCount(defaultCpus) : defaultCpus,
      1,
      64,
    ),
    policy: values.preallocated ? 'prealloc' : presetOption(values.policy),
    gpMinMs: gpTimingOptions(values, KERNEL_LIKE_GP_MS),
    irqWork: values['irq-work'],
    ...timing(values),
  } as const;
  const problem = htabMemProblem(options);
  if (problem !== undefined) throw new UsageError(problem);
  const report = await runHtabMem(options);
  if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else printHtabMem(report);
  return 0;
}

async function xmalloc(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    ...common,
    producers: { type: 'string' },
    batch: { type: 'string' },
    size: { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(`Usage: percpu-arena bench xmalloc [options]\n\n${kXmallocUsage}\n${kCommonUsage}`);
    return 0;
  }
  const report = await runXmalloc({
    producers: integerOption(values.producers, 'producers', xmallocProducers(defaultCpus), 1, 32),
    batch: integerOption(values.batch, 'batch', 4096, 1, 65_536),
    size: integerOption(values.size, 'size', 64, 1, 4088),
    policy: presetOption(values.policy),
    gpMinMs: gpTimingOptions(values, KERNEL_LIKE_GP_MS),
    ...timing(values),
  });
  if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else printXmalloc(report);
  return 0;
}

/** The run's conditions in one line. */
export function conditionsLine(r: HtabMemReport | XmallocReport): string {
  const c = r.conditions;
  return (
    `${c.cpuModel}, ${c.cores} cores, Node ${c.node}; policy ${r.policy}, ` +
    `epochs ≥ ${r.gpMinMs.rcu} / ${r.gpMinMs.ttrace} ms (rcu / ttrace), warm-up ${r.warmupS} s, ${r.durationS} s measured`
  );
}

const fixed2 = (x: number): string => x.toFixed(2);

function gpLine(r: HtabMemReport | XmallocReport): string {
  return (
    `GPs completed by the coordinator: rcu ${r.gp.rcu.completed} (p50 ${Math.round(r.gp.rcu.p50Us)} µs), ` +
    `ttrace ${r.gp.ttrace.completed} (p50 ${Math.round(r.gp.ttrace.p50Us)} µs); ` +
    `epoch advances: rcu ${r.gp.rcu.advances}, ttrace ${r.gp.ttrace.advances}`
  );
}

function printHtabMem(r: HtabMemReport): void {
  console.log(
    `htab-mem ${r.useCase}, ${r.producers} producers, value ${r.valueSize} B, max_entries ${r.maxEntries}`,
  );
  console.log(conditionsLine(r));
  for (const [i, s] of r.intervals.entries()) {
    console.log(
      `Iter ${String(i).padStart(3)}: per-prod-op ${fixed2(s.perProdKops).padStart(8)}k/s, memory usage ${fixed2(s.MiB).padStart(8)}MiB`,
    );
  }
  console.log(
    `Summary: per-prod-op ${fixed2(r.perProdKops)} ± ${fixed2(r.perProdKopsStddev)}k/s, ` +
      `memory usage ${fixed2(r.avgMiB)} ± ${fixed2(r.avgMiBStddev)}MiB, peak memory usage ${fixed2(r.peakMiB)}MiB`,
  );
  console.log(
    gpLine(r) + (r.failedUpdates > 0 ? `; ${r.failedUpdates} updates failed (map full or no memory)` : ''),
  );
  console.log(
    `memcg model (what the kernel bench reads): memory.current ${fixed2(r.memcg.avgMiB)}MiB, ` +
      `memory.peak ${fixed2(r.memcg.peakMiB)}MiB, of which the CPUs' charge stocks ${fixed2(r.memcg.stocksMiB)}MiB at the end`,
  );
  const e = r.cacheEvents;
  console.log(
    `Refills ${e.refills} (${fixed2(e.refillsPerRun)} per program run), trims ${e.trims} (${fixed2(e.trimsPerRun)} per run)` +
      `${r.irqWork ? ', run as irq_work' : ''}`,
  );
}

function printXmalloc(r: XmallocReport): void {
  console.log(
    `xmalloc: ${r.producers} producers, ${r.consumers} consumers, batches of ${r.batch} × ${r.size} B`,
  );
  console.log(conditionsLine(r));
  console.log(
    `Summary: ${(r.objectsPerSec / 1e6).toFixed(2)} ± ${(r.objectsPerSecStddev / 1e6).toFixed(2)} M objects/s ` +
      `(${fixed2(r.perProdKops)}k/s per producer), memory usage ${fixed2(r.avgMiB)} ± ${fixed2(r.avgMiBStddev)}MiB, ` +
      `peak memory usage ${fixed2(r.peakMiB)}MiB ` +
      `(${r.peakMiB <= r.boundMiB ? 'within' : 'above'} the bound of ${fixed2(r.boundMiB)}MiB: live + caches + depot + nine epochs of frees)`,
  );
  console.log(
    gpLine(r) + (r.allocFailures > 0 ? `; ${r.allocFailures} allocations failed (memory limit)` : ''),
  );
}
