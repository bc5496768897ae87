/**
 * Generation references: a number that names a unit *as it was when the reference was taken*,
 * so that a service holding it can check, with two loads and two compares, that the unit has
 * not been freed and handed out again since (the seed's version numbers, made general: the unit
 * header already counts every allocation of the unit).
 *
 * ```
 *  ref = (header word 1 & 0x7fffff) * 2^28 + (ptr >>> 3)        (< 2^51: an exact JS number)
 *  header word 1 = generation << 2 | state   →  the low 23 bits: 21 bits of generation, state ALLOCATED
 *  current(ref)  ⇔  a unit still starts at ptr (unit-start map)  and  (i32[ptr/4 − 1] & 0x7fffff) === ref / 2^28
 * ```
 * 21 bits of generation: a unit that is freed and reallocated exactly a multiple of 2^21 times
 * between the reference and the check passes it (ABA); any other reuse, and any free, fails it.
 * Pages a released span gave back may hold another class's units later: the unit-start bit says
 * whether a unit still starts there (else the header word could be anybody's bytes), and units
 * carved from reused pages continue from a fresh generation base (src/memory/slab.ts), so a unit at
 * the same place does not restart at a generation an old reference holds.
 * The check says nothing about memory safety by itself: read the unit inside a read-side section
 * (or hold it otherwise), and check after reading, as a seqlock reader does: the bytes read are
 * the unit's if the generation still matches afterwards.
 *
 * `checked(ref)` is the debug mode: a view whose every read and write checks the reference first
 * and throws `ArenaError` `ESTALE` for a unit that is no longer the one referenced.
 *
 * Who may call: any thread holding the arena's buffer. Shared words: unit header word 1, read
 * plainly (an aligned 32-bit read cannot tear; a stale value is an older generation, which fails
 * the check or matches a reference taken before — the answer for that moment).
 */

import { isUnitStart } from '../memory/slab.js';
import type { SharedArena } from '../shm/arena-ref.js';
import { ArenaError, fail, show } from '../shm/errors.js';
import {
  CLS_OBJECT_SIZE,
  CLS_UNIT_SIZE,
  classWord,
  HINT_CLASS_MASK,
  type Layout,
  readLayout,
  UNIT_ALLOCATED,
  UNIT_STATE_MASK,
} from '../shm/layout.js';

/** The header bits a reference keeps: the state and 21 bits of generation. */
const kKeptBits = 0x7fffff;
/** ptr >>> 3 takes 28 bits (pointers are below 2^31 and 8-aligned). */
const kPtrScale = 2 ** 28;

export class UnitRefs {
  readonly #i32: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #pagesBase: number;
  readonly #end: number;
  readonly #layout: Layout;

  /** References for the arena described by `shared` (`arena.shared`, on any thread). */
  constructor(shared: SharedArena) {
    if (shared === null || typeof shared !== 'object' || !(shared.buffer instanceof SharedArrayBuffer)) {
      fail('EINVAL', 'new UnitRefs(shared) needs the `arena.shared` object of an arena');
    }
    this.#i32 = new Int32Array(shared.buffer);
    const layout = readLayout(this.#i32);
    this.#bytes = new Uint8Array(shared.buffer);
    this.#view = new DataView(shared.buffer);
    this.#pagesBase = layout.pagesBase;
    this.#end = layout.totalBytes;
    this.#layout = layout;
  }

  /**
   * The reference of the allocated unit at user pointer `ptr` (from `alloc`), as it is now.
   * Throws `EINVAL` for a pointer that is not an allocated unit's.
   */
  of(ptr: number): number {
    if (
      typeof ptr !== 'number' ||
      (ptr | 0) !== ptr ||
      (ptr & 7) !== 0 ||
      ptr - 8 < this.#pagesBase ||
      ptr >= this.#end ||
      !isUnitStart(this.#i32, this.#layout, ptr - 8)
    ) {
      fail('EINVAL', `UnitRefs.of(${show(ptr)}): not a unit pointer of this arena`);
    }
    const word = this.#i32[(ptr >> 2) - 1] as number;
    if ((word & UNIT_STATE_MASK) !== UNIT_ALLOCATED) {
      fail('EINVAL', `UnitRefs.of(${ptr}): the unit is not allocated`);
    }
    return (word & kKeptBits) * kPtrScale + (ptr >>> 3);
  }

  /** The user pointer a reference names (whether or not it is still current). */
  pointer(ref: number): number {
    if (!Number.isSafeInteger(ref) || ref < 0)
      fail('EINVAL', `UnitRefs.pointer(${show(ref)}): not a reference`);
    return (ref % kPtrScale) * 8;
  }

  /**
   * True while the referenced unit has not been freed since the reference was taken; false for
   * anything that is not a reference of this arena.
   */
  isCurrent(ref: number): boolean {
    if (!Number.isSafeInteger(ref) || ref < 0) return false;
    const kept = Math.floor(ref / kPtrScale);
    const unit = (ref % kPtrScale) * 8 - 8;
    if ((kept & UNIT_STATE_MASK) !== UNIT_ALLOCATED || unit < this.#pagesBase || unit >= this.#end)
      return false;
    if (!isUnitStart(this.#i32, this.#layout, unit)) return false;
    return ((this.#i32[(unit >> 2) + 1] as number) & kKeptBits) === kept;
  }

  /** The pointer if the reference is current, else 0. */
  deref(ref: number): number {
    return this.isCurrent(ref) ? (ref % kPtrScale) * 8 : 0;
  }

  /**
   * Debug mode: a view of the referenced unit whose every access checks the reference first and
   * throws `ESTALE` once the unit was freed (and maybe reused). Offsets are from the user pointer.
   */
  checked(ref: number): CheckedUnit {
    if (!Number.isSafeInteger(ref) || ref < 0 || !this.isCurrent(ref)) {
      fail('EINVAL', `UnitRefs.checked(${show(ref)}): not a reference to a current unit`);
    }
    const ptr = this.pointer(ref);
    const w = classWord(this.#layout, (this.#i32[(ptr >> 2) - 2] as number) & HINT_CLASS_MASK);
    const objectSize = this.#i32[w + CLS_OBJECT_SIZE] as number;
    const size = objectSize !== 0 ? objectSize : (this.#i32[w + CLS_UNIT_SIZE] as number) - 8;
    return new CheckedUnit(kMadeByUnitRefs, this, ref, size, this.#bytes, this.#view);
  }
}

/** Only `UnitRefs.checked` makes CheckedUnits: it has measured the unit they may touch. */
const kMadeByUnitRefs = Symbol('UnitRefs.checked');

/** A unit seen through a reference that is checked on every access (`UnitRefs.checked`). */
export class CheckedUnit {
  readonly #refs: UnitRefs;
  readonly #ref: number;
  readonly #ptr: number;
  /** Usable bytes of the unit: every access must lie inside them. */
  readonly size: number;
  readonly #bytes: Uint8Array;
  readonly #view: DataView;

  /** Made by `UnitRefs.checked(ref)`; `new CheckedUnit(...)` elsewhere throws `EINVAL`. */
  constructor(token: symbol, refs: UnitRefs, ref: number, size: number, bytes: Uint8Array, view: DataView) {
    if (token !== kMadeByUnitRefs) fail('EINVAL', 'a CheckedUnit comes from UnitRefs.checked(ref)');
    this.#refs = refs;
    this.#ref = ref;
    this.#ptr = refs.pointer(ref);
    this.size = size;
    this.#bytes = bytes;
    this.#view = view;
  }

  getUint8(offset: number): number {
    this.#check(offset, 1);
    return this.#bytes[this.#ptr + offset] as number;
  }

  setUint8(offset: number, value: number): void {
    checkValue(value, 0xff);
    this.#check(offset, 1);
    this.#bytes[this.#ptr + offset] = value;
  }

  getUint32(offset: number): number {
    this.#check(offset, 4);
    return this.#view.getUint32(this.#ptr + offset, true);
  }

  setUint32(offset: number, value: number): void {
    checkValue(value, 0xffffffff);
    this.#check(offset, 4);
    this.#view.setUint32(this.#ptr + offset, value, true);
  }

  /** EINVAL for an access outside the unit, then ESTALE once the unit was freed. */
  #check(offset: number, width: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + width > this.size) {
      fail('EINVAL', `CheckedUnit: ${width} bytes at ${show(offset)} are outside the unit's ${this.size}`);
    }
    if (!this.#refs.isCurrent(this.#ref)) {
      throw new ArenaError('ESTALE', `unit ${this.#ptr}: freed since the reference was taken`);
    }
  }
}

/** EINVAL unless `value` is an integer from 0 to `max` (what the store would otherwise wrap). */
function checkValue(value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    fail('EINVAL', `CheckedUnit: a value must be an integer from 0 to ${max}, got ${show(value)}`);
  }
}
