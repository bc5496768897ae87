/**
 * SLUB sheaves as a cache kind (policy cache 'sheaves', src/cpu/sheaf.ts, src/cpu/barn.ts), in
 * the deterministic mode: exact accounting (every unit in exactly one sheaf, list, slab or
 * live; every sheaf of the pool in exactly one place), the kernel's alloc-miss and
 * free-overflow orders, one barn exchange per `capacity` operations in a producer/consumer
 * pair with nothing going back to the slab, the spill horizon (main + spare + 10 barn sheaves),
 * detach and park giving everything back, and the rcu_free sheaf (no reuse before its GP).
 * Capacities are the kernel's (kernel-2025.md §2.2), written out here.
 */
import { describe, expect, it } from 'vitest';
import { sheafHandleClasses } from '../src/cpu/attach.js';
import { Barn } from '../src/cpu/barn.js';
import type { SheafCpuHandle } from '../src/cpu/sheaf.js';
import type { CpuHandle, Pointer } from '../src/index.js';
import { Arena, type ArenaOptions } from '../src/index.js';
import { PRESETS } from '../src/lab/index.js';
import { BARN_GROWN, BARN_MAX_FULL, barnWord, readLayout, X_GP_REQUEST } from '../src/shm/layout.js';
import { createTestArena } from '../src/testing.js';
import {
  allocN,
  CAP64,
  CLS64,
  expectSheavesConserved,
  expectUnitsAccounted,
  SIZE64,
  setup,
  sheafStats,
} from './helpers/sheaves.js';

describe('sheaves preset', () => {
  it('attaches a sheaf handle with the kernel capacities; list presets keep the list handle', () => {
    const arena = Arena.create({ cpus: 1, coordinator: 'manual', policy: 'sheaves' });
    const a = arena.attach(0);
    const { SheafCpuHandle, RcuSheafCpuHandle } = sheafHandleClasses();
    expect(a).toBeInstanceOf(SheafCpuHandle);
    expect(a).not.toBeInstanceOf(RcuSheafCpuHandle);
    expect(arena.policy.cache).toBe('sheaves');
    const layout = readLayout(new Int32Array(arena.shared.buffer));
    expect(layout.sheaves).toBeGreaterThan(20);
    arena.close();
    const lists = Arena.create({ cpus: 1, coordinator: 'manual', policy: 'kernel-6.6' });
    expect(lists.attach(0)).not.toBeInstanceOf(SheafCpuHandle);
    expect(readLayout(new Int32Array(lists.shared.buffer)).sheaves).toBe(0);
    lists.close();
    // Reuse after a GP: the kfree_rcu handle, whose free is freeRcu.
    const safe = Arena.create({ cpus: 1, coordinator: 'manual', policy: 'arena-sheaves' });
    expect(safe.attach(0)).toBeInstanceOf(RcuSheafCpuHandle);
    safe.close();
  });

  it('rejects sheaves with reuse free-after-gp, a depot, owner return and a capacity out of range', () => {
    expect(() =>
      Arena.create({
        cpus: 1,
        policy: { cache: 'sheaves', reuse: 'free-after-gp', trimVia: 'slab', afterRcuGp: 'slab' },
      }),
    ).toThrow(/EINVAL.*cache 'sheaves'/);
    expect(() =>
      Arena.create({ cpus: 1, policy: { cache: 'sheaves', sharing: 'depot', trimVia: 'slab' } }),
    ).toThrow(/EINVAL.*cache 'sheaves'/);
    expect(() => Arena.create({ cpus: 1, policy: { cache: 'sheaves', sheafCapacity: 61 } })).toThrow(
      /EINVAL: options\.policy\.sheafCapacity: 61 is not an integer from 0 .* to 60$/,
    );
  });

  it('sheaves-rcu: every free goes through the rcu_free sheaf and comes back whole after its GP', () => {
    const arena = Arena.create({ cpus: 1, coordinator: 'manual', maxBytes: 16 << 20, policy: 'sheaves-rcu' });
    const a = arena.attach(0);
    const held = allocN(a, CAP64);
    const freed = new Set(held);
    for (const p of held) a.free(p);
    expect(sheafStats(arena, 0).free_rcu_sheaf).toBe(1);
    const early = allocN(a, 2 * CAP64);
    for (const p of early) expect(freed.has(p)).toBe(false);
    arena.advance('rcu');
    arena.advance('rcu');
    a.poll();
    expect(arena.stats().classes[CLS64]?.barn).toBe(CAP64);
    expectUnitsAccounted(arena, CLS64, early.length);
    arena.close();
  });

  it('alloc miss: refill from the slab (BARN_GET_FAIL, SHEAF_REFILL), then a whole sheaf per capacity allocs', () => {
    const arena = setup();
    const a = arena.attach(0);
    const held = allocN(a, 1);
    let s = sheafStats(arena, 0);
    expect(s.barn_get_fail).toBe(1);
    expect(s.sheaf_refill).toBe(CAP64);
    held.push(...allocN(a, CAP64 - 1));
    expect(sheafStats(arena, 0).sheaf_refill).toBe(CAP64);
    held.push(...allocN(a, 1));
    s = sheafStats(arena, 0);
    expect(s.sheaf_refill).toBe(2 * CAP64);
    expect(s.alloc_fastpath).toBe(CAP64 + 1);
    expectUnitsAccounted(arena, CLS64, held.length);
    expectSheavesConserved(arena, CLS64);
    for (const p of held) a.free(p);
    expectUnitsAccounted(arena, CLS64, 0);
    expect(() => a.free(held[0] as Pointer)).toThrow(/double free/);
    arena.close();
  });

  it('reuses a freed unit at once (LIFO from main)', () => {
    const arena = setup();
    const a = arena.attach(0);
    const p = a.alloc(SIZE64);
    a.free(p);
    expect(a.alloc(SIZE64)).toBe(p);
    arena.close();
  });

  it('producer/consumer: one barn exchange per capacity operations on each side, nothing back to the slab', () => {
    const arena = setup();
    const producer = arena.attach(0);
    const consumer = arena.attach(1);
    const round = () => {
      const batch = allocN(producer, CAP64);
      for (const p of batch) consumer.free(p);
    };
    for (let k = 0; k < 4; k++) round();
    const before0 = sheafStats(arena, 0);
    const before1 = sheafStats(arena, 1);
    const unitsBefore = arena.stats().classes[CLS64]?.units;
    const slabBefore = arena.stats().classes[CLS64]?.slabFree;
    const rounds = 50;
    for (let k = 0; k < rounds; k++) round();
    const after0 = sheafStats(arena, 0);
    const after1 = sheafStats(arena, 1);
    expect(after0.barn_get - before0.barn_get).toBe(rounds);
    expect(after0.barn_get_fail - before0.barn_get_fail).toBe(0);
    expect(after0.sheaf_refill - before0.sheaf_refill).toBe(0);
    expect(after1.barn_put - before1.barn_put).toBe(rounds);
    expect(after1.barn_put_fail - before1.barn_put_fail).toBe(0);
    expect(after1.sheaf_flush - before1.sheaf_flush).toBe(0);
    expect(arena.stats().classes[CLS64]?.units).toBe(unitsBefore);
    expect(arena.stats().classes[CLS64]?.slabFree).toBe(slabBefore);
    expectUnitsAccounted(arena, CLS64, 0);
    expectSheavesConserved(arena, CLS64);
    arena.close();
  });

  it('spill horizon: a free burst within main + spare + 10 barn sheaves stays in sheaves; a larger one hits barn_put_fail', () => {
    const horizon = (2 + 10) * CAP64;
    for (const [burst, spills] of [
      [horizon - CAP64, false],
      [2 * horizon, true],
    ] as const) {
      const arena = setup();
      const a = arena.attach(0);
      const held = allocN(a, burst);
      // What the allocations left in main (a partial refill) takes part of the horizon.
      for (const p of held) a.free(p);
      const s = sheafStats(arena, 0);
      const k = expectUnitsAccounted(arena, CLS64, 0);
      expectSheavesConserved(arena, CLS64);
      if (spills) {
        expect(s.barn_put_fail).toBeGreaterThan(0);
        expect(s.sheaf_flush).toBeGreaterThan(0);
        expect(k.barn).toBe(10 * CAP64);
      } else {
        expect(s.barn_put_fail).toBe(0);
        expect(s.sheaf_flush).toBe(0);
      }
      expect(k.sheaved + k.barn).toBeLessThanOrEqual(horizon);
      arena.close();
    }
  });

  it("slub_kunit's batch curve by mechanism: batches within main + spare + barn (12 × 32) never touch the slab, 1000 spills in either order", () => {
    // One CPU allocates a batch of B 64-byte objects, then frees them in allocation order (FIFO)
    // or shuffled; capacity 32. The kernel's curve (kernel-2025.md §6.3) gains most at 100-1000
    // FIFO and collapses for shuffled 1000, as the objects spill past main + spare + the barn.
    const horizon = 12 * 32;
    for (const order of ['fifo', 'shuffled'] as const) {
      for (const batch of [1, 10, 100, 1000]) {
        const arena = setup({ policy: { sheafCapacity: 32 } });
        const a = arena.attach(0);
        let seed = 12345;
        const random = () => {
          seed = (seed * 1103515245 + 12345) & 0x7fffffff;
          return seed / 0x80000000;
        };
        const round = () => {
          const held = allocN(a, batch);
          if (order === 'shuffled') {
            for (let k = held.length - 1; k > 0; k--) {
              const j = Math.floor(random() * (k + 1));
              [held[k], held[j]] = [held[j] as Pointer, held[k] as Pointer];
            }
          }
          for (const p of held) a.free(p);
        };
        for (let k = 0; k < 3; k++) round(); // warm-up: the sheaves and the barn fill
        const before = sheafStats(arena, 0);
        const rounds = 20;
        for (let k = 0; k < rounds; k++) round();
        const after = sheafStats(arena, 0);
        const refilled = after.sheaf_refill - before.sheaf_refill;
        const flushed = after.sheaf_flush - before.sheaf_flush;
        // Enough work: every round went through the fast path B times each way.
        expect(after.alloc_fastpath - before.alloc_fastpath).toBe(rounds * batch);
        if (batch <= horizon) {
          expect([order, batch, refilled, flushed]).toEqual([order, batch, 0, 0]);
        } else {
          // Each round refills and flushes what does not fit: B − horizon, give or take a sheaf.
          expect(refilled / rounds).toBeGreaterThanOrEqual(batch - horizon - 32);
          expect(flushed / rounds).toBeGreaterThanOrEqual(batch - horizon - 32);
          expect(after.barn_put_fail).toBeGreaterThan(before.barn_put_fail);
        }
        expectUnitsAccounted(arena, CLS64, 0);
        expectSheavesConserved(arena, CLS64);
        arena.close();
      }
    }
  });

  it('a sheaf capacity set by the policy (32, as the kernel for maple nodes)', () => {
    const arena = setup({ policy: { sheafCapacity: 32 } });
    const a = arena.attach(0);
    allocN(a, 1);
    expect(sheafStats(arena, 0).sheaf_refill).toBe(32);
    arena.close();
  });

  it('remote frees around the sheaves (sheafRemoteFree slab) go to the slab', () => {
    const arena = setup({ policy: { sheafRemoteFree: 'slab' } });
    const a = arena.attach(0);
    const b = arena.attach(1);
    const held = allocN(a, 10);
    const slabBefore = arena.stats().classes[CLS64]?.slabFree as number;
    for (const p of held) b.free(p);
    expect(arena.stats().classes[CLS64]?.slabFree).toBe(slabBefore + 10);
    expect(arena.stats().cpus[1]?.classes[CLS64]?.sheaved).toBe(0);
    expectUnitsAccounted(arena, CLS64, 0);
    arena.close();
  });

  it('detach and park give every sheaf back', () => {
    const arena = setup();
    const a = arena.attach(0);
    const b = arena.attach(1);
    const held = allocN(a, 5 * CAP64);
    for (const p of held.splice(0, 3 * CAP64)) b.free(p);
    b.park();
    expect(arena.stats().cpus[1]?.classes[CLS64]?.sheaved).toBe(0);
    expectSheavesConserved(arena, CLS64);
    b.unpark();
    for (const p of held) a.free(p);
    a.detach();
    b.detach();
    const k = expectUnitsAccounted(arena, CLS64, 0);
    expect(k.sheaved).toBe(0);
    expectSheavesConserved(arena, CLS64);
    arena.close();
  });
});

describe('rcu_free sheaf', () => {
  it('a full rcu_free sheaf is sealed with one epoch request and reused whole from the barn after its GP', () => {
    const arena = setup();
    const a = arena.attach(0) as SheafCpuHandle;
    const held = allocN(a, CAP64);
    const freed = new Set(held);
    for (const p of held) a.freeRcu(p);
    expect(sheafStats(arena, 0).free_rcu_sheaf).toBe(1);
    expectUnitsAccounted(arena, CLS64, 0);
    expectSheavesConserved(arena, CLS64);
    // Before the GP: nothing freed is handed out again.
    const early = allocN(a, 3 * CAP64);
    for (const p of early) expect(freed.has(p)).toBe(false);
    for (const p of early) a.free(p);
    arena.advance('rcu');
    arena.advance('rcu');
    a.poll();
    expect(arena.stats().classes[CLS64]?.barn).toBeGreaterThanOrEqual(CAP64);
    // Drain main and spare, then the next miss takes the GP'd sheaf from the barn.
    const got = new Set(allocN(a, 6 * CAP64));
    expect([...freed].every((p) => got.has(p))).toBe(true);
    arena.close();
  });

  it('under the oneEpochGp fault the sheaf comes back after one epoch (what the reuse oracle must catch)', () => {
    for (const fault of [false, true]) {
      const arena = createTestArena({
        cpus: 1,
        coordinator: 'manual',
        maxBytes: 16 << 20,
        policy: { cache: 'sheaves', trimVia: 'slab' },
        faults: fault ? { oneEpochGp: true } : {},
      });
      const a = arena.attach(0) as SheafCpuHandle;
      const held = allocN(a, CAP64);
      for (const p of held) a.freeRcu(p);
      arena.advance('rcu');
      a.poll();
      expect(arena.stats().classes[CLS64]?.barn).toBe(fault ? CAP64 : 0);
      arena.close();
    }
  });

  it('flushRcuSheaves seals a partial sheaf; after its GP its objects go to the slab', () => {
    const arena = setup();
    const a = arena.attach(0) as SheafCpuHandle;
    const held = allocN(a, 7);
    for (const p of held) a.freeRcu(p);
    expect(arena.stats().classes[CLS64]?.deferred).toBe(7);
    a.flushRcuSheaves();
    expect(a.poll()).toBe(7);
    arena.advance('rcu');
    arena.advance('rcu');
    expect(a.poll()).toBe(0);
    const k = expectUnitsAccounted(arena, CLS64, 0);
    expect(k.deferred).toBe(0);
    expect(sheafStats(arena, 0).free_rcu_sheaf).toBe(1);
    arena.close();
  });

  it('detach with rcu_free objects pending leaves them on the deferred lists until their GP', () => {
    const arena = setup();
    const a = arena.attach(0);
    const held = allocN(a, 10);
    for (const p of held) a.freeRcu(p);
    a.detach();
    let k = expectUnitsAccounted(arena, CLS64, 0);
    expect(k.deferred).toBe(10);
    for (let i = 0; i < 4; i++) arena.advance('rcu');
    k = expectUnitsAccounted(arena, CLS64, 0);
    expect(k.deferred).toBe(0);
    expectSheavesConserved(arena, CLS64);
    arena.close();
  });
});

describe("sheafReady 'cpu' (the arena-sheaves preset)", () => {
  // The preset's CPUs advance the GP themselves (gpDrive 'cpus'); here the test alone advances
  // it, so that each step's accounting is exact. The last test runs the preset as it is.
  const ready = (options: Omit<ArenaOptions, 'cpus'> = {}) =>
    Arena.create({
      cpus: 2,
      maxBytes: 16 << 20,
      coordinator: 'manual',
      policy: { ...PRESETS['arena-sheaves'], gpDrive: 'coordinator' },
      ...options,
    });

  it('needs cache sheaves and reuse after-gp', () => {
    expect(() => Arena.create({ cpus: 1, policy: { cache: 'sheaves', sheafReady: 'cpu' } })).toThrow(
      /EINVAL.*sheafReady/,
    );
    expect(() =>
      Arena.create({ cpus: 1, policy: { reuse: 'after-gp', afterRcuGp: 'free-list', sheafReady: 'cpu' } }),
    ).toThrow(/EINVAL.*sheafReady/);
    const arena = ready();
    expect(arena.policy.sheafReady).toBe('cpu');
    arena.close();
  });

  it('a sealed sheaf past its GP becomes main whole at the next alloc miss: no barn, no slab', () => {
    const arena = ready();
    const a = arena.attach(0);
    // Warm up: fill main once from the slab, then free a whole sheaf's worth.
    const first = allocN(a, CAP64);
    for (const p of first) a.free(p);
    expect(sheafStats(arena, 0).free_rcu_sheaf).toBe(1);
    expectUnitsAccounted(arena, CLS64, 0);
    // Before the GP nothing freed comes back: the next allocs refill from the slab.
    const freed = new Set(first);
    const early = allocN(a, CAP64);
    for (const p of early) expect(freed.has(p)).toBe(false);
    arena.advance('rcu');
    arena.advance('rcu');
    const before = sheafStats(arena, 0);
    const again = allocN(a, CAP64);
    const after = sheafStats(arena, 0);
    expect(new Set(again)).toEqual(freed);
    expect(after.ready_get - before.ready_get).toBe(1);
    expect(after.barn_get - before.barn_get).toBe(0);
    expect(after.sheaf_refill - before.sheaf_refill).toBe(0);
    expect(after.sheaf_flush - before.sheaf_flush).toBe(0);
    expectUnitsAccounted(arena, CLS64, 2 * CAP64);
    expectSheavesConserved(arena, CLS64);
    arena.close();
  });

  it('steady churn reuses its own sheaves: the slab is touched only while the first GP passes', () => {
    const arena = ready();
    const a = arena.attach(0);
    const live: Pointer[] = [];
    let refillsAtWarm = 0;
    for (let round = 0; round < 40; round++) {
      live.push(...allocN(a, 4 * CAP64));
      while (live.length > 2 * CAP64) a.free(live.shift() as Pointer);
      arena.advance('rcu');
      expectUnitsAccounted(arena, CLS64, live.length);
      if (round === 9) refillsAtWarm = sheafStats(arena, 0).sheaf_refill;
    }
    const s = sheafStats(arena, 0);
    // After the first GPs every alloc miss takes a sheaf of its own: 30 rounds × 4 sheaves, no slab.
    expect(refillsAtWarm).toBeGreaterThan(0);
    expect(s.sheaf_refill).toBe(refillsAtWarm);
    expect(s.ready_get).toBeGreaterThanOrEqual(30 * 4);
    expect(s.sheaf_flush).toBe(0);
    expectSheavesConserved(arena, CLS64);
    arena.close();
  });

  it('the sheaf pool grows a page at a time when a GP holds more sheaves than it has', () => {
    const arena = ready({ maxBytes: 64 << 20 });
    const a = arena.attach(0);
    const i32 = new Int32Array(arena.shared.buffer);
    const layout = readLayout(i32);
    const sheaves = 3 * layout.sheaves;
    const held = allocN(a, sheaves * CAP64);
    for (const p of held) a.free(p);
    const s = sheafStats(arena, 0);
    expect(s.free_rcu_sheaf).toBe(sheaves);
    expect(s.free_rcu_sheaf_fail).toBe(0);
    expect(i32[barnWord(layout, CLS64) + BARN_GROWN] as number).toBeGreaterThan(0);
    expectSheavesConserved(arena, CLS64);
    const k = expectUnitsAccounted(arena, CLS64, 0);
    expect(k.deferred).toBe(sheaves * CAP64);
    arena.close();
  });

  it('a CPU that only frees passes its sheaves past their GP to the barn, where the allocating CPU takes them', () => {
    const arena = ready();
    const producer = arena.attach(0);
    const freer = arena.attach(1);
    let taken = 0;
    for (let round = 0; round < 12; round++) {
      const batch = allocN(producer, 4 * CAP64);
      for (const p of batch) freer.free(p);
      arena.advance('rcu');
      const s = sheafStats(arena, 0);
      taken = s.barn_get;
      expectUnitsAccounted(arena, CLS64, 0);
    }
    expect(taken).toBeGreaterThan(0);
    expect(sheafStats(arena, 1).ready_get).toBe(0);
    expectSheavesConserved(arena, CLS64);
    arena.close();
  });

  /** CPU 1 frees `sheaves` whole sheaves CPU 0 allocated; after two GPs its poll() passes them on. */
  function remoteFreeBurst(
    arena: Arena,
    sheaves: number,
  ): { producer: CpuHandle; freer: CpuHandle; freed: Set<Pointer> } {
    const producer = arena.attach(0);
    const freer = arena.attach(1);
    const freed = new Set(allocN(producer, sheaves * CAP64));
    for (const p of freed) freer.free(p);
    for (let k = 0; k < 4; k++) arena.advance('rcu');
    freer.poll();
    return { producer, freer, freed };
  }

  it("remote frees go back to the allocating CPU in whole sheaves, past the barn's 10 full: nothing through the slab", () => {
    const arena = ready({ maxBytes: 32 << 20 });
    const sheaves = 3 * BARN_MAX_FULL;
    const { producer, freed } = remoteFreeBurst(arena, sheaves);
    const barn = new Barn(
      new Int32Array(arena.shared.buffer),
      readLayout(new Int32Array(arena.shared.buffer)),
    );
    expect(barn.nrFull(CLS64)).toBe(BARN_MAX_FULL);
    expect(barn.nrReady(CLS64)).toBe(sheaves - BARN_MAX_FULL);
    expect(sheafStats(arena, 1).sheaf_flush).toBe(0);
    expectUnitsAccounted(arena, CLS64, 0);
    expectSheavesConserved(arena, CLS64);
    const before = sheafStats(arena, 0);
    const again = allocN(producer, sheaves * CAP64);
    const after = sheafStats(arena, 0);
    expect(new Set(again)).toEqual(freed);
    expect(after.barn_get - before.barn_get).toBe(sheaves);
    expect(after.sheaf_refill - before.sheaf_refill).toBe(0);
    expect(sheafStats(arena, 1).sheaf_flush).toBe(0);
    expect(barn.nrReady(CLS64)).toBe(0);
    expectUnitsAccounted(arena, CLS64, sheaves * CAP64);
    expectSheavesConserved(arena, CLS64);
    arena.close();
  });

  it("sheaves-rcu keeps the kernel's bound: past 10 full sheaves in the barn, rcu_free_sheaf flushes to the slab", () => {
    const arena = ready({ maxBytes: 32 << 20, policy: 'sheaves-rcu' });
    const sheaves = 3 * BARN_MAX_FULL;
    remoteFreeBurst(arena, sheaves);
    const barn = new Barn(
      new Int32Array(arena.shared.buffer),
      readLayout(new Int32Array(arena.shared.buffer)),
    );
    expect(barn.nrFull(CLS64)).toBe(BARN_MAX_FULL);
    expect(barn.nrReady(CLS64)).toBe(0);
    expect(sheafStats(arena, 1).sheaf_flush).toBe((sheaves - BARN_MAX_FULL) * CAP64);
    expectUnitsAccounted(arena, CLS64, 0);
    expectSheavesConserved(arena, CLS64);
    arena.close();
  });

  it('as a preset its CPUs advance the GP themselves: sheaves come back with no coordinator', () => {
    const arena = Arena.create({
      cpus: 1,
      maxBytes: 16 << 20,
      coordinator: 'manual',
      policy: 'arena-sheaves',
    });
    expect(arena.policy.gpDrive).toBe('cpus');
    const a = arena.attach(0);
    const live: Pointer[] = [];
    for (let round = 0; round < 20; round++) {
      live.push(...allocN(a, 2 * CAP64));
      while (live.length > CAP64) a.free(live.shift() as Pointer);
    }
    // No arena.advance: every GP here was driven by the CPU's seals and misses.
    expect(sheafStats(arena, 0).ready_get).toBeGreaterThan(10);
    expectUnitsAccounted(arena, CLS64, live.length);
    expectSheavesConserved(arena, CLS64);
    arena.close();
  });

  it('a full sheaf sealed on the free path rings the coordinator only when the coordinator drives the GP', () => {
    const rings = (gpDrive: 'cpus' | 'coordinator'): number => {
      const arena = ready({ policy: { ...PRESETS['arena-sheaves'], gpDrive } });
      const i32 = new Int32Array(arena.shared.buffer);
      const a = arena.attach(0);
      const live = allocN(a, CAP64);
      const before = Atomics.load(i32, X_GP_REQUEST);
      for (const p of live) a.free(p);
      expect(sheafStats(arena, 0).free_rcu_sheaf).toBe(1);
      const rung = Atomics.load(i32, X_GP_REQUEST) - before;
      arena.close();
      return rung;
    };
    // A CPU that drives GPs tries the advance itself right after the seal (the next seal or
    // miss looks again), as the list presets do for a full batch; waking the coordinator for
    // each of ~10^5 seals a second took 21-47 % of a core from the producers as fast as safe.
    expect(rings('cpus')).toBe(0);
    expect(rings('coordinator')).toBe(1);
  });

  it('a request a self-driving CPU did not ring for is still served by the coordinator', async () => {
    // The preset as it is, with the running coordinator: one full sheaf sealed, then nothing.
    const arena = Arena.create({ cpus: 1, maxBytes: 16 << 20, policy: 'arena-sheaves' });
    const a = arena.attach(0);
    const live = allocN(a, CAP64);
    const sealedAt = arena.stats().gp.rcu.epoch;
    for (const p of live) a.free(p);
    expect(sheafStats(arena, 0).free_rcu_sheaf).toBe(1);
    // The seal asked for sealedAt + 2; the CPU's own try moved at most one step. The coordinator
    // finds the rest at its tick (once a second) without a ring, and no CPU calls in between.
    const deadline = performance.now() + 5000;
    while (arena.stats().gp.rcu.epoch - sealedAt < 2 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(arena.stats().gp.rcu.epoch - sealedAt).toBeGreaterThanOrEqual(2);
    // Past its GP the sheaf is whole again at the next miss: the same units come back.
    const again = new Set(allocN(a, 2 * CAP64));
    for (const p of live) expect(again.has(p)).toBe(true);
    await arena.close();
  }, 15_000);

  it("a quiet class gives the barn's ready sheaves to the slab", async () => {
    const arena = ready({ maxBytes: 32 << 20 });
    const sheaves = 2 * BARN_MAX_FULL;
    const { freer } = remoteFreeBurst(arena, sheaves);
    const barn = new Barn(
      new Int32Array(arena.shared.buffer),
      readLayout(new Int32Array(arena.shared.buffer)),
    );
    expect(barn.nrReady(CLS64)).toBe(sheaves - BARN_MAX_FULL);
    for (let k = 0; k < 2; k++) {
      await new Promise((r) => setTimeout(r, 1050));
      freer.poll();
    }
    expect(barn.nrReady(CLS64)).toBe(0);
    expect(sheafStats(arena, 1).sheaf_flush).toBe((sheaves - BARN_MAX_FULL) * CAP64);
    const k = expectUnitsAccounted(arena, CLS64, 0);
    expect(k.slabFree).toBe(k.units - BARN_MAX_FULL * CAP64);
    expectSheavesConserved(arena, CLS64);
    arena.close();
  }, 15_000);

  it('a class that goes quiet seals its partial rcu_free sheaf and gives its sheaves back (timely return)', async () => {
    const arena = ready();
    const a = arena.attach(0);
    const held = allocN(a, 10);
    for (const p of held) a.free(p);
    expect(sheafStats(arena, 0).free_rcu_sheaf).toBe(0);
    // Two idle checks a second apart: the first marks the class's activity, the second finds it unchanged.
    for (let k = 0; k < 2; k++) {
      await new Promise((r) => setTimeout(r, 1050));
      a.poll();
    }
    expect(sheafStats(arena, 0).free_rcu_sheaf).toBe(1);
    arena.advance('rcu');
    arena.advance('rcu');
    await new Promise((r) => setTimeout(r, 1050));
    a.poll();
    const k = expectUnitsAccounted(arena, CLS64, 0);
    expect(k.deferred).toBe(0);
    expect(k.sheaved).toBe(0);
    // All back in the slab but the list cache's prefill (attach's, untouched by sheaves).
    expect(k.slabFree + k.cached).toBe(k.units);
    arena.close();
  }, 15_000);
});

describe('sheaf metrics', () => {
  it('exports the SLUB_STATS counters as percpu_arena_sheaf_events_total{event}', async () => {
    const { arenaMetrics } = await import('../src/service/metrics.js');
    const arena = setup();
    const a = arena.attach(0);
    for (const p of allocN(a, 3)) a.free(p);
    const text = await arenaMetrics(arena).metrics();
    expect(text).toMatch(/percpu_arena_sheaf_events_total\{event="alloc_fastpath"\} 3/);
    expect(text).toMatch(/percpu_arena_sheaf_events_total\{event="barn_get_fail"\} 1/);
    arena.close();
  });
});
