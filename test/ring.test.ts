/** The PointerQueue (Vyukov's bounded MPMC queue): order, full/empty, and position wrap-around. */
import { describe, expect, it } from 'vitest';
import { PointerQueue } from '../src/structures/ring.js';

/** Words of the queue's buffer (see src/structures/ring.ts): positions, then 4-word cells [seq, ptr, tag, -]. */
const ENQUEUE_POS = 0;
const DEQUEUE_POS = 16;
const CELLS = 32;

/** Puts an empty queue's positions at `pos`, as if 2^32 − … operations had already gone through. */
function startAt(queue: PointerQueue, capacity: number, pos: number): void {
  const i32 = new Int32Array(queue.buffer);
  i32[ENQUEUE_POS] = pos;
  i32[DEQUEUE_POS] = pos;
  for (let j = 0; j < capacity; j++) i32[CELLS + (((pos + j) | 0) & (capacity - 1)) * 4] = (pos + j) | 0;
}

describe('PointerQueue', () => {
  it('is FIFO with tags, says full and empty', () => {
    const queue = new PointerQueue(4);
    expect(queue.pop()).toBe(0);
    for (let k = 1; k <= 4; k++) expect(queue.push(k * 8, -k)).toBe(true);
    expect(queue.push(99, 0)).toBe(false);
    for (let k = 1; k <= 4; k++) {
      expect(queue.pop()).toBe(k * 8);
      expect(queue.lastTag).toBe(-k);
    }
    expect(queue.pop()).toBe(0);
  });

  it('keeps working when its positions wrap past 2^31 and 2^32', () => {
    for (const start of [0x7fff_fffe, -2]) {
      const queue = new PointerQueue(4);
      startAt(queue, 4, start);
      expect(queue.pop()).toBe(0); // empty, not a spin
      for (let round = 0; round < 3; round++) {
        for (let k = 1; k <= 4; k++) expect(queue.push(k, round)).toBe(true);
        expect(queue.push(5)).toBe(false); // full, not a spin
        for (let k = 1; k <= 4; k++) expect(queue.pop()).toBe(k);
        expect(queue.pop()).toBe(0);
      }
    }
  });

  it('opens from its buffer on another thread and rejects a buffer that is not a queue', () => {
    const queue = new PointerQueue(8);
    queue.push(40, 7);
    const other = new PointerQueue(queue.buffer);
    expect(other.pop()).toBe(40);
    expect(other.lastTag).toBe(7);
    expect(() => new PointerQueue(new SharedArrayBuffer(100))).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() => new PointerQueue(6)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});
