/**
 * How the CLI's benchmarks measure, the way the kernel's bench harness does
 * (tools/testing/selftests/bpf/bench.c): run the producers, let them warm up, then read their
 * counters and the arena's memory in use once per interval (1 s by default); report the mean
 * and sample standard deviation over the intervals, and the peak memory over the whole run.
 *
 * Who may call: the thread that created the arena. It only reads counters other threads write
 * with Atomics.
 */
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Arena } from '../../arena/arena.js';
import { CpuPool } from '../../service/pool.js';

export interface IntervalSample {
  /** Seconds the interval really lasted. */
  readonly seconds: number;
  /** Counter increments per producer during the interval. */
  readonly counts: readonly number[];
  /** Arena memory in use at the interval's end (bytes). */
  readonly bytes: number;
}

export interface MeasureOptions {
  readonly warmupS: number;
  readonly durationS: number;
  /** Interval length in seconds. @defaultValue 1 */
  readonly intervalS?: number;
  /** Reads the producers' cumulative counters. */
  readonly readCounters: () => readonly number[];
  readonly readBytes: () => number;
  /** Called about 10 times a second with the fraction of the run done (warm-up included). */
  readonly onProgress?: (fraction: number) => void;
}

/** Waits out the warm-up, then samples every interval until `durationS` has passed. */
export async function measureIntervals(options: MeasureOptions): Promise<IntervalSample[]> {
  const intervalS = options.intervalS ?? 1;
  const total = options.warmupS + options.durationS;
  const start = performance.now();
  const tick = async (untilS: number): Promise<void> => {
    for (;;) {
      const elapsed = (performance.now() - start) / 1000;
      options.onProgress?.(Math.min(1, elapsed / total));
      if (elapsed >= untilS) return;
      await sleep(Math.min(100, (untilS - elapsed) * 1000));
    }
  };
  await tick(options.warmupS);
  const samples: IntervalSample[] = [];
  let last = options.readCounters();
  let lastAt = performance.now();
  const intervals = Math.max(1, Math.round(options.durationS / intervalS));
  for (let i = 1; i <= intervals; i++) {
    await tick(options.warmupS + i * intervalS);
    const now = performance.now();
    const counters = options.readCounters();
    samples.push({
      seconds: (now - lastAt) / 1000,
      counts: counters.map((c, p) => (c - (last[p] as number)) | 0),
      bytes: options.readBytes(),
    });
    last = counters;
    lastAt = now;
  }
  return samples;
}

export interface SampledRunOptions {
  readonly arena: Arena;
  /** The function every CPU of the arena runs (see `CpuPool.run`). */
  readonly module: URL;
  readonly fn: string;
  readonly args: unknown;
  /** Reads the CPUs' cumulative counters (Atomics loads). */
  readonly readCounters: () => readonly number[];
  /** Called at each counter read of the measured window (the warm-up's end and every interval's). */
  readonly onMeasure?: () => void;
  /** Tells the CPUs to finish (raises their stop word); called once sampling is done. */
  readonly stop: () => void;
  readonly warmupS: number;
  readonly durationS: number;
  readonly onProgress?: ((fraction: number) => void) | undefined;
}

/**
 * Starts a pool with a worker per CPU of `arena`, runs `fn` on all of them, samples until the
 * duration has passed, stops them and returns their results with the samples. A CPU that fails
 * during sampling ends it with its error (the pool's workers are then terminated); the scenarios
 * make sure the other CPUs also end once stopped when one fails later. The pool is closed on
 * return; the arena is the caller's.
 */
/**
 * The benchmarks' GP timing unless told otherwise (bench htab-mem, bench xmalloc and the report
 * alike): each rcu epoch lasts at least 10 ms and each ttrace epoch 100 ms, the order of the
 * kernel's grace periods (docs/benchmarks.md). `--rcu-gp-ms 0 --ttrace-gp-ms 0` runs them as fast
 * as safe.
 */
export const KERNEL_LIKE_GP_MS = { rcu: 10, ttrace: 100 } as const;

/** How long sampledRun waits for the CPUs' first counted operation before it measures anyway. */
const kStartTimeoutMs = 60_000;
const sum = (counts: readonly number[]): number => counts.reduce((a, b) => a + b, 0);

export async function sampledRun<R>(
  o: SampledRunOptions,
): Promise<{ samples: IntervalSample[]; results: R[] }> {
  const pool = CpuPool.start(o.arena);
  try {
    const running = pool.run<R>(o.module, o.fn, o.args);
    let failed: unknown;
    running.catch((error: unknown) => {
      failed = error ?? new Error('a CPU of the run failed');
    });
    // The warm-up starts once the CPUs do work: starting the workers (threads, module loads)
    // took seconds on a loaded machine, and a run timed from pool.run measured nothing.
    const startBy = performance.now() + kStartTimeoutMs;
    while (failed === undefined && performance.now() < startBy && sum(o.readCounters()) === 0) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const samples = await measureIntervals({
      warmupS: o.warmupS,
      durationS: o.durationS,
      readCounters: () => {
        if (failed !== undefined) throw failed;
        o.onMeasure?.();
        return o.readCounters();
      },
      readBytes: () => o.arena.stats().bytesInUse,
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    });
    o.stop();
    return { samples, results: await running };
  } finally {
    o.stop();
    await pool.close();
  }
}

/** Mean and sample standard deviation (n - 1), as the kernel bench's report_final computes them. */
export function meanStddev(values: readonly number[]): { mean: number; stddev: number } {
  const n = values.length;
  if (n === 0) return { mean: 0, stddev: 0 };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, stddev: 0 };
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1);
  return { mean, stddev: Math.sqrt(variance) };
}

export const MiB = 1024 * 1024;

/** Rounds to two decimals, as the kernel prints its figures. */
export const round2 = (x: number): number => Math.round(x * 100) / 100;

/** The machine a run happened on, for the report's conditions. */
export interface MachineConditions {
  readonly cpuModel: string;
  readonly cores: number;
  readonly node: string;
  readonly platform: string;
  readonly date: string;
}

export function machineConditions(): MachineConditions {
  return {
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    date: new Date().toISOString(),
  };
}
