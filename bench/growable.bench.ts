/**
 * What a growable SharedArrayBuffer costs: the same work on a fixed arena and on a growable one
 * of the same size, in alternating rounds on the main thread (one CPU attached here), reported
 * as the median rate of each and their ratio. Two workloads: 64-byte LIFO alloc + free pairs,
 * and hash map updates (4-byte keys, 8-byte values, 64 keys per read-side section).
 *
 * V8 (Node 20) gives views on a growable buffer a length that can change, so it cannot hoist
 * their bounds checks out of loops; this run measures how much that costs here.
 *
 *   npm run build && node dist/bench/growable.bench.js [--json]
 *   BENCH_ROUNDS=7 BENCH_SECONDS=0.3 node dist/bench/growable.bench.js
 */
import { parseArgs } from 'node:util';
import Table from 'cli-table3';
import { Arena } from '../src/arena/arena.js';
import type { CpuHandle } from '../src/cpu/cpu.js';
import { HashMap } from '../src/structures/hash-map.js';
import { endRound, envNumber, loadMark, printConditions, runConditions, summarize } from './bench-common.js';

const { values: flags } = parseArgs({ options: { json: { type: 'boolean', default: false } } });
const rounds = envNumber('BENCH_ROUNDS', 7, (v) => Number.isInteger(v) && v >= 1);
const seconds = envNumber('BENCH_SECONDS', 0.3, (v) => v > 0 && v <= 60);

interface Subject {
  readonly cpu: CpuHandle;
  readonly map: HashMap;
}

function subject(growable: boolean): Subject {
  const arena = Arena.create({
    cpus: 1,
    maxBytes: 64 << 20,
    growable,
    coordinator: 'manual',
    fixedSizes: [HashMap.elementBytes(4, 8)],
  });
  const cpu = arena.attach(0);
  const ref = HashMap.create(arena, { keySize: 4, valueSize: 8, maxEntries: 8192, fixedCache: 0 });
  return { cpu, map: HashMap.open(cpu, ref) };
}

/** Millions of alloc + free pairs per second for `seconds`. */
function lifo(s: Subject): number {
  const cpu = s.cpu;
  const end = performance.now() + seconds * 1000;
  let n = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 10_000; i++) cpu.free(cpu.alloc(64));
    n += 10_000;
  }
  return n / seconds / 1e6;
}

const key = new Uint8Array(4);
const keyView = new DataView(key.buffer);
const value = new Uint8Array(8);

/** Millions of map updates per second for `seconds`. */
function updates(s: Subject): number {
  const { cpu, map } = s;
  const end = performance.now() + seconds * 1000;
  let n = 0;
  while (performance.now() < end) {
    for (let run = 0; run < 100; run++) {
      cpu.readLock();
      for (let i = 0; i < 64; i++) {
        keyView.setUint32(0, i, true);
        map.update(key, value);
      }
      cpu.readUnlock();
    }
    n += 6400;
  }
  return n / seconds / 1e6;
}

const subjects = { fixed: subject(false), growable: subject(true) };
const workloads = { 'LIFO alloc+free (M pairs/s)': lifo, 'map updates (M/s)': updates };
const rates: Record<string, Record<string, number[]>> = {};
const otherLoads: number[] = [];
for (let round = 0; round < rounds; round++) {
  const mark = loadMark();
  for (const [work, fn] of Object.entries(workloads)) {
    for (const [name, s] of Object.entries(subjects)) {
      const byName = rates[work] ?? {};
      rates[work] = byName;
      byName[name] = [...(byName[name] ?? []), fn(s)];
    }
  }
  endRound(round, rounds, mark, otherLoads);
}

const conditions = { ...runConditions({ rounds, seconds }), otherCpusPerRound: otherLoads };
const rows = Object.entries(rates).map(([work, byName]) => {
  const fixed = summarize(byName.fixed ?? []).median;
  const growable = summarize(byName.growable ?? []).median;
  return { workload: work, fixed, growable, ratio: fixed / growable };
});
if (flags.json) {
  process.stdout.write(`${JSON.stringify({ conditions, rows })}\n`);
} else {
  printConditions('growable vs fixed arena (main thread, 1 CPU)', conditions);
  const table = new Table({
    head: ['workload', 'fixed', 'growable', 'fixed / growable'],
    style: { head: [], border: [] },
  });
  for (const r of rows)
    table.push([r.workload, r.fixed.toFixed(2), r.growable.toFixed(2), `${r.ratio.toFixed(2)}×`]);
  console.log(table.toString());
}
