/**
 * The poison debug option (`debug: { poison: true }`, header bit DEBUG_POISON): a unit's user
 * bytes are filled with POISON_BYTE when it becomes reusable and checked when it is handed out
 * again; a mismatch is a write after free, counted in X_POISON_ERRORS (the first pointer in
 * X_POISON_FIRST). The one home of the poison byte: the slab fills fresh units of reused pages,
 * the deferred lists fill units whose GP has passed, the CPU handle fills immediate frees and
 * checks allocations, all through this module.
 *
 * Who may call: whoever holds the unit (its free list's owner, or the slab row's lock holder).
 * Shared words: X_POISON_ERRORS and X_POISON_FIRST (Atomics); the unit's bytes are the holder's.
 */
import {
  CLS_UNIT_SIZE,
  classWord,
  DEBUG_POISON,
  H_DEBUG,
  type Layout,
  X_POISON_ERRORS,
  X_POISON_FIRST,
} from '../shm/layout.js';

/** The poison byte of freed units (the kernel's POISON_FREE). */
export const POISON_BYTE = 0x6b;
/** POISON_BYTE in each byte of a word. */
const kPoisonWord = POISON_BYTE * 0x01010101;

/** Whether the arena was created with the poison option (immutable after create). */
export function poisonEnabled(i32: Int32Array): boolean {
  return ((i32[H_DEBUG] as number) & DEBUG_POISON) !== 0;
}

/** Fills the user bytes of the unit at byte offset `unit` (`unitSize` bytes, header included). */
export function poisonBytes(bytes: Uint8Array, unit: number, unitSize: number): void {
  bytes.fill(POISON_BYTE, unit + 8, unit + unitSize);
}

/** Poisons unit `unit` of class `cls`. */
export function poisonUnit(
  i32: Int32Array,
  bytes: Uint8Array,
  layout: Layout,
  unit: number,
  cls: number,
): void {
  poisonBytes(bytes, unit, i32[classWord(layout, cls) + CLS_UNIT_SIZE] as number);
}

/**
 * Checks that unit `unit` of class `cls`, about to be handed out again, still holds its poison;
 * counts a failure (a write after free) and remembers the first pointer. A unit never freed
 * (generation 0: carved fresh) is skipped.
 */
export function checkPoison(i32: Int32Array, layout: Layout, unit: number, cls: number): void {
  const generation = (i32[(unit >> 2) + 1] as number) >>> 2;
  if (generation === 0) return;
  const end = (unit + (i32[classWord(layout, cls) + CLS_UNIT_SIZE] as number)) >> 2;
  for (let w = (unit >> 2) + 2; w < end; w++) {
    if (i32[w] !== kPoisonWord) {
      if (Atomics.add(i32, X_POISON_ERRORS, 1) === 0) Atomics.store(i32, X_POISON_FIRST, unit + 8);
      return;
    }
  }
}
