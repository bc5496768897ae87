/**
 * The reuse oracle (rcutorture's idea, with the unit generation as the pipe count): CPU 0 is the
 * writer, every other CPU a reader.
 *
 * - The writer keeps a table of published pointers (shared, Atomics). In a loop it allocates a
 *   unit, fills it with words derived from (pointer, generation), publishes it in a slot with an
 *   Atomics exchange and frees the unit it replaced, with `free` (the policy decides when it may
 *   be reused) or `freeRcu`.
 * - A reader, inside `readLock()`, loads a slot, reads the unit's generation, state and words,
 *   reads them again after a short delay, and leaves. While it holds the unit, the unit must not
 *   be reused: a changed generation, a changed word, or a FREE state (on a free list, reusable)
 *   is a violation.
 *
 * Under a policy that reuses only after an rcu GP (and always with `freeRcu`) the violations must
 * be zero; under kernel-6.6 `free` reuses at once and the oracle must see it. The scenario runs
 * until the first reader has done its sections (or the main thread sets the stop flag); it is a
 * stress test, not a benchmark.
 *
 * Who may call: a CPU pool (src/service/pool.ts) with at least 2 CPUs. Shared words: the slot table and
 * the stop flag in `args.shared` (Atomics); unit contents are read plainly by readers, which is
 * the point: they are what a lock-free reader sees.
 */
import type { CpuContext } from '../../service/cpu-context.js';
import type { Pointer } from '../../shm/refs.js';

export interface ReuseOracleArgs {
  /** Read-side sections per reader. */
  readonly sections: number;
  /** Slots in the table: fewer slots, more contention on each unit. */
  readonly slots: number;
  /** User bytes per unit (8..4088, a multiple of 4). */
  readonly size: number;
  /** How the writer frees replaced units. */
  readonly free: 'free' | 'freeRcu';
  /**
   * Main-thread handshake and stop flag: word 0 counts CPUs that started, word 1 is set when the
   * readers are done, words 2.. are the slot table. Size: (2 + slots) * 4 bytes.
   */
  readonly shared: SharedArrayBuffer;
  /** Times a reader checks a unit's words inside one section (the section's length). */
  readonly checks: number;
}

export interface ReuseOracleResult {
  readonly role: 'writer' | 'reader';
  readonly sections: number;
  /** Sections that found a unit in their slot (the others found an empty slot). */
  readonly held: number;
  readonly writes: number;
  readonly allocFailures: number;
  readonly violations: { readonly generation: number; readonly contents: number; readonly free: number };
  readonly samples: readonly string[];
  readonly ms: number;
}

const STARTED = 0;
const STOP = 1;
const SLOTS = 2;
/** Unit header word 1 (generation << 2 | state): see src/shm/layout.ts. */
const STATE_MASK = 3;
const STATE_FREE = 2;

/** The word the writer stores at word k of a unit at `ptr` with generation `gen`. */
function expected(ptr: number, gen: number, k: number): number {
  return (Math.imul(gen, 0x9e3779b1) ^ (ptr + k)) | 0;
}

export function reuseOracle(ctx: CpuContext<ReuseOracleArgs>): ReuseOracleResult {
  const control = new Int32Array(ctx.args.shared);
  Atomics.add(control, STARTED, 1);
  Atomics.notify(control, STARTED);
  return ctx.index === 0 ? writer(ctx, control) : reader(ctx, control);
}

function writer(ctx: CpuContext<ReuseOracleArgs>, control: Int32Array): ReuseOracleResult {
  const { cpu, args } = ctx;
  const i32 = cpu.i32;
  const words = args.size >> 2;
  const t0 = performance.now();
  let writes = 0;
  let allocFailures = 0;
  let slot = 0;
  while (Atomics.load(control, STOP) === 0) {
    const ptr = cpu.alloc(args.size);
    if (ptr === 0) {
      allocFailures++;
      continue;
    }
    const gen = (i32[(ptr >> 2) - 1] as number) >>> 2;
    for (let k = 0; k < words; k++) i32[(ptr >> 2) + k] = expected(ptr, gen, k);
    const old = Atomics.exchange(control, SLOTS + slot, ptr);
    if (old !== 0) {
      if (args.free === 'freeRcu') cpu.freeRcu(old as Pointer);
      else cpu.free(old as Pointer);
    }
    slot = slot + 1 === args.slots ? 0 : slot + 1;
    writes++;
  }
  // Leave nothing allocated: the close report must show no leak. Freed as during the run: a
  // reader may still be in its last section, and a plain free under an immediate policy would
  // hand it a unit on a free list (a violation the allocator did not cause).
  for (let s = 0; s < args.slots; s++) {
    const old = Atomics.exchange(control, SLOTS + s, 0);
    if (old === 0) continue;
    if (args.free === 'freeRcu') cpu.freeRcu(old as Pointer);
    else cpu.free(old as Pointer);
  }
  const none = { generation: 0, contents: 0, free: 0 };
  return {
    role: 'writer',
    sections: 0,
    held: 0,
    writes,
    allocFailures,
    violations: none,
    samples: [],
    ms: performance.now() - t0,
  };
}

function reader(ctx: CpuContext<ReuseOracleArgs>, control: Int32Array): ReuseOracleResult {
  const { cpu, args } = ctx;
  const i32 = cpu.i32;
  const words = args.size >> 2;
  const violations = { generation: 0, contents: 0, free: 0 };
  const samples: string[] = [];
  const note = (what: string): void => {
    if (samples.length < 5) samples.push(what);
  };
  // Wait for the writer's first pass over the table (it fills the slots in order): a reader
  // that ran ahead of a writer still starting up on a loaded machine would find empty slots
  // and test nothing.
  const last = SLOTS + args.slots - 1;
  while (Atomics.load(control, last) === 0 && Atomics.load(control, STOP) === 0)
    Atomics.wait(control, last, 0, 5);
  const t0 = performance.now();
  let held = 0;
  let slot = ctx.index;
  let s = 0;
  for (; s < args.sections; s++) {
    // Another reader finished, or the main thread stopped the run.
    if ((s & 4095) === 0 && Atomics.load(control, STOP) !== 0) break;
    cpu.readLock();
    const ptr = Atomics.load(control, SLOTS + slot);
    if (ptr !== 0) {
      held++;
      const h = (ptr >> 2) - 2;
      const header = i32[h + 1] as number;
      const gen = header >>> 2;
      // Hold the unit for a while, as a reader that works with it would, checking it each time.
      let bad = -1;
      for (let round = 0; round < args.checks && bad < 0; round++) {
        for (let k = 0; k < words; k++) if (i32[(ptr >> 2) + k] !== expected(ptr, gen, k)) bad = k;
      }
      const again = i32[h + 1] as number;
      if (again >>> 2 !== gen) {
        violations.generation++;
        note(`unit ${ptr - 8}: generation ${gen} became ${again >>> 2} inside a read section`);
      } else if (bad >= 0) {
        violations.contents++;
        note(`unit ${ptr - 8}: word ${bad} changed inside a read section (generation ${gen})`);
      } else if ((header & STATE_MASK) === STATE_FREE || (again & STATE_MASK) === STATE_FREE) {
        violations.free++;
        note(`unit ${ptr - 8}: on a free list (reusable) inside a read section`);
      }
    }
    cpu.readUnlock();
    slot = slot + 7 >= args.slots ? (slot + 7) % args.slots : slot + 7;
  }
  Atomics.store(control, STOP, 1);
  return {
    role: 'reader',
    sections: s,
    held,
    writes: 0,
    allocFailures: 0,
    violations,
    samples,
    ms: performance.now() - t0,
  };
}
