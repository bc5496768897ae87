/**
 * Grace periods in the deterministic mode (CPU handles on this thread, the coordinator stepped
 * by hand) and with the automatic coordinator on this thread's event loop: the advance rule,
 * nesting, idle / parked / detached CPUs, exhaustive interleavings of pin, advance and seal
 * (with an injected off-by-one to show the check can fail), synchronize() and its urgent wake-up,
 * GP timing emulation, doorbells, and synchronize() in a process with nothing else to do.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { pinValue, readEpoch } from '../src/epoch/grace-period.js';
import type { Pointer } from '../src/index.js';
import { Arena } from '../src/index.js';
import { CpuPool } from '../src/service/pool.js';
import {
  CPU_X_PIN,
  cpuWord,
  FLAVOR_RCU,
  G_URGENT,
  gpWord,
  readLayout,
  UNIT_ALLOCATED,
  UNIT_STATE_MASK,
  X_GP_REQUEST,
} from '../src/shm/layout.js';
import { createTestArena, type TestArenaOptions } from '../src/testing.js';

function manual(options: Partial<TestArenaOptions> = {}) {
  const arena = createTestArena({ cpus: 3, maxBytes: 4 << 20, coordinator: 'manual', ...options });
  return { arena, i32: new Int32Array(arena.shared.buffer) };
}

describe('the advance rule', () => {
  it('a CPU pinned at the current epoch allows one advance and blocks the next until it leaves', () => {
    const { arena } = manual();
    const a = arena.attach(0);
    arena.attach(1); // online, never in a section: never blocks
    a.readLock();
    expect(arena.advance('rcu')).toBe(true);
    expect(arena.advance('rcu')).toBe(false);
    expect(arena.advance('ttrace')).toBe(true); // flavors are independent
    expect(arena.advance('ttrace')).toBe(true);
    a.readUnlock();
    expect(arena.advance('rcu')).toBe(true);
    expect(arena.stats().gp.rcu.epoch).toBe(2);
  });

  it('nested sections stay pinned until the outermost unlock, per flavor', () => {
    const { arena } = manual();
    const a = arena.attach(0);
    a.readLock();
    a.readLock();
    a.readLockTrace();
    arena.advance('rcu');
    a.readUnlock();
    expect(arena.advance('rcu')).toBe(false);
    a.readUnlock();
    expect(arena.advance('rcu')).toBe(true);
    arena.advance('ttrace');
    expect(arena.advance('ttrace')).toBe(false);
    a.readUnlockTrace();
    expect(arena.advance('ttrace')).toBe(true);
    expect(() => a.readUnlock()).toThrow(/EINVAL.*without readLock/);
    expect(() => a.readUnlockTrace()).toThrow(/EINVAL/);
  });

  it('idle, parked and detached CPUs never hold a GP back; a CPU that detaches while pinned lets go', () => {
    const { arena } = manual();
    const a = arena.attach(0);
    const b = arena.attach(1);
    a.readLock();
    arena.advance('rcu');
    expect(arena.advance('rcu')).toBe(false);
    a.detach();
    for (let k = 0; k < 4; k++) expect(arena.advance('rcu')).toBe(true);
    expect(() => a.readUnlock()).toThrow(/ECLOSED/);
    expect(() => b.readLock()).not.toThrow();
    b.readUnlock();
    b.park();
    expect(() => b.readLock()).toThrow(/ECLOSED.*parked/);
    expect(arena.advance('rcu')).toBe(true);
    b.unpark();
    b.readLock();
    expect(() => b.park()).toThrow(/EBUSY/);
    b.readUnlock();
  });

  it('the manual synchronize() steps the epochs and reports a CPU that stays in its section', async () => {
    const { arena } = manual();
    const a = arena.attach(0);
    await arena.synchronize('rcu');
    expect(arena.stats().gp.rcu.epoch).toBe(2);
    a.readLock();
    await expect(arena.synchronize('rcu')).rejects.toThrow(/EBUSY.*CPU 0/);
    a.readUnlock();
  });
});

/** Every way to merge the actors' step lists, keeping each actor's order. */
function* interleavings(actors: readonly (readonly string[])[]): Generator<string[]> {
  const at = actors.map(() => 0);
  const out: string[] = [];
  const total = actors.reduce((n, a) => n + a.length, 0);
  function* go(): Generator<string[]> {
    if (out.length === total) {
      yield [...out];
      return;
    }
    for (let k = 0; k < actors.length; k++) {
      const actor = actors[k] as readonly string[];
      const i = at[k] as number;
      if (i === actor.length) continue;
      out.push(actor[i] as string);
      at[k] = i + 1;
      yield* go();
      at[k] = i;
      out.pop();
    }
  }
  yield* go();
}

/**
 * One interleaving of: a reader that loads the epoch, stores its pin (the two halves of
 * `readLock`), loads the published unit and, if it got one, holds it until it unpins; a writer
 * that unlinks the unit and frees it with freeRcu (which seals a batch), later polls its lists;
 * and three coordinator advances. Returns a description of the first violation, or null: the
 * unit the reader holds must not become reusable (leave the DEFERRED state) while it holds it.
 */
function runInterleaving(steps: readonly string[], options: Partial<TestArenaOptions>): string | null {
  // 1 MiB: a run holds a few units, and thousands of runs must not add up to gigabytes of
  // reserved buffers before the collector frees them (a later test forks a process).
  const { arena, i32 } = manual({ policy: 'reuse-after-gp', maxBytes: 1 << 20, ...options });
  const writer = arena.attach(0);
  arena.attach(1); // the reader's CPU slot; its pin is driven by hand below
  const pin = cpuWord(readLayout(i32), 1) + CPU_X_PIN + FLAVOR_RCU;
  let published: number = writer.alloc(40);
  const unit = published - 8;
  const generation = (i32[(unit >> 2) + 1] as number) >>> 2;
  let observed = 0;
  let holding = 0;
  for (const step of steps) {
    switch (step) {
      case 'R:observe':
        observed = readEpoch(i32, FLAVOR_RCU);
        break;
      case 'R:pin':
        Atomics.store(i32, pin, pinValue(observed));
        break;
      case 'R:read':
        holding = published;
        break;
      case 'R:unpin':
        Atomics.store(i32, pin, 0);
        holding = 0;
        break;
      case 'W:unlink+freeRcu': {
        const old = published;
        published = 0;
        writer.freeRcu(old as Pointer);
        break;
      }
      case 'W:poll':
        writer.poll();
        // A reuse attempt: allocate what the free list has, to see whether the unit comes back.
        for (let k = 0; k < 8; k++) writer.alloc(40);
        break;
      default:
        arena.advance('rcu');
    }
    if (holding !== 0) {
      const word = i32[(unit >> 2) + 1] as number;
      const reusable = (word & UNIT_STATE_MASK) !== 3 && (word & UNIT_STATE_MASK) !== UNIT_ALLOCATED;
      if (reusable || word >>> 2 !== generation) return `after ${step}: header ${word} in ${steps.join(' ')}`;
    }
  }
  void arena.close();
  return null;
}

describe('exhaustive small interleavings of pin, advance and seal', () => {
  const actors = [
    ['R:observe', 'R:pin', 'R:read', 'R:unpin'],
    ['W:unlink+freeRcu', 'W:poll'],
    ['A1', 'A2', 'A3'],
  ];

  it('in all 1260 interleavings the unit a reader holds stays unreusable until it unpins', () => {
    let count = 0;
    const failures: string[] = [];
    for (const steps of interleavings(actors)) {
      count++;
      const failure = runInterleaving(steps, {});
      if (failure !== null) failures.push(failure);
    }
    expect(count).toBe(1260);
    expect(failures).toEqual([]);
  });

  it('the same check fails when a batch counts as past its GP one epoch after its seal', () => {
    let failures = 0;
    for (const steps of interleavings(actors)) {
      if (runInterleaving(steps, { faults: { oneEpochGp: true } }) !== null) failures++;
    }
    expect(failures).toBeGreaterThan(0);
  });
});

// Capacity 1: each freeRcu seals its sheaf (one epoch request). Under sheafReady 'barn' (the
// kernel's rcu_free_sheaf) the sheaf goes to the barn after its GP, where the next alloc miss
// takes it; under 'cpu' (the arena-sheaves preset) the next alloc miss takes it straight from
// the CPU's sealed FIFO, and with gpDrive 'cpus' that miss may advance the epoch itself.
describe.each([
  ['barn', { cache: 'sheaves', sheafCapacity: 1, trimVia: 'slab', afterRcuGp: 'slab' }],
  [
    'cpu',
    {
      cache: 'sheaves',
      sheafCapacity: 1,
      trimVia: 'slab',
      afterRcuGp: 'slab',
      reuse: 'after-gp',
      sheafReady: 'cpu',
      gpDrive: 'cpus',
    },
  ],
] as const)(
  'the same interleavings on the rcu_free sheaf (sheafReady %s, one object per sheaf)',
  (_, policy) => {
    const actors = [
      ['R:observe', 'R:pin', 'R:read', 'R:unpin'],
      ['W:unlink+freeRcu', 'W:poll'],
      ['A1', 'A2', 'A3'],
    ];
    const sheaves = { policy } as const;

    it('no unit a reader holds is reused from a sealed sheaf before it unpins', () => {
      const failures: string[] = [];
      let count = 0;
      for (const steps of interleavings(actors)) {
        const failure = runInterleaving(steps, sheaves);
        if (failure !== null) failures.push(failure);
        count++;
      }
      expect(count).toBe(1260);
      expect(failures).toEqual([]);
    });

    it('the check fails under the oneEpochGp fault', () => {
      let failures = 0;
      for (const steps of interleavings(actors)) {
        if (runInterleaving(steps, { ...sheaves, faults: { oneEpochGp: true } }) !== null) failures++;
      }
      expect(failures).toBeGreaterThan(0);
    });
  },
);

describe('the automatic coordinator', () => {
  it('synchronize() waits for a reader on this thread and is woken by its readUnlock (urgent)', async () => {
    const arena = Arena.create({ cpus: 2 });
    const a = arena.attach(0);
    a.readLock();
    let done = false;
    const sync = arena.synchronize('rcu').then(() => {
      done = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(done).toBe(false);
    // The coordinator asked for an urgent quiescent state; the unlock answers with a ring.
    const i32 = new Int32Array(arena.shared.buffer);
    expect(Atomics.load(i32, gpWord(FLAVOR_RCU, G_URGENT))).toBe(1);
    const rings = Atomics.load(i32, X_GP_REQUEST);
    a.readUnlock();
    expect(Atomics.load(i32, X_GP_REQUEST)).toBeGreaterThan(rings);
    await sync;
    expect(arena.stats().gp.rcu.urgent).toBeGreaterThanOrEqual(1);
    expect(arena.stats().gp.rcu.completed).toBeGreaterThanOrEqual(1);
    await arena.close();
  });

  it('emulates minimum GP durations per flavor', async () => {
    const arena = Arena.create({ cpus: 1, gpMinMs: { rcu: 20, ttrace: 60 } });
    await arena.synchronize('rcu');
    await arena.synchronize('ttrace');
    for (const [flavor, ms] of [
      ['rcu', 20],
      ['ttrace', 60],
    ] as const) {
      const t0 = performance.now();
      await arena.synchronize(flavor);
      const took = performance.now() - t0;
      // Two advances, each at least `ms` after the one before: at least one whole epoch.
      expect(took).toBeGreaterThanOrEqual(ms - 1);
      expect(took).toBeLessThan(3 * ms + 200);
    }
    await arena.close();
  });

  it("rings an online CPU's doorbell, so deferred units move while its thread is idle", async () => {
    const arena = Arena.create({ cpus: 2, policy: 'reuse-after-gp' });
    const a = arena.attach(0);
    const ptrs = Array.from({ length: 40 }, () => a.alloc(24));
    for (const ptr of ptrs) a.free(ptr);
    const deferred = () => arena.stats().cpus[0]?.classes[1]?.deferred;
    expect(deferred()).toBe(40);
    // No further operation on CPU 0: only its doorbell listener can move the batches. The first
    // free sealed a batch of one; the other 39 piled up behind it (one batch in flight, as
    // call_rcu_in_progress) and are sealed when the doorbell moves the first: two GPs, plus
    // whatever rounds the listener's turn on the event loop takes.
    let rounds = 0;
    while (deferred() !== 0 && rounds < 10) {
      await arena.synchronize('rcu');
      await new Promise((resolve) => setImmediate(resolve));
      rounds++;
    }
    expect(deferred()).toBe(0);
    expect(rounds).toBeLessThan(10);
    expect(arena.stats().totals.reclaimed).toBe(40);
    await arena.close();
  });

  it("rings a worker CPU's doorbell: its listener moves the lists while the worker awaits", async () => {
    const arena = Arena.create({ cpus: 1, policy: 'reuse-after-gp' });
    const pool = CpuPool.start(arena);
    try {
      const control = new Int32Array(new SharedArrayBuffer(8));
      const run = pool.run(new URL('./fixtures/doorbell-task.ts', import.meta.url), 'freeThenIdle', {
        control: control.buffer,
      });
      while (Atomics.load(control, 0) === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      // Its freeRcu calls sealed the first unit and piled up the rest; from here on the worker
      // makes no arena call, so only its doorbell listener can move the pile.
      const deferred = () => arena.stats().cpus[0]?.classes[1]?.deferred;
      // stats() reads the worker's list words without stopping it: wait on the monotonic
      // reclaimed count, not on a deferred count that may read 0 halfway through a seal.
      const reclaimed = () => arena.stats().totals.reclaimed;
      for (let round = 0; round < 50 && (reclaimed() !== 40 || deferred() !== 0); round++) {
        await arena.synchronize('rcu');
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      expect(deferred()).toBe(0);
      expect(arena.stats().totals.reclaimed).toBe(40);
      expect(arena.stats().cpus[0]?.online).toBe(true); // still attached, never detached
      Atomics.store(control, 1, 1);
      await run;
    } finally {
      await pool.close();
      await arena.close();
    }
  });

  it("drains a parked CPU's deferred lists itself", async () => {
    const arena = Arena.create({ cpus: 2, policy: 'free-after-gp' });
    const a = arena.attach(0);
    const ptrs = Array.from({ length: 40 }, () => a.alloc(24));
    for (const ptr of ptrs) a.free(ptr);
    a.park();
    await arena.synchronize('rcu');
    await arena.synchronize('rcu');
    expect(arena.stats().cpus[0]?.classes[1]?.deferred).toBe(0);
    expect(arena.stats().classes[1]?.slabFree).toBeGreaterThanOrEqual(40);
    a.unpark();
    expect(a.alloc(24)).not.toBe(0);
    await arena.close();
  });

  it('close() fails pending synchronize() calls and later ones with ECLOSED', async () => {
    const arena = Arena.create({ cpus: 1 });
    const a = arena.attach(0);
    a.readLockTrace();
    const pending = arena.synchronize('ttrace');
    await arena.close();
    await expect(pending).rejects.toThrow(/ECLOSED/);
    await expect(arena.synchronize('rcu')).rejects.toThrow(/ECLOSED/);
  });

  it('synchronize() works in a process whose only pending work is that promise', () => {
    const fixture = fileURLToPath(new URL('./fixtures/synchronize-only.ts', import.meta.url));
    const out = execFileSync(process.execPath, ['--import', 'tsx', fixture], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(out).toContain('synchronized rcu');
    expect(out).toContain('synchronized ttrace');
  });
});

describe('bad input', () => {
  it('rejects unknown flavors, policies and GP options with EINVAL and creates nothing', async () => {
    const { arena } = manual();
    await expect(arena.synchronize('bh' as 'rcu')).rejects.toThrow(/EINVAL.*flavor/);
    expect(() => arena.advance('x' as 'rcu')).toThrow(/EINVAL/);
    expect(() => Arena.create({ cpus: 1 }).advance('rcu')).toThrow(/EINVAL.*manual/);
    expect(() => Arena.create({ cpus: 1, policy: 'kernel-5.0' as 'arena' })).toThrow(
      /EINVAL.*unknown preset/,
    );
    expect(() => Arena.create({ cpus: 1, policy: { reuse: 'sometimes' as 'immediate' } })).toThrow(
      /EINVAL.*policy.reuse/,
    );
    expect(() => Arena.create({ cpus: 1, policy: { color: 'red' } as never })).toThrow(
      /EINVAL.*unknown field/,
    );
    expect(() => Arena.create({ cpus: 1, gpMinMs: { rcu: -1 } })).toThrow(/EINVAL.*gpMinMs.rcu/);
    expect(() => Arena.create({ cpus: 1, gpMinMs: { ttrace: 0.5 } })).toThrow(/EINVAL.*gpMinMs.ttrace/);
    expect(() => Arena.create({ cpus: 1, gpMinMs: { bh: 1 } as never })).toThrow(/EINVAL.*unknown flavor/);
    expect(() => Arena.create({ cpus: 1, coordinator: 'sometimes' as 'auto' })).toThrow(/EINVAL/);
    const b = arena.attach(1);
    expect(() => b.unpark()).toThrow(/EINVAL.*not parked/);
  });
});
