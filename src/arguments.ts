/**
 * Argument checks the arena's structures share (the hash map, the qp-trie, the pack allocator,
 * the shared map): each failure is an `ArenaError` `EINVAL` whose message names the structure
 * and the option, thrown before anything is changed. Also the chain those structures join so
 * that crash recovery finds their locks.
 *
 * Who may call: anyone; pure functions.
 */
import type { Arena } from './arena.js';
import { CpuHandle, type SharedArena } from './cpu.js';
import { fail, show } from './errors.js';
import { PAGE_BYTES, X_CLOSED } from './layout.js';

/** `value` if it is an integer from `min` to `max`; else EINVAL naming `owner` and `name`. */
export function checkInteger(owner: string, name: string, value: unknown, min: number, max: number): number {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
    fail('EINVAL', `${owner}: ${name} must be an integer from ${min} to ${max}, got ${show(value)}`);
  }
  return value as number;
}

/**
 * The SharedArrayBuffer of an open `Arena` or of its `shared` object; EINVAL naming `owner` for
 * anything else, ECLOSED once the arena is closed (nothing may be created in it then).
 */
export function arenaBuffer(arena: Arena | SharedArena, owner: string): SharedArrayBuffer {
  const buffer = (arena as { shared?: SharedArena })?.shared?.buffer ?? (arena as SharedArena)?.buffer;
  if (!(buffer instanceof SharedArrayBuffer)) fail('EINVAL', `${owner} needs an arena (or arena.shared)`);
  if (buffer.byteLength >= 4 * (X_CLOSED + 1)) checkArenaOpen(new Int32Array(buffer), owner);
  return buffer;
}

/** A lone surrogate: what `TextEncoder` would silently replace with U+FFFD. */
const kLoneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** EINVAL, naming `call` and `what`, for a string that UTF-8 cannot carry (a lone surrogate). */
export function checkWellFormed(text: string, call: string, what: string): void {
  const wellFormed =
    typeof (text as { isWellFormed?: () => boolean }).isWellFormed === 'function'
      ? (text as unknown as { isWellFormed: () => boolean }).isWellFormed()
      : !kLoneSurrogate.test(text);
  if (!wellFormed) fail('EINVAL', `${call}: the ${what} is not well-formed UTF-16 (a lone surrogate)`);
}

/** Throws ECLOSED, naming `call`, once the arena of `i32` is closed. */
export function checkArenaOpen(i32: Int32Array, call: string): void {
  // A plain read: X_CLOSED is written once, by close(); a stale 0 is a call that ran before it.
  if ((i32[X_CLOSED] as number) !== 0) fail('ECLOSED', `${call}: the arena is closed`);
}

/** `cpu` if it is a CPU handle usable now (see `CpuHandle.ensureUsable`); else EINVAL / ECLOSED. */
export function checkCpu(cpu: unknown, call: string): CpuHandle {
  if (!(cpu instanceof CpuHandle)) fail('EINVAL', `${call} needs a CPU handle (attach(shared, cpu))`);
  cpu.ensureUsable(call);
  return cpu;
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
    fail('EINVAL', `${call}: ${show(ref)} is not a ${what} of this arena`);
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
