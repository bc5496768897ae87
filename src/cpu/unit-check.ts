/**
 * The pointer check of `free`, `freeRcu` and `usableSize` for both kinds of CPU handle
 * (src/cpu/cpu.ts lists, src/cpu/sheaf.ts sheaves): is `ptr` the user pointer of a unit that is
 * allocated right now?
 *
 * Who may call: the thread that owns the CPU freeing `ptr`. It reads, without atomics, the
 * unit-start map (written when a span is carved or released, before any of its units is handed
 * out, and published by the slab mutex the caller's allocation went through) and the unit's own
 * header, which belongs to whoever holds the unit: the caller, if the free is legitimate; a
 * wrong answer for a unit the caller does not hold is a misuse reported as EINVAL, never a
 * state change. It writes nothing.
 */
import { ArenaError, show } from '../shm/errors.js';
import { UNIT_DEFERRED, UNIT_FREE, UNIT_STATE_MASK } from '../shm/layout.js';

/**
 * Word index of the header of the allocated unit whose user pointer is `ptr`, or throws
 * EINVAL. O(1): the unit-start map says whether a unit begins there (so the header is genuine,
 * not user bytes), then the header's state must be ALLOCATED. `pagesBase`..`pagesEnd` are the
 * arena's unit bytes and `unitMap` the map's first word (the caller's copies of the layout).
 */
export function allocatedHeader(
  i32: Int32Array,
  pagesBase: number,
  pagesEnd: number,
  unitMap: number,
  ptr: number,
): number {
  // The type first: a string '4104' would subtract fine, a Symbol would throw a TypeError.
  if (typeof ptr !== 'number') notAUnit(ptr);
  const unit = ptr - 8;
  if ((ptr | 0) !== ptr || unit < pagesBase || unit >= pagesEnd) notAUnit(ptr);
  // Literal: UNIT_MAP_SHIFT 8 (one map word per 256 bytes, one bit per 8; checked with the
  // fast-path literals of src/cpu/cpu.ts).
  const bits = i32[unitMap + ((unit - pagesBase) >> 8)] as number;
  if ((bits & (1 << ((unit - pagesBase) >> 3))) === 0 || (unit & 7) !== 0) notAUnit(ptr);
  const h = unit >> 2;
  const word = i32[h + 1] as number;
  // Literals: UNIT_STATE_MASK 3, UNIT_ALLOCATED 1.
  if ((word & 3) !== 1) notAllocated(ptr, word);
  return h;
}

function notAUnit(ptr: unknown): never {
  throw new ArenaError('EINVAL', `free(${show(ptr)}): not a pointer to a unit of this arena`);
}

function notAllocated(ptr: number, word: number): never {
  const state = word & UNIT_STATE_MASK;
  throw new ArenaError(
    'EINVAL',
    state === UNIT_FREE || state === UNIT_DEFERRED
      ? `free(${ptr}): double free (the unit is already free)`
      : `free(${ptr}): not an allocated unit`,
  );
}
