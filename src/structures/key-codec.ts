/**
 * The shared map's key codec: a string key (UTF-8) or a byte key written into one scratch
 * buffer that the handle reuses for every call, zero-padded to a whole word, and hashed over its
 * own words only — no allocation on the `get` / `has` path, and a lookup that touches only the
 * key's bytes (a 5-byte key hashes and compares 2 words, not `maxKeyBytes`).
 *
 * Strings are encoded by a loop rather than `TextEncoder.encodeInto`, which returns a fresh
 * `{ read, written }` object per call; the loop also rejects ill-formed strings (a lone
 * surrogate), which `TextEncoder` would silently turn into U+FFFD — two different keys would
 * then be one.
 *
 * ```
 * meta word: | key length (16 bits) | kind << 16 (1 string, 2 bytes) |
 * scratch:   | key bytes | zero bytes up to the next multiple of 4 |
 * ```
 *
 * Who may call: the thread owning the handle the codec belongs to (it is per-handle state).
 * Shared words: none; `keyEquals` reads an entry's key words plainly, which a published entry
 * never changes (src/shared-table.ts).
 */
import { fail } from '../shm/errors.js';

export const KEY_STRING = 1;
export const KEY_BYTES = 2;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Bytes `n` rounded up to a whole 32-bit word. */
export const round4 = (n: number): number => (n + 3) & ~3;

export class KeyCodec {
  readonly maxKeyBytes: number;
  /** The current key's bytes, zero-padded to a word (valid after `load`). */
  readonly bytes: Uint8Array;
  readonly words: Int32Array;
  /** Length in bytes, kind and meta word (length | kind << 16) of the current key. */
  length = 0;
  meta = 0;
  /** murmur3 of the current key's words, its length and kind. */
  hash = 0;
  readonly #seed: number;

  constructor(maxKeyBytes: number, seed: number) {
    this.maxKeyBytes = maxKeyBytes;
    this.#seed = seed | 0;
    this.words = new Int32Array(round4(maxKeyBytes + 4) >> 2);
    this.bytes = new Uint8Array(this.words.buffer);
  }

  /** Encodes `key` into the scratch buffer and hashes it. Throws `EINVAL` for a bad key. */
  load(key: unknown): void {
    let n: number;
    let kind: number;
    if (typeof key === 'string') {
      n = this.#encodeString(key);
      kind = KEY_STRING;
    } else if (key instanceof Uint8Array) {
      n = key.length;
      this.#checkLength(n);
      const out = this.bytes;
      if (n <= 32) for (let i = 0; i < n; i++) out[i] = key[i] as number;
      else out.set(key);
      kind = KEY_BYTES;
    } else {
      fail(
        'EINVAL',
        `SharedMap: a key must be a string or a Uint8Array, got ${key === null ? 'null' : typeof key}`,
      );
    }
    const out = this.bytes;
    for (let i = n; (i & 3) !== 0; i++) out[i] = 0;
    this.length = n;
    this.meta = n | (kind << 16);
    this.hash = this.#hashWords((n + 3) >> 2);
  }

  /** Whether the entry key at byte offset `at` of `i32` (meta word `meta`) is the current key. */
  keyEquals(i32: Int32Array, at: number): boolean {
    const words = this.words;
    const w = at >> 2;
    for (let i = 0, n = (this.length + 3) >> 2; i < n; i++) if (i32[w + i] !== words[i]) return false;
    return true;
  }

  /** Writes the current key (padded) at byte offset `at` of `i32`. */
  storeKey(i32: Int32Array, at: number): void {
    const words = this.words;
    const w = at >> 2;
    for (let i = 0, n = (this.length + 3) >> 2; i < n; i++) i32[w + i] = words[i] as number;
  }

  #checkLength(n: number): void {
    if (n < 1 || n > this.maxKeyBytes) {
      fail('EINVAL', `SharedMap: a key must take 1 to ${this.maxKeyBytes} bytes, this one takes ${n}`);
    }
  }

  /** UTF-8 of `s` into the scratch buffer; its length. */
  #encodeString(s: string): number {
    const out = this.bytes;
    const max = this.maxKeyBytes;
    const units = s.length;
    if (units === 0 || units > max) this.#checkLength(units === 0 ? 0 : encoder.encode(s).length);
    let n = 0;
    for (let i = 0; i < units; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) {
        if (n >= max) this.#tooLong(s);
        out[n++] = c;
        continue;
      }
      if (c < 0x800) {
        if (n + 2 > max) this.#tooLong(s);
        out[n++] = 0xc0 | (c >> 6);
        out[n++] = 0x80 | (c & 0x3f);
        continue;
      }
      if (c >= 0xd800 && c <= 0xdfff) {
        const d = i + 1 < units ? s.charCodeAt(i + 1) : 0;
        if (c >= 0xdc00 || d < 0xdc00 || d > 0xdfff) {
          fail('EINVAL', `SharedMap: the key has a lone surrogate at index ${i} (not well-formed UTF-16)`);
        }
        c = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
        i++;
        if (n + 4 > max) this.#tooLong(s);
        out[n++] = 0xf0 | (c >> 18);
        out[n++] = 0x80 | ((c >> 12) & 0x3f);
        out[n++] = 0x80 | ((c >> 6) & 0x3f);
        out[n++] = 0x80 | (c & 0x3f);
        continue;
      }
      if (n + 3 > max) this.#tooLong(s);
      out[n++] = 0xe0 | (c >> 12);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
      out[n++] = 0x80 | (c & 0x3f);
    }
    return n;
  }

  #tooLong(s: string): never {
    fail(
      'EINVAL',
      `SharedMap: a key must take 1 to ${this.maxKeyBytes} bytes, this one takes ${encoder.encode(s).length}`,
    );
  }

  /** murmur3 (32-bit) over `n` words, finished with the length and kind. */
  #hashWords(n: number): number {
    const words = this.words;
    let h = this.#seed;
    for (let i = 0; i < n; i++) {
      let k = Math.imul(words[i] as number, 0xcc9e2d51);
      k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
      h ^= k;
      h = (Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) | 0;
    }
    h ^= this.meta;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return h ^ (h >>> 16);
  }
}

/** The key stored at byte `at` of `bytes` with meta word `meta`, as the caller gave it. */
export function decodeKey(bytes: Uint8Array, at: number, meta: number): string | Uint8Array {
  const copy = bytes.slice(at, at + (meta & 0xffff));
  return meta >>> 16 === KEY_STRING ? decoder.decode(copy) : copy;
}
