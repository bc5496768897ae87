/**
 * Ref-counted objects in the arena, the `bpf_cpumask` shape (kernel/bpf/cpumask.c; made RCU-safe
 * by 77473d1a962f, https://git.kernel.org/torvalds/c/77473d1a962f): an object is a
 * unit whose first word counts references; `create` starts it at 1, `acquire` is the kernel's
 * `kptr_get` — increment only a non-zero count, so an object already on its way to the allocator
 * is never revived — and `release` decrements and frees the unit at zero through the allocator,
 * whose policy decides when it may be handed out again.
 *
 * The trap the lab measures (src/lab/scenarios/torture.ts, structure 'refcount'): a reader that found
 * an object through a shared pointer and acquires it after the object was freed and its unit
 * handed out again as a new object sees a non-zero count and succeeds — it now holds a different
 * object. `acquire` is only safe inside a read-side section under a policy that reuses units
 * after a grace period (or with `freeRcu`-style release).
 *
 * ```
 *  object: | count (Atomics) | pad | payload … |      ptr + REF_PAYLOAD_OFFSET = payload
 * ```
 *
 * Who may call: the thread of the CPU handle the `RefCounts` was made with (its `free`). Shared
 * words: the count word of each object (Atomics only); the payload is the caller's.
 */
import type { CpuHandle } from '../cpu/cpu.js';
import { fail, show } from '../shm/errors.js';
import { readLayout } from '../shm/layout.js';
import type { Pointer } from '../shm/refs.js';
import { checkCpu } from './arguments.js';

/** Bytes before an object's payload: the count word and a pad word. */
export const REF_PAYLOAD_OFFSET = 8;

export class RefCounts {
  readonly #cpu: CpuHandle;
  readonly #i32: Int32Array;
  readonly #pagesBase: number;
  readonly #end: number;

  /** Reference-counted objects allocated and freed through `cpu`. Throws `EINVAL` for a non-handle. */
  constructor(cpu: CpuHandle) {
    checkCpu(cpu, 'new RefCounts');
    this.#cpu = cpu;
    this.#i32 = cpu.i32;
    const layout = readLayout(cpu.i32);
    this.#pagesBase = layout.pagesBase;
    this.#end = layout.totalBytes;
  }

  /** A new object with `payloadBytes` of payload and one reference, or 0 when memory is exhausted. */
  create(payloadBytes: number): number {
    if (!Number.isInteger(payloadBytes) || payloadBytes < 0) return 0;
    const ptr = this.#cpu.alloc(REF_PAYLOAD_OFFSET + payloadBytes);
    if (ptr !== 0) Atomics.store(this.#i32, ptr >> 2, 1);
    return ptr;
  }

  /** kptr_get: takes a reference if the count is not zero; false if the object is being freed. */
  acquire(ptr: number): boolean {
    this.#checkPointer(ptr, 'acquire');
    const i32 = this.#i32;
    const word = ptr >> 2;
    for (let count = Atomics.load(i32, word); count > 0; ) {
      const seen = Atomics.compareExchange(i32, word, count, count + 1);
      if (seen === count) return true;
      count = seen;
    }
    return false;
  }

  /** Drops a reference; the last one frees the object through the allocator. */
  release(ptr: number): void {
    this.#checkPointer(ptr, 'release');
    // usableSize throws EINVAL for a unit that is not allocated; a count of 0 is an extra release.
    this.#cpu.usableSize(ptr as Pointer);
    if (Atomics.load(this.#i32, ptr >> 2) <= 0)
      fail('EINVAL', `RefCounts.release(${ptr}): no reference is held`);
    if (Atomics.sub(this.#i32, ptr >> 2, 1) === 1) this.#cpu.free(ptr as Pointer);
  }

  /** The count now (a snapshot). */
  count(ptr: number): number {
    this.#checkPointer(ptr, 'count');
    return Atomics.load(this.#i32, ptr >> 2);
  }

  /**
   * EINVAL unless `ptr` could be an object's pointer: an 8-aligned integer in the page region.
   * Not whether it is allocated: `acquire` is called on objects that may be being freed.
   */
  #checkPointer(ptr: number, call: string): void {
    this.#cpu.ensureUsable(`RefCounts.${call}`);
    if (
      typeof ptr !== 'number' ||
      (ptr | 0) !== ptr ||
      (ptr & 7) !== 0 ||
      ptr - 8 < this.#pagesBase ||
      ptr + 8 > this.#end
    ) {
      fail('EINVAL', `RefCounts.${call}(${show(ptr)}): not an object pointer of this arena`);
    }
  }
}
