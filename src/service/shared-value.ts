/**
 * Where a shared-map value lives and how it is encoded. A value is bytes, a string (UTF-8) or
 * JSON text; its bytes go into the entry's own unit after the key, and — when one unit would
 * waste most of a size class — partly into a second, "tail" unit: the split that needs the
 * fewest unit bytes wins. A 1 KiB value with a 16-byte key takes a 1024-byte entry unit and a
 * 64-byte tail (1088 bytes, 1.05x) instead of a 2048-byte unit (the unit's 8-byte header makes
 * 1024 bytes of value never fit the 1024 class). Values above a unit (4088 bytes) go whole into
 * a pack block (64-byte chunks).
 *
 * Who may call: any thread (pure functions and module constants).
 */

import { CLASS_UNIT_SIZES, MAX_ALLOC_BYTES, SIZE_TO_CLASS, UNIT_HEADER_BYTES } from '../memory/size-class.js';
import { fail } from '../shm/errors.js';

export const VALUE_BYTES = 0;
export const VALUE_STRING = 1;
export const VALUE_JSON = 2;
/** Value meta bit: the value is in a pack block (E_TAIL), none of it in the entry. */
export const IN_PACK = 1;
/** The pack allocator's chunk (src/pack.ts): what a block's bytes are rounded to. */
const PACK_CHUNK = 64;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Bytes of the unit that serves a request of `bytes` (1..4088). */
export function unitBytes(bytes: number): number {
  return CLASS_UNIT_SIZES[SIZE_TO_CLASS[(bytes + 15) >>> 3] as number] as number;
}

/**
 * Value bytes to keep in the entry for a value of `n` bytes after `base` bytes of header and
 * key (n ≤ MAX_ALLOC_BYTES): `n` when one unit is the cheapest, else the head of a split whose
 * entry unit is full and whose tail takes the rest.
 */
export function planHead(base: number, n: number): number {
  if (base + n <= MAX_ALLOC_BYTES && n === 0) return 0;
  let best = base + n <= MAX_ALLOC_BYTES ? n : -1;
  let bestBytes = best >= 0 ? unitBytes(base + n) : Number.POSITIVE_INFINITY;
  for (const unit of CLASS_UNIT_SIZES) {
    const head = unit - UNIT_HEADER_BYTES - base;
    if (head <= 0 || head >= n) continue;
    const total = unit + unitBytes(n - head);
    if (total < bestBytes) {
      bestBytes = total;
      best = head;
    }
  }
  return best;
}

/** Bytes an entry holds: its unit, its tail unit or its pack block (rounded to chunks). */
export function chargedBytes(base: number, head: number, n: number, inPack: boolean): number {
  if (inPack) return unitBytes(base) + Math.ceil(n / PACK_CHUNK) * PACK_CHUNK;
  return unitBytes(base + head) + (head < n ? unitBytes(n - head) : 0);
}

/** The bytes and kind of `value`; throws `EINVAL` for one that cannot be stored or is too long. */
export function encodeValue(value: unknown, maxValueBytes: number): [Uint8Array, number] {
  let bytes: Uint8Array;
  let kind: number;
  if (value instanceof Uint8Array) {
    bytes = value;
    kind = VALUE_BYTES;
  } else if (typeof value === 'string') {
    // String.prototype.isWellFormed (Node 20; typed only in the ES2024 lib).
    if (!(value as unknown as { isWellFormed(): boolean }).isWellFormed())
      fail('EINVAL', 'SharedMap: the value has a lone surrogate (not well-formed UTF-16)');
    bytes = encoder.encode(value);
    kind = VALUE_STRING;
  } else {
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch (error) {
      fail('EINVAL', `SharedMap: the value cannot be encoded as JSON (${(error as Error).message})`);
    }
    if (text === undefined) fail('EINVAL', `SharedMap: a value of type ${typeof value} cannot be stored`);
    bytes = encoder.encode(text);
    kind = VALUE_JSON;
  }
  if (bytes.length > maxValueBytes) {
    fail(
      'EINVAL',
      `SharedMap: the value takes ${bytes.length} bytes, more than maxValueBytes (${maxValueBytes})`,
    );
  }
  return [bytes, kind];
}

/** The value a copy of its bytes stands for: the bytes, the string, or the parsed JSON. */
export function decodeValue(copy: Uint8Array, kind: number): unknown {
  if (kind === VALUE_BYTES) return copy;
  const text = decoder.decode(copy);
  return kind === VALUE_STRING ? text : JSON.parse(text);
}

/** Copies `n` bytes of `source` from `from` into `target` at `offset` (a loop for short runs: cheaper than a native call). */
export function copyBytes(
  source: Uint8Array,
  from: number,
  n: number,
  target: Uint8Array,
  offset: number,
): void {
  if (n <= 32) {
    for (let i = 0; i < n; i++) target[offset + i] = source[from + i] as number;
  } else {
    target.set(source.subarray(from, from + n), offset);
  }
}
