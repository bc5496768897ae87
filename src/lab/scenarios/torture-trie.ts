/**
 * The torture run's qp-trie structure (`percpu-arena torture --structure qp-trie`, src/structures/qp-trie.ts):
 * the writer keeps one trie changing, readers look keys up with a reference model that holds
 * whatever the interleaving.
 *
 * Keys are "k" and a decimal number (2 to 6 bytes, many the prefix of others): 32 stable keys
 * (k0..k31, always present: the writer only replaces their values), 64 churn keys (k32..k95,
 * inserted and deleted in turn) and 32 ghost keys (k1000..k1031, never inserted, sharing
 * prefixes with the others). A value is the key's number and a serial.
 *
 * - The writer first inserts every stable key (readers wait for it), then alternates a value replacement of a stable key (a new leaf; the old one freed)
 *   with an insert or delete of a churn key (new branches; the old ones freed). Units its trie
 *   handle took that had been handed out before count as recycled. It stutters as the element
 *   writer does.
 * - A reader, inside `readLock()`, looks one key up, in turn by copy (`read`: the value copied
 *   out and, with versions, checked against its leaf afterwards) and by pointer (`lookup`, as a
 *   BPF program gets, the value read through it a few times). A wrong lookup: a stable key
 *   missing, a ghost key found, or a value with another key's number. A stale value: a value
 *   read through a lookup's pointer that names another key, or changes while the reader holds
 *   it. Either, under a policy that reuses only after a GP, is a bug.
 *
 * Who may call: src/lab/scenarios/torture.ts on a pool CPU. Shared words: the trie's (see
 * src/structures/qp-trie.ts) and the control words of the torture run; the value words read through a
 * lookup's pointer are read plainly, which is the point.
 */
import type { CpuContext } from '../../service/cpu-context.js';
import { QpTrie } from '../../structures/qp-trie.js';
import { noErrors, stutterer, type TortureArgs, type TortureResult } from './torture-common.js';

export const STABLE_KEYS = 32;
const CHURN_KEYS = 64;
const GHOST_FIRST = 1000;
const GHOST_KEYS = 32;
/** Key and value bounds of the torture trie. */
export const TRIE_MAX_KEY = 8;
export const TRIE_VALUE = 8;

const STOP = 0;
/** Set by the writer once every stable key is in the trie; readers start then. */
const READY = 2;

function keyOf(id: number): Uint8Array {
  return new TextEncoder().encode(`k${id}`);
}

export function trieWriter(ctx: CpuContext<TortureArgs>, control: Int32Array): TortureResult {
  const { cpu, args } = ctx;
  const trie = QpTrie.open(cpu, args.trie);
  const stable = Array.from({ length: STABLE_KEYS }, (_, i) => keyOf(i));
  const churn = Array.from({ length: CHURN_KEYS }, (_, i) => keyOf(STABLE_KEYS + i));
  const present = new Uint8Array(CHURN_KEYS);
  const value = new Uint8Array(TRIE_VALUE);
  const words = new Int32Array(value.buffer);
  let operations = 0;
  let allocFailures = 0;
  let random = 0x2545f491;
  for (let id = 0; id < STABLE_KEYS; id++) {
    words[0] = id;
    words[1] = 0;
    if (trie.update(stable[id] as Uint8Array, value) !== 0)
      throw new Error('torture: no memory for the stable keys');
  }
  Atomics.store(control, READY, 1);
  Atomics.notify(control, READY);
  const stutter = stutterer(ctx, control);
  while (Atomics.load(control, STOP) === 0) {
    if ((operations & 255) === 0) stutter();
    let status: number;
    if ((operations & 1) === 0) {
      const id = (operations >> 1) % STABLE_KEYS;
      words[0] = id;
      words[1] = operations;
      status = trie.update(stable[id] as Uint8Array, value);
    } else {
      random ^= random << 13;
      random ^= random >>> 17;
      random ^= random << 5;
      const c = (random >>> 0) % CHURN_KEYS;
      if (present[c] === 1) {
        status = trie.delete(churn[c] as Uint8Array);
        if (status === 0) present[c] = 0;
      } else {
        words[0] = STABLE_KEYS + c;
        words[1] = operations;
        status = trie.update(churn[c] as Uint8Array, value);
        if (status === 0) present[c] = 1;
      }
    }
    if (status !== 0) {
      allocFailures++;
      cpu.poll();
    }
    operations++;
  }
  return {
    role: 'writer',
    operations,
    recycled: trie.reusedNodes,
    allocFailures,
    errors: noErrors,
    ages: [],
    samples: [],
  };
}

export function trieReader(ctx: CpuContext<TortureArgs>, control: Int32Array): TortureResult {
  const { cpu, args } = ctx;
  const trie = QpTrie.open(cpu, args.trie);
  const ids = [
    ...Array.from({ length: STABLE_KEYS + CHURN_KEYS }, (_, i) => i),
    ...Array.from({ length: GHOST_KEYS }, (_, i) => GHOST_FIRST + i),
  ];
  const keys = ids.map(keyOf);
  const out = new Uint8Array(TRIE_VALUE);
  const outWords = new Int32Array(out.buffer);
  const i32 = cpu.i32;
  const errors = { ...noErrors };
  const samples: string[] = [];
  const note = (what: string): void => {
    if (samples.length < 5) samples.push(what);
  };
  let operations = 0;
  let next = ctx.index * 7;
  while (Atomics.load(control, READY) === 0) Atomics.wait(control, READY, 0, 100);
  while (Atomics.load(control, STOP) === 0) {
    if ((operations & 4095) === 4095) {
      cpu.park();
      cpu.unpark();
    }
    next = next + 13 >= ids.length ? (next + 13) % ids.length : next + 13;
    const id = ids[next] as number;
    const key = keys[next] as Uint8Array;
    const stable = id < STABLE_KEYS;
    const ghost = id >= GHOST_FIRST;
    cpu.readLock();
    if ((operations & 1) === 0) {
      const length = trie.read(key, out);
      const found = length >= 0;
      if ((stable && !found) || (ghost && found) || (found && outWords[0] !== id)) {
        errors.wrongLookup++;
        note(`k${id}: read ${found ? `a value of k${outWords[0]}` : 'nothing'}`);
      }
    } else {
      const at = trie.lookup(key);
      if ((stable && at === 0) || (ghost && at !== 0)) {
        errors.wrongLookup++;
        note(`k${id}: lookup ${at === 0 ? 'found nothing' : 'found a value'}`);
      } else if (at !== 0) {
        // A BPF program reads its value after the lookup: the value words, aligned to 8.
        const w = at >> 2;
        const first = i32[w] as number;
        let held = first;
        for (let round = 0; round < 4 && held === first; round++) held = i32[w] as number;
        if (first !== id || held !== first) {
          errors.staleValue++;
          note(
            `k${id}: the value behind lookup's pointer named k${first}${held !== first ? `, then k${held}` : ''}`,
          );
        }
      }
    }
    cpu.readUnlock();
    operations++;
  }
  return { role: 'reader', operations, recycled: 0, allocFailures: 0, errors, ages: [], samples };
}
