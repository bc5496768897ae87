/**
 * `percpu-arena torture`: runs the torture scenario (src/lab/scenarios/torture.ts) on a pool of
 * worker CPUs for a number of seconds and sums what the writer, fake writer and readers saw:
 * operations, errors by kind (generation, contents, freed, age; recreated for ref-counted
 * objects; wrong lookups and stale values for the qp-trie), the readers' age histogram
 * (elements only) and how many units went round the free lists (`recycled`). A stress test for
 * people, not a benchmark: its answer is the error count, not a speed.
 *
 * Who may call: any thread; it creates and closes its own arena and pool. Shared words: a start
 * buffer of its own (word 1: workers ready, Atomics-added by each worker and loaded here; word 0:
 * the start flag, stored and notified here once) and the scenario's slot table, which only the
 * workers touch (src/lab/scenarios/torture.ts).
 */
import { Arena } from '../arena/arena.js';
import type { PresetName } from '../epoch/policy.js';
import { CpuPool, siblingModule } from '../service/pool.js';
import type { HashMapRef, QpTrieRef } from '../shm/refs.js';
import { HashMap } from '../structures/hash-map.js';
import { QpTrie, type TrieVersions } from '../structures/qp-trie.js';
import { type MachineConditions, machineConditions } from './benchmarks/measure.js';
import { checkOptions, GP_MIN_MS_OPTION, type OptionSpec, PRESET_OPTION, seconds } from './options-check.js';
import {
  AGE_BUCKETS,
  noErrors,
  type TortureArgs,
  type TortureErrors,
  type TortureResult,
  type TortureStructure,
} from './scenarios/torture-common.js';
import { TRIE_MAX_KEY, TRIE_VALUE } from './scenarios/torture-trie.js';

export interface TortureOptions {
  readonly policy: PresetName;
  /** Worker CPUs: 1 writer, 1 fake writer (from 3 CPUs on), readers. At least 2. */
  readonly cpus: number;
  readonly seconds: number;
  readonly gpMinMs?: { readonly rcu?: number; readonly ttrace?: number };
  /** Writer stutter period in ms (0: none). @defaultValue 100 */
  readonly stutterMs?: number;
  /**
   * Readers sleep this long inside a `readLockTrace` section every 256 sections, holding an
   * element (elements only; 0: no sleepers). @defaultValue 0
   */
  readonly sleepMs?: number;
  /**
   * Published elements, ref-counted objects (the `bpf_cpumask` shape) or a qp-trie.
   * @defaultValue 'element'
   */
  readonly structure?: TortureStructure;
  /** The qp-trie's version validation (src/structures/qp-trie.ts). @defaultValue 'none' */
  readonly versions?: TrieVersions;
}

export interface TortureReport {
  readonly policy: PresetName;
  readonly structure: TortureStructure;
  /** The qp-trie's version validation ('none' for the other structures). */
  readonly versions: TrieVersions;
  readonly cpus: number;
  readonly seconds: number;
  readonly gpMinMs: { readonly rcu: number; readonly ttrace: number };
  /** Reader sections + writer replacements + fake-writer alloc/free pairs. */
  readonly operations: number;
  readonly readerSections: number;
  readonly writes: number;
  /** Errors of every kind, summed. */
  readonly errors: number;
  readonly errorKinds: TortureErrors;
  /** Elements whose unit had been handed out before: memory went round the free lists. */
  readonly recycled: number;
  /** Reader observations by element age in epochs: 0, 1, 2, 3 or more (elements only). */
  readonly ages: readonly number[];
  /** The first few errors, described. */
  readonly samples: readonly string[];
  readonly allocFailures: number;
  readonly conditions: MachineConditions;
}

const kSlots = 16;
const kElementBytes = 48;
const kMapKeyBytes = 4;
const kMapValueBytes = 8;

const kTortureOptions: Readonly<Record<keyof TortureOptions, OptionSpec>> = {
  policy: PRESET_OPTION,
  cpus: { kind: 'integer', min: 2, max: 1024 },
  seconds: seconds(0.001),
  gpMinMs: GP_MIN_MS_OPTION,
  stutterMs: { kind: 'number', min: 0, max: 60_000, optional: true },
  sleepMs: { kind: 'number', min: 0, max: 60_000, optional: true },
  structure: { kind: 'oneOf', values: ['element', 'refcount', 'qp-trie'], optional: true },
  versions: { kind: 'oneOf', values: ['none', 'per-node', 'generation'], optional: true },
};

export async function runTorture(options: TortureOptions): Promise<TortureReport> {
  checkOptions('runTorture', options, kTortureOptions);
  const gpMinMs = { rcu: options.gpMinMs?.rcu ?? 0, ttrace: options.gpMinMs?.ttrace ?? 0 };
  const structure = options.structure ?? 'element';
  // The object map's elements come from a cache of their own: a value read from a reused element
  // is then always some object's pointer (the kernel's per-map allocator), never another type's
  // word that an acquire would increment.
  const fixedSizes = structure === 'refcount' ? [HashMap.elementBytes(kMapKeyBytes, kMapValueBytes)] : [];
  const arena = Arena.create({
    cpus: options.cpus,
    maxBytes: 64 << 20,
    policy: options.policy,
    gpMinMs,
    fixedSizes,
  });
  const conditions = machineConditions();
  const control = new SharedArrayBuffer(4 * (2 + kSlots));
  const words = new Int32Array(control);
  const pool = CpuPool.start(arena);
  try {
    const versions = structure === 'qp-trie' ? (options.versions ?? 'none') : 'none';
    const trie =
      structure === 'qp-trie'
        ? QpTrie.create(arena, { maxKeyBytes: TRIE_MAX_KEY, maxValueBytes: TRIE_VALUE, versions })
        : (0 as QpTrieRef);
    const map =
      structure === 'refcount'
        ? HashMap.create(arena, {
            keySize: kMapKeyBytes,
            valueSize: kMapValueBytes,
            maxEntries: 2 * kSlots,
            fixedCache: 0,
          })
        : (0 as HashMapRef);
    const args: TortureArgs = {
      trie,
      map,
      slots: kSlots,
      size: kElementBytes,
      stutterMs: options.stutterMs ?? 100,
      sleepMs: options.sleepMs ?? 0,
      structure,
      control,
      refTable: new SharedArrayBuffer(8 * kSlots),
    };
    const running = pool.run<TortureResult>(
      siblingModule(import.meta.url, './scenarios/torture'),
      'torture',
      args,
    );
    // The clock starts once every CPU runs (worker start-up can take a second under load).
    for (let waited = 0; Atomics.load(words, 1) < options.cpus && waited < 60_000; waited += 10) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await new Promise((resolve) => setTimeout(resolve, options.seconds * 1000));
    Atomics.store(words, 0, 1);
    // A stuttering writer sleeps on the stop word.
    Atomics.notify(words, 0);
    const results = await running;
    const sum = (pick: (r: TortureResult) => number): number => results.reduce((n, r) => n + pick(r), 0);
    const errorKinds = Object.fromEntries(
      (Object.keys(noErrors) as (keyof TortureErrors)[]).map((kind) => [kind, sum((r) => r.errors[kind])]),
    ) as TortureErrors;
    const ages = Array.from({ length: AGE_BUCKETS }, (_, b) => sum((r) => r.ages[b] ?? 0));
    return {
      policy: options.policy,
      structure,
      versions,
      cpus: options.cpus,
      seconds: options.seconds,
      gpMinMs,
      operations: sum((r) => r.operations),
      readerSections: sum((r) => (r.role === 'reader' ? r.operations : 0)),
      writes: sum((r) => (r.role === 'writer' ? r.operations : 0)),
      errors: Object.values(errorKinds).reduce((a, b) => a + b, 0),
      errorKinds,
      recycled: sum((r) => r.recycled),
      ages,
      samples: results.flatMap((r) => r.samples).slice(0, 5),
      allocFailures: sum((r) => r.allocFailures),
      conditions,
    };
  } finally {
    await pool.close();
    await arena.close();
  }
}
