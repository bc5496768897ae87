/**
 * slub_kunit's batch curve (kernel-2025.md §6.3) on one CPU of the calling thread: allocate a
 * batch of B 64-byte objects (56 user bytes), free them in allocation order (FIFO) or shuffled,
 * repeat; ns per object (one alloc + one free) for bpf_mem_alloc's lists (`kernel-6.6`) and for
 * sheaves of capacity 32 (`sheaves`, as the kernel's test), B = 1, 10, 100, 1000, the two
 * presets interleaved round by round. The sheaves' slab traffic per batch (refill + flush, from
 * the SLUB_STATS counters) shows where a batch spills past main + spare + barn (12 × 32 = 384).
 *
 *   npm run build && node dist/bench/sheaf-batch.bench.js
 *   BENCH_ROUNDS=7 BENCH_SECONDS=0.2 node dist/bench/sheaf-batch.bench.js
 *
 * Not a test: it checks only that no allocation failed. test/sheaves.test.ts checks the
 * mechanism (no slab traffic within the horizon, spills beyond it) exactly.
 */
import { Arena } from '../src/arena/arena.js';
import type { CpuHandle } from '../src/cpu/cpu.js';
import type { Pointer } from '../src/shm/refs.js';
import { envNumber, summarize } from './bench-common.js';

const rounds = envNumber('BENCH_ROUNDS', 5, (v) => Number.isInteger(v) && v >= 1);
const seconds = envNumber('BENCH_SECONDS', 0.2, (v) => v > 0 && v <= 60);
const batches = [1, 10, 100, 1000];
const orders = ['fifo', 'shuffled'] as const;
const CLS64 = 2;

/** A fixed shuffle per batch size (a table, so the generator is not measured). */
function permutation(n: number): Int32Array {
  const p = Int32Array.from({ length: n }, (_, k) => k);
  let seed = 987654321;
  for (let k = n - 1; k > 0; k--) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    const j = seed % (k + 1);
    const t = p[k] as number;
    p[k] = p[j] as number;
    p[j] = t;
  }
  return p;
}

function runBatches(cpu: CpuHandle, held: Float64Array, order: Int32Array | undefined, n: number): void {
  const batch = held.length;
  for (let r = 0; r < n; r++) {
    for (let k = 0; k < batch; k++) {
      const p = cpu.alloc(56);
      if (p === 0) throw new Error('allocation failed');
      held[k] = p;
    }
    if (order === undefined) for (let k = 0; k < batch; k++) cpu.free(held[k] as Pointer);
    else for (let k = 0; k < batch; k++) cpu.free(held[order[k] as number] as Pointer);
  }
}

const variants = {
  'kernel-6.6': Arena.create({ cpus: 1, policy: 'kernel-6.6', maxBytes: 64 << 20 }),
  'sheaves (capacity 32)': Arena.create({
    cpus: 1,
    policy: { cache: 'sheaves', trimVia: 'slab', afterRcuGp: 'slab', sheafCapacity: 32 },
    maxBytes: 64 << 20,
  }),
};
const handles = Object.fromEntries(Object.entries(variants).map(([k, a]) => [k, a.attach(0)])) as Record<
  string,
  CpuHandle
>;
const ns: Record<string, number[]> = {};
const spill: Record<string, number> = {};
for (let round = 0; round < rounds; round++) {
  for (const batch of batches) {
    for (const order of orders) {
      const perm = order === 'fifo' ? undefined : permutation(batch);
      const held = new Float64Array(batch);
      for (const [name, cpu] of Object.entries(handles)) {
        runBatches(cpu, held, perm, Math.max(1, Math.ceil(200_000 / batch))); // warm-up
        const arena = variants[name as keyof typeof variants];
        const before = arena.stats().cpus[0]?.classes[CLS64]?.sheaf;
        let n = 0;
        const start = performance.now();
        let now = start;
        const step = Math.max(1, Math.ceil(20_000 / batch));
        while (now - start < seconds * 1000) {
          runBatches(cpu, held, perm, step);
          n += step;
          now = performance.now();
        }
        const after = arena.stats().cpus[0]?.classes[CLS64]?.sheaf;
        const key = `${batch}|${order}|${name}`;
        ns[key] = [...(ns[key] ?? []), ((now - start) * 1e6) / (n * batch)];
        if (before && after)
          spill[`${batch}|${order}`] =
            (after.sheaf_refill - before.sheaf_refill + after.sheaf_flush - before.sheaf_flush) / n;
      }
    }
  }
}
console.log(`Node ${process.version}, ${rounds} rounds × ${seconds} s per cell, medians (min–max)`);
console.log(
  '| batch | order | kernel-6.6 ns/object | sheaves ns/object | sheaves gain (lists ÷ sheaves) | sheaves slab objects per batch |',
);
console.log('|---|---|---|---|---|---|');
for (const batch of batches) {
  for (const order of orders) {
    const lists = summarize(ns[`${batch}|${order}|kernel-6.6`] ?? []);
    const sheaves = summarize(ns[`${batch}|${order}|sheaves (capacity 32)`] ?? []);
    const f = (s: { median: number; min: number; max: number }) =>
      `${s.median.toFixed(1)} (${s.min.toFixed(1)}–${s.max.toFixed(1)})`;
    console.log(
      `| ${batch} | ${order} | ${f(lists)} | ${f(sheaves)} | ${(lists.median / sheaves.median).toFixed(2)}× | ${Math.round(spill[`${batch}|${order}`] ?? 0)} |`,
    );
  }
}
for (const arena of Object.values(variants)) arena.close();
