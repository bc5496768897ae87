/**
 * A simulated kernel direct map over the arena's address range (the fragmentation Aaron Lu
 * measured, https://lore.kernel.org/all/Y2ioTodn+mBXdIqp@ziqianlu-desk2/): the
 * range is mapped by 2 MiB huge mappings; changing the permission of a range that does not cover
 * a whole huge mapping splits that mapping into 512 4 KiB mappings, and a split mapping stays
 * split ("Once a split happened, it remains happened": resetting the permission on free, as
 * VM_FLUSH_RESET_PERMS does, does not merge it back). `DirectMap4k` and `DirectMap2M` are what
 * /proc/meminfo would show for this range (1 GiB mappings are not modelled).
 *
 * ```
 * one word per 2 MiB of the arena:  0 huge, RW+NX   1 huge, RO+X   2 split into 4 KiB mappings
 * ```
 *
 * Who may call: the pack allocator (src/structures/pack.ts) holding its lock, which guards every word here;
 * `stats` may read them without it (aligned 32-bit reads: a recent value).
 */

/** Bytes of one huge mapping (PMD_SIZE on x86-64). */
export const HUGE_BYTES = 2 * 1024 * 1024;
const BASE_BYTES = 4096;

export const Perm = Object.freeze({ RW: 0, ROX: 1 } as const);
export type Perm = (typeof Perm)[keyof typeof Perm];

const HUGE_RW = 0;
const HUGE_ROX = 1;
const SPLIT = 2;

export interface DirectMapStats {
  /** Memory mapped by 4 KiB mappings, in KiB (/proc/meminfo's DirectMap4k). */
  readonly directMap4kKiB: number;
  /** Memory mapped by 2 MiB mappings, in KiB (DirectMap2M). */
  readonly directMap2MKiB: number;
  /** Huge mappings split so far. */
  readonly splits: number;
  /** Permission changes made (set_memory_rox and resets). */
  readonly changes: number;
}

export class DirectMap {
  readonly #i32: Int32Array;
  /** Word of the first mapping's state; the split and change counters come before it. */
  readonly #states: number;
  readonly #splitsWord: number;
  readonly #changesWord: number;
  readonly #mappings: number;

  /** Words the map needs for an arena of `totalBytes`: two counters and one per huge mapping. */
  static words(totalBytes: number): number {
    return 2 + Math.ceil(totalBytes / HUGE_BYTES);
  }

  /** The map whose `words(totalBytes)` words start at word `at` of `i32` (zeroed: all huge, RW). */
  constructor(i32: Int32Array, at: number, totalBytes: number) {
    this.#i32 = i32;
    this.#splitsWord = at;
    this.#changesWord = at + 1;
    this.#states = at + 2;
    this.#mappings = Math.ceil(totalBytes / HUGE_BYTES);
  }

  /**
   * set_memory_rox / the reset on free: the permission of [start, start + bytes), page-aligned.
   * A huge mapping wholly inside the range keeps its size and takes the permission; one the
   * range covers only in part is split (if it is not already).
   */
  setPermission(start: number, bytes: number, perm: Perm): void {
    const i32 = this.#i32;
    const end = start + Math.ceil(bytes / BASE_BYTES) * BASE_BYTES;
    i32[this.#changesWord] = (i32[this.#changesWord] as number) + 1;
    const first = Math.floor(start / HUGE_BYTES);
    const last = Math.min(Math.ceil(end / HUGE_BYTES), this.#mappings);
    for (let m = first; m < last; m++) {
      const word = this.#states + m;
      const state = i32[word] as number;
      if (state === SPLIT) continue;
      const whole = start <= m * HUGE_BYTES && end >= (m + 1) * HUGE_BYTES;
      const target = perm === Perm.ROX ? HUGE_ROX : HUGE_RW;
      if (whole || state === target) {
        Atomics.store(i32, word, target);
      } else {
        Atomics.store(i32, word, SPLIT);
        Atomics.store(i32, this.#splitsWord, (i32[this.#splitsWord] as number) + 1);
      }
    }
  }

  stats(): DirectMapStats {
    const i32 = this.#i32;
    let split = 0;
    for (let m = 0; m < this.#mappings; m++) if (Atomics.load(i32, this.#states + m) === SPLIT) split++;
    const kib = HUGE_BYTES / 1024;
    return {
      directMap4kKiB: split * kib,
      directMap2MKiB: (this.#mappings - split) * kib,
      splits: Atomics.load(i32, this.#splitsWord),
      changes: Atomics.load(i32, this.#changesWord),
    };
  }
}
