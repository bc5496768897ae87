/**
 * Misuse: every wrong call throws an ArenaError with the right code and leaves the arena
 * byte-for-byte as it was (the header makes bad frees detectable before anything is written).
 * Running out of memory and bad sizes are not misuse: alloc returns 0 and never throws.
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import type { Pointer } from '../src/index.js';
import { Arena, ArenaError, type ArenaErrorCode, attach, attachFree, type CpuHandle } from '../src/index.js';
import { readLayout, SLAB_CARVE_END, SLAB_CARVE_NEXT, slabWord } from '../src/shm/layout.js';

/** A small arena (1 MiB of pages) so that snapshots of the whole buffer stay cheap. */
function setup() {
  const arena = Arena.create({ cpus: 2, maxBytes: 1 << 20 });
  const a = arena.attach(0);
  return { arena, a };
}

/** Runs `call`, expects an ArenaError with `code`, and expects the arena bytes unchanged. */
function expectRejected(arena: Arena, code: ArenaErrorCode, call: () => unknown, message?: string): void {
  const before = new Uint8Array(arena.shared.buffer).slice();
  let error: unknown;
  try {
    call();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ArenaError);
  expect((error as ArenaError).code).toBe(code);
  if (message !== undefined) expect((error as ArenaError).message).toContain(message);
  expect(firstChangedWord(before, new Uint8Array(arena.shared.buffer))).toBe('unchanged');
}

/** 'unchanged', or where the arena first differs from `before` (to say what a call wrote). */
function firstChangedWord(before: Uint8Array, after: Uint8Array): string {
  if (Buffer.compare(before, after) === 0) return 'unchanged';
  const i = before.findIndex((byte, k) => byte !== after[k]);
  const word = (bytes: Uint8Array) => new Int32Array(bytes.buffer, bytes.byteOffset)[i >> 2];
  return `word ${i >> 2} changed from ${word(before)} to ${word(after)}`;
}

// biome-ignore lint/suspicious/noExplicitAny: misuse from untyped callers is the point here.
type Untyped = any;

describe('free of something that is not an allocated unit', () => {
  it.each<[string, (ptr: number, a: CpuHandle) => unknown]>([
    ['-8', () => -8],
    ['1.5', () => 1.5],
    ['NaN', () => Number.NaN],
    ['a string', (ptr) => String(ptr)],
    ['ptr + 1', (ptr) => ptr + 1],
    ['ptr + 8 (inside the unit)', (ptr) => ptr + 8],
    ['ptr - 16 (inside the previous unit)', (ptr) => ptr - 16],
    ['a pointer past the arena end', (_, a) => a.bytes.length + 8],
    ['a pointer into the arena tables', () => 64],
  ])('rejects %s with EINVAL', (_, make) => {
    const { arena, a } = setup();
    // A 128-byte unit, not the first of its span, so ptr - 16 is inside the previous unit.
    a.alloc(100);
    const ptr = a.alloc(100);
    expectRejected(arena, 'EINVAL', () => a.free(make(ptr, a) as Untyped));
  });

  it('rejects a unit of a span that was never carved', () => {
    const { arena, a } = setup();
    // The 4096-byte class takes an 8-page span and the prefill carves one unit of it: the carve
    // frontier is inside the span, and everything from there on has never been a unit.
    const row = slabWord(readLayout(a.i32), 10);
    const next = a.i32[row + SLAB_CARVE_NEXT] ?? 0;
    expect(next).toBeLessThan(a.i32[row + SLAB_CARVE_END] ?? 0);
    expectRejected(arena, 'EINVAL', () => a.free((next + 8) as Pointer));
  });

  it('rejects a pointer into the unused tail of a span', () => {
    const { arena, a } = setup();
    // 96-byte units: a 2-page span holds 85 of them and 32 bytes are left over at its end.
    const ptr = a.alloc(88);
    const spanStart = ptr - 8 - ((ptr - 8 - readLayout(a.i32).pagesBase) % 8192);
    expectRejected(arena, 'EINVAL', () => a.free((spanStart + 85 * 96 + 8) as Pointer));
  });

  it('rejects a double free with EINVAL naming it', () => {
    const { arena, a } = setup();
    const ptr = a.alloc(16);
    a.free(ptr);
    expectRejected(arena, 'EINVAL', () => a.free(ptr), 'double free');
    // Also when the second free comes from another CPU.
    const b = arena.attach(1);
    expectRejected(arena, 'EINVAL', () => b.free(ptr), 'double free');
  });
});

describe('free of interior pointers of every span shape', () => {
  // The free path tests "is this offset a multiple of the unit size" without dividing
  // (an inverse of the odd factor of the unit size). Unit sizes with odd factors 1, 3 and 39 —
  // 64, 96, 192 and a fixed 300-byte object (unit 312) — and every byte offset of a whole
  // span: only unit boundaries may be accepted.
  it.each<[string, (a: CpuHandle) => number]>([
    ['64-byte', (a) => a.alloc(56)],
    ['96-byte', (a) => a.alloc(88)],
    ['192-byte', (a) => a.alloc(184)],
    ['312-byte fixed', (a) => a.allocFixed(0)],
  ])('accepts only unit boundaries in a span of %s units', (_, allocOne) => {
    const arena = Arena.create({ cpus: 1, maxBytes: 1 << 20, fixedSizes: [300] });
    const a = arena.attach(0);
    // 400 units cover more than the 4 pages scanned below, whole spans included (units come
    // out of a span in address order). Anything else in that range is a free unit or a span
    // tail, which must be rejected too.
    const live = new Set(Array.from({ length: 400 }, () => allocOne(a)));
    const lowest = Math.min(...live) - 8;
    const before = new Uint8Array(arena.shared.buffer).slice();
    let rejected = 0;
    for (let ptr = lowest; ptr < lowest + 4 * 4096; ptr++) {
      if (live.has(ptr)) continue;
      try {
        a.free(ptr as Pointer);
        expect.fail(`free(${ptr}) of a non-boundary pointer was accepted`);
      } catch (e) {
        if (!(e instanceof ArenaError) || e.code !== 'EINVAL') throw e;
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(4 * 4096 - live.size);
    expect(Buffer.compare(before, new Uint8Array(arena.shared.buffer))).toBe(0);
    // And every real pointer is still accepted.
    for (const ptr of live) a.free(ptr as Pointer);
    expect(arena.stats().liveUnits).toBe(0);
  });
});

describe('attach', () => {
  it('rejects a slot that is already owned with EBUSY', () => {
    const { arena } = setup();
    expectRejected(arena, 'EBUSY', () => arena.attach(0));
    expectRejected(arena, 'EBUSY', () => attach(arena.shared, 0));
  });

  it.each([-1, 2, 1.5, Number.NaN])('rejects CPU %s of 2 with EINVAL', (cpu) => {
    const { arena } = setup();
    expectRejected(arena, 'EINVAL', () => arena.attach(cpu));
  });

  it('rejects a buffer that is not an arena with EBADARENA', () => {
    expect(() => attach({ buffer: new SharedArrayBuffer(1024) }, 0)).toThrow(
      expect.objectContaining({ code: 'EBADARENA' }),
    );
    expect(() => attach(null as Untyped, 0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});

describe('a detached handle', () => {
  it('throws ECLOSED on every operation', () => {
    const { arena, a } = setup();
    const ptr = a.alloc(16);
    a.detach();
    expectRejected(arena, 'ECLOSED', () => a.alloc(16));
    expectRejected(arena, 'ECLOSED', () => a.allocFixed(0));
    expectRejected(arena, 'ECLOSED', () => a.free(ptr));
    expectRejected(arena, 'ECLOSED', () => a.detach());
    expect(a.attached).toBe(false);
  });
});

describe('after close()', () => {
  it('throws ECLOSED from attach and from the handles attached through the arena', async () => {
    const { arena, a } = setup();
    const ptr = a.alloc(16);
    await arena.close();
    expectRejected(arena, 'ECLOSED', () => arena.attach(1));
    expectRejected(arena, 'ECLOSED', () => attach(arena.shared, 1));
    expectRejected(arena, 'ECLOSED', () => a.alloc(16));
    expectRejected(arena, 'ECLOSED', () => a.free(ptr));
    expectRejected(arena, 'ECLOSED', () => a.detach());
  });

  // A handle from attach(shared, cpu) stands for one on another thread: close() cannot mark it
  // dead, so it notices at its next refill or trim. It must then fail cleanly, not half-way.
  it('fails an alloc that needs a refill with ECLOSED before taking a unit', async () => {
    const { arena } = setup();
    const other = attach(arena.shared, 1);
    await arena.close();
    // The prefill left 4 units of the 16-byte class: taking one drops below low and refills.
    expectRejected(arena, 'ECLOSED', () => other.alloc(8));
  });

  it('fails a free that needs a trim with ECLOSED before taking the unit', async () => {
    const { arena } = setup();
    const other = attach(arena.shared, 1);
    const held = Array.from({ length: 200 }, () => other.alloc(8));
    // Free until the next free would go above high (96) and trim.
    while ((arena.stats().cpus[1]?.classes[0]?.free ?? 0) < 96) other.free((held.pop() ?? 0) as Pointer);
    await arena.close();
    expectRejected(arena, 'ECLOSED', () => other.free((held.pop() ?? 0) as Pointer));
  });
});

describe('bad sizes', () => {
  it.each([0, -1, 4089, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '16'])(
    'alloc(%s) returns 0 without throwing or writing',
    (size) => {
      const { arena, a } = setup();
      const before = new Uint8Array(arena.shared.buffer).slice();
      expect(a.alloc(size as Untyped)).toBe(0);
      expect(firstChangedWord(before, new Uint8Array(arena.shared.buffer))).toBe('unchanged');
    },
  );
});

describe('Arena.create options', () => {
  it.each<[string, Record<string, unknown>]>([
    ['options.cpus', { cpus: 0 }],
    ['options.cpus', { cpus: 1.5 }],
    ['options.cpus', { cpus: 2000 }],
    ['options.cpus', {}],
    ['options.maxBytes', { cpus: 1, maxBytes: 100 }],
    ['options.maxBytes', { cpus: 1, maxBytes: 4096.5 }],
    ['options.fixedSizes', { cpus: 1, fixedSizes: [0] }],
    ['options.fixedSizes', { cpus: 1, fixedSizes: ['x'] }],
    ['options.fixedSizes', { cpus: 1, fixedSizes: 300 }],
  ])('rejects bad %s with EINVAL naming it (%o)', (name, options) => {
    let error: unknown;
    try {
      Arena.create(options as Untyped);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ArenaError);
    expect((error as ArenaError).code).toBe('EINVAL');
    expect((error as ArenaError).message).toContain(name);
  });
});

describe('close() leak report', () => {
  it("lists CPUs still attached by another thread, and not this thread's own", async () => {
    const arena = Arena.create({ cpus: 3, maxBytes: 1 << 20 });
    arena.attach(0);
    attach(arena.shared, 1); // attached here without arena.attach: close() detaches it too
    // A worker that attaches slot 2 from the built package and never detaches.
    const dist = new URL('../dist/src/index.js', import.meta.url).href;
    const worker = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       import(${JSON.stringify(dist)}).then(({ attach }) => {
         attach(workerData.shared, 2);
         parentPort.postMessage('attached');
       });`,
      { eval: true, workerData: { shared: arena.shared } },
    );
    try {
      await once(worker, 'message');
      const report = await arena.close();
      expect(report.attachedCpus).toEqual([2]);
      expect(report.leaked).toBe(0);
    } finally {
      await worker.terminate();
    }
  });

  it('reports units allocated and never freed, by unit size', async () => {
    const { arena, a } = setup();
    a.alloc(8); // 16-byte unit
    a.alloc(9); // 32-byte unit
    a.alloc(10); // 32-byte unit
    const freed = a.alloc(1000);
    a.free(freed);
    const report = await arena.close();
    expect(report.leaked).toBe(3);
    expect(report.leakedBySize).toEqual({ 16: 1, 32: 2 });
    expect(report.attachedCpus).toEqual([]);
    // A second close returns the same report.
    expect(await arena.close()).toBe(report);
  });
});

describe('out of CPU slots', () => {
  it('attachFree says why every slot is taken and what to do, and takes a slot once one is free', async () => {
    const arena = Arena.create({ cpus: 2, policy: 'arena' });
    const main = arena.attach(0); // the main thread takes a slot when it attaches
    const worker = attachFree(arena.shared);
    let error: unknown;
    try {
      attachFree(arena.shared);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ArenaError);
    expect((error as ArenaError).code).toBe('EBUSY');
    expect((error as Error).message).toMatch(/every one of the arena's 2 CPU slots is attached/);
    expect((error as Error).message).toMatch(/main thread/);
    expect((error as Error).message).toMatch(/maxThreads/);
    worker.detach();
    const again = attachFree(arena.shared);
    expect(again.cpu).toBe(1);
    again.detach();
    main.detach();
    await arena.close();
  });
});
