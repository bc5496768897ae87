/**
 * The qp-trie's nodes (src/structures/qp-trie.ts): their words, the nibble a branch tests, and the builders
 * of the copy-on-write updates — a branch with one more child, one fewer, or a new two-way branch.
 * A builder writes only the node it allocated, before the caller publishes it.
 *
 * ```
 * branch at ptr:  | version | bitmap (bit 17 set) | nibble index | 0 | entries: (child ptr, child version) × popcount |
 * leaf at ptr:    | version | 0                   | key length   | value length | key (rounded to 8) | value |
 * ```
 *
 * Who may call: the trie's writer, holding its lock. Shared words: the new node's, unpublished.
 */

/** Node words. */
export const N_VERSION = 0;
/** The unit header word before a node (src/cpu/cpu.ts): generation << 2 | state. */
export const GENERATION_WORD = -1;
/** A branch's bitmap with BRANCH set; 0 for a leaf. */
export const N_BITMAP = 1;
/** A branch's nibble index; a leaf's key length. */
export const N_INDEX = 2;
export const N_VALUE_LENGTH = 3;
export const N_ENTRIES = 4;
export const NODE_HEADER = 16;
export const BRANCH = 1 << 17;
export const NIBBLES = 17;

/** What the builders need from the trie: its words, a node allocator, where versions live. */
export interface NodeBuilder {
  readonly i32: Int32Array;
  /** A unit for a new node with its version in place, or 0 when memory is out. */
  alloc(bytes: number): number;
  /** Word offset of a node's version from its pointer's word (N_VERSION or GENERATION_WORD). */
  readonly versionAt: number;
}

/** Nibble `i` of a key as a branch tests it: 0 past the key's end, else 1 + the nibble's value. */
export function nibbleOf(key: Uint8Array, length: number, i: number): number {
  if (i >= length << 1) return 0;
  const byte = key[i >> 1] as number;
  return 1 + ((i & 1) === 0 ? byte >>> 4 : byte & 15);
}

export function popcount(x: number): number {
  let v = x - ((x >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) | 0;
}

/** A copy of `branch` with an entry for `leaf` at nibble `nib` added. */
export function branchWith(nb: NodeBuilder, branch: number, nib: number, leaf: number): number {
  const i32 = nb.i32;
  const b = branch >> 2;
  const bitmap = (i32[b + N_BITMAP] as number) & ~BRANCH;
  const children = popcount(bitmap);
  const copy = nb.alloc(NODE_HEADER + 8 * (children + 1));
  if (copy === 0) return 0;
  const c = copy >> 2;
  const at = popcount(bitmap & ((1 << nib) - 1));
  i32[c + N_BITMAP] = bitmap | (1 << nib) | BRANCH;
  i32[c + N_INDEX] = i32[b + N_INDEX] as number;
  i32[c + N_VALUE_LENGTH] = 0;
  for (let k = 0, from = 0; k <= children; k++) {
    const e = c + N_ENTRIES + 2 * k;
    if (k === at) {
      i32[e] = leaf;
      i32[e + 1] = i32[(leaf >> 2) + nb.versionAt] as number;
    } else {
      i32[e] = i32[b + N_ENTRIES + 2 * from] as number;
      i32[e + 1] = i32[b + N_ENTRIES + 2 * from + 1] as number;
      from++;
    }
  }
  return copy;
}

/** A copy of `branch` without its entry at nibble `nib`. */
export function branchWithout(nb: NodeBuilder, branch: number, nib: number): number {
  const i32 = nb.i32;
  const b = branch >> 2;
  const bitmap = (i32[b + N_BITMAP] as number) & ~BRANCH;
  const children = popcount(bitmap);
  const copy = nb.alloc(NODE_HEADER + 8 * (children - 1));
  if (copy === 0) return 0;
  const c = copy >> 2;
  const skip = popcount(bitmap & ((1 << nib) - 1));
  i32[c + N_BITMAP] = (bitmap & ~(1 << nib)) | BRANCH;
  i32[c + N_INDEX] = i32[b + N_INDEX] as number;
  i32[c + N_VALUE_LENGTH] = 0;
  for (let k = 0, to = 0; k < children; k++) {
    if (k === skip) continue;
    i32[c + N_ENTRIES + 2 * to] = i32[b + N_ENTRIES + 2 * k] as number;
    i32[c + N_ENTRIES + 2 * to + 1] = i32[b + N_ENTRIES + 2 * k + 1] as number;
    to++;
  }
  return copy;
}

/** A branch testing nibble `index` over the node in `entry` (nibble `otherNib`) and `leaf`. */
export function twoWayBranch(
  nb: NodeBuilder,
  entry: number,
  index: number,
  nib: number,
  leaf: number,
  otherNib: number,
): number {
  const i32 = nb.i32;
  const branch = nb.alloc(NODE_HEADER + 16);
  if (branch === 0) return 0;
  const b = branch >> 2;
  i32[b + N_BITMAP] = (1 << nib) | (1 << otherNib) | BRANCH;
  i32[b + N_INDEX] = index;
  i32[b + N_VALUE_LENGTH] = 0;
  const leafFirst = nib < otherNib ? 0 : 2;
  const otherAt = 2 - leafFirst;
  i32[b + N_ENTRIES + leafFirst] = leaf;
  i32[b + N_ENTRIES + leafFirst + 1] = i32[(leaf >> 2) + nb.versionAt] as number;
  i32[b + N_ENTRIES + otherAt] = i32[entry] as number;
  i32[b + N_ENTRIES + otherAt + 1] = i32[entry + 1] as number;
  return branch;
}
