/**
 * `percpu-arena bench xmalloc`: N producer CPUs allocate batches of objects (4096 of 64 bytes
 * by default), a bounded queue of 128 batches carries them, N consumer CPUs free them: every
 * free is remote, the pattern per-CPU caches handle worst (mimalloc-bench's xmalloc-testN). It
 * reports objects freed per second and the arena's memory in use, sampled once a second.
 *
 * Who may call: any thread; it creates and closes its own arena and pool. Shared words: a control
 * buffer of its own (src/lab/scenarios/xmalloc.ts's layout): it stores XMALLOC_STOP once and
 * Atomics-loads each consumer's object counter, which only that consumer writes.
 */
import { Arena } from '../../arena/arena.js';
import type { ArenaStats } from '../../arena/stats.js';
import { ADAPTIVE_MAX_SCALE, type PresetName } from '../../epoch/policy.js';
import { UNIT_HEADER_BYTES } from '../../memory/size-class.js';
import { siblingModule } from '../../service/pool.js';
import { DEPOT_SLOTS } from '../../shm/layout.js';
import { PointerQueue } from '../../structures/ring.js';
import { checkOptions, GP_MIN_MS_OPTION, type OptionSpec, PRESET_OPTION, seconds } from '../options-check.js';
import {
  initXmallocControl,
  objectCounterWord,
  XMALLOC_STOP,
  type XmallocArgs,
  type XmallocResult,
  xmallocControlWords,
} from '../scenarios/xmalloc.js';
import { startGraceWaitMeter } from './grace-wait.js';
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
  /**
   * What memory may be with every free remote when freed units go home within their GP
   * (`memoryBound`): live objects at most (the queue full, a batch in every CPU's hands) +
   * every cache at 8 × high + a full depot + the objects freed during nine epochs: a unit waits
   * behind the batch in flight (a GP), then for its own GP, and a batch that passed lands at once
   * and is handed out again over the next GP; each GP takes the rest of its sealing epoch and
   * two more. An epoch is the longer of the minimum and the run's mean. `peakMiB` above it means
   * freed memory piles up.
   */
  readonly boundMiB: number;
  /**
   * Units freed per second and how long a freed unit waited before it could be reused (the
   * allocator's own counters, Little's law; src/lab/benchmarks/grace-wait.ts): the memory a grace
   * period holds is freesPerS × meanWaitMs × unit size (`heldMiB`).
   */
  readonly freesPerS: number;
  readonly gpWait: {
    readonly meanWaitMs: number;
    readonly meanWaitingUnits: number;
    readonly heldMiB: number;
  };
  readonly gp: { readonly rcu: GpSummary; readonly ttrace: GpSummary };
  readonly conditions: MachineConditions;
}

const kQueueBatches = 128;

/** Bytes of the bound in `XmallocReport.boundMiB`. */
export function memoryBound(o: {
  readonly stats: ArenaStats;
  readonly batch: number;
  readonly size: number;
  readonly cpus: number;
  readonly queueBatches: number;
  readonly objectsPerSec: number;
  readonly gpMinMs: { readonly rcu: number };
  /** Seconds the run took, warm-up included (for the mean epoch). */
  readonly seconds: number;
}): number {
  const cls = o.stats.classes.findIndex(
    (c) => c.objectSize === 0 && c.unitSize >= o.size + UNIT_HEADER_BYTES,
  );
  const unit = o.stats.classes[cls]?.unitSize ?? 0;
  const cache = o.stats.cpus[0]?.classes[cls];
  const live = (o.queueBatches + o.cpus) * o.batch;
  const caches = o.cpus * ADAPTIVE_MAX_SCALE * (cache?.high ?? 0);
  const depot = DEPOT_SLOTS * 2 * (cache?.batch ?? 0);
  const meanEpochMs = (1000 * o.seconds) / Math.max(1, o.stats.gp.rcu.advances);
  const epochS = Math.max(o.gpMinMs.rcu, meanEpochMs) / 1000;
  const deferred = o.objectsPerSec * 9 * epochS;
  return (live + caches + depot + deferred) * unit;
}

const kXmallocOptions: Readonly<Record<keyof XmallocOptions, OptionSpec>> = {
  producers: { kind: 'integer', min: 1, max: 512 },
  policy: PRESET_OPTION,
  batch: { kind: 'integer', min: 1, max: 1 << 20, optional: true },
  size: { kind: 'integer', min: 1, max: 4088, optional: true },
  warmupS: seconds(0),
  durationS: seconds(0.001),
  gpMinMs: GP_MIN_MS_OPTION,
  maxBytes: { kind: 'integer', min: 1, max: Number.MAX_SAFE_INTEGER, optional: true },
  onProgress: { kind: 'function', optional: true },
};

export async function runXmalloc(options: XmallocOptions): Promise<XmallocReport> {
  checkOptions('runXmalloc', options, kXmallocOptions);
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
    const meter = startGraceWaitMeter(arena);
    const { samples, results } = await sampledRun<XmallocResult>({
      arena,
      module: siblingModule(import.meta.url, '../scenarios/xmalloc'),
      fn: 'xmallocCpu',
      args: { producers, batch, size, queue: queue.buffer, control: buffer } satisfies XmallocArgs,
      readCounters: () => consumers.map((i) => Atomics.load(control, objectCounterWord(i))),
      onMeasure: () => meter.mark(),
      stop: () => Atomics.store(control, XMALLOC_STOP, 1),
      warmupS: options.warmupS,
      durationS: options.durationS,
      onProgress: options.onProgress,
    });
    const wait = meter.stop();
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
      boundMiB: round2(
        memoryBound({
          stats,
          batch,
          size,
          cpus,
          queueBatches: kQueueBatches,
          // The fastest interval: the peak may come from any of them.
          objectsPerSec: Math.max(...samples.map((s) => s.counts.reduce((a, b) => a + b, 0) / s.seconds)),
          gpMinMs,
          seconds: options.warmupS + samples.reduce((t, s) => t + s.seconds, 0),
        }) / MiB,
      ),
      freesPerS: wait.freesPerS,
      gpWait: { meanWaitMs: wait.meanWaitMs, meanWaitingUnits: wait.meanWaitingUnits, heldMiB: wait.heldMiB },
      gp: { rcu: gpSummary(stats.gp.rcu), ttrace: gpSummary(stats.gp.ttrace) },
      conditions,
    };
  } finally {
    await arena.close();
  }
}
