/**
 * `percpu-arena bench pack`: runs src/lab/benchmarks/pack-bench.ts and prints both sides in one table
 * with their ratios (or one JSON object with `--json`).
 *
 * Who may call: src/cli/bench.ts.
 */
import {
  PACK_MEMORIES,
  type PackBenchReport,
  type PackMemory,
  type PackSide,
  runPackBench,
} from '../lab/benchmarks/pack-bench.js';
import { PHYSICAL_DEFAULTS, PROGRAM_SIZES, type ProgramSizes } from '../lab/benchmarks/pack-physical.js';
import { loadTable, type TableClass } from './optional-deps.js';
import { integerOption, parseCommand, UsageError } from './options.js';

export const PACK_USAGE = `pack       the bpf_prog_pack experiment (Aaron Lu's, research/kernel.md §2.5): N programs loaded
           into 2 MiB packs (RO+X as a whole) and, side by side, each into its own page-rounded
           region; reports DirectMap4k / 2M (/ 1G) and splits per quarter of N next to the
           kernel's, memory, chunk fragmentation with half of them unloaded, load / unload
           rates, what stays after unloading.
  --memory M          physical (default): an 8 GiB simulated physical memory and its buddy
                      allocator back every pack and program, each program loaded by a process
                      whose pages come from the same allocator, the direct map over physical
                      memory; arena: the direct map over the arena's own addresses, programs
                      loaded from --cpus worker CPUs
  --programs N        programs, 4..65536 (default 2048)
  --cpus N            arena mode: CPUs loading them, 1..16 (default 2)
  --seed N            seed of the program sizes and of the aging (default 1)
  --huge-vmap         map packs with 2 MiB mappings (VM_ALLOW_HUGE_VMAP)
  --sizes S           physical mode: sockex1 (default: the kernel experiment's program) or
                      fleet (the arena mode's size distribution)
  --instance-pages N  physical mode: pages each loading process takes (default ${PHYSICAL_DEFAULTS.instancePages})
  --aging-processes N physical mode: processes run before the experiment (default ${PHYSICAL_DEFAULTS.agingProcesses})
  --aging-alive N     physical mode: of those, still alive (default ${PHYSICAL_DEFAULTS.agingAlive})
  --json              print one JSON object
`;

function choice<T extends string>(
  value: string | undefined,
  name: string,
  choices: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value))
    throw new UsageError(`--${name} must be one of ${choices.join(', ')}, got '${value}'`);
  return value as T;
}

export async function benchPack(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    programs: { type: 'string' },
    cpus: { type: 'string' },
    seed: { type: 'string' },
    'huge-vmap': { type: 'boolean', default: false },
    memory: { type: 'string' },
    sizes: { type: 'string' },
    'instance-pages': { type: 'string' },
    'aging-processes': { type: 'string' },
    'aging-alive': { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    process.stdout.write(`Usage: percpu-arena bench pack [options]\n\n${PACK_USAGE}`);
    return 0;
  }
  const memory = choice<PackMemory>(values.memory, 'memory', PACK_MEMORIES, 'physical');
  const sizes = choice<ProgramSizes>(values.sizes, 'sizes', PROGRAM_SIZES, 'sockex1');
  const d = PHYSICAL_DEFAULTS;
  const physical = {
    sizes,
    instancePages: integerOption(values['instance-pages'], 'instance-pages', d.instancePages, 0, 4096),
    agingProcesses: integerOption(values['aging-processes'], 'aging-processes', d.agingProcesses, 0, 100_000),
    agingAlive: integerOption(values['aging-alive'], 'aging-alive', d.agingAlive, 0, 100_000),
  };
  const Table = values.json ? undefined : await loadTable("percpu-arena bench pack's table");
  const report = await runPackBench({
    programs: integerOption(values.programs, 'programs', 2048, 4, 65536),
    cpus: integerOption(values.cpus, 'cpus', 2, 1, 16),
    seed: integerOption(values.seed, 'seed', 1, 0, 0x7fffffff),
    hugeVmap: values['huge-vmap'],
    memory,
    physical,
  });
  if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else if (Table) printPackBench(report, Table);
  return report.withPack.corrupt + report.withoutPack.corrupt > 0 ? 1 : 0;
}

/** with ÷ without; no ratio (not ∞) when the side without packs measured 0. */
const ratio = (a: number, b: number): string =>
  b === 0 ? (a === 0 ? '— (both 0)' : '— (0 without packs)') : `${(a / b).toFixed(2)}×`;

/** One row per measure: its name, both sides and their ratio (the terminal table, the report page). */
export function packRows(r: PackBenchReport): string[][] {
  const p = r.withPack;
  const q = r.withoutPack;
  const rows: string[][] = [];
  const row = (name: string, pick: (s: PackSide) => number) =>
    rows.push([name, String(pick(p)), String(pick(q)), ratio(pick(p), pick(q))]);
  for (const [i, stage] of p.stages.entries()) {
    const other = q.stages[i]?.directMap4kKiB ?? 0;
    rows.push([
      `DirectMap4k after ${stage.programs} (KiB)`,
      String(stage.directMap4kKiB),
      String(other),
      ratio(stage.directMap4kKiB, other),
    ]);
    const kernel = r.kernel.find((k) => k.programs === stage.programs);
    if (kernel) {
      rows.push([
        `  kernel, ${stage.programs} sockex1 (kB): v6.1-rc3 / v5.17`,
        String(kernel.v6_1),
        String(kernel.v5_17),
        '',
      ]);
      rows.push([
        '  ours ÷ kernel',
        ratio(stage.directMap4kKiB, kernel.v6_1),
        ratio(other, kernel.v5_17),
        '',
      ]);
    }
  }
  row('DirectMap2M (KiB)', (s) => s.directMap2MKiB);
  if (p.directMap1GKiB !== undefined) row('DirectMap1G (KiB)', (s) => s.directMap1GKiB ?? 0);
  row('huge mappings split', (s) => s.splits);
  row('memory taken (MiB)', (s) => s.reservedMiB);
  row('programs asked for (MiB)', (s) => s.requestedMiB);
  rows.push(['packs / regions', `${p.packs} / ${p.regions}`, `${q.packs} / ${q.regions}`, '']);
  row('memory with half unloaded (MiB)', (s) => s.half.reservedMiB);
  row('chunk fragmentation, half unloaded', (s) => s.half.fragmentation);
  row('vmap 4 KiB mappings', (s) => s.vmapBase);
  row('vmap 2 MiB mappings', (s) => s.vmapHuge);
  row('loads / s (alloc + copyIn)', (s) => s.loadsPerSec);
  row('unloads / s', (s) => s.unloadsPerSec);
  row('DirectMap4k after unloading (KiB)', (s) => s.after.directMap4kKiB);
  row('failed allocations', (s) => s.failures);
  row('corrupt programs', (s) => s.corrupt);
  return rows;
}

export function packTable(r: PackBenchReport, Table: TableClass): string {
  const table = new Table({ head: ['', 'with packs', 'without packs', 'with ÷ without'] });
  for (const row of packRows(r)) table.push(row);
  return table.toString();
}

/** One line saying where the programs' memory is (the terminal and the report page). */
export function packMemoryText(r: PackBenchReport): string {
  const m = r.physical;
  if (r.memory === 'arena' || !m) {
    return `arena mode: programs loaded from ${r.cpus} CPUs, the direct map simulated over the arena's addresses`;
  }
  return (
    `physical mode: ${m.memoryGiB} GiB of simulated physical memory with a buddy allocator, aged by ` +
    `${m.agingProcesses} processes of ${m.instancePages} pages (${m.agingAlive} still alive); each program ` +
    `loaded by a process of ${m.instancePages} pages; the direct map over physical memory (starts with 1 GiB mappings)`
  );
}

function printPackBench(r: PackBenchReport, Table: TableClass): void {
  const c = r.conditions;
  console.log(
    `${c.cpuModel}, ${c.cores} cores, Node ${c.node}; ${r.programs} programs, seed ${r.seed}` +
      `${r.hugeVmap ? ', huge vmap' : ''}\n${packMemoryText(r)}\nsizes: ${r.sizes}`,
  );
  console.log(packTable(r, Table));
}
