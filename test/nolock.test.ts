/**
 * The nolock preset (policy sheafLocks 'try': kmalloc_nolock / kfree_nolock on sheaves,
 * src/cpu/sheaf.ts, src/cpu/sheaf-nolock.ts), in the deterministic mode. A lock "held by
 * another thread" is the lock word taken by the test itself (a trylock fails on any holder),
 * so every path that must not wait is exercised exactly: an alloc miss takes one unit from the
 * slab, then the next size class, then returns 0 with the arena unchanged; a free that finds no
 * room is deferred and drained later; nothing is counted twice or lost.
 */
import { describe, expect, it } from 'vitest';
import { Arena, type CpuHandle, type Pointer } from '../src/index.js';
import { PRESETS } from '../src/lab/index.js';
import { BARN_X_LOCK, barnWord, readLayout, SLAB_X_LOCK, slabWord, X_PAGE_LOCK } from '../src/shm/layout.js';
import { robustLock, robustUnlock } from '../src/shm/sync.js';
import {
  allocN,
  CAP64,
  CLS64,
  expectSheavesConserved,
  expectUnitsAccounted,
  SIZE64,
  sheafStats,
} from './helpers/sheaves.js';

function nolockArena(cpus = 2): Arena {
  return Arena.create({ cpus, maxBytes: 16 << 20, coordinator: 'manual', policy: 'nolock' });
}

/** Runs `body` while the lock word at `index` names a holder (this thread): every trylock of it fails. */
function whileHeld<T>(arena: Arena, index: number, body: () => T): T {
  const i32 = new Int32Array(arena.shared.buffer);
  robustLock(i32, index);
  try {
    return body();
  } finally {
    robustUnlock(i32, index);
  }
}

function slabLock(arena: Arena, cls: number): number {
  return slabWord(readLayout(new Int32Array(arena.shared.buffer)), cls) + SLAB_X_LOCK;
}

function barnLock(arena: Arena, cls: number): number {
  return barnWord(readLayout(new Int32Array(arena.shared.buffer)), cls) + BARN_X_LOCK;
}

function freeAll(cpu: CpuHandle, ptrs: readonly Pointer[]): void {
  for (const p of ptrs) cpu.free(p);
}

describe('nolock preset (sheafLocks try)', () => {
  it('is the sheaves preset with trylocks; sheafLocks try needs sheaves and immediate reuse', () => {
    expect(PRESETS.nolock).toEqual({ ...PRESETS.sheaves, sheafLocks: 'try' });
    expect(() => Arena.create({ cpus: 1, policy: { sheafLocks: 'try' } })).toThrow(
      /EINVAL.*sheafLocks 'try'/,
    );
    expect(() => Arena.create({ cpus: 1, policy: { ...PRESETS['sheaves-rcu'], sheafLocks: 'try' } })).toThrow(
      /EINVAL.*sheafLocks 'try'/,
    );
    expect(() =>
      Arena.create({ cpus: 1, policy: { ...PRESETS.sheaves, sheafLocks: 'maybe' as 'try' } }),
    ).toThrow(/EINVAL.*sheafLocks/);
    const arena = nolockArena(1);
    expect(arena.policy.sheafLocks).toBe('try');
    arena.close();
  });

  it('an alloc miss never refills: one unit from the slab each (ALLOC_SLOWPATH), then the main sheaf takes the frees', () => {
    const arena = nolockArena();
    const a = arena.attach(0);
    const held = allocN(a, 10);
    let s = sheafStats(arena, 0);
    expect(s.alloc_slowpath).toBe(10);
    expect(s.barn_get_fail).toBe(10);
    expect(s.sheaf_refill).toBe(0);
    expect(s.alloc_fastpath).toBe(0);
    expect(arena.stats().classes[CLS64]?.sheaved).toBe(0);
    expectUnitsAccounted(arena, CLS64, 10);
    freeAll(a, held);
    s = sheafStats(arena, 0);
    expect(s.free_fastpath).toBe(10);
    expect(arena.stats().classes[CLS64]?.sheaved).toBe(10);
    // LIFO from main, no slab traffic.
    const again = allocN(a, 10);
    expect(new Set(again)).toEqual(new Set(held));
    expect(sheafStats(arena, 0).alloc_slowpath).toBe(10);
    expect(sheafStats(arena, 0).alloc_fastpath).toBe(10);
    expectUnitsAccounted(arena, CLS64, 10);
    expectSheavesConserved(arena, CLS64);
    arena.close();
  });

  it('a busy slab row: the next size class once (alloc_retry), then 0 with the arena unchanged (alloc_fail)', () => {
    const arena = nolockArena();
    const a = arena.attach(0);
    const p = whileHeld(arena, slabLock(arena, CLS64), () => a.alloc(SIZE64));
    expect(p).not.toBe(0);
    expect(a.usableSize(p)).toBeGreaterThan(SIZE64 + 8); // a unit of the next class
    expect(sheafStats(arena, 0).alloc_retry).toBe(1);
    expect(sheafStats(arena, 0, CLS64 + 1).alloc_slowpath).toBe(1);
    a.free(p);
    const before = arena.stats();
    const q = whileHeld(arena, slabLock(arena, CLS64), () =>
      whileHeld(arena, slabLock(arena, CLS64 + 1), () => a.alloc(SIZE64)),
    );
    // The next class's main sheaf holds the unit freed above: the retry's alloc_from_pcs finds it.
    expect(q).toBe(p);
    a.free(q);
    // A class and the next one, both with an empty main and a busy row: 0.
    const empty = CLS64 + 2; // 128-byte units, then 192
    const size = 120;
    const beforeFail = arena.stats();
    const none = whileHeld(arena, slabLock(arena, empty), () =>
      whileHeld(arena, slabLock(arena, empty + 1), () => a.alloc(size)),
    );
    expect(none).toBe(0);
    const after = arena.stats();
    expect(sheafStats(arena, 0, empty).alloc_fail).toBe(1);
    expect(sheafStats(arena, 0, empty).alloc_retry).toBe(1);
    for (const k of [empty, empty + 1]) {
      expect(after.classes[k]?.units).toBe(beforeFail.classes[k]?.units);
      expect(after.classes[k]?.live).toBe(beforeFail.classes[k]?.live);
      expect(after.classes[k]?.slabFree).toBe(beforeFail.classes[k]?.slabFree);
    }
    expect(before.classes[CLS64]?.live).toBe(0);
    expectUnitsAccounted(arena, CLS64 + 1, 0);
    arena.close();
  });

  it('a class that needs a new span only tries the page lock: busy, 0 with the arena unchanged (pageLockBusy)', () => {
    const arena = nolockArena();
    const a = arena.attach(0);
    // 128- and 192-byte units: no span carved yet, so the one unit must come from new pages.
    const empty = CLS64 + 2;
    const before = arena.stats();
    expect(before.classes[empty]?.units).toBe(0);
    expect(before.classes[empty + 1]?.units).toBe(0);
    const none = whileHeld(arena, X_PAGE_LOCK, () => a.alloc(120));
    expect(none).toBe(0);
    const after = arena.stats();
    // This class, then the next one once (alloc_retry): each tried the page lock and gave up.
    expect(after.pageLockBusy - before.pageLockBusy).toBe(2);
    expect(after.limitHits).toBe(before.limitHits);
    expect(sheafStats(arena, 0, empty).alloc_fail).toBe(1);
    expect(sheafStats(arena, 0, empty).alloc_retry).toBe(1);
    expect(after.bytesInUse).toBe(before.bytesInUse);
    for (const k of [empty, empty + 1]) expect(after.classes[k]?.units).toBe(0);
    // With the lock free the same call carves a span.
    const p = a.alloc(120);
    expect(p).not.toBe(0);
    expect(arena.stats().pageLockBusy).toBe(after.pageLockBusy);
    expect(arena.stats().classes[empty]?.units).toBeGreaterThan(0);
    a.free(p);
    expectUnitsAccounted(arena, empty, 0);
    arena.close();
  });

  it('a free overflow never flushes or allocates a sheaf: deferred, drained without waiting once a batch collects, the rest at poll()', () => {
    const arena = nolockArena();
    const a = arena.attach(0);
    const held = allocN(a, 100);
    freeAll(a, held);
    const s = sheafStats(arena, 0);
    // 60 into main; no spare and no barn empty sheaf: 40 deferred, 32 of them drained at once.
    expect(s.free_fastpath).toBe(CAP64);
    expect(s.free_deferred).toBe(100 - CAP64);
    expect(s.sheaf_flush).toBe(0);
    expect(s.barn_put).toBe(0);
    let k = expectUnitsAccounted(arena, CLS64, 0);
    expect(k.cached).toBe(100 - CAP64 - 32);
    expect(k.sheaved).toBe(CAP64);
    a.poll();
    k = expectUnitsAccounted(arena, CLS64, 0);
    expect(k.cached).toBe(0);
    expect(k.slabFree).toBe(k.units - CAP64);
    expectSheavesConserved(arena, CLS64);
    arena.close();
  });

  it('a busy row keeps the deferred list on the CPU; a busy barn defers a free a barn empty sheaf would have taken', () => {
    const arena = nolockArena();
    const a = arena.attach(0);
    // CPU 1 comes and goes: its empty main sheaves go to the barn's empty stack.
    arena.attach(1).detach();
    const held = allocN(a, 2 * CAP64 + 40);
    const i32 = new Int32Array(arena.shared.buffer);
    whileHeld(arena, barnLock(arena, CLS64), () => {
      freeAll(a, held.slice(0, CAP64 + 1));
      expect(sheafStats(arena, 0).free_deferred).toBe(1);
    });
    // The barn's empty sheaf becomes main (the full one the spare): the next CAP64 - 1 frees fit.
    freeAll(a, held.slice(CAP64 + 1, 2 * CAP64));
    let s = sheafStats(arena, 0);
    expect(s.free_deferred).toBe(1);
    expect(s.free_fastpath).toBe(2 * CAP64 - 1);
    whileHeld(arena, slabLock(arena, CLS64), () => {
      freeAll(a, held.slice(2 * CAP64));
      s = sheafStats(arena, 0);
      // One more fills main; main and spare full, the barn has no empty sheaf left: the other
      // 39 are deferred, and with the row busy none is drained (40 with the first).
      expect(s.free_fastpath).toBe(2 * CAP64);
      expect(s.free_deferred).toBe(40);
      expect(arena.stats().classes[CLS64]?.cached).toBe(40);
      expect(i32[slabLock(arena, CLS64)]).not.toBe(0);
    });
    a.poll();
    const k = expectUnitsAccounted(arena, CLS64, 0);
    expect(k.cached).toBe(0);
    expect(k.sheaved).toBe(2 * CAP64);
    expectSheavesConserved(arena, CLS64);
    arena.close();
  });

  it('freeRcu waits on the per-object deferred lists (no rcu_free sheaf), and detach drains everything', () => {
    const arena = nolockArena();
    const a = arena.attach(0);
    const held = allocN(a, 2 * CAP64 + 40);
    const rcu = held.slice(0, 20);
    for (const p of rcu) a.freeRcu(p);
    let s = sheafStats(arena, 0);
    expect(s.free_rcu_sheaf).toBe(0);
    expect(s.free_rcu_sheaf_fail).toBe(20);
    expect(arena.stats().classes[CLS64]?.deferred).toBe(20);
    // Nothing freed by freeRcu comes back before its GP.
    const during = allocN(a, 20);
    for (const p of during) expect(rcu.includes(p)).toBe(false);
    // The lists seal one batch at a time (the kernel's call_rcu_in_progress): two GPs here.
    for (let round = 0; round < 2; round++) {
      arena.advance('rcu');
      arena.advance('rcu');
      a.poll();
    }
    expectUnitsAccounted(arena, CLS64, held.length);
    expect(arena.stats().classes[CLS64]?.deferred).toBe(0);
    freeAll(a, [...held.slice(20), ...during]);
    s = sheafStats(arena, 0);
    expect(s.free_deferred).toBeGreaterThan(0);
    a.detach();
    const k = expectUnitsAccounted(arena, CLS64, 0);
    expect(k.cached + k.sheaved + k.deferred).toBe(0);
    expectSheavesConserved(arena, CLS64);
    arena.close();
  });
});
