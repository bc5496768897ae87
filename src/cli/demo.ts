/**
 * `percpu-arena demo`: N worker CPUs allocate and free across each other (the churn scenario)
 * and the command prints what each CPU did and the arena's memory. Exit code 1 if the run saw
 * corruption or a leak.
 *
 * Who may call: the CLI (main thread).
 */
import os from 'node:os';
import { Arena } from '../arena/arena.js';
import type { ArenaStats } from '../arena/stats.js';
import { DEFAULT_PRESET, PRESET_NAMES } from '../epoch/policy.js';
import type { ChurnArgs, ChurnResult } from '../lab/scenarios/churn.js';
import { CpuPool, siblingModule } from '../service/pool.js';
import { PointerQueue } from '../structures/ring.js';
import { loadTable, type TableClass } from './optional-deps.js';
import { gpTimingOptions, integerOption, numberOption, parseCommand, presetOption } from './options.js';

const kDemoUsage = `Usage: percpu-arena demo [options]

N worker CPUs allocate and free across each other; prints a table per CPU and the arena's memory.

  --cpus N         worker CPUs (default: the machine's cores, ${os.availableParallelism()})
  --ops N          allocations per CPU (default 200000)
  --live N         units each CPU keeps live while churning (default 1000)
  --max-size N     largest request in bytes, 8..4088 (default 4088)
  --remote F       fraction of frees done on another CPU, 0..1 (default 0.25)
  --max-bytes N    memory limit of the arena in bytes (default 64 MiB)
  --policy NAME    reuse policy preset (default ${DEFAULT_PRESET}):
                   ${PRESET_NAMES.join(', ')}
  --rcu-gp-ms N    minimum duration of an rcu epoch in ms, 0..60000 (default 0: as fast as safe)
  --ttrace-gp-ms N minimum duration of a ttrace epoch in ms, 0..60000 (default 0)
  --seed N         random seed (default 1)
  --json           print one JSON object instead of tables
  -h, --help       show this help
`;

export async function demo(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    cpus: { type: 'string' },
    ops: { type: 'string' },
    live: { type: 'string' },
    'max-size': { type: 'string' },
    remote: { type: 'string' },
    'max-bytes': { type: 'string' },
    policy: { type: 'string' },
    'rcu-gp-ms': { type: 'string' },
    'ttrace-gp-ms': { type: 'string' },
    seed: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    process.stdout.write(kDemoUsage);
    return 0;
  }
  const Table = values.json ? undefined : await loadTable("percpu-arena demo's tables");
  const cpus = integerOption(values.cpus, 'cpus', os.availableParallelism(), 1, 64);
  const args: Omit<ChurnArgs, 'queue'> = {
    ops: integerOption(values.ops, 'ops', 200_000, 1, 1e9),
    live: integerOption(values.live, 'live', 1000, 0, 1e6),
    maxSize: integerOption(values['max-size'], 'max-size', 4088, 8, 4088),
    remoteFraction: numberOption(values.remote, 'remote', 0.25, 0, 1),
    seed: integerOption(values.seed, 'seed', 1, 0, 2 ** 31 - 1),
  };
  const maxBytes = integerOption(values['max-bytes'], 'max-bytes', 64 << 20, 1 << 20, 1 << 30);
  const policy = presetOption(values.policy);
  const gpMinMs = gpTimingOptions(values);

  const arena = Arena.create({ cpus, maxBytes, policy, gpMinMs });
  const pool = CpuPool.start(arena);
  const queue = new PointerQueue(8192);
  const started = performance.now();
  let results: ChurnResult[];
  try {
    results = await pool.run<ChurnResult>(siblingModule(import.meta.url, '../lab/scenarios/churn'), 'churn', {
      ...args,
      queue: queue.buffer,
    });
  } finally {
    await pool.close();
  }
  const wallMs = performance.now() - started;
  const stats = arena.stats();
  const report = await arena.close();
  const errors = results.reduce((n, r) => n + r.errors, 0);
  const summary = {
    cpus,
    ...args,
    maxBytes,
    policy,
    gpMinMs,
    wallMs: Math.round(wallMs),
    perCpu: results.map((r) => {
      const cpuStats = stats.cpus[r.cpu];
      return { ...r, ms: Math.round(r.ms), refills: cpuStats?.refills ?? 0, trims: cpuStats?.trims ?? 0 };
    }),
    bytesInUse: stats.bytesInUse,
    peakBytes: stats.peakBytes,
    liveUnits: stats.liveUnits,
    deferredAtEnd: stats.totals.deferred,
    gp: { rcu: stats.gp.rcu, ttrace: stats.gp.ttrace },
    leaked: report.leaked,
    errors,
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } else if (Table) {
    printTables(summary, Table);
  }
  return errors === 0 && report.leaked === 0 ? 0 : 1;
}

function printTables(
  s: {
    cpus: number;
    ops: number;
    live: number;
    remoteFraction: number;
    policy: string;
    gpMinMs: { rcu: number; ttrace: number };
    deferredAtEnd: number;
    gp: ArenaStats['gp'];
    wallMs: number;
    perCpu: (ChurnResult & { refills: number; trims: number })[];
    bytesInUse: number;
    peakBytes: number;
    liveUnits: number;
    leaked: number;
    errors: number;
  },
  Table: TableClass,
): void {
  const plain = { style: { head: [], border: [] } };
  const kib = (bytes: number): string => `${(bytes / 1024).toFixed(0)} KiB`;
  console.log(
    `percpu-arena demo: ${s.cpus} worker CPUs, ${s.ops} allocations each, ${s.live} live per CPU, ` +
      `${Math.round(s.remoteFraction * 100)}% of frees on another CPU, policy ${s.policy}` +
      (s.gpMinMs.rcu + s.gpMinMs.ttrace > 0
        ? `, epochs ≥ ${s.gpMinMs.rcu} / ${s.gpMinMs.ttrace} ms (rcu / ttrace)`
        : '') +
      ` (${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} cores, Node ${process.version})`,
  );
  const perCpu = new Table({
    ...plain,
    head: [
      'CPU',
      'allocs',
      'local frees',
      'remote frees',
      'handed off',
      'refills',
      'trims',
      'alloc fails',
      'errors',
      'ms',
    ],
  });
  for (const r of s.perCpu) {
    perCpu.push([
      r.cpu,
      r.allocs,
      r.localFrees,
      r.remoteFrees,
      r.handedOff,
      r.refills,
      r.trims,
      r.allocFailures,
      r.errors,
      r.ms,
    ]);
  }
  console.log(perCpu.toString());
  const memory = new Table({ ...plain, head: ['arena', 'value'] });
  memory.push(
    ['memory in use at end', kib(s.bytesInUse)],
    ['peak memory', kib(s.peakBytes)],
    ['live units at end', s.liveUnits],
    ['deferred units at end (waiting for a GP)', s.deferredAtEnd],
    ...(['rcu', 'ttrace'] as const).map((f) => [
      `${f} GPs completed (median latency)`,
      `${s.gp[f].completed} (${s.gp[f].latencyUs.p50} µs)`,
    ]),
    ['leaked at close', s.leaked],
    ['corruptions seen', s.errors],
    ['wall time', `${s.wallMs} ms`],
  );
  console.log(memory.toString());
}
