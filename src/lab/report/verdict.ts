/**
 * The report's verdict: for each preset, whether it is safe under lock-free readers (from a short
 * torture run the report makes itself: readers check that what they hold inside a read-side
 * section is never reused, src/torture.ts), its throughput and peak memory relative to
 * `kernel-6.6` (the kernel's current allocator, the default) in every case run, and what it is
 * for.
 *
 * Who may call: the CLI (main thread).
 */
import type { PresetName } from '../../epoch/policy.js';
import type { HtabMemReport } from '../benchmarks/htab-mem.js';
import type { XmallocReport } from '../benchmarks/xmalloc.js';
import { runTorture } from '../torture-run.js';

/** One benchmark run of the report: an htab-mem use case or xmalloc, under one preset. */
export type CaseReport = HtabMemReport | XmallocReport;

/** What a torture run under one preset found. */
export interface PresetSafety {
  readonly policy: PresetName;
  /**
   * 'unsafe': readers saw a unit reused inside their section; 'safe': none did in a run that
   * recycled memory under them; 'inconclusive': the run did too little to tell (a starved run).
   */
  readonly verdict: 'safe' | 'unsafe' | 'inconclusive';
  readonly errors: number;
  readonly readerSections: number;
  /** Units handed out again during the run (memory went round the free lists). */
  readonly recycled: number;
  readonly seconds: number;
}

/** The baseline of every ratio: the kernel's current allocator. */
export const BASELINE: PresetName = 'kernel-6.6';

/** What each preset is for (the design's intent; docs/design.md has the table). */
export const USE_FOR: Record<PresetName, string> = {
  'kernel-6.1':
    'Reproducing the 6.1 kernel: immediate reuse, remote frees wait on the freeing CPU (memory grows in batch and xmalloc).',
  'kernel-6.4': 'Reproducing the 6.4 kernel: immediate reuse; memory grows when every free is remote.',
  'kernel-6.6':
    "The kernel's current allocator (like malloc): data that no lock-free reader holds, or readers that validate what they read.",
  'kernel-free-rcu':
    'Every free waits an rcu grace period before reuse (bpf_mem_free_rcu everywhere): lock-free readers, at the cost of memory.',
  'reuse-after-gp':
    "Hou Tao's reuse-after-GP proposal: lock-free readers; memory held for two epochs of frees.",
  'free-after-gp':
    "Hou Tao's free-after-GP proposal: lock-free readers, memory back to the pages after a GP; the slowest.",
  sheaves:
    "The kernel 7.0 slab (SLUB sheaves) in BPF's place: immediate reuse like kernel-6.6; freeRcu batches a sheaf per rcu grace period.",
  'sheaves-rcu':
    'SLUB sheaves with every free as kfree_rcu: lock-free readers; freed units come back a whole sheaf at a time after an rcu grace period.',
  'arena-sheaves':
    'Ours on sheaves: every free waits an rcu grace period in a sheaf, and the sheaf comes back whole to the CPU that freed it (lock-free readers).',
  nolock:
    'kmalloc_nolock on SLUB sheaves (BPF local storage since 6.19): never waits for a lock, so an allocation may fail and a free may be deferred; immediate reuse.',
  prealloc:
    'Pre-allocated hash maps (fixed pool, no allocator): fastest updates, but elements are reused at once under readers.',
  arena:
    'Services with lock-free readers (SharedMap, hash-map lookups): reuse only after a GP, remote frees back to their owner.',
};

/** Enough work to judge: readers ran and memory went round under them. */
const kMinSections = 1000;
const kMinRecycled = 100;

export function verdictOf(r: {
  errors: number;
  readerSections: number;
  recycled: number;
}): PresetSafety['verdict'] {
  if (r.errors > 0) return 'unsafe';
  return r.readerSections >= kMinSections && r.recycled >= kMinRecycled ? 'safe' : 'inconclusive';
}

/**
 * A torture run of `seconds` under each preset (3 CPUs: a writer, a fake writer, a reader; the
 * torture's own GP timing, as fast as safe, so that memory goes round quickly). A run too
 * starved to tell is done once more, twice as long.
 */
export async function tortureEachPreset(
  presets: readonly PresetName[],
  seconds: number,
  onDone: (index: number, safety: PresetSafety) => void = () => {},
): Promise<PresetSafety[]> {
  const out: PresetSafety[] = [];
  for (const [i, policy] of presets.entries()) {
    let safety: PresetSafety | undefined;
    for (const s of [seconds, 2 * seconds]) {
      const r = await runTorture({ policy, cpus: 3, seconds: s });
      safety = {
        policy,
        verdict: verdictOf(r),
        errors: r.errors,
        readerSections: r.readerSections,
        recycled: r.recycled,
        seconds: s,
      };
      if (safety.verdict !== 'inconclusive') break;
    }
    out.push(safety as PresetSafety);
    onDone(i, safety as PresetSafety);
  }
  return out;
}

/** Throughput of a run in its bench's unit (htab-mem: per-producer k ops/s; xmalloc: objects/s). */
export const throughputOf = (r: CaseReport): number =>
  r.bench === 'xmalloc' ? r.objectsPerSec : r.perProdKops;

export interface VerdictRow {
  readonly policy: PresetName;
  readonly safety: PresetSafety | undefined;
  /** Per case run: this preset's throughput and peak memory ÷ kernel-6.6's (undefined without a baseline). */
  readonly ratios: readonly {
    readonly useCase: string;
    readonly throughput: number | undefined;
    readonly peak: number | undefined;
  }[];
  readonly useFor: string;
}

export function verdictRows(
  presets: readonly PresetName[],
  safety: readonly PresetSafety[],
  results: readonly CaseReport[],
): VerdictRow[] {
  const cases = [...new Set(results.map((r) => r.useCase))];
  const find = (useCase: string, policy: string) =>
    results.find((r) => r.useCase === useCase && r.policy === policy);
  return presets.map((policy) => ({
    policy,
    safety: safety.find((s) => s.policy === policy),
    ratios: cases.map((useCase) => {
      const mine = find(useCase, policy);
      const base = find(useCase, BASELINE);
      const ratio = (a: number | undefined, b: number | undefined) =>
        a === undefined || b === undefined || b <= 0 ? undefined : a / b;
      return {
        useCase,
        throughput: ratio(mine && throughputOf(mine), base && throughputOf(base)),
        peak: ratio(mine?.peakMiB, base?.peakMiB),
      };
    }),
    useFor: USE_FOR[policy],
  }));
}
