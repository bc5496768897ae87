/**
 * Moving a sheaf's objects off a CPU (policy cache 'sheaves'): flushing a sheaf to the slab in
 * PCS_BATCH_MAX chains (the sheaf handle's flushes, src/cpu/sheaf.ts), and crash recovery of a
 * dead thread's sheaves (src/arena/recovery.ts).
 *
 * Who may call: the holder of the sheaf — its CPU's thread, or recovery with the dead CPU
 * claimed. Shared words: the slab rows (through Slab, under their mutexes) and the barn (its
 * robust mutex). The cache words and the sheaves themselves are the caller's and use plain
 * accesses: a dead thread's words are no longer written by anyone (it was terminated).
 */
import type { Slab } from '../memory/slab.js';
import { isUnitStart } from '../memory/slab.js';
import {
  C_SEALED_COUNT,
  C_SEALED_HEAD,
  C_SEALED_TAIL,
  C_SHEAF_MAIN,
  C_SHEAF_RCU,
  C_SHEAF_SPARE,
  cacheWord,
  HINT_CLASS_MASK,
  type Layout,
  SHEAF_NEXT,
  SHEAF_OBJECTS,
  SHEAF_SIZE,
  UNIT_DEFERRED,
  UNIT_FREE,
  UNIT_STATE_MASK,
} from '../shm/layout.js';
import { Barn } from './barn.js';

/** PCS_BATCH_MAX: units per slab flush. */
const kFlushBatch = 32;

/**
 * Returns every object of `sheaf` (FREE, or DEFERRED past its GP) to the slab of `cls` as FREE
 * units, in chains of kFlushBatch (sheaf_flush_main's PCS_BATCH_MAX: one row lock per chain),
 * and empties the sheaf.
 */
export function flushSheafToSlab(i32: Int32Array, slab: Slab, cls: number, sheaf: number): void {
  const n = i32[sheaf + SHEAF_SIZE] as number;
  for (let start = 0; start < n; start += kFlushBatch) {
    const end = Math.min(n, start + kFlushBatch);
    const head = i32[sheaf + SHEAF_OBJECTS + start] as number;
    let tail = head;
    // The slab holds FREE units; a sheaf's may still say DEFERRED (past their GP: #pop in
    // src/cpu/sheaf-sealed.ts). The state word shares the link's cache line.
    i32[(head >> 2) + 1] = ((i32[(head >> 2) + 1] as number) & ~UNIT_STATE_MASK) | UNIT_FREE;
    for (let k = start + 1; k < end; k++) {
      const unit = i32[sheaf + SHEAF_OBJECTS + k] as number;
      i32[(unit >> 2) + 1] = ((i32[(unit >> 2) + 1] as number) & ~UNIT_STATE_MASK) | UNIT_FREE;
      i32[tail >> 2] = unit;
      tail = unit;
    }
    i32[tail >> 2] = 0;
    slab.returnBatch(cls, head, tail, end - start);
  }
  i32[sheaf + SHEAF_SIZE] = 0;
}

/**
 * Crash recovery of a dead thread's CPU `cpu` (src/arena/recovery.ts, with the CPU claimed):
 * the FREE objects of its main and spare sheaves go to the slab; their DEFERRED ones, and those
 * of its rcu_free and sealed sheaves (not known to be past their GP), onto its deferred rcu pile
 * (`deferRcu`), which then
 * moves on over its GP as any offline CPU's; every sheaf goes back to the barn's empty stack or
 * the pool. The thread may have died halfway through a sheaf operation: an object that is not a
 * unit of the class in the state its sheaf holds, or a sheaf seen twice (a swap cut between its
 * two stores), is dropped; returns the objects dropped.
 */
export function returnDeadSheaves(
  i32: Int32Array,
  layout: Layout,
  cpu: number,
  slab: Slab,
  deferRcu: (c: number, h: number) => void,
): number {
  if (layout.sheaves === 0) return 0;
  const barn = new Barn(i32, layout);
  let dropped = 0;
  for (let cls = 0; cls < layout.classes; cls++) {
    const c = cacheWord(layout, cpu, cls);
    const cap = barn.capacity(cls);
    const seen = new Set<number>();
    const sheaves: [sheaf: number, state: number][] = [];
    const take = (sheaf: number, state: number): void => {
      if (sheaf === 0 || seen.has(sheaf)) return;
      seen.add(sheaf);
      sheaves.push([sheaf, state]);
    };
    take(i32[c + C_SHEAF_MAIN] as number, UNIT_FREE);
    take(i32[c + C_SHEAF_SPARE] as number, UNIT_FREE);
    take(i32[c + C_SHEAF_RCU] as number, UNIT_DEFERRED);
    for (
      let s = i32[c + C_SEALED_HEAD] as number, k = i32[c + C_SEALED_COUNT] as number;
      s !== 0 && k > 0;
      k--
    ) {
      take(s, UNIT_DEFERRED);
      s = i32[s + SHEAF_NEXT] as number;
    }
    for (const [sheaf, state] of sheaves) {
      const n = Math.min(Math.max(i32[sheaf + SHEAF_SIZE] as number, 0), cap);
      let kept = 0;
      for (let k = 0; k < n; k++) {
        const unit = i32[sheaf + SHEAF_OBJECTS + k] as number;
        const h = unit >> 2;
        const now = (i32[h + 1] as number) & UNIT_STATE_MASK;
        // A main or spare sheaf may hold DEFERRED objects past their GP (src/cpu/sheaf-sealed.ts
        // #pop); they wait for one more GP here, in case a swap cut between its two stores
        // left an rcu_free sheaf in that slot too.
        const sound =
          isUnitStart(i32, layout, unit) &&
          ((i32[h] as number) & HINT_CLASS_MASK) === cls &&
          (now === state || (state === UNIT_FREE && now === UNIT_DEFERRED));
        if (!sound) dropped++;
        else if (now === UNIT_FREE) i32[sheaf + SHEAF_OBJECTS + kept++] = unit;
        else deferRcu(c, h);
      }
      i32[sheaf + SHEAF_SIZE] = kept;
      if (kept !== 0) flushSheafToSlab(i32, slab, cls, sheaf);
      barn.putEmpty(cls, sheaf);
    }
    for (const word of [
      C_SHEAF_MAIN,
      C_SHEAF_SPARE,
      C_SHEAF_RCU,
      C_SEALED_HEAD,
      C_SEALED_TAIL,
      C_SEALED_COUNT,
    ]) {
      i32[c + word] = 0;
    }
  }
  return dropped;
}
