/**
 * `percpu-arena bench htab-mem`: the kernel's htab-mem benchmark on the arena's hash map. One
 * arena per run (the policy is the arena's), a map with 4-byte keys, `max(8192, 64 × producers)`
 * entries and its own fixed-size cache (the kernel's per-map `htab->ma`), or its pre-allocated
 * pool under the `prealloc` preset; producer CPUs in a pool run src/lab/scenarios/htab-mem.ts while
 * this thread samples their run counters and the arena's memory in use once a second.
 *
 * Who may call: any thread; it creates and closes its own arena and pool. Shared words: a control
 * buffer of its own (src/lab/scenarios/htab-mem.ts's layout): it stores CONTROL_STOP once and
 * Atomics-loads each producer's run counter, which only that producer writes.
 */
import { Arena } from '../../arena/arena.js';
import type { GpFlavorStats } from '../../arena/coordinator.js';
import type { SheafStats } from '../../arena/stats.js';
import { PRESETS, type PresetName } from '../../epoch/policy.js';
import { GENERAL_CLASS_COUNT } from '../../memory/size-class.js';
import { siblingModule } from '../../service/pool.js';
import { fail } from '../../shm/errors.js';
import { HashMap } from '../../structures/hash-map.js';
import { checkOptions, GP_MIN_MS_OPTION, type OptionSpec, PRESET_OPTION, seconds } from '../options-check.js';
import {
  CONTROL_STOP,
  controlWords,
  HTAB_USE_CASES,
  type HtabMemArgs,
  type HtabMemResult,
  type HtabUseCase,
  initControl,
  runCounterWord,
} from '../scenarios/htab-mem.js';
import { startGraceWaitMeter } from './grace-wait.js';
import { type MachineConditions, MiB, machineConditions, meanStddev, round2, sampledRun } from './measure.js';
import { MemcgModel } from './memcg.js';

export { HTAB_USE_CASES, type HtabUseCase };

export interface HtabMemOptions {
  readonly useCase: HtabUseCase;
  readonly producers: number;
  /** The arena's reuse policy; `prealloc` means the map's pre-allocated pool (--preallocated). */
  readonly policy: PresetName;
  /** @defaultValue 8 */
  readonly valueSize?: number;
  readonly warmupS: number;
  readonly durationS: number;
  /** Minimum epoch durations (GP timing emulation), ms. */
  readonly gpMinMs?: { readonly rcu?: number; readonly ttrace?: number };
  /** The arena's memory limit. @defaultValue 1 GiB */
  readonly maxBytes?: number;
  /**
   * The preset with refills and trims run as the kernel's irq_work (policy refillWork
   * 'irq-work'); immediate-reuse presets only. @defaultValue false
   */
  readonly irqWork?: boolean;
  readonly onProgress?: (fraction: number) => void;
}

export interface GpSummary {
  /** GPs the coordinator saw through (from a request to the epoch reaching it). */
  readonly completed: number;
  /**
   * Epoch advances by anyone: the coordinator or CPUs (under `gpDrive: 'cpus'` the CPUs make
   * nearly all of them, so `completed` stays small while GPs pass).
   */
  readonly advances: number;
  readonly p50Us: number;
  readonly p99Us: number;
}

export interface HtabMemReport {
  readonly bench: 'htab-mem';
  readonly useCase: HtabUseCase;
  readonly policy: PresetName;
  readonly preallocated: boolean;
  readonly producers: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly warmupS: number;
  readonly durationS: number;
  readonly gpMinMs: { readonly rcu: number; readonly ttrace: number };
  /** Program runs per producer per second, in thousands: mean and stddev over the intervals. */
  readonly perProdKops: number;
  readonly perProdKopsStddev: number;
  /** Arena memory in use sampled at each interval's end: mean and stddev, MiB. */
  readonly avgMiB: number;
  readonly avgMiBStddev: number;
  /** Highest memory in use since the arena was created (the cgroup's memory.peak), MiB. */
  readonly peakMiB: number;
  readonly intervals: readonly { readonly perProdKops: number; readonly MiB: number }[];
  readonly failedUpdates: number;
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
  /** The SLUB_STATS counters summed over CPUs and classes (all 0 unless the policy's cache is 'sheaves'). */
  readonly sheafEvents: SheafStats;
  readonly gp: { readonly rcu: GpSummary; readonly ttrace: GpSummary };
  /** Refills and trims run as irq_work (`irqWork`). */
  readonly irqWork: boolean;
  /**
   * What the kernel bench reads instead of memory in use: the cgroup's memory.current (mean over
   * samples every 50 ms of the measured seconds) and memory.peak, from src/memcg.ts replaying
   * every CPU's slab traffic (and the map's own pages, charged on the creating thread); and the
   * charge the CPUs' stocks held at the end, used by nothing. MiB.
   */
  readonly memcg: { readonly avgMiB: number; readonly peakMiB: number; readonly stocksMiB: number };
  /** Refills (alloc_bulk) and trims (free_bulk) over the whole run, and per program run. */
  readonly cacheEvents: {
    readonly refills: number;
    readonly trims: number;
    readonly refillsPerRun: number;
    readonly trimsPerRun: number;
  };
  readonly conditions: MachineConditions;
}

/** What is wrong with the options, in the CLI's words, or undefined. */
const kHtabMemOptions: Readonly<Record<keyof HtabMemOptions, OptionSpec>> = {
  useCase: { kind: 'oneOf', values: HTAB_USE_CASES },
  producers: { kind: 'integer', min: 1, max: 1024 },
  policy: PRESET_OPTION,
  valueSize: { kind: 'integer', min: 1, max: 4088, optional: true },
  warmupS: seconds(0),
  durationS: seconds(0.001),
  gpMinMs: GP_MIN_MS_OPTION,
  maxBytes: { kind: 'integer', min: 1, max: Number.MAX_SAFE_INTEGER, optional: true },
  irqWork: { kind: 'boolean', optional: true },
  onProgress: { kind: 'function', optional: true },
};

export function htabMemProblem(o: HtabMemOptions): string | undefined {
  if (!HTAB_USE_CASES.includes(o.useCase)) {
    return `--use-case must be one of ${HTAB_USE_CASES.join(', ')}, got '${o.useCase}'`;
  }
  if (o.irqWork === true && PRESETS[o.policy]?.reuse !== 'immediate') {
    return `--irq-work models the kernel's refill and trim: it needs an immediate-reuse preset (kernel-6.1, kernel-6.4, kernel-6.6, prealloc), got ${o.policy}`;
  }
  if (o.useCase === 'add_del_on_diff_cpu' && o.producers % 2 !== 0) {
    return `add_del_on_diff_cpu needs an even number of producers (it pairs an adding CPU with a deleting one), got ${o.producers}`;
  }
  return undefined;
}

export function gpSummary(s: GpFlavorStats): GpSummary {
  return { completed: s.completed, advances: s.advances, p50Us: s.latencyUs.p50, p99Us: s.latencyUs.p99 };
}

export async function runHtabMem(options: HtabMemOptions): Promise<HtabMemReport> {
  checkOptions('runHtabMem', options, kHtabMemOptions);
  const problem = htabMemProblem(options);
  if (problem !== undefined) fail('EINVAL', `runHtabMem: ${problem}`);
  const { useCase, producers, policy } = options;
  const valueSize = options.valueSize ?? 8;
  const preallocated = policy === 'prealloc';
  const gpMinMs = { rcu: options.gpMinMs?.rcu ?? 0, ttrace: options.gpMinMs?.ttrace ?? 0 };
  const maxEntries = Math.max(8192, 64 * producers);
  const elemBytes = HashMap.elementBytes(4, valueSize);
  const arena = Arena.create({
    cpus: producers,
    // Not growable: V8 cannot hoist the bounds checks of length-tracking views on a growable
    // buffer (measured 4-5x slower map updates on Node 20). The OS commits pages as they are touched.
    maxBytes: options.maxBytes ?? 1 << 30,
    policy: options.irqWork === true ? { ...PRESETS[policy], refillWork: 'irq-work' } : policy,
    gpMinMs,
    fixedSizes: preallocated ? [] : [elemBytes],
  });
  const conditions = machineConditions();
  const buffer = new SharedArrayBuffer(controlWords(producers) * 4);
  const control = new Int32Array(buffer);
  initControl(control, producers);
  // The memcg model: CPUs 0..producers-1, and the creating thread (bpf(BPF_MAP_CREATE)'s CPU).
  const memcg = new MemcgModel(producers + 1);
  const creator = producers;
  const taken = new Float64Array(producers * arena.stats().classes.length);
  const returned = new Float64Array(taken.length);
  const memcgSamples: { readonly at: number; readonly bytes: number }[] = [];
  // Only the map's own cache is the map's (htab->ma): the general classes are the arena's
  // (bpf_global_ma's), not charged to the bench's cgroup; a pre-allocated map has none.
  const mapClass = preallocated ? -1 : GENERAL_CLASS_COUNT;
  const sampleMemcg = (): void => {
    const stats = arena.stats();
    for (const cpu of stats.cpus) {
      for (const [cls, cache] of cpu.classes.entries()) {
        if (cls !== mapClass) continue;
        const k = cpu.cpu * stats.classes.length + cls;
        const unit = stats.classes[cls]?.unitSize ?? 0;
        memcg.chargeObjects(cpu.cpu, cache.slabTaken - (taken[k] as number), unit);
        memcg.unchargeObjects(cpu.cpu, cache.slabReturned - (returned[k] as number), unit);
        taken[k] = cache.slabTaken;
        returned[k] = cache.slabReturned;
      }
    }
    memcgSamples.push({ at: performance.now(), bytes: memcg.currentBytes });
  };
  let sampler: ReturnType<typeof setInterval> | undefined;
  try {
    const before = arena.stats().bytesInUse;
    const ref = HashMap.create(arena, {
      keySize: 4,
      valueSize,
      maxEntries,
      prealloc: preallocated,
      ...(preallocated ? {} : { fixedCache: 0 }),
    });
    // bpf_map_area_alloc: the buckets (and the pre-allocated elements), page by page.
    const mapPages = Math.ceil((arena.stats().bytesInUse - before) / 4096);
    for (let i = 0; i < mapPages; i++) memcg.chargePages(creator, 1);
    const started = performance.now();
    sampler = setInterval(sampleMemcg, 50);
    const meter = startGraceWaitMeter(arena);
    const args: HtabMemArgs = { ref, useCase, valueSize, control: buffer };
    const { samples, results } = await sampledRun<HtabMemResult>({
      arena,
      module: siblingModule(import.meta.url, '../scenarios/htab-mem'),
      fn: 'htabMemProducer',
      args,
      readCounters: () =>
        Array.from({ length: producers }, (_, i) => Atomics.load(control, runCounterWord(i))),
      onMeasure: () => meter.mark(),
      stop: () => Atomics.store(control, CONTROL_STOP, 1),
      warmupS: options.warmupS,
      durationS: options.durationS,
      onProgress: options.onProgress,
    });
    clearInterval(sampler);
    const wait = meter.stop();
    sampleMemcg();
    const measuredFrom = started + options.warmupS * 1000;
    const measured = memcgSamples.filter((m) => m.at >= measuredFrom).map((m) => m.bytes / MiB);
    const stats = arena.stats();
    const counted = Array.from({ length: producers }, (_, i) => Atomics.load(control, runCounterWord(i)));
    const runs = counted.reduce((a, b) => a + b, 0) / (useCase === 'batch_add_batch_del' ? 2 : 1);
    const perInterval = samples.map((s) => ({
      perProdKops: s.counts.reduce((a, b) => a + b, 0) / producers / s.seconds / 1000,
      MiB: s.bytes / MiB,
    }));
    const ops = meanStddev(perInterval.map((s) => s.perProdKops));
    const mem = meanStddev(perInterval.map((s) => s.MiB));
    return {
      bench: 'htab-mem',
      useCase,
      policy,
      preallocated,
      producers,
      valueSize,
      maxEntries,
      warmupS: options.warmupS,
      durationS: options.durationS,
      gpMinMs,
      perProdKops: round2(ops.mean),
      perProdKopsStddev: round2(ops.stddev),
      avgMiB: round2(mem.mean),
      avgMiBStddev: round2(mem.stddev),
      peakMiB: round2(stats.peakBytes / MiB),
      intervals: perInterval.map((s) => ({ perProdKops: round2(s.perProdKops), MiB: round2(s.MiB) })),
      failedUpdates: results.reduce((n, r) => n + r.failedUpdates, 0),
      freesPerS: wait.freesPerS,
      gpWait: { meanWaitMs: wait.meanWaitMs, meanWaitingUnits: wait.meanWaitingUnits, heldMiB: wait.heldMiB },
      sheafEvents: stats.totals.sheaf,
      gp: { rcu: gpSummary(stats.gp.rcu), ttrace: gpSummary(stats.gp.ttrace) },
      irqWork: options.irqWork === true,
      memcg: {
        avgMiB: round2(meanStddev(measured).mean),
        peakMiB: round2(memcg.peakBytes / MiB),
        stocksMiB: round2(memcg.stockBytes / MiB),
      },
      cacheEvents: {
        refills: stats.totals.refills,
        trims: stats.totals.trims,
        refillsPerRun: runs === 0 ? 0 : round2(stats.totals.refills / runs),
        trimsPerRun: runs === 0 ? 0 : round2(stats.totals.trims / runs),
      },
      conditions,
    };
  } finally {
    clearInterval(sampler);
    await arena.close();
  }
}
