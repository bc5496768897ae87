/**
 * `percpu-arena bench xmalloc`: N producer CPUs allocate batches of objects (4096 of 64 bytes
 * by default), a bounded queue of 128 batches carries them, N consumer CPUs free them: every
 * free is remote, the pattern per-CPU caches handle worst (mimalloc-bench's xmalloc-testN). It
 * reports objects freed per second and the arena's memory in use, sampled once a second.
 *
 * Who may call: any thread; it creates and closes its own arena and pool.
 */
import { Arena } from '../arena.js';
import type { PresetName } from '../policy.js';
import { siblingModule } from '../pool.js';
import { PointerQueue } from '../ring.js';
import {
  initXmallocControl,
  objectCounterWord,
  XMALLOC_STOP,
  type XmallocArgs,
  type XmallocResult,
  xmallocControlWords,
} from '../scenarios/xmalloc.js';
import { type GpSummary, gpSummary } from './htab-mem.js';
import { type MachineConditions, MiB, machineConditions, meanStddev, round2, sampledRun } from './measure.js';

export interface XmallocOptions {
  /** Producer CPUs; as many consumers run beside them. */
  readonly producers: number;
  readonly policy: PresetName;
  /** Objects per batch. @defaultValue 4096 */
  readonly batch?: number;
  /** Object size in bytes. @defaultValue 64 */
  readonly size?: number;
  readonly warmupS: number;
  readonly durationS: number;
  readonly gpMinMs?: { readonly rcu?: number; readonly ttrace?: number };
  /** @defaultValue 1 GiB */
  readonly maxBytes?: number;
  readonly onProgress?: (fraction: number) => void;
}

export interface XmallocReport {
  readonly bench: 'xmalloc';
  readonly useCase: 'xmalloc';
  readonly policy: PresetName;
  readonly producers: number;
  readonly consumers: number;
  readonly batch: number;
  readonly size: number;
  readonly warmupS: number;
  readonly durationS: number;
  readonly gpMinMs: { readonly rcu: number; readonly ttrace: number };
  /** Objects freed per second, all consumers together: mean and stddev over the intervals. */
  readonly objectsPerSec: number;
  readonly objectsPerSecStddev: number;
  /** The same per producer, in thousands (the htab-mem bench's unit). */
  readonly perProdKops: number;
  readonly avgMiB: number;
  readonly avgMiBStddev: number;
  readonly peakMiB: number;
  /** Allocations that returned 0 (the memory limit was reached). */
  readonly allocFailures: number;
  readonly gp: { readonly rcu: GpSummary; readonly ttrace: GpSummary };
  readonly conditions: MachineConditions;
}

const kQueueBatches = 128;

export async function runXmalloc(options: XmallocOptions): Promise<XmallocReport> {
  const { producers, policy } = options;
  const batch = options.batch ?? 4096;
  const size = options.size ?? 64;
  const cpus = 2 * producers;
  const gpMinMs = { rcu: options.gpMinMs?.rcu ?? 0, ttrace: options.gpMinMs?.ttrace ?? 0 };
  const arena = Arena.create({ cpus, maxBytes: options.maxBytes ?? 1 << 30, policy, gpMinMs });
  const conditions = machineConditions();
  const buffer = new SharedArrayBuffer(xmallocControlWords(cpus) * 4);
  const control = new Int32Array(buffer);
  initXmallocControl(control, producers);
  const queue = new PointerQueue(kQueueBatches);
  try {
    const consumers = Array.from({ length: producers }, (_, i) => producers + i);
    const { samples, results } = await sampledRun<XmallocResult>({
      arena,
      module: siblingModule(import.meta.url, '../scenarios/xmalloc'),
      fn: 'xmallocCpu',
      args: { producers, batch, size, queue: queue.buffer, control: buffer } satisfies XmallocArgs,
      readCounters: () => consumers.map((i) => Atomics.load(control, objectCounterWord(i))),
      stop: () => Atomics.store(control, XMALLOC_STOP, 1),
      warmupS: options.warmupS,
      durationS: options.durationS,
      onProgress: options.onProgress,
    });
    const stats = arena.stats();
    const perSec = meanStddev(samples.map((s) => s.counts.reduce((a, b) => a + b, 0) / s.seconds));
    const mem = meanStddev(samples.map((s) => s.bytes / MiB));
    return {
      bench: 'xmalloc',
      useCase: 'xmalloc',
      policy,
      producers,
      consumers: producers,
      batch,
      size,
      warmupS: options.warmupS,
      durationS: options.durationS,
      gpMinMs,
      objectsPerSec: Math.round(perSec.mean),
      objectsPerSecStddev: Math.round(perSec.stddev),
      perProdKops: round2(perSec.mean / producers / 1000),
      avgMiB: round2(mem.mean),
      avgMiBStddev: round2(mem.stddev),
      peakMiB: round2(stats.peakBytes / MiB),
      allocFailures: results.reduce((n, r) => n + r.allocFailures, 0),
      gp: { rcu: gpSummary(stats.gp.rcu), ttrace: gpSummary(stats.gp.ttrace) },
      conditions,
    };
  } finally {
    await arena.close();
  }
}
