/**
 * What every role of the torture run shares (src/lab/scenarios/torture.ts for the element and
 * refcount structures, src/lab/scenarios/torture-trie.ts for the qp-trie): its arguments, its
 * result, and the writer's stutter. Its own module so that the two scenarios import it instead
 * of each other.
 *
 * Who may call: the torture scenarios, on a pool CPU; the main-thread run
 * (src/lab/torture-run.ts) for the types. Shared words: the stop word of `args.control` (Atomics).
 */
import type { CpuContext } from '../../service/cpu-context.js';
import type { HashMapRef, QpTrieRef } from '../../shm/refs.js';

/** Word 0 of `args.control`: set to stop the run. */
const STOP = 0;

export type TortureStructure = 'element' | 'refcount' | 'qp-trie';

export interface TortureArgs {
  /** Slots in the table. */
  readonly slots: number;
  /** Bytes per element (a multiple of 4, at least 16). */
  readonly size: number;
  /** Writer pause and run length (0: no stutter). */
  readonly stutterMs: number;
  /** Every 256th reader section is a `readLockTrace` section that sleeps this long (0: none). */
  readonly sleepMs: number;
  /** Published elements, ref-counted objects, or a qp-trie (src/lab/scenarios/torture-trie.ts). */
  readonly structure: TortureStructure;
  /** The qp-trie's ref (structure 'qp-trie'), else 0. */
  readonly trie: QpTrieRef;
  /**
   * Structure 'refcount': the hash map (4-byte slot keys, 8-byte values from its own fixed
   * cache) whose values hold the objects' pointers, as BPF maps hold kptrs; else 0.
   */
  readonly map: HashMapRef;
  /** [stop, started, slots ...]: (2 + slots) words. */
  readonly control: SharedArrayBuffer;
  /**
   * Elements: the generation reference (src/structures/unit-ref.ts) of each slot's element, 8 bytes per
   * slot, published by the writer next to the pointer: what a service would store and readers
   * load instead of a bare pointer.
   */
  readonly refTable: SharedArrayBuffer;
}

/** Age histogram buckets: 0, 1, 2, 3 or more epochs. */
export const AGE_BUCKETS = 4;

/** Errors of a torture run by kind (see TortureResult['errors']). */
export type TortureErrors = TortureResult['errors'];

export interface TortureResult {
  readonly role: 'writer' | 'fake-writer' | 'reader';
  /** Reader sections, writer replacements, fake-writer alloc+free pairs. */
  readonly operations: number;
  readonly recycled: number;
  readonly allocFailures: number;
  readonly errors: {
    readonly generation: number;
    readonly contents: number;
    readonly freed: number;
    readonly age: number;
    /** Acquisitions of an object that was freed and re-created (structure 'refcount'). */
    readonly recreated: number;
    /** qp-trie: a stable key missing, a ghost key found, another key's value (copied out). */
    readonly wrongLookup: number;
    /** qp-trie: a value read through lookup's pointer that names another key or changes. */
    readonly staleValue: number;
    /** A sleeping `readLockTrace` reader saw its element change or go to a free list. */
    readonly sleeper: number;
    /**
     * An element error that the reader's generation reference (src/structures/unit-ref.ts), checked after
     * the reads, did not catch: a service using references would have trusted those bytes.
     */
    readonly undetected: number;
  };
  readonly ages: readonly number[];
  readonly samples: readonly string[];
}

/** A result's errors when a role saw none (the writers'); readers count from a copy. */
export const noErrors: TortureResult['errors'] = Object.freeze({
  generation: 0,
  contents: 0,
  freed: 0,
  age: 0,
  recreated: 0,
  wrongLookup: 0,
  staleValue: 0,
  sleeper: 0,
  undetected: 0,
});

/**
 * A writer's stutter (rcutorture's): called now and then, it parks the CPU and sleeps for
 * `stutterMs` once every `stutterMs` of writing (readers go on), then resumes.
 */
export function stutterer(ctx: CpuContext<TortureArgs>, control: Int32Array): () => void {
  const { cpu, args } = ctx;
  let phaseStart = performance.now();
  return () => {
    if (args.stutterMs <= 0 || performance.now() - phaseStart <= args.stutterMs) return;
    cpu.park();
    Atomics.wait(control, STOP, 0, args.stutterMs);
    cpu.unpark();
    phaseStart = performance.now();
  };
}
