/**
 * Argument checks the arena's structures share (the hash map, the qp-trie, the pack allocator,
 * the shared map): each failure is an `ArenaError` `EINVAL` whose message names the structure
 * and the option, thrown before anything is changed.
 *
 * Who may call: anyone; pure functions.
 */
import { CpuHandle } from '../cpu/cpu.js';
import { fail, show } from '../shm/errors.js';
import { PAGE_BYTES } from '../shm/layout.js';

/** `value` if it is an integer from `min` to `max`; else EINVAL naming `owner` and `name`. */
export function checkInteger(owner: string, name: string, value: unknown, min: number, max: number): number {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
    fail('EINVAL', `${owner}: ${name} must be an integer from ${min} to ${max}, got ${show(value)}`);
  }
  return value as number;
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
