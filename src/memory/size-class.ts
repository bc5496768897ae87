/**
 * Size classes, watermarks and prefill, copied from the kernel's kernel/bpf/memalloc.c
 * (sizes[], size_index[], bpf_mem_cache_idx() with the fix
 * https://git.kernel.org/torvalds/c/36024d023d13, and the watermarks of init_refill_work()).
 * Pure functions and immutable tables: any thread may call.
 *
 * A unit is the 8-byte header plus the user bytes, so a request of `size` bytes needs a unit of
 * at least `size + 8` bytes and the largest request the 4096-byte class serves is 4088 bytes
 * (`bpf_mem_alloc_check_size`). Unlike the kernel's `size_index[]` (ordered 96, 192, 16, ...)
 * our class numbers follow the unit size, which changes no mapping.
 */
import { fail, show } from '../shm/errors.js';

/** Bytes of the unit header: link / owner hint, generation + state. */
export const UNIT_HEADER_BYTES = 8;

/** Unit sizes of the 11 general classes, header included (the kernel's `sizes[]`, sorted). */
export const CLASS_UNIT_SIZES: readonly number[] = Object.freeze([
  16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096,
]);

/** Number of general size classes (the kernel's NUM_CACHES). */
export const GENERAL_CLASS_COUNT = CLASS_UNIT_SIZES.length;

/** Largest unit of a general class (BPF_MEM_ALLOC_SIZE_MAX). */
export const MAX_UNIT_BYTES = 4096;

/** Largest request `alloc(size)` accepts: 4096 - 8. */
export const MAX_ALLOC_BYTES = MAX_UNIT_BYTES - UNIT_HEADER_BYTES;

/**
 * `SIZE_TO_CLASS[(size + 15) >>> 3]` is the class of a request of `size` bytes (1..4088): the
 * index is the unit size in 8-byte steps, rounded up. One load on the fast path, no branches.
 */
export const SIZE_TO_CLASS: Uint8Array = (() => {
  const table = new Uint8Array((MAX_UNIT_BYTES >>> 3) + 1);
  let cls = 0;
  for (let eighths = 0; eighths < table.length; eighths++) {
    while ((CLASS_UNIT_SIZES[cls] as number) < eighths * 8) cls++;
    table[eighths] = cls;
  }
  return table;
})();

/** The class of a request of `size` user bytes, or -1 when no general class serves it. */
export function classOfSize(size: number): number {
  if (!Number.isInteger(size) || size < 1 || size > MAX_ALLOC_BYTES) return -1;
  return SIZE_TO_CLASS[(size + 15) >>> 3] as number;
}

/** Watermarks and refill batch of one cache (struct bpf_mem_cache: low/high_watermark, batch). */
export interface Watermarks {
  /** Below this many free units, the cache refills one batch. */
  readonly low: number;
  /** Above this many free units, the cache trims to (low + high) / 2. */
  readonly high: number;
  /** Units moved by one refill. */
  readonly batch: number;
  /** Units put in the cache when its CPU comes online. */
  readonly prefill: number;
}

/**
 * The kernel's formula (init_refill_work, "bpf: Adjust low/high watermarks in bpf_mem_cache"):
 * units up to 256 bytes keep 32/96; larger ones scale down with the unit size.
 */
export function watermarksFor(unitSize: number): Watermarks {
  if (!Number.isInteger(unitSize) || unitSize < 1 || unitSize > 1 << 30) {
    fail('EINVAL', `watermarksFor: unitSize must be an integer from 1 to 2^30, got ${show(unitSize)}`);
  }
  let low: number;
  let high: number;
  if (unitSize <= 256) {
    low = 32;
    high = 96;
  } else {
    low = Math.max(Math.trunc((32 * 256) / unitSize), 1);
    high = Math.max(Math.trunc((96 * 256) / unitSize), 3);
  }
  const batch = Math.max(Math.trunc((high - low) / 4) * 3, 1);
  // "assume that 1st run of bpf prog won't be doing more than 4 map_update_elem from irq disabled region"
  const prefill = unitSize <= 256 ? 4 : 1;
  return { low, high, batch, prefill };
}

/** Free units a trimmed cache keeps: free_bulk's `(high_watermark + low_watermark) / 2`. */
export function trimTarget(w: Watermarks): number {
  return Math.trunc((w.high + w.low) / 2);
}

/**
 * Unit size of a fixed-size cache (`bpf_mem_cache_alloc`) for objects of `objectSize` bytes:
 * the object plus the header, rounded up to 8 so that every user pointer is 8-byte aligned
 * (the kernel leaves the rounding to kmalloc).
 */
export function fixedUnitSize(objectSize: number): number {
  if (!Number.isInteger(objectSize) || objectSize < 1 || objectSize > 1 << 30) {
    fail('EINVAL', `fixedUnitSize: objectSize must be an integer from 1 to 2^30, got ${show(objectSize)}`);
  }
  return (objectSize + UNIT_HEADER_BYTES + 7) & ~7;
}
