/**
 * SharedMap's key codec, value layout and copy-free reads: string keys encoded as TextEncoder
 * does (and lone surrogates refused), the bytes an entry holds for 64-byte and 1 KiB values,
 * `getInto` and `read` returning exactly what `get` does, `read`'s view being arena memory
 * (no copy) and its generation check.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Arena, ArenaError, SharedMap } from '../src/index.js';

function setup(maxEntries = 1024) {
  const arena = Arena.create({ cpus: 1, maxBytes: 256 << 20, policy: 'arena', coordinator: 'manual' });
  const cpu = arena.attach(0);
  const ref = SharedMap.create(arena, { maxEntries, maxKeyBytes: 200, maxValueBytes: 1 << 20 });
  return { arena, cpu, map: SharedMap.open(cpu, ref) };
}

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return e instanceof ArenaError ? e.code : `not an ArenaError: ${String(e)}`;
  }
  return undefined;
};

describe('SharedMap keys', () => {
  it('string keys are their UTF-8 bytes, distinct from the same bytes as a byte key', () => {
    const { map } = setup();
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }), fc.integer(), (key, n) => {
        fc.pre(new TextEncoder().encode(key).length <= 200);
        expect(map.set(key, n)).toBe(true);
        expect(map.get(key)).toBe(n);
        expect(map.has(new TextEncoder().encode(key))).toBe(false);
        expect(map.keys()).toContain(key);
        expect(map.delete(key)).toBe(true);
      }),
      { numRuns: 300 },
    );
    expect(map.size).toBe(0);
  });

  it('keys of every length up to maxKeyBytes, and one byte over refused', () => {
    const { map } = setup();
    for (let n = 1; n <= 200; n++) expect(map.set('k'.repeat(n), n)).toBe(true);
    for (let n = 1; n <= 200; n++) expect(map.get('k'.repeat(n))).toBe(n);
    expect(code(() => map.get('k'.repeat(201)))).toBe('EINVAL');
    expect(code(() => map.get('é'.repeat(101)))).toBe('EINVAL'); // 202 bytes in 101 units
    expect(map.get('é'.repeat(100))).toBeUndefined();
  });

  it('a lone surrogate in a key or a string value is EINVAL and changes nothing', () => {
    const { arena, map } = setup();
    map.set('kept', 1);
    const before = JSON.stringify(arena.stats());
    for (const key of ['\ud800', 'a\udc00', 'x\ud83d', '\ud83d\ud83d']) {
      for (const call of [
        () => map.set(key, 1),
        () => map.get(key),
        () => map.has(key),
        () => map.delete(key),
      ]) {
        expect(code(call)).toBe('EINVAL');
      }
    }
    expect(code(() => map.set('v', 'bad\ud800'))).toBe('EINVAL');
    expect(map.get('🔑')).toBeUndefined(); // a well-formed pair is fine
    expect(JSON.stringify(arena.stats())).toBe(before);
    expect(map.keys()).toEqual(['kept']);
  });
});

describe('SharedMap value layout', () => {
  it.each([
    // 32-byte header + 16-byte key + 64 bytes: one 128-byte unit.
    [64, 128],
    // 32 + 16 + 1024 = 1072 bytes: a full 1024-byte unit (976 bytes of value) and a 64-byte tail,
    // not a 2048-byte unit.
    [1024, 1024 + 64],
    // Above a unit: a 64-byte entry unit for the key and a 16 KiB pack block.
    [16_384, 64 + 16_384],
  ])('%i-byte values with 16-byte keys hold %i bytes per entry', (valueBytes, perEntry) => {
    const { map } = setup();
    const value = new Uint8Array(valueBytes).map((_, i) => i);
    for (let k = 0; k < 100; k++) expect(map.set(`key-${String(k).padStart(12, '0')}`, value)).toBe(true);
    expect(map.stats().entries).toBe(100);
    expect(map.stats().bytes / 100).toBe(perEntry);
    for (let k = 0; k < 100; k++) {
      const got = map.get(`key-${String(k).padStart(12, '0')}`) as Uint8Array;
      expect(Buffer.compare(got, value)).toBe(0);
    }
  });
});

describe('SharedMap reads without copies', () => {
  const sizes = [0, 1, 7, 31, 33, 64, 500, 1024, 1500, 4000, 4088, 4089, 20_000];

  it('getInto copies the bytes and returns the length; -1 absent; a short target copies nothing', () => {
    const { map } = setup();
    const target = new Uint8Array(32_768);
    for (const n of sizes) {
      const value = new Uint8Array(n).map((_, i) => (i * 7 + n) & 0xff);
      map.set(`v${n}`, value);
      target.fill(0xee);
      expect(map.getInto(`v${n}`, target)).toBe(n);
      expect(target.subarray(0, n)).toEqual(value);
      if (n > 0) {
        const short = new Uint8Array(n - 1).fill(1);
        expect(map.getInto(`v${n}`, short)).toBe(n);
        expect(short.every((b) => b === 1)).toBe(true);
      }
    }
    map.set('s', 'ключ');
    expect(new TextDecoder().decode(target.subarray(0, map.getInto('s', target)))).toBe('ключ');
    expect(map.getInto('absent', target)).toBe(-1);
    expect(map.stats().misses).toBe(1);
    expect(code(() => map.getInto('s', [] as unknown as Uint8Array))).toBe('EINVAL');
  });

  it('read gives a view of the value inside the call: the arena itself for a value in one piece', () => {
    const { map, cpu } = setup();
    for (const n of sizes) {
      const value = new Uint8Array(n).map((_, i) => (i * 13 + n) & 0xff);
      map.set(`v${n}`, value);
      const seen = map.read(`v${n}`, (bytes) => {
        expect(cpu.inReadSection).toBe(true);
        return { copy: bytes.slice(), shared: bytes.buffer === cpu.bytes.buffer };
      });
      expect(seen?.copy).toEqual(value);
      // In one piece: small values in the entry unit, large ones in a pack block (a split value
      // is put together in the handle's buffer).
      if (n <= 64 || n > 4088) expect(seen?.shared).toBe(true);
    }
    expect(map.read('absent', () => 1)).toBeUndefined();
    expect(code(() => map.read('v1', 5 as unknown as () => void))).toBe('EINVAL');
  });

  it("read's generation check throws ESTALE for an entry reused under the reader", () => {
    const { arena, map, cpu } = setup();
    map.set('k', 'value');
    // Misuse: the reader leaves the section, the entry is replaced, two GPs pass and the unit
    // is handed out again, all inside the call.
    const error = code(() =>
      map.read('k', () => {
        cpu.readUnlock();
        map.set('k', 'other');
        arena.advance('rcu');
        arena.advance('rcu');
        for (let i = 0; i < 200; i++) map.set(`fill${i}`, 'value');
        cpu.readLock();
      }),
    );
    expect(error).toBe('ESTALE');
  });
});
