/**
 * What each preset does with a free, in the deterministic mode (CPU handles on this thread, the
 * coordinator stepped by hand), against kernel/bpf/memalloc.c's commits 0893d6007db5, 822fb26bdb55,
 * 04fabf00b4d3, 5af6807bdb10 (https://git.kernel.org/torvalds/c/<id>) and Hou Tao's RFCs
 * (https://lore.kernel.org/bpf/?q=BPF_MA_REUSE_AFTER_RCU_GP): where trims go, whether
 * refill reuses the ttrace lists before their GP, where units go after their rcu GP, the owner
 * hint for remote frees, the pre-allocated pool; and the poison debug option.
 */
import { describe, expect, it } from 'vitest';
import { decodePolicy, encodePolicy } from '../src/epoch/policy.js';
import type { Pointer } from '../src/index.js';
import { Arena, type ArenaOptions, type PresetName } from '../src/index.js';
import { PRESET_NAMES, PRESETS, presetOf } from '../src/lab/index.js';

/** The 32-byte class: user size 24. */
const CLS = 1;
const SIZE = 24;

function setup(policy: PresetName, options: Partial<ArenaOptions> = {}) {
  const arena = Arena.create({ cpus: 2, maxBytes: 4 << 20, coordinator: 'manual', policy, ...options });
  return { arena, a: arena.attach(0), b: arena.attach(1) };
}

const cache = (arena: Arena, cpu: number) =>
  arena.stats().cpus[cpu]?.classes[CLS] as { free: number; deferred: number; trims: number };
const klass = (arena: Arena) =>
  arena.stats().classes[CLS] as { units: number; slabFree: number; deferred: number };

/** Two full GPs of both flavors, each followed by the CPUs' polls (their doorbell work). */
function passGps(arena: Arena, ...cpus: { poll(): number }[]): void {
  for (let k = 0; k < 3; k++) {
    arena.advance('rcu');
    arena.advance('ttrace');
    arena.advance('rcu');
    arena.advance('ttrace');
    for (const cpu of cpus) cpu.poll();
  }
}

describe('presets', () => {
  it('encode and decode to themselves, and presetOf names them', () => {
    for (const name of PRESET_NAMES) {
      expect(decodePolicy(encodePolicy(PRESETS[name]))).toEqual(PRESETS[name]);
      expect(presetOf(PRESETS[name])).toBe(name);
    }
    expect(
      Arena.create({ cpus: 1, policy: { reuse: 'after-gp', afterRcuGp: 'free-list' } }).policy.reuse,
    ).toBe('after-gp');
  });

  it.each([
    ['kernel-6.1', false],
    ['kernel-6.6', true],
  ] as const)('%s: refill reuses units waiting for the ttrace GP: %s', (policy, reuses) => {
    const { arena, a } = setup(policy);
    const ptrs = Array.from({ length: 300 }, () => a.alloc(SIZE));
    for (const ptr of ptrs) a.free(ptr);
    // Trims sent the overflow to the ttrace lists, where it waits for a GP nobody advances.
    expect(cache(arena, 0).trims).toBeGreaterThan(0);
    expect(klass(arena).deferred).toBeGreaterThan(150);
    const carved = klass(arena).units;
    // Fewer than are waiting (minus a refill batch), so 6.6 needs no new unit.
    for (let k = 0; k < 200; k++) a.alloc(SIZE);
    // kernel 6.6 (04fabf00b4d3) takes them back before their GP; 6.1 carves new units.
    if (reuses) expect(klass(arena).units).toBe(carved);
    else expect(klass(arena).units).toBeGreaterThan(carved);
  });

  it('kernel-6.4 reuses only the trimmed units not yet waiting for the GP (0893d6007db5)', () => {
    const carvedFor = (policy: PresetName) => {
      const { arena, a } = setup(policy);
      const ptrs = Array.from({ length: 300 }, () => a.alloc(SIZE));
      for (const ptr of ptrs) a.free(ptr);
      const carved = klass(arena).units;
      for (let k = 0; k < 250; k++) a.alloc(SIZE);
      return klass(arena).units - carved;
    };
    const [k61, k64, k66] = (['kernel-6.1', 'kernel-6.4', 'kernel-6.6'] as const).map(carvedFor);
    expect(k66).toBe(0);
    expect(k64).toBeGreaterThan(0);
    expect(k64).toBeLessThan(k61 as number);
  });

  it('kernel-6.1: trimmed units reach the slab only after a ttrace GP (and an rcu GP)', () => {
    const { arena, a } = setup('kernel-6.1');
    const ptrs = Array.from({ length: 300 }, () => a.alloc(SIZE));
    for (const ptr of ptrs) a.free(ptr);
    const waiting = klass(arena).deferred;
    expect(klass(arena).slabFree).toBe(0);
    // rcu alone is not enough.
    for (let k = 0; k < 4; k++) arena.advance('rcu');
    a.poll();
    expect(klass(arena).slabFree).toBe(0);
    passGps(arena, a);
    expect(klass(arena).deferred).toBe(0);
    expect(klass(arena).slabFree).toBe(waiting);
  });

  it.each([
    ['kernel-6.1', 1],
    ['kernel-6.6', 0],
  ] as const)(
    '%s: a remote free overflow goes to the trimming CPU (1) or the owner (0)',
    (policy, target) => {
      const { arena, a, b } = setup(policy);
      const ptrs = Array.from({ length: 300 }, () => a.alloc(SIZE));
      for (const ptr of ptrs) b.free(ptr);
      const other = 1 - target;
      expect(cache(arena, target).deferred).toBeGreaterThan(150);
      expect(cache(arena, other).deferred).toBe(0);
      // The owner takes its inbox at its next refill or poll, and after the GPs hands it to the slab.
      passGps(arena, a, b);
      expect(klass(arena).deferred).toBe(0);
    },
  );

  it.each([
    ['kernel-6.1', 1],
    ['kernel-free-rcu', 0],
  ] as const)(
    '%s: after its rcu GP a remote freeRcu batch waits on CPU %i (6.6: the owner, c->tgt)',
    (policy, cpu) => {
      const { arena, a, b } = setup(policy);
      const ptrs = Array.from({ length: 40 }, () => a.alloc(SIZE));
      for (const ptr of ptrs) b.freeRcu(ptr);
      expect(cache(arena, 1).deferred).toBe(40);
      // The first free sealed a batch of one; the other 39 are sealed at the next poll.
      for (let round = 0; round < 2; round++) {
        for (let k = 0; k < 2; k++) arena.advance('rcu');
        b.poll();
      }
      expect(cache(arena, cpu).deferred).toBe(40);
      expect(cache(arena, 1 - cpu).deferred).toBe(0);
    },
  );

  it.each([
    ['reuse-after-gp', 'free'],
    ['free-after-gp', 'slabFree'],
  ] as const)('%s: a free waits for an rcu GP, then goes to the %s list', (policy, where) => {
    const { arena, a } = setup(policy);
    const ptrs = Array.from({ length: 20 }, () => a.alloc(SIZE));
    const before = where === 'free' ? cache(arena, 0).free : klass(arena).slabFree;
    for (const ptr of ptrs) a.free(ptr);
    expect(cache(arena, 0).deferred).toBe(20);
    expect(() => a.free(ptrs[0] as Pointer)).toThrow(/EINVAL.*double free/);
    passGps(arena, a);
    expect(cache(arena, 0).deferred).toBe(0);
    const after = where === 'free' ? cache(arena, 0).free : klass(arena).slabFree;
    // 20 more stay under the high watermark (96), so nothing is trimmed on the way.
    expect(after - before).toBe(20);
  });

  it('arena: remote frees go back to their owner a batch at a time, and the owner reuses them', () => {
    const { arena, a, b } = setup('arena');
    let carvedAfterWarmup = 0;
    for (let round = 0; round < 200; round++) {
      const ptrs = Array.from({ length: 100 }, () => a.alloc(SIZE));
      for (const ptr of ptrs) b.free(ptr);
      // The freeing CPU buffers at most one batch (48 for this class) for the owner.
      expect(cache(arena, 1).deferred).toBeLessThan(48);
      expect(cache(arena, 1).free).toBeLessThanOrEqual(4);
      arena.advance('rcu');
      arena.advance('rcu');
      b.poll();
      if (round === 10) carvedAfterWarmup = klass(arena).units;
    }
    const stats = arena.stats();
    const freer = stats.cpus[1]?.classes[CLS];
    const owner = stats.cpus[0]?.classes[CLS];
    // 100 frees a round, posted in batches of 48 (or fewer when the doorbell's poll posts).
    expect(freer?.returnPosts).toBeGreaterThanOrEqual(Math.floor((200 * 100) / 48));
    expect(owner?.returnTakes).toBeGreaterThan(0);
    // The owner allocates from what came back: after warm-up the slab carves nothing new.
    expect(klass(arena).units).toBe(carvedAfterWarmup);
    expect(stats.bytesInUse).toBeLessThan(1 << 20);
  });

  it.each(['reuse-after-gp'] as const)(
    '%s: one CPU allocating and another freeing keeps the freeing CPU under its high watermark',
    (policy) => {
      const { arena, a, b } = setup(policy);
      for (let round = 0; round < 200; round++) {
        const ptrs = Array.from({ length: 100 }, () => a.alloc(SIZE));
        for (const ptr of ptrs) b.free(ptr);
        arena.advance('rcu');
        arena.advance('ttrace');
        b.poll();
        expect(cache(arena, 1).free).toBeLessThanOrEqual(96);
      }
      // Batches that passed their GP filled CPU 1's free list and were trimmed, not hoarded.
      expect(cache(arena, 1).trims).toBeGreaterThan(50);
      expect(arena.stats().bytesInUse).toBeLessThan(1 << 20);
    },
  );

  it('depot: a CPU over its high watermark parks a whole batch, another under its low takes it instead of the slab', () => {
    const arena = Arena.create({
      cpus: 2,
      maxBytes: 4 << 20,
      coordinator: 'manual',
      policy: { ...PRESETS['kernel-6.6'], trimVia: 'slab', sharing: 'depot' },
    });
    const a = arena.attach(0);
    const b = arena.attach(1);
    const ptrs = Array.from({ length: 200 }, () => a.alloc(SIZE));
    for (const ptr of ptrs) a.free(ptr);
    const parked = arena.stats();
    expect(parked.depot.parks).toBeGreaterThan(0);
    expect(parked.classes[CLS]?.depot).toBeGreaterThan(0);
    // CPU 1 drains its prefill and refills: a whole parked batch first (one step), the rest of
    // its refill batch from the slab.
    const got = Array.from({ length: 40 }, () => b.alloc(SIZE));
    expect(new Set(got).size).toBe(40);
    const after = arena.stats();
    expect(after.depot.takes).toBeGreaterThan(0);
    expect(after.classes[CLS]?.depot).toBeLessThan(parked.classes[CLS]?.depot as number);
    // Units came from CPU 0's trims.
    expect(got.filter((p) => ptrs.includes(p)).length).toBeGreaterThan(0);
    expect(() => Arena.create({ cpus: 1, policy: { ...PRESETS['kernel-6.6'], sharing: 'depot' } })).toThrow(
      /EINVAL.*sharing 'depot' needs trimVia 'slab'/,
    );
  });

  it('empty spans go back to the page allocator only after both GPs: never under a reader that may still hold a unit', () => {
    // Immediate reuse with trims straight to the slab: freed units reach the slab at once.
    const arena = Arena.create({
      cpus: 2,
      maxBytes: 4 << 20,
      coordinator: 'manual',
      policy: { ...PRESETS['kernel-6.6'], trimVia: 'slab' },
    });
    const a = arena.attach(0);
    const b = arena.attach(1);
    const ptrs = Array.from({ length: 2000 }, () => a.alloc(SIZE));
    const peak = arena.stats().bytesInUse;
    b.readLock();
    for (const ptr of ptrs) a.free(ptr);
    a.detach();
    expect(klass(arena).slabFree).toBeGreaterThan(1900);
    // Seen empty; the rcu GP it asks for cannot complete while CPU 1 reads.
    expect(arena.trim()).toBe(0);
    for (let k = 0; k < 4; k++) {
      arena.advance('rcu');
      arena.advance('ttrace');
    }
    expect(arena.trim()).toBe(0);
    expect(arena.stats().bytesInUse).toBe(peak);
    b.readUnlock();
    for (let k = 0; k < 2; k++) {
      arena.advance('rcu');
      arena.advance('ttrace');
    }
    expect(arena.trim()).toBeGreaterThan(0);
    expect(arena.stats().spansReleased).toBeGreaterThan(0);
  });

  it('prealloc: the per-CPU pool never trims', () => {
    const { arena, a } = setup('prealloc');
    const ptrs = Array.from({ length: 1000 }, () => a.alloc(SIZE));
    for (const ptr of ptrs) a.free(ptr);
    expect(cache(arena, 0).trims).toBe(0);
    expect(cache(arena, 0).free).toBeGreaterThanOrEqual(1000);
  });

  it('freeRcu defers under every preset: not reused while a reader that could hold it is inside its section', () => {
    for (const policy of PRESET_NAMES) {
      const { arena, a, b } = setup(policy);
      const ptr = a.alloc(SIZE);
      // A reader on the other CPU (CPUs that drive GPs themselves would complete one otherwise).
      b.readLock();
      a.freeRcu(ptr);
      const seen = new Set(Array.from({ length: 500 }, () => a.alloc(SIZE)));
      expect(seen.has(ptr), policy).toBe(false);
      expect(arena.stats().totals.deferred, policy).toBeGreaterThanOrEqual(1);
      b.readUnlock();
    }
  });
});

describe('poison debug option', () => {
  it('finds a write after free when the unit is handed out again, and nothing in a clean run', () => {
    for (const policy of ['kernel-6.6', 'reuse-after-gp'] as const) {
      const { arena, a } = setup(policy, { debug: { poison: true } });
      // Clean churn: no false alarm.
      for (let k = 0; k < 2000; k++) {
        const ptrs = Array.from({ length: 1 + (k % 7) }, () => a.alloc(SIZE));
        for (const ptr of ptrs) a.free(ptr);
        if (k % 100 === 0) passGps(arena, a);
      }
      expect(arena.stats().poison.errors, policy).toBe(0);
      // A write after free: the holder keeps using the unit.
      const ptr = a.alloc(SIZE);
      a.free(ptr);
      passGps(arena, a);
      a.bytes[ptr + 5] = 42;
      const again = Array.from({ length: 200 }, () => a.alloc(SIZE));
      expect(again, policy).toContain(ptr);
      expect(arena.stats().poison, policy).toEqual({ errors: 1, firstPtr: ptr });
    }
  });
});
