/**
 * The shared cache a Node service would pick, side by side in one run: SharedMap, lmdb (one
 * memory-mapped environment every worker opens: `getBinary`, async `put`, `noSync`), and a
 * per-worker `Map` or `lru-cache` whose writes are broadcast to the other workers over a
 * BroadcastChannel (bench/shared-cache-worker.ts). Every get copies the value out.
 *
 * For each configuration (mix, value size, keys, workers) all four stores are filled, then the
 * rounds run each store in turn for `--ms`, in an order that rotates per round, so the machine's
 * load falls on all of them alike; a ratio is the median over rounds of SharedMap's ops/s over
 * the other store's in the same round. Then write visibility (one worker writes, the other polls:
 * p50 / p99 of the delay until it sees the write) and memory for the fill of 100 k keys x 1 KiB.
 *
 * ```sh
 * npm run bench:cache                  # quick: 2 workers, 64 B and 1 KiB, 10 k and 100 k keys (about a minute)
 * npm run bench:cache -- --full        # every mix x 64 B / 1 KiB / 16 KiB x 10 k / 100 k keys x 1 / 2 workers
 * npm run bench:cache -- --json        # one JSON object on stdout
 * ```
 * Options: `--ms N` per store and round (300), `--rounds R` (3), `--samples S` visibility (200).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { open as openLmdb } from 'lmdb';
import { Arena } from '../src/arena/arena.js';
import { SharedMap } from '../src/service/shared-map.js';
import { endRound, loadMark, printConditions, quantile, runConditions, summarize } from './bench-common.js';
import type { RunReply, SetupReply, StoreName, WorkerMessage } from './shared-cache-worker.js';
import { keyName } from './shared-cache-worker.js';

const STORES: readonly StoreName[] = ['shared', 'lmdb', 'map', 'lru'];
const LABEL: Record<StoreName, string> = {
  shared: 'SharedMap',
  lmdb: 'lmdb',
  map: 'Map + BroadcastChannel',
  lru: 'lru-cache + BroadcastChannel',
};
const MIXES = { 'read-mostly': 0.99, '90/10': 0.9, '50/50': 0.5 } as const;
type Mix = keyof typeof MIXES;

interface Config {
  readonly mix: Mix;
  readonly valueBytes: number;
  readonly keys: number;
  readonly workers: number;
}

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} needs a positive number`);
  return v;
}

const full = process.argv.includes('--full');
/** Only the first N configurations of the matrix (a quick look at one cell). */
const only = option('--only', Number.POSITIVE_INFINITY);
const json = process.argv.includes('--json');
const ms = option('--ms', 300);
const rounds = option('--rounds', 3);
const samples = option('--samples', 200);

function matrix(): Config[] {
  if (!full) {
    const quick: Config[] = [];
    for (const keys of [10_000, 100_000])
      for (const valueBytes of [64, 1024]) quick.push({ mix: 'read-mostly', valueBytes, keys, workers: 2 });
    for (const mix of ['90/10', '50/50'] as const)
      for (const valueBytes of [64, 1024]) quick.push({ mix, valueBytes, keys: 10_000, workers: 2 });
    return quick;
  }
  const all: Config[] = [];
  // 100 k x 16 KiB is 1.6 GB per copy: six copies at once do not fit beside the others' work.
  for (const workers of [1, 2])
    for (const keys of [10_000, 100_000])
      for (const valueBytes of [64, 1024, 16_384])
        if (!(keys === 100_000 && valueBytes === 16_384))
          for (const mix of Object.keys(MIXES) as Mix[]) all.push({ mix, valueBytes, keys, workers });
  return all;
}

/** A worker of the run, answering one message at a time. */
class BenchWorker {
  readonly #worker: Worker;
  #pending: ((reply: { ok: boolean; error?: string }) => void) | undefined;

  constructor() {
    const url = new URL(
      `./shared-cache-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`,
      import.meta.url,
    );
    this.#worker = new Worker(url);
    this.#worker.on('message', (reply) => this.#pending?.(reply));
    this.#worker.on('error', (error) => this.#pending?.({ ok: false, error: String(error) }));
  }

  ask<R>(message: WorkerMessage): Promise<R> {
    return new Promise((resolve, reject) => {
      this.#pending = (reply) => {
        this.#pending = undefined;
        if (reply.ok) resolve(reply as R);
        else reject(new Error(reply.error));
      };
      this.#worker.postMessage(message);
    });
  }

  terminate(): Promise<number> {
    return this.#worker.terminate();
  }
}

interface Filled {
  readonly arena: Arena;
  readonly map: SharedMap;
  readonly lmdbPath: string;
  readonly memory: Record<StoreName, number>;
}

/** Fills every store with `keys` values and opens it in every worker. */
async function fill(c: Config, workers: BenchWorker[], tag: string): Promise<Filled> {
  const arena = Arena.create({
    cpus: workers.length + 1,
    maxBytes: Math.max(256 << 20, c.keys * (c.valueBytes + 256) * 2),
    policy: 'arena',
  });
  const ref = SharedMap.create(arena, {
    maxEntries: c.keys + 16,
    maxKeyBytes: 32,
    maxValueBytes: c.valueBytes,
  });
  const map = SharedMap.open(arena.attach(0), ref);
  const value = new Uint8Array(c.valueBytes);
  for (let k = 0; k < c.keys; k++) map.set(keyName(k), value);
  map.set('vis', value);
  const lmdbPath = mkdtempSync(path.join(tmpdir(), 'shared-cache-bench-'));
  const db = openLmdb({ path: lmdbPath, encoding: 'binary', noSync: true });
  await db.transaction(() => {
    for (let k = 0; k < c.keys; k++) db.put(keyName(k), value);
    db.put('vis', value);
  });
  const lstats = db.getStats() as {
    pageSize: number;
    treeBranchPageCount: number;
    treeLeafPageCount: number;
    overflowPages: number;
  };
  await db.close();
  const memory: Record<StoreName, number> = {
    shared: map.stats().bytes + map.stats().tableBytes,
    lmdb: (lstats.treeBranchPageCount + lstats.treeLeafPageCount + lstats.overflowPages) * lstats.pageSize,
    map: 0,
    lru: 0,
  };
  for (const store of STORES) {
    for (const w of workers) {
      const reply = await w.ask<SetupReply>({
        cmd: 'setup',
        store,
        keys: c.keys,
        valueBytes: c.valueBytes,
        shared: arena.shared,
        ref,
        path: lmdbPath,
        channel: `${tag}-${store}`,
      });
      if (store === 'map' || store === 'lru') memory[store] += reply.ownBytes;
    }
  }
  return { arena, map, lmdbPath, memory };
}

async function release(f: Filled, workers: BenchWorker[]): Promise<void> {
  for (const w of workers) await w.ask({ cmd: 'teardown' });
  f.map.cpu.detach();
  await f.arena.close();
  rmSync(f.lmdbPath, { recursive: true, force: true });
}

interface Cell {
  readonly config: Config;
  /** Median M ops/s per store, and SharedMap's ratio to each (median of per-round ratios). */
  readonly mops: Record<StoreName, number>;
  readonly ratio: Record<StoreName, number>;
  readonly misses: number;
}

async function measure(c: Config, pool: BenchWorker[], index: number, otherLoads: number[]): Promise<Cell> {
  const workers = pool.slice(0, c.workers);
  const filled = await fill(c, workers, `cell${index}`);
  const perRound: Record<StoreName, number[]> = { shared: [], lmdb: [], map: [], lru: [] };
  let misses = 0;
  try {
    // Warm-up (not measured): every store's code paths compiled in every worker.
    for (const store of STORES) {
      await Promise.all(
        workers.map((w) => w.ask({ cmd: 'run', store, ms: 100, readShare: MIXES[c.mix], seed: 1 })),
      );
    }
    for (let r = 0; r < rounds; r++) {
      const mark = loadMark();
      for (let i = 0; i < STORES.length; i++) {
        const store = STORES[(i + r) % STORES.length] as StoreName;
        const replies = await Promise.all(
          workers.map((w, wi) =>
            w.ask<RunReply>({
              cmd: 'run',
              store,
              ms,
              readShare: MIXES[c.mix],
              seed: 0x9e3779b9 ^ (wi * 7919 + r),
            }),
          ),
        );
        perRound[store].push(replies.reduce((n, x) => n + x.ops / x.ms, 0) / 1000);
        misses += replies.reduce((n, x) => n + x.misses, 0);
      }
      endRound(r + 1, rounds, mark, otherLoads);
    }
  } finally {
    await release(filled, workers);
  }
  const mops = {} as Record<StoreName, number>;
  const ratio = {} as Record<StoreName, number>;
  for (const s of STORES) {
    mops[s] = summarize(perRound[s]).median;
    ratio[s] = summarize(perRound.shared.map((x, r) => x / (perRound[s][r] as number))).median;
  }
  return { config: c, mops, ratio, misses };
}

async function visibilityOf(
  pool: BenchWorker[],
): Promise<Record<StoreName, { p50: number; p99: number; n: number }>> {
  const c: Config = { mix: '90/10', valueBytes: 64, keys: 10_000, workers: 2 };
  const workers = pool.slice(0, 2);
  const filled = await fill(c, workers, 'visibility');
  const out = {} as Record<StoreName, { p50: number; p99: number; n: number }>;
  try {
    for (const store of STORES) {
      const clock = new SharedArrayBuffer(16);
      const [, delays] = await Promise.all([
        (workers[0] as BenchWorker).ask({ cmd: 'visibility', store, role: 'writer', samples, clock }),
        (workers[1] as BenchWorker)
          .ask<{ delays: number[] }>({ cmd: 'visibility', store, role: 'reader', samples, clock })
          .then((r) => r.delays),
      ]);
      out[store] = { p50: quantile(delays, 0.5), p99: quantile(delays, 0.99), n: delays.length };
    }
  } finally {
    await release(filled, workers);
  }
  return out;
}

async function memoryOf(
  pool: BenchWorker[],
): Promise<{ dataBytes: number; bytes: Record<StoreName, number>; arenaInUse: number }> {
  const c: Config = { mix: 'read-mostly', valueBytes: 1024, keys: 100_000, workers: 2 };
  const filled = await fill(c, pool.slice(0, 2), 'memory');
  const arenaInUse = filled.arena.stats().bytesInUse;
  const bytes = filled.memory;
  await release(filled, pool.slice(0, 2));
  return { dataBytes: c.keys * (16 + c.valueBytes), bytes, arenaInUse };
}

async function main(): Promise<void> {
  const conditions = runConditions({ ms, rounds, samples, full });
  const pool = [new BenchWorker(), new BenchWorker()];
  const otherLoads: number[] = [];
  const cells: Cell[] = [];
  try {
    const configs = matrix().slice(0, only);
    for (const [i, c] of configs.entries()) {
      process.stderr.write(
        `${i + 1}/${configs.length}: ${c.mix}, ${c.valueBytes} B, ${c.keys} keys, ${c.workers} workers\n`,
      );
      cells.push(await measure(c, pool, i, otherLoads));
    }
    const visibility = await visibilityOf(pool);
    const memory = await memoryOf(pool);
    const load = otherLoads.length > 0 ? summarize(otherLoads).median : undefined;
    if (json) {
      console.log(JSON.stringify({ conditions, otherLoad: load, cells, visibility, memory }, null, 2));
      return;
    }
    printConditions(
      'Shared cache: SharedMap vs lmdb vs per-worker Map / lru-cache + BroadcastChannel',
      conditions,
    );
    if (load !== undefined)
      console.log(`Load:    other processes used ${load.toFixed(2)} CPUs (median over rounds)`);
    console.log(`Rounds:  ${rounds} x ${ms} ms per store, order rotating; gets copy the value out\n`);
    console.log(
      '| mix | value | keys | workers | SharedMap M ops/s | lmdb | Map + BC | lru-cache + BC | vs lmdb | vs Map | vs lru |',
    );
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const cell of cells) {
      const { mix, valueBytes, keys, workers } = cell.config;
      const f = (x: number): string => x.toFixed(2);
      console.log(
        `| ${mix} | ${valueBytes} B | ${keys / 1000} k | ${workers} | ${f(cell.mops.shared)} | ${f(cell.mops.lmdb)} | ${f(cell.mops.map)} | ${f(cell.mops.lru)} | ${f(cell.ratio.lmdb)}x | ${f(cell.ratio.map)}x | ${f(cell.ratio.lru)}x |`,
      );
    }
    console.log('\nWrite visibility (one worker writes 64 B, the other polls), µs:');
    for (const s of STORES) {
      const v = visibility[s];
      console.log(
        `  ${LABEL[s].padEnd(30)} p50 ${v.p50.toFixed(1).padStart(8)}   p99 ${v.p99.toFixed(1).padStart(8)}   (${v.n} samples)`,
      );
    }
    const mib = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;
    console.log(`\nMemory, 100 k keys x 1 KiB (${mib(memory.dataBytes)} of keys and values):`);
    console.log(
      `  SharedMap  ${mib(memory.bytes.shared)} (entries + table; arena in use ${mib(memory.arenaInUse)}) = ${(memory.bytes.shared / memory.dataBytes).toFixed(2)}x`,
    );
    console.log(
      `  lmdb       ${mib(memory.bytes.lmdb)} (pages in use) = ${(memory.bytes.lmdb / memory.dataBytes).toFixed(2)}x`,
    );
    console.log(`  Map        ${mib(memory.bytes.map)} (heap + buffers, both workers)`);
    console.log(`  lru-cache  ${mib(memory.bytes.lru)} (heap + buffers, both workers)`);
  } finally {
    for (const w of pool) await w.terminate();
  }
}

await main();
