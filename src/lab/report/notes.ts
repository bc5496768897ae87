/**
 * The report's words: what the table columns mean, why a preset's memory stands out in a case
 * (the mechanisms docs/benchmarks.md measured), and links to the docs that resolve wherever the
 * report was made (the installed package's docs folder, as file: URLs).
 *
 * Who may call: anyone (pure text, plus one lookup of the package folder).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { PresetName } from '../../epoch/policy.js';

/** The column headers' plain meaning, shown under every table. */
export const COLUMN_NOTES = {
  epochs:
    'grace-period steps (rcu / ttrace): how many times each epoch counter moved on during the run. A unit freed ' +
    'in epoch e may be reused from epoch e + 2, so more steps mean frees waited less. The report makes every rcu ' +
    "step last at least its --rcu-gp-ms and every ttrace step its --ttrace-gp-ms, as the kernel's GPs take.",
  failedHtab:
    'failed updates: map updates that found no memory or a full map (0 means every update succeeded).',
  failedXmalloc:
    'failed allocations: allocations that returned 0 because the arena reached its memory limit.',
};

/** Why a preset's peak memory stands out in a case, where docs/benchmarks.md found the cause. */
const kOutliers: Partial<Record<string, Partial<Record<PresetName, string>>>> = {
  xmalloc: {
    prealloc:
      'prealloc models a pre-allocated pool: its per-CPU caches are unbounded and never give units back, so every ' +
      "unit the consumer frees stays in the consumer's cache and the producer carves new pages for every batch, " +
      'until the arena is full.',
    'kernel-6.1':
      "remote frees are trimmed onto the freeing CPU's own ttrace lists and wait a tasks-trace grace period " +
      '(100 ms or more) while the producer carves new memory for every batch.',
    'kernel-6.4':
      "remote frees are trimmed onto the freeing CPU's own ttrace lists and wait a tasks-trace grace period " +
      '(100 ms or more) while the producer carves new memory for every batch.',
    'reuse-after-gp':
      "freed units return to the consumer's free list after the GP and reach the producer only through its trims " +
      'and a ttrace GP.',
    arena: "freed units wait their GP; what one GP's worth of frees amounts to at this rate is held.",
    'kernel-free-rcu': "every free waits an rcu GP: one GP's worth of frees is held.",
    'free-after-gp': "every free waits an rcu GP: one GP's worth of frees is held.",
  },
  add_del_on_diff_cpu: {
    'kernel-6.1':
      "the deleting CPU's free list overflows and the overflow waits a tasks-trace GP before anyone may reuse it, " +
      'while the adding CPU refills from the slab.',
    'kernel-6.4':
      "the deleting CPU's free list overflows and the overflow waits a tasks-trace GP before anyone may reuse it, " +
      'while the adding CPU refills from the slab (the kernel 6.6 hint sends it back to the allocating CPU).',
    'reuse-after-gp':
      "deleted elements return to the deleting CPU's list after the GP and then wait a ttrace GP.",
  },
  batch_add_batch_del: {
    'kernel-6.1':
      "without commit 0893d6007db5 a refill does not reuse the CPU's own free_by_rcu list, so every batch of " +
      'deletes waits a GP while the next adds take new memory (the Dec 2022 bug Hou Tao fixed).',
  },
  overwrite: {
    'reuse-after-gp': 'every replaced element waits about two rcu epochs before it can be reused.',
    'kernel-free-rcu': 'every replaced element waits about two rcu epochs before it can be reused.',
    'free-after-gp': 'every replaced element waits an rcu GP and goes back to the pages.',
    arena: 'every replaced element waits about two rcu epochs before it can be reused.',
  },
};

/** A preset whose peak is more than this many times the case's median stands out. */
const kOutlierFactor = 5;

/** The presets of a case whose peak memory stands out, each with why (or where to look). */
export function outliers(
  useCase: string,
  rows: readonly { policy: PresetName; peakMiB: number }[],
): { policy: PresetName; peakMiB: number; medianMiB: number; why: string }[] {
  const peaks = rows.map((r) => r.peakMiB).sort((a, b) => a - b);
  const median = peaks[Math.floor((peaks.length - 1) / 2)] ?? 0;
  if (rows.length < 3) return [];
  return rows
    .filter((r) => r.peakMiB > kOutlierFactor * Math.max(median, 0.5))
    .map((r) => ({
      policy: r.policy,
      peakMiB: r.peakMiB,
      medianMiB: median,
      why:
        kOutliers[useCase]?.[r.policy] ??
        'not explained by docs/benchmarks.md; rerun the case alone (`percpu-arena bench`) to see whether it repeats.',
    }));
}

/** The package's own folder (the nearest package.json named percpu-arena above this module). */
function packageRoot(): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'percpu-arena')
          return dir;
      } catch {
        // not ours: go on up
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** A link to one of the package's docs (docs/NAME.md, shipped in the package), or undefined. */
export function docLink(name: 'benchmarks' | 'design' | 'lab'): string | undefined {
  const root = packageRoot();
  if (root === undefined) return undefined;
  const file = path.join(root, 'docs', `${name}.md`);
  return existsSync(file) ? pathToFileURL(file).href : undefined;
}
