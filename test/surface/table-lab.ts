/**
 * The misuse table, part three: the lab's run functions (`percpu-arena/lab`) and the fault
 * injection of `percpu-arena/testing`. Every bad options object is refused before an arena is
 * created or a worker starts.
 */
import { runHtabMem, runPackBench, runTorture, runXmalloc } from '../../src/lab/index.js';
import { createArenaWithFaults, createTestArena } from '../../src/testing.js';
import { type Entry, v } from './kinds.js';
import type { Untyped } from './world.js';

const kHtab = { useCase: 'overwrite', producers: 1, policy: 'kernel-6.6', warmupS: 0, durationS: 0.01 };
const kXmalloc = { producers: 1, policy: 'kernel-6.6', warmupS: 0, durationS: 0.01 };
const kTorture = { policy: 'kernel-6.6', cpus: 2, seconds: 0.01 };
const kArena = { cpus: 1, maxBytes: 1 << 20, coordinator: 'manual' };

/** Bad values every run function's options share: an unknown option, GP timings out of range. */
function sharedBad(good: object) {
  return [
    v('an unknown option', { ...good, duration: 1 }),
    v('an unknown preset', { ...good, policy: 'kernel-9' }),
    v('gpMinMs.rcu -1', { ...good, gpMinMs: { rcu: -1 } }),
    v('gpMinMs of an unknown flavor', { ...good, gpMinMs: { srcu: 1 } }),
    v('onProgress not a function', { ...good, onProgress: 1 }),
  ];
}

export const LAB_ENTRIES: Entry[] = [
  {
    name: 'runHtabMem',
    args: () => [kHtab],
    call: (_, [o]) => runHtabMem(o as Untyped),
    kinds: ['options'],
    extra: [
      [
        ...sharedBad(kHtab),
        v('no useCase', { ...kHtab, useCase: undefined }),
        v('producers 0', { ...kHtab, producers: 0 }),
        v('durationS 0', { ...kHtab, durationS: 0 }),
        v('warmupS NaN', { ...kHtab, warmupS: Number.NaN }),
        v('valueSize 5000', { ...kHtab, valueSize: 5000 }),
        v('an odd producer count for add_del_on_diff_cpu', {
          ...kHtab,
          useCase: 'add_del_on_diff_cpu',
          producers: 3,
        }),
      ],
    ],
    lifecycle: 'none',
  },
  {
    name: 'runXmalloc',
    args: () => [kXmalloc],
    call: (_, [o]) => runXmalloc(o as Untyped),
    kinds: ['options'],
    extra: [
      [
        ...sharedBad(kXmalloc),
        v('producers 1.5', { ...kXmalloc, producers: 1.5 }),
        v('batch 0', { ...kXmalloc, batch: 0 }),
        v("size '64'", { ...kXmalloc, size: '64' }),
      ],
    ],
    lifecycle: 'none',
  },
  {
    name: 'runTorture',
    args: () => [kTorture],
    call: (_, [o]) => runTorture(o as Untyped),
    kinds: ['options'],
    extra: [
      [
        ...sharedBad(kTorture),
        v('cpus 1', { ...kTorture, cpus: 1 }),
        v('an unknown structure', { ...kTorture, structure: 'list' }),
        v('stutterMs -5', { ...kTorture, stutterMs: -5 }),
      ],
    ],
    lifecycle: 'none',
  },
  {
    name: 'runPackBench',
    args: () => [{ programs: 8 }],
    call: (_, [o]) => runPackBench(o as Untyped),
    kinds: ['options'],
    extra: [
      [
        v('programs 0', { programs: 0 }),
        v("hugeVmap 'yes'", { hugeVmap: 'yes' }),
        v('an unknown option', { program: 8 }),
      ],
    ],
    lifecycle: 'none',
  },
  {
    name: 'createTestArena',
    args: () => [{ ...kArena, faults: { oneEpochGp: true } }],
    call: (_, [o]) => createTestArena(o as Untyped),
    kinds: ['options'],
    extra: [
      [
        v('an unknown fault', { ...kArena, faults: { useAfterFree: true } }),
        v('a fault that is not a boolean', { ...kArena, faults: { oneEpochGp: 1 } }),
        v('faults null', { ...kArena, faults: null }),
        v('no cpus', { maxBytes: 1 << 20 }),
      ],
    ],
    lifecycle: 'none',
  },
  {
    name: 'createArenaWithFaults',
    args: () => [kArena, { handOutTwice: true }],
    call: (_, [o, f]) => createArenaWithFaults(o as Untyped, f as Untyped),
    kinds: ['options', 'options'],
    extra: [[v('no cpus', { maxBytes: 1 << 20 })], [v('an unknown fault', { useAfterFree: true })]],
    lifecycle: 'none',
  },
];
