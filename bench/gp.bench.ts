/**
 * Grace-period benchmark, three parts measured side by side in one run:
 *
 * 1. Read side: ns per `readLock(); readUnlock()` pair (rcu and ttrace) on 1 and 2 worker CPUs,
 *    next to an empty loop of the same shape. Target: ≤ 25 ns per pair.
 * 2. GP latency: the main thread awaits `arena.synchronize('rcu')` back to back, first with the
 *    CPUs idle, then while 2 worker CPUs are busy (read sections, and alloc + freeRcu every 8th
 *    section, so GPs are always wanted). Reports the latency of each call (median, p90, p99)
 *    and the coordinator's own GP latency. Target: median ≤ 100 µs with 2 busy CPUs.
 * 3. The own-CPU fast path (64-byte LIFO alloc+free, 1 worker) under each preset, so the cost of
 *    the GP machinery shows as a ratio to kernel-6.6 in the same run.
 *
 *   npm run bench:gp [-- --json]
 *   BENCH_ROUNDS=5 BENCH_SECONDS=0.3 BENCH_SYNC_SECONDS=1 node dist/bench/gp.bench.js
 *
 * Progress goes to stderr, the report to stdout (a table, or one JSON object with `--json`).
 */
import { parseArgs } from 'node:util';
import Table from 'cli-table3';
import { Arena } from '../src/arena/arena.js';
import type { PresetName } from '../src/epoch/policy.js';
import { CpuPool, siblingModule } from '../src/service/pool.js';
import {
  endRound,
  envNumber,
  loadMark,
  printConditions,
  quantile,
  runConditions,
  summarize,
} from './bench-common.js';
import type { FastpathArgs, FastpathResult } from './fastpath-task.js';
import type { BusyArgs, BusyResult, ReadSideArgs, ReadSideResult } from './gp-task.js';

const { values: flags } = parseArgs({ options: { json: { type: 'boolean', default: false } } });
const rounds = envNumber('BENCH_ROUNDS', 5, (v) => Number.isInteger(v) && v >= 1);
const seconds = envNumber('BENCH_SECONDS', 0.3, (v) => v > 0 && v <= 60);
const syncSeconds = envNumber('BENCH_SYNC_SECONDS', 1, (v) => v > 0 && v <= 60);

const READ_KINDS = ['empty', 'rcu', 'ttrace'] as const;
const FASTPATH_PRESETS: readonly PresetName[] = [
  'kernel-6.6',
  'kernel-6.1',
  'prealloc',
  'reuse-after-gp',
  'free-after-gp',
  'arena',
];
const TARGET_READ_NS = 25;
const TARGET_GP_MEDIAN_US = 100;

const gpTask = siblingModule(import.meta.url, './gp-task');
const fastpathTask = siblingModule(import.meta.url, './fastpath-task');

/** Awaits `synchronize('rcu')` back to back for `syncSeconds`; returns each call's µs. */
async function syncLatencies(arena: Arena): Promise<number[]> {
  const out: number[] = [];
  const end = performance.now() + syncSeconds * 1000;
  while (performance.now() < end) {
    const t0 = performance.now();
    await arena.synchronize('rcu');
    out.push((performance.now() - t0) * 1000);
  }
  return out;
}

async function main(): Promise<void> {
  const conditions = runConditions({ rounds, seconds, syncSeconds });
  if (!flags.json) {
    printConditions('Grace periods: read-side cost, GP latency, fast path per preset', conditions);
    console.log(
      `Rounds:  ${rounds}, ${seconds} s timed per read-side / fast-path run, ${syncSeconds} s of synchronize() per GP run`,
    );
    console.log('');
  }
  const arena = Arena.create({ cpus: 2 });
  const pools = new Map<number, CpuPool>([
    [1, CpuPool.start(arena, { cpus: 1 })],
    [2, CpuPool.start(arena, { cpus: 2 })],
  ]);
  const presetArenas = FASTPATH_PRESETS.map((policy) => {
    const a = Arena.create({ cpus: 1, policy });
    return { policy, arena: a, pool: CpuPool.start(a) };
  });

  const readNs = new Map<string, number[]>(); // `${kind}/${workers}` → ns per pair per round
  const idleUs: number[] = [];
  const busyUs: number[] = [];
  const busyWork: BusyResult[] = [];
  const lifo = new Map<PresetName, number[]>(FASTPATH_PRESETS.map((p) => [p, []]));
  const otherLoads: number[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      const mark = loadMark();
      for (const kind of READ_KINDS) {
        for (const workers of [1, 2]) {
          const results = await (pools.get(workers) as CpuPool).run<ReadSideResult>(gpTask, 'readSideRun', {
            seconds,
            kind,
          } satisfies ReadSideArgs);
          // ns per pair on each CPU, averaged over the CPUs of the run.
          const ns = results.reduce((n, r) => n + (r.seconds * 1e9) / r.pairs, 0) / results.length;
          const k = `${kind}/${workers}`;
          readNs.set(k, [...(readNs.get(k) ?? []), ns]);
        }
      }
      // A loop, not push(...): on Node 24 a round's latencies outnumber the arguments a call takes.
      for (const us of await syncLatencies(arena)) idleUs.push(us);
      const control = new SharedArrayBuffer(8);
      const ctl = new Int32Array(control);
      const busy = (pools.get(2) as CpuPool).run<BusyResult>(gpTask, 'busyRun', {
        control,
      } satisfies BusyArgs);
      while (Atomics.load(ctl, 0) < 2) {
        const wait = Atomics.waitAsync(ctl, 0, Atomics.load(ctl, 0), 100);
        if (wait.async) await wait.value;
      }
      for (const us of await syncLatencies(arena)) busyUs.push(us);
      Atomics.store(ctl, 1, 1);
      busyWork.push(...(await busy));
      for (const { policy, pool } of presetArenas) {
        const [r] = await pool.run<FastpathResult>(fastpathTask, 'arenaLifoRun', {
          seconds,
          warmupPairs: 2_000_000,
          warmupSeconds: 0.25,
          lock: new SharedArrayBuffer(64),
        } satisfies FastpathArgs);
        const res = r as FastpathResult;
        (lifo.get(policy) as number[]).push(res.pairs / res.seconds / 1e6);
      }
      endRound(round, rounds, mark, otherLoads);
    }
  } finally {
    for (const pool of pools.values()) await pool.close();
    for (const p of presetArenas) await p.pool.close();
  }
  const coordinator = arena.stats().gp.rcu;
  const report = await arena.close();
  for (const p of presetArenas) await p.arena.close();
  if (report.leaked !== 0) throw new Error(`the arena leaked ${report.leaked} units`);

  const read = Object.fromEntries([...readNs].map(([k, ns]) => [k, summarize(ns)])) as Record<
    string,
    ReturnType<typeof summarize>
  >;
  const latency = (us: number[]) => ({
    calls: us.length,
    median: quantile(us, 0.5),
    p90: quantile(us, 0.9),
    p99: quantile(us, 0.99),
    max: quantile(us, 1),
  });
  const gp = { idle: latency(idleUs), busy: latency(busyUs), coordinator: coordinator.latencyUs };
  const busySections = busyWork.reduce((n, r) => n + r.sections, 0);
  const busyFreed = busyWork.reduce((n, r) => n + r.freed, 0);
  const lifoMedian = (p: PresetName) => summarize(lifo.get(p) as number[]).median;
  const fastpath = FASTPATH_PRESETS.map((policy) => ({
    policy,
    ...summarize(lifo.get(policy) as number[]),
    ratioToKernel66: lifoMedian(policy) / lifoMedian('kernel-6.6'),
  }));
  const rcuNs = (read['rcu/1'] as { median: number }).median;
  const targets = [
    {
      target: `rcu readLock+readUnlock ≤ ${TARGET_READ_NS} ns (1 CPU)`,
      measured: rcuNs,
      met: rcuNs <= TARGET_READ_NS,
    },
    {
      target: `GP latency median ≤ ${TARGET_GP_MEDIAN_US} µs with 2 busy CPUs`,
      measured: gp.busy.median,
      met: gp.busy.median <= TARGET_GP_MEDIAN_US,
    },
  ];

  if (flags.json) {
    console.log(
      JSON.stringify(
        {
          conditions: { ...conditions, otherCpusPerRound: otherLoads },
          read,
          gp,
          busySections,
          busyFreed,
          fastpath,
          targets,
        },
        null,
        2,
      ),
    );
    return;
  }
  const f = (x: number, d = 1): string => x.toFixed(d);
  const readTable = new Table({
    head: ['read side', '1 CPU, ns/pair', '2 CPUs, ns/pair (each)'],
    style: { head: [], border: [] },
  });
  for (const kind of READ_KINDS) {
    const cell = (w: number) => {
      const s = read[`${kind}/${w}`] as { median: number; min: number; max: number };
      return `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
    };
    readTable.push([kind === 'empty' ? 'empty loop (baseline)' : `${kind} lock+unlock`, cell(1), cell(2)]);
  }
  console.log('Read-side sections: median (min–max) over rounds');
  console.log(readTable.toString());
  const gpTable = new Table({
    head: ['synchronize(rcu)', 'calls', 'median µs', 'p90 µs', 'p99 µs', 'max µs'],
    style: { head: [], border: [] },
  });
  for (const [name, l] of [
    ['CPUs idle', gp.idle],
    ['2 busy CPUs', gp.busy],
  ] as const) {
    gpTable.push([name, l.calls, f(l.median), f(l.p90), f(l.p99), f(l.max)]);
  }
  console.log('GP latency: each synchronize() call, awaited back to back on the main thread');
  console.log(gpTable.toString());
  console.log(
    `Coordinator's own GP latency (request seen → epoch reached), all runs: median ${coordinator.latencyUs.p50} µs, ` +
      `p99 ${coordinator.latencyUs.p99} µs over ${coordinator.latencyUs.count} GPs; ${coordinator.helpedAdvances} of ` +
      `${coordinator.advances} advances made by CPUs. Busy CPUs ran ${busySections} sections and freed ${busyFreed} units with freeRcu.`,
  );
  const fpTable = new Table({
    head: ['policy', 'LIFO M pairs/s', '÷ kernel-6.6'],
    style: { head: [], border: [] },
  });
  for (const r of fastpath)
    fpTable.push([r.policy, `${f(r.median)} (${f(r.min)}–${f(r.max)})`, `${r.ratioToKernel66.toFixed(2)}×`]);
  console.log('Own-CPU fast path, 64-byte alloc+free LIFO, 1 worker, per preset');
  console.log(fpTable.toString());
  if (otherLoads.length > 0) {
    const o = summarize(otherLoads);
    console.log(`Other processes used ${o.median.toFixed(2)} CPUs (median of rounds) while this ran`);
  }
  console.log('');
  console.log('Targets (issue):');
  for (const t of targets) {
    console.log(`  ${t.met ? 'met    ' : 'NOT met'}  ${t.target}: measured ${f(t.measured)}`);
  }
}

await main();
