/**
 * Generation references (src/structures/unit-ref.ts), in the deterministic mode: current while the unit
 * stays allocated, stale once it is freed and after it is handed out again; the checked view
 * throws ESTALE; bad input is EINVAL. (The use-after-free lab's worker tests are still to come.)
 */
import { describe, expect, it } from 'vitest';
import type { Pointer } from '../src/index.js';
import { Arena, ArenaError } from '../src/index.js';
import { UnitRefs } from '../src/structures/index.js';

describe('generation references', () => {
  it('are current while the unit is allocated, stale once it is freed or reused', async () => {
    const arena = Arena.create({ cpus: 1, coordinator: 'manual', policy: 'kernel-6.6' });
    const cpu = arena.attach(0);
    const refs = new UnitRefs(arena.shared);
    const ptr = cpu.alloc(40);
    const ref = refs.of(ptr);
    expect(Number.isSafeInteger(ref)).toBe(true);
    expect(refs.pointer(ref)).toBe(ptr);
    expect(refs.isCurrent(ref)).toBe(true);
    expect(refs.deref(ref)).toBe(ptr);
    cpu.free(ptr);
    expect(refs.isCurrent(ref)).toBe(false);
    // Immediate reuse hands the same unit out again (LIFO): a new generation.
    const again = cpu.alloc(40);
    expect(again).toBe(ptr);
    expect(refs.deref(ref)).toBe(0);
    expect(refs.isCurrent(refs.of(again))).toBe(true);
    await arena.close();
  });

  it("stay stale when the unit's span was released and its pages carved again", async () => {
    const arena = Arena.create({ cpus: 1, coordinator: 'manual', policy: { trimVia: 'slab' } });
    const cpu = arena.attach(0);
    const refs = new UnitRefs(arena.shared);
    const ptrs = Array.from({ length: 3000 }, () => cpu.alloc(24));
    const old = ptrs.map((p) => refs.of(p));
    for (const p of ptrs) cpu.free(p);
    cpu.detach();
    arena.trim();
    for (let k = 0; k < 2; k++) {
      arena.advance('rcu');
      arena.advance('ttrace');
    }
    expect(arena.trim()).toBeGreaterThan(0);
    // The same pages, carved again for the same class: no old reference comes back to life.
    const again = arena.attach(0);
    const fresh = new Set(Array.from({ length: 3000 }, () => again.alloc(24)));
    expect(old.some((ref) => fresh.has(refs.pointer(ref) as Pointer))).toBe(true);
    expect(old.filter((ref) => refs.isCurrent(ref))).toEqual([]);
    await arena.close();
  });

  it('checked views throw ESTALE on any access after the free; bad input is EINVAL', async () => {
    const arena = Arena.create({ cpus: 1, coordinator: 'manual' });
    const cpu = arena.attach(0);
    const refs = new UnitRefs(arena.shared);
    const ptr = cpu.alloc(16);
    const view = refs.checked(refs.of(ptr));
    view.setUint32(0, 0xdeadbeef);
    expect(view.getUint32(0)).toBe(0xdeadbeef);
    expect(view.getUint8(0)).toBe(0xef);
    cpu.free(ptr);
    expect(() => view.getUint32(0)).toThrow(expect.objectContaining({ code: 'ESTALE' }));
    expect(() => view.setUint8(0, 1)).toThrow(ArenaError);
    expect(() => refs.of(ptr)).toThrow(/EINVAL.*not allocated/);
    expect(() => refs.of(3)).toThrow(/EINVAL/);
    expect(() => refs.checked(-1)).toThrow(/EINVAL/);
    // Not references at all: never current, and no view over the arena's control words.
    expect(refs.isCurrent(0)).toBe(false);
    expect(refs.isCurrent(5)).toBe(false);
    expect(() => refs.checked(5)).toThrow(/EINVAL/);
    expect(() => new UnitRefs({} as never)).toThrow(/EINVAL/);
    await arena.close();
  });
});
