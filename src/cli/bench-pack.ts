/**
 * `percpu-arena bench pack`: runs src/lab/benchmarks/pack-bench.ts and prints both sides in one table
 * with their ratios (or one JSON object with `--json`).
 *
 * Who may call: src/cli/bench.ts.
 */
import { type PackBenchReport, type PackSide, runPackBench } from '../lab/benchmarks/pack-bench.js';
import { loadTable, type TableClass } from './optional-deps.js';
import { integerOption, parseCommand } from './options.js';

export const PACK_USAGE = `pack       the bpf_prog_pack experiment: N programs of realistic sizes loaded from several CPUs
           into 2 MiB packs (RO+X as a whole) and, side by side, each into its own page-rounded
           region; reports the simulated DirectMap4k / 2M and splits per quarter of N, memory,
           chunk fragmentation with half of them unloaded, load / unload rates, what stays
           after unloading.
  --programs N        programs, 4..65536 (default 2048)
  --cpus N            CPUs loading them, 1..16 (default 2)
  --seed N            seed of the program sizes (default 1)
  --huge-vmap         map packs with 2 MiB mappings (VM_ALLOW_HUGE_VMAP)
  --json              print one JSON object
`;

export async function benchPack(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    programs: { type: 'string' },
    cpus: { type: 'string' },
    seed: { type: 'string' },
    'huge-vmap': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    process.stdout.write(`Usage: percpu-arena bench pack [options]\n\n${PACK_USAGE}`);
    return 0;
  }
  const Table = values.json ? undefined : await loadTable("percpu-arena bench pack's table");
  const report = await runPackBench({
    programs: integerOption(values.programs, 'programs', 2048, 4, 65536),
    cpus: integerOption(values.cpus, 'cpus', 2, 1, 16),
    seed: integerOption(values.seed, 'seed', 1, 0, 0x7fffffff),
    hugeVmap: values['huge-vmap'],
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
  }
  row('DirectMap2M (KiB)', (s) => s.directMap2MKiB);
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

function printPackBench(r: PackBenchReport, Table: TableClass): void {
  const c = r.conditions;
  console.log(
    `${c.cpuModel}, ${c.cores} cores, Node ${c.node}; ${r.programs} programs from ${r.cpus} CPUs, seed ${r.seed}` +
      `${r.hugeVmap ? ', huge vmap' : ''}\nsizes: ${r.sizes}`,
  );
  console.log(packTable(r, Table));
}
