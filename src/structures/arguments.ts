/**
 * Argument checks the arena's structures share (the hash map, the qp-trie, the pack allocator,
 * the shared map): each failure is an `ArenaError` `EINVAL` whose message names the structure
 * and the option, thrown before anything is changed. Also the chain those structures join so
 * that crash recovery finds their locks.
 *
 * Who may call: anyone; pure functions.
 */
import type { Arena } from '../arena/arena.js';
import type { SharedArena } from '../cpu/cpu.js';
import { fail } from '../shm/errors.js';
import { PAGE_BYTES } from '../shm/layout.js';

/** `value` if it is an integer from `min` to `max`; else EINVAL naming `owner` and `name`. */
export function checkInteger(owner: string, name: string, value: unknown, min: number, max: number): number {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
    fail('EINVAL', `${owner}: ${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value as number;
}

/** The SharedArrayBuffer of an `Arena` or of its `shared` object; else EINVAL naming `owner`. */
export function arenaBuffer(arena: Arena | SharedArena, owner: string): SharedArrayBuffer {
  const buffer = (arena as { shared?: SharedArena })?.shared?.buffer ?? (arena as SharedArena)?.buffer;
  if (!(buffer instanceof SharedArrayBuffer)) fail('EINVAL', `${owner} needs an arena (or arena.shared)`);
  return buffer;
}

/**
 * `ref` if it names a structure with header word 0 `magic` in `i32`'s arena (a page-aligned
 * offset inside it); else EINVAL: "`call`: ref is not a `what` of this arena".
 */
export function checkStructureRef(
  i32: Int32Array,
  ref: unknown,
  magic: number,
  call: string,
  what: string,
): number {
  if (
    !Number.isInteger(ref) ||
    (ref as number) <= 0 ||
    (ref as number) % PAGE_BYTES !== 0 ||
    (ref as number) >= i32.byteLength ||
    Atomics.load(i32, (ref as number) >> 2) !== magic
  ) {
    fail('EINVAL', `${call}: ${String(ref)} is not a ${what} of this arena`);
  }
  return ref as number;
}

/**
 * Pushes structure `region` onto the chain whose head is header word `chain` (X_MAP_CHAIN,
 * X_PACK_CHAIN, X_TRIE_CHAIN), linking the previous head in its word `next`: a CAS push, since
 * structures may be created on any thread; crash recovery walks the chain. Call it once the
 * structure is fully initialised: it is never unlinked.
 */
export function joinChain(i32: Int32Array, chain: number, region: number, next: number): void {
  for (let head = Atomics.load(i32, chain); ; ) {
    i32[(region >> 2) + next] = head;
    const seen = Atomics.compareExchange(i32, chain, head, region);
    if (seen === head) return;
    head = seen;
  }
}
