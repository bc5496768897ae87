/**
 * A bounded multi-producer multi-consumer queue of (pointer, tag) pairs on its own
 * SharedArrayBuffer (Dmitry Vyukov's bounded MPMC queue): one CAS per push or pop, no locks.
 * CPUs use it to hand units to each other (cross-CPU frees in the stress test, the demo and
 * the xmalloc benchmark).
 *
 * Who may call: any thread holding the queue's buffer.
 * Shared words: the enqueue and dequeue positions (each on its own cache line) and every cell's
 * sequence word, all through Atomics. A cell's payload is written with plain stores by the
 * producer that won its position and published by the Atomics store of the cell's sequence;
 * the consumer reads the payload only after it has seen that sequence, so the plain accesses
 * are ordered.
 */
import { fail, show } from '../shm/errors.js';

const ENQUEUE_POS = 0;
const DEQUEUE_POS = 16;
const CELLS = 32;
const CELL_WORDS = 4;
const CELL_SEQ = 0;
const CELL_PTR = 1;
const CELL_TAG = 2;

export class PointerQueue {
  /** The buffer to hand to other threads; `new PointerQueue(buffer)` there. */
  readonly buffer: SharedArrayBuffer;
  readonly #i32: Int32Array;
  readonly #mask: number;
  /** Tag of the pair the last successful `pop` returned. */
  lastTag = 0;

  /** Creates a queue of `capacity` pairs (a power of two), or opens one from its buffer. */
  constructor(capacityOrBuffer: number | SharedArrayBuffer) {
    if (typeof capacityOrBuffer === 'number') {
      const capacity = capacityOrBuffer;
      if (
        !Number.isInteger(capacity) ||
        capacity < 2 ||
        (capacity & (capacity - 1)) !== 0 ||
        capacity > 1 << 24
      ) {
        fail('EINVAL', `PointerQueue capacity must be a power of two from 2 to 2^24, got ${show(capacity)}`);
      }
      this.buffer = new SharedArrayBuffer((CELLS + capacity * CELL_WORDS) * 4);
      this.#i32 = new Int32Array(this.buffer);
      for (let k = 0; k < capacity; k++) this.#i32[CELLS + k * CELL_WORDS + CELL_SEQ] = k;
    } else {
      if (!(capacityOrBuffer instanceof SharedArrayBuffer)) {
        fail('EINVAL', 'new PointerQueue(x) needs a capacity or the buffer of a PointerQueue');
      }
      this.buffer = capacityOrBuffer;
      this.#i32 = new Int32Array(this.buffer);
    }
    const capacity = (this.#i32.length - CELLS) / CELL_WORDS;
    if (!Number.isInteger(capacity) || capacity < 2 || (capacity & (capacity - 1)) !== 0) {
      fail('EINVAL', 'PointerQueue: the buffer is not the buffer of a PointerQueue');
    }
    this.#mask = capacity - 1;
  }

  /** Appends (ptr, tag); false when the queue is full. */
  push(ptr: number, tag = 0): boolean {
    if (typeof ptr !== 'number' || typeof tag !== 'number' || (ptr | 0) !== ptr || (tag | 0) !== tag) {
      fail(
        'EINVAL',
        `PointerQueue.push: ptr and tag must be 32-bit integers, got ${show(ptr)}, ${show(tag)}`,
      );
    }
    const i32 = this.#i32;
    let pos = Atomics.load(i32, ENQUEUE_POS);
    for (;;) {
      const cell = CELLS + (pos & this.#mask) * CELL_WORDS;
      // Positions wrap at 2^32; the difference is taken modulo 2^32 as a signed number.
      const diff = (Atomics.load(i32, cell + CELL_SEQ) - pos) | 0;
      if (diff === 0) {
        if (Atomics.compareExchange(i32, ENQUEUE_POS, pos, (pos + 1) | 0) === pos) {
          i32[cell + CELL_PTR] = ptr;
          i32[cell + CELL_TAG] = tag;
          Atomics.store(i32, cell + CELL_SEQ, (pos + 1) | 0);
          return true;
        }
        pos = Atomics.load(i32, ENQUEUE_POS);
      } else if (diff < 0) {
        return false;
      } else {
        pos = Atomics.load(i32, ENQUEUE_POS);
      }
    }
  }

  /** Removes the oldest pair and returns its pointer (its tag in `lastTag`), or 0 when empty. */
  pop(): number {
    const i32 = this.#i32;
    let pos = Atomics.load(i32, DEQUEUE_POS);
    for (;;) {
      const cell = CELLS + (pos & this.#mask) * CELL_WORDS;
      const diff = (Atomics.load(i32, cell + CELL_SEQ) - ((pos + 1) | 0)) | 0;
      if (diff === 0) {
        if (Atomics.compareExchange(i32, DEQUEUE_POS, pos, (pos + 1) | 0) === pos) {
          const ptr = i32[cell + CELL_PTR] as number;
          this.lastTag = i32[cell + CELL_TAG] as number;
          Atomics.store(i32, cell + CELL_SEQ, (pos + this.#mask + 1) | 0);
          return ptr;
        }
        pos = Atomics.load(i32, DEQUEUE_POS);
      } else if (diff < 0) {
        return 0;
      } else {
        pos = Atomics.load(i32, DEQUEUE_POS);
      }
    }
  }
}
