/**
 * The torture run (rcutorture for the arena; `percpu-arena torture`, src/lab/torture-run.ts). CPU 0 is
 * the writer; with 3 or more CPUs, CPU 1 is a fake writer; the others are readers.
 *
 * - The writer keeps a table of published elements (shared slots, Atomics). In a loop it
 *   allocates an element, stamps it (its pointer and a sequence number in every word), publishes
 *   it with an exchange, marks the element it replaced as retired at the current rcu epoch and
 *   frees it through the allocator (the policy decides when it may be reused). An element whose
 *   unit has been handed out before counts as recycled: memory really went round the free lists
 *   (rcutorture's warning: an empty free list makes a broken RCU look correct). Stutter: the
 *   writer pauses for `stutterMs` every `stutterMs`.
 * - The fake writer allocates and frees batches of the same size, so freed units are wanted at
 *   once (it presses on the free lists as rcutorture's fake writers press on GPs).
 * - A reader, inside `readLock()`, loads a slot, reads the element's generation and words, reads
 *   them again a few times, and at the end computes the element's age: epochs since it was
 *   retired (0 if it is still published). Errors: a changed generation, a changed word, a unit
 *   on a free list, or an age above 1 (a reader that pinned at epoch p found the element before
 *   it was retired, at r ≥ p; while pinned the epoch cannot pass p + 1). Ages go to a histogram.
 *   Readers find elements through the generation references (src/structures/unit-ref.ts) the writer
 *   publishes with them and check the reference after their reads, as a service would: an
 *   error the reference does not catch counts as `undetected`.
 *   Hot-plug: every 4096 sections a reader parks for a moment and comes back. Sleepers (option
 *   `sleepMs`): every 256th section is a `readLockTrace` section that sleeps with the element
 *   in hand (sleepInTraceSection).
 * - Structure 'qp-trie': src/lab/scenarios/torture-trie.ts.
 * - Structure 'refcount' (the `bpf_cpumask` shape, src/structures/refcount.ts): ref-counted objects held in
 *   the values of a hash map keyed by slot, as BPF maps hold kptrs (the slot's reference is the
 *   one `create` gives); the writer updates the slot's value and releases the object it
 *   replaces; a reader looks the slot up and acquires the object its value names (kptr_get: only a
 *   non-zero count), checks that it is still the object that slot published (its generation,
 *   its stamp and the slot index it carries) and releases it — the last release frees it. An
 *   acquisition of an object that was freed and re-created is an error (`recreated`), counted,
 *   and its reference released like any other, so that the run goes on.
 *
 * Who may call: a CPU pool (src/service/pool.ts) with at least 2 CPUs. Shared words: the stop word, the
 * started counter and the slot table in `args.control`, objects' count words (all Atomics);
 * element words are read plainly by readers, which is the point: they are what a lock-free
 * reader sees.
 */
import type { CpuContext } from '../../service/cpu-context.js';
import { FLAVOR_RCU, G_EPOCH, gpWord } from '../../shm/layout.js';
import type { Pointer } from '../../shm/refs.js';
import { HashMap, MapStatus } from '../../structures/hash-map.js';
import { RefCounts } from '../../structures/refcount.js';
import { UnitRefs } from '../../structures/unit-ref.js';
import { AGE_BUCKETS, noErrors, stutterer, type TortureArgs, type TortureResult } from './torture-common.js';
import { trieReader, trieWriter } from './torture-trie.js';

const STOP = 0;
/** CPUs that started: the run's clock starts when all have (worker start-up is not the run). */
const STARTED = 1;
const SLOTS = 2;
/**
 * Element words: 0 sequence, 1 retired epoch + 1 (0 while published), 2 the slot it was
 * published in, 3.. the stamp. A ref-counted object's count is word 0 of its unit, so its
 * element words start at REF_PAYLOAD_OFFSET.
 */
const SEQ = 0;
const RETIRED = 1;
const HOME = 2;
const STAMP = 3;
const STATE_MASK = 3;
const STATE_FREE = 2;

/** A slot's key in the object map. */
function slotKey(slot: number): Uint8Array {
  return Uint8Array.of(slot, 0, 0, 0);
}

const stamp = (ptr: number, seq: number, k: number): number => (Math.imul(seq, 0x9e3779b1) ^ (ptr + k)) | 0;

export function torture(ctx: CpuContext<TortureArgs>): TortureResult {
  const control = new Int32Array(ctx.args.control);
  Atomics.add(control, STARTED, 1);
  const trie = ctx.args.structure === 'qp-trie';
  if (ctx.index === 0) return trie ? trieWriter(ctx, control) : writer(ctx, control);
  if (ctx.index === 1 && ctx.cpus >= 3) return fakeWriter(ctx, control);
  return trie ? trieReader(ctx, control) : reader(ctx, control);
}

/** What the element and refcount writer and readers share: the table's shape and handles. */
function tableOf(ctx: CpuContext<TortureArgs>) {
  const { cpu, args } = ctx;
  const refs = args.structure === 'refcount' ? new RefCounts(cpu) : undefined;
  // An object's count word and pad come before its element words.
  const skip = refs ? 2 : 0;
  return {
    i32: cpu.i32,
    refs,
    skip,
    words: (args.size >> 2) - skip,
    epochWord: gpWord(FLAVOR_RCU, G_EPOCH),
    map: args.map !== 0 ? HashMap.open(cpu, args.map) : undefined,
    slotKeys: Array.from({ length: args.slots }, (_, s) => slotKey(s)),
    unitRefs: new UnitRefs(ctx.shared),
    refTable: new BigInt64Array(args.refTable),
  };
}

function writer(ctx: CpuContext<TortureArgs>, control: Int32Array): TortureResult {
  const { cpu, args } = ctx;
  const { i32, refs, skip, words, epochWord, map, slotKeys, unitRefs, refTable } = tableOf(ctx);
  const held = new Array<number>(args.slots).fill(0);
  const value = new Uint8Array(8);
  const valueWords = new Int32Array(value.buffer);
  let operations = 0;
  let recycled = 0;
  let allocFailures = 0;
  let slot = 0;
  const stutter = stutterer(ctx, control);
  while (Atomics.load(control, STOP) === 0) {
    if ((operations & 255) === 0) stutter();
    const ptr = refs ? refs.create(args.size - 8) : cpu.alloc(args.size);
    if (ptr === 0) {
      allocFailures++;
      cpu.poll();
      continue;
    }
    if ((i32[(ptr >> 2) - 1] as number) >>> 2 > 1) recycled++;
    const base = (ptr >> 2) + skip;
    i32[base + SEQ] = operations;
    i32[base + RETIRED] = 0;
    i32[base + HOME] = slot;
    for (let k = STAMP; k < words; k++) i32[base + k] = stamp(ptr, operations, k);
    let old: number;
    if (map) {
      // The map's value holds the object: update links a new element and frees the old one.
      old = held[slot] as number;
      held[slot] = ptr;
      valueWords[0] = ptr;
      if (map.update(slotKeys[slot] as Uint8Array, value) !== MapStatus.OK) {
        throw new Error('torture: the object map refused an update');
      }
    } else {
      if (!refs) Atomics.store(refTable, slot, BigInt(unitRefs.of(ptr)));
      old = Atomics.exchange(control, SLOTS + slot, ptr);
    }
    if (old !== 0) {
      i32[(old >> 2) + skip + RETIRED] = (Atomics.load(i32, epochWord) + 1) | 0;
      if (refs) refs.release(old);
      else cpu.free(old as Pointer);
    }
    slot = slot + 1 === args.slots ? 0 : slot + 1;
    operations++;
  }
  for (let s = 0; s < args.slots; s++) {
    if (map) map.delete(slotKeys[s] as Uint8Array);
    // Unpublish the reference too: a reader finishing its last section must not find it.
    if (!refs) Atomics.store(refTable, s, 0n);
    const old = map ? (held[s] as number) : Atomics.exchange(control, SLOTS + s, 0);
    if (old !== 0 && refs) refs.release(old);
    else if (old !== 0) cpu.free(old as Pointer);
  }
  return { role: 'writer', operations, recycled, allocFailures, errors: noErrors, ages: [], samples: [] };
}

function fakeWriter(ctx: CpuContext<TortureArgs>, control: Int32Array): TortureResult {
  const { cpu, args } = ctx;
  const held: number[] = [];
  let operations = 0;
  let allocFailures = 0;
  while (Atomics.load(control, STOP) === 0) {
    for (let k = 0; k < 64; k++) {
      const ptr = cpu.alloc(args.size);
      if (ptr === 0) {
        allocFailures++;
        continue;
      }
      // Neither an element nor an object: word 0 (an element's sequence, an object's count) and
      // word 2 (an object's sequence) are -1, which no stamp matches and no acquire takes.
      cpu.i32[ptr >> 2] = -1;
      cpu.i32[(ptr >> 2) + 2] = -1;
      held.push(ptr);
    }
    while (held.length > 0) cpu.free(held.pop() as Pointer);
    operations += 64;
  }
  return {
    role: 'fake-writer',
    operations,
    recycled: 0,
    allocFailures,
    errors: noErrors,
    ages: [],
    samples: [],
  };
}

function reader(ctx: CpuContext<TortureArgs>, control: Int32Array): TortureResult {
  const { cpu, args } = ctx;
  const { i32, refs, words, epochWord, map, slotKeys, unitRefs, refTable } = tableOf(ctx);
  const errors = { ...noErrors };
  const ages = new Array<number>(AGE_BUCKETS).fill(0);
  const samples: string[] = [];
  const note = (what: string): void => {
    if (samples.length < 5) samples.push(what);
  };
  let operations = 0;
  let slot = ctx.index;
  while (Atomics.load(control, STOP) === 0) {
    if ((operations & 4095) === 4095) {
      // Hot-plug: off for a moment (a parked CPU holds no GP back), then on again.
      cpu.park();
      cpu.unpark();
    }
    if (args.sleepMs > 0 && (operations & 255) === 128 && !refs) {
      sleepInTraceSection(ctx, control, slot, words, errors, note);
      slot = slot + 7 >= args.slots ? (slot + 7) % args.slots : slot + 7;
      operations++;
      continue;
    }
    cpu.readLock();
    let ptr: number;
    // Elements: the reference the writer published, and the pointer it names.
    const ref = refs ? -1 : Number(Atomics.load(refTable, slot));
    if (map) {
      // bpf_map_lookup_elem, then the kptr in the value.
      const at = map.lookup(slotKeys[slot] as Uint8Array);
      ptr = at === 0 ? 0 : Atomics.load(i32, at >> 2);
    } else {
      ptr = ref <= 0 ? 0 : unitRefs.pointer(ref);
    }
    if (ptr !== 0 && refs) {
      checkAcquire(refs, i32, ptr, slot, words, errors, note);
    } else if (ptr !== 0) {
      const base = ptr >> 2;
      const header = i32[base - 1] as number;
      const seq = i32[base + SEQ] as number;
      let bad = -1;
      for (let round = 0; round < 4 && bad < 0; round++) {
        for (let k = STAMP; k < words; k++) if (i32[base + k] !== stamp(ptr, seq, k)) bad = k;
      }
      const retired = i32[base + RETIRED] as number;
      const age = retired === 0 ? 0 : (Atomics.load(i32, epochWord) - (retired - 1)) | 0;
      const again = i32[base - 1] as number;
      const bucket = Math.min(Math.max(age, 0), AGE_BUCKETS - 1);
      ages[bucket] = (ages[bucket] as number) + 1;
      if (again >>> 2 !== header >>> 2) {
        errors.generation++;
        note(`element ${ptr}: generation ${header >>> 2} became ${again >>> 2} inside a read section`);
      } else if (bad >= 0) {
        errors.contents++;
        note(`element ${ptr}: word ${bad} changed inside a read section`);
      } else if ((again & STATE_MASK) === STATE_FREE) {
        errors.freed++;
        note(`element ${ptr}: on a free list inside a read section`);
      } else if (age > 1) {
        errors.age++;
        note(`element ${ptr}: age ${age} epochs inside a read section`);
      }
      const erred =
        again >>> 2 !== header >>> 2 || bad >= 0 || (again & STATE_MASK) === STATE_FREE || age > 1;
      if (erred && unitRefs.isCurrent(ref)) {
        errors.undetected++;
        note(`element ${ptr}: its generation reference still matched after an error`);
      }
    }
    cpu.readUnlock();
    slot = slot + 7 >= args.slots ? (slot + 7) % args.slots : slot + 7;
    operations++;
  }
  return { role: 'reader', operations, recycled: 0, allocFailures: 0, errors, ages, samples };
}

/**
 * A sleepable reader (a sleepable BPF program under rcu_read_lock_trace): inside
 * `readLockTrace()` it reads an element, sleeps `sleepMs`, and reads it again. A changed
 * generation or stamp, or a unit on a free list, is an error: the policy reused or freed what a
 * tasks-trace reader held.
 */
function sleepInTraceSection(
  ctx: CpuContext<TortureArgs>,
  control: Int32Array,
  slot: number,
  words: number,
  errors: { sleeper: number },
  note: (what: string) => void,
): void {
  const { cpu, args } = ctx;
  const i32 = cpu.i32;
  cpu.readLockTrace();
  const ptr = Atomics.load(control, SLOTS + slot);
  if (ptr !== 0) {
    const base = ptr >> 2;
    const header = i32[base - 1] as number;
    const seq = i32[base + SEQ] as number;
    Atomics.wait(control, STOP, 0, args.sleepMs);
    let changed = Atomics.load(i32, base - 1) !== header;
    for (let k = STAMP; k < words && !changed; k++)
      changed = Atomics.load(i32, base + k) !== stamp(ptr, seq, k);
    if (changed || (Atomics.load(i32, base - 1) & STATE_MASK) === STATE_FREE) {
      errors.sleeper++;
      note(`element ${ptr}: changed while a readLockTrace reader slept ${args.sleepMs} ms holding it`);
    }
  }
  cpu.readUnlockTrace();
}

/**
 * Structure 'refcount': acquires the object found in `slot` and checks that it is the object
 * that slot published — same generation before and after the acquire, a valid stamp, its home
 * slot — then releases it. An acquisition of anything else (an object freed and re-created in
 * the same unit) is counted; its reference is released as any other.
 */
function checkAcquire(
  refs: RefCounts,
  i32: Int32Array,
  ptr: number,
  slot: number,
  words: number,
  errors: { recreated: number },
  note: (what: string) => void,
): void {
  const header = i32[(ptr >> 2) - 1] as number;
  if (!refs.acquire(ptr)) return; // on its way out: kptr_get fails, as it should
  const base = (ptr >> 2) + 2;
  const seq = i32[base + SEQ] as number;
  let stampOk = true;
  for (let k = STAMP; k < words && stampOk; k++) stampOk = i32[base + k] === stamp(ptr, seq, k);
  const again = i32[(ptr >> 2) - 1] as number;
  if (again !== header || !stampOk || i32[base + HOME] !== slot) {
    errors.recreated++;
    note(
      `object ${ptr}: acquired, but it is not the object its slot published (generation ${header >>> 2} → ${again >>> 2})`,
    );
    // The reference is real (acquire succeeds only on a live object's count): give it back.
    refs.release(ptr);
    return;
  }
  refs.release(ptr);
}
