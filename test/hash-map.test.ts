/**
 * The hash map on one thread: a fast-check model test against a JS Map under every preset and
 * both element sources (two CPUs of the deterministic mode take turns, so remote frees and the
 * pool's per-CPU lists are exercised), the kernel's update flags and errors, maxEntries, where
 * replaced elements go, and bad input that must leave the arena unchanged.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Arena, ArenaError } from '../src/index.js';
import { PRESET_NAMES } from '../src/lab/index.js';
import { HashMap, MapStatus, UpdateFlag } from '../src/structures/index.js';
import { killWhileHolding } from './helpers/lock-holder.js';

const KEY = 6;
const VALUE = 12;

function key(n: number): Uint8Array {
  const k = new Uint8Array(KEY);
  new DataView(k.buffer).setUint32(0, n, true);
  k[5] = n % 7;
  return k;
}

function value(n: number): Uint8Array {
  return new Uint8Array(VALUE).fill(n & 0xff);
}

function setup(policy: (typeof PRESET_NAMES)[number], prealloc: boolean, maxEntries = 24) {
  const arena = Arena.create({
    cpus: 2,
    maxBytes: 8 << 20,
    policy,
    coordinator: 'manual',
    fixedSizes: [HashMap.elementBytes(KEY, VALUE)],
  });
  const cpus = [arena.attach(0), arena.attach(1)];
  const ref = HashMap.create(arena, {
    keySize: KEY,
    valueSize: VALUE,
    maxEntries,
    prealloc,
    fixedCache: 0,
    seed: 7,
  });
  const maps = cpus.map((cpu) => HashMap.open(cpu, ref));
  return { arena, cpus, maps };
}

type Op =
  | { kind: 'update'; cpu: number; key: number; value: number; flags: UpdateFlag }
  | { kind: 'delete'; cpu: number; key: number }
  | { kind: 'lookup'; cpu: number; key: number }
  | { kind: 'gp' };

const keyArb = fc.integer({ min: 0, max: 40 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('update' as const),
      cpu: fc.integer({ min: 0, max: 1 }),
      key: keyArb,
      value: fc.nat({ max: 255 }),
      flags: fc.constantFrom(UpdateFlag.ANY, UpdateFlag.NOEXIST, UpdateFlag.EXIST),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('delete' as const),
      cpu: fc.integer({ min: 0, max: 1 }),
      key: keyArb,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('lookup' as const),
      cpu: fc.integer({ min: 0, max: 1 }),
      key: keyArb,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('gp' as const) }) },
);

describe('HashMap against a Map model', () => {
  const cases = [...PRESET_NAMES.map((p) => [p, false] as const), ['prealloc', true] as const];
  it.each(cases)('policy %s, prealloc %s', (policy, prealloc) => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 300 }), (ops) => {
        const maxEntries = 24;
        const { arena, maps } = setup(policy, prealloc, maxEntries);
        const model = new Map<number, number>();
        for (const op of ops) {
          if (op.kind === 'gp') {
            arena.advance('rcu');
            arena.advance('ttrace');
            continue;
          }
          const map = maps[op.cpu] as HashMap;
          if (op.kind === 'update') {
            const has = model.has(op.key);
            let expected: number = MapStatus.OK;
            if (has && op.flags === UpdateFlag.NOEXIST) expected = MapStatus.EXISTS;
            else if (!has && op.flags === UpdateFlag.EXIST) expected = MapStatus.NOT_FOUND;
            else if (!has && model.size >= maxEntries) expected = MapStatus.FULL;
            expect(map.update(key(op.key), value(op.value), op.flags)).toBe(expected);
            if (expected === MapStatus.OK) model.set(op.key, op.value);
          } else if (op.kind === 'delete') {
            expect(map.delete(key(op.key))).toBe(model.has(op.key) ? MapStatus.OK : MapStatus.NOT_FOUND);
            model.delete(op.key);
          } else {
            const got = map.get(key(op.key));
            expect(got === undefined ? undefined : got[0]).toBe(model.get(op.key));
          }
          expect(map.size).toBe(model.size);
        }
        const keys = (maps[0] as HashMap).keys().map((k) => new DataView(k.buffer).getUint32(0, true));
        expect(keys.sort((a, b) => a - b)).toEqual([...model.keys()].sort((a, b) => a - b));
        expect(maps.every((m) => m.restarts === 0)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });
});

describe('HashMap semantics', () => {
  it('an update links a new element: later lookups find the new value at a new place', () => {
    const { cpus, maps } = setup('kernel-6.6', false);
    const cpu = cpus[0];
    const map = maps[0] as HashMap;
    for (let i = 0; i < 20; i++) expect(map.update(key(i), value(i))).toBe(MapStatus.OK);
    cpu?.readLock();
    const before = map.lookup(key(3));
    expect(cpu?.bytes[before]).toBe(3);
    expect(map.update(key(3), value(99), UpdateFlag.EXIST)).toBe(MapStatus.OK);
    const after = map.lookup(key(3));
    expect(after).not.toBe(before);
    expect(cpu?.bytes[after]).toBe(99);
    cpu?.readUnlock();
  });

  it('a replaced or deleted element goes back through the allocator (deferred under reuse-after-gp)', () => {
    for (const policy of ['kernel-6.6', 'reuse-after-gp'] as const) {
      const { arena, maps } = setup(policy, false);
      const map = maps[0] as HashMap;
      map.update(key(1), value(1));
      const live = arena.stats().liveUnits;
      map.update(key(1), value(2));
      map.update(key(2), value(2));
      map.delete(key(2));
      const stats = arena.stats();
      if (policy === 'kernel-6.6') {
        expect(stats.liveUnits).toBe(live);
        expect(stats.totals.deferred).toBe(0);
      } else {
        expect(stats.totals.deferred).toBe(2);
      }
    }
  });

  it('prealloc: memory is taken once at create and never grows; the pool limits entries', () => {
    const { arena, maps } = setup('prealloc', true, 16);
    const pages = arena.stats().bytesInUse;
    const map = maps[1] as HashMap;
    for (let i = 0; i < 16; i++) expect(map.update(key(i), value(i))).toBe(MapStatus.OK);
    expect(map.update(key(16), value(16))).toBe(MapStatus.FULL);
    // Overwrites use the CPU's extra element, so a full map can still be updated.
    for (let round = 0; round < 5; round++) expect(map.update(key(3), value(round))).toBe(MapStatus.OK);
    // Elements deleted on CPU 1 are taken from CPU 1's list by CPU 0 (pcpu_freelist_pop steals).
    for (let i = 0; i < 16; i++) expect(map.delete(key(i))).toBe(MapStatus.OK);
    for (let i = 0; i < 16; i++) expect(maps[0]?.update(key(i), value(i))).toBe(MapStatus.OK);
    expect(arena.stats().bytesInUse).toBe(pages);
    expect(arena.stats().liveUnits).toBe(0);
  });

  it('a lookup that strays into another chain (a reused element) restarts and then finds its key', () => {
    const arena = Arena.create({ cpus: 1, maxBytes: 4 << 20, coordinator: 'manual' });
    const cpu = arena.attach(0);
    const options = { keySize: 4, valueSize: VALUE, maxEntries: 2, seed: 1 };
    const map = HashMap.open(cpu, HashMap.create(arena, options));
    const other = HashMap.open(cpu, HashMap.create(arena, options));
    const k = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
    const elementOf = (m: HashMap, n: number) => {
      cpu.readLock();
      const value = m.lookup(k(n));
      cpu.readUnlock();
      return value - 16; // next, hash, the 4-byte key rounded to 8
    };
    // Two keys in one bucket: 1 inserted first, then a key n whose element F sits in front of
    // it (insertion is at the head), so a lookup of 1 walks through F.
    map.update(k(1), value(1));
    const behind = elementOf(map, 1);
    let front = 0;
    for (let n = 2; front === 0; n++) {
      if (n > 200) throw new Error('no two keys share a bucket');
      map.update(k(n), value(n));
      if (cpu.i32[elementOf(map, n) >> 2] === behind) front = elementOf(map, n);
      else map.delete(k(n));
    }
    other.update(k(999), value(9));
    // F "was freed and reused" as an element of the other map: its next now leads into that
    // map's chain, which ends in the other map's nulls marker.
    cpu.i32[front >> 2] = elementOf(other, 999);
    // The writer finishes before the reader's second try (what the restart waits for).
    map.onRestart = () => {
      cpu.i32[front >> 2] = behind;
    };
    expect(map.get(k(1))?.[0]).toBe(1);
    expect(map.restarts).toBe(1);
    // Without a nulls check the first walk would have ended at the other map's marker and
    // reported the key missing; a chain that never comes back is corruption, not a race.
    map.onRestart = undefined;
    cpu.i32[front >> 2] = elementOf(other, 999);
    expect(() => map.get(k(1))).toThrow(/EBADARENA.*never ends/);
  });

  it('the map region is in the arena memory in use', () => {
    const arena = Arena.create({ cpus: 1, maxBytes: 4 << 20, coordinator: 'manual' });
    const before = arena.stats().bytesInUse;
    HashMap.create(arena, { keySize: 4, valueSize: 8, maxEntries: 8192 });
    // 8192 buckets of 8 bytes plus the header: 17 pages.
    expect(arena.stats().bytesInUse - before).toBe(17 * 4096);
  });
});

describe('HashMap bad input: clear errors, nothing changed', () => {
  const expectError = (fn: () => unknown, code: string, text: RegExp) => {
    let error: unknown;
    try {
      fn();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ArenaError);
    expect((error as ArenaError).code).toBe(code);
    expect((error as ArenaError).message).toMatch(text);
  };

  it('create: bad sizes, fixed cache, no room', () => {
    const arena = Arena.create({ cpus: 1, maxBytes: 64 * 4096, coordinator: 'manual', fixedSizes: [16] });
    const bytes = arena.stats().bytesInUse;
    const ok = { keySize: 4, valueSize: 8, maxEntries: 64 };
    expectError(() => HashMap.create(arena, { ...ok, keySize: 0 }), 'EINVAL', /keySize/);
    expectError(() => HashMap.create(arena, { ...ok, valueSize: 4097 }), 'EINVAL', /valueSize/);
    expectError(() => HashMap.create(arena, { ...ok, valueSize: 4090 }), 'EINVAL', /does not fit/);
    expectError(() => HashMap.create(arena, { ...ok, maxEntries: 1.5 }), 'EINVAL', /maxEntries/);
    expectError(() => HashMap.create(arena, { ...ok, fixedCache: 1 }), 'EINVAL', /not a fixed-size cache/);
    expectError(() => HashMap.create(arena, { ...ok, fixedCache: 0 }), 'EINVAL', /needs 24/);
    expectError(() => HashMap.create(arena, { ...ok, maxEntries: 1 << 20 }), 'ENOMEM', /no room/);
    expectError(() => HashMap.create({} as Arena, ok), 'EINVAL', /needs an arena/);
    expect(arena.stats().bytesInUse).toBe(bytes);
  });

  it('open, lookup, update, delete: wrong ref, key, value, flags; lookup outside a section', () => {
    const { arena, cpus, maps } = setup('kernel-6.6', false);
    const map = maps[0] as HashMap;
    map.update(key(1), value(1));
    const stats = JSON.stringify(arena.stats());
    expectError(() => HashMap.open(cpus[0] as never, (4096 * 3) as never), 'EINVAL', /not a map/);
    expectError(() => HashMap.open(cpus[0] as never, 12 as never), 'EINVAL', /not a map/);
    expectError(() => map.update(new Uint8Array(5), value(1)), 'EINVAL', /key must be/);
    expectError(() => map.update(key(1), new Uint8Array(3)), 'EINVAL', /value must be/);
    expectError(() => map.update(key(1), value(1), 3 as UpdateFlag), 'EINVAL', /bad flags/);
    expectError(() => map.delete(new Uint8Array(7)), 'EINVAL', /key must be/);
    expectError(() => map.lookup(key(1)), 'EINVAL', /inside readLock/);
    expect(JSON.stringify(arena.stats())).toBe(stats);
    expect(map.get(key(1))?.[0]).toBe(1);
  });

  it('update and delete on a parked or detached handle: ECLOSED before any lock is taken', () => {
    const { cpus, maps } = setup('kernel-6.6', false);
    const [a, b] = cpus as [NonNullable<(typeof cpus)[0]>, NonNullable<(typeof cpus)[1]>];
    const [onA, onB] = maps as [HashMap, HashMap];
    onA.update(key(1), value(1));
    a.park();
    expectError(() => onA.update(key(1), value(2)), 'ECLOSED', /detached|parked/);
    expectError(() => onA.delete(key(1)), 'ECLOSED', /detached|parked/);
    // The bucket is not left locked: the other CPU updates and deletes the same key.
    expect(onB.update(key(1), value(3))).toBe(MapStatus.OK);
    expect(onB.delete(key(1))).toBe(MapStatus.OK);
    a.unpark();
    b.detach();
    expectError(() => onB.update(key(2), value(2)), 'ECLOSED', /detached|parked/);
    expect(onA.update(key(2), value(2))).toBe(MapStatus.OK);
  });
});

describe('HashMap and crash recovery', () => {
  const k4 = (n: number) => Uint8Array.of(n, 0, 0, 0);
  const v8 = (n: number) => new Uint8Array(8).fill(n);

  it('a dead thread cut between linking a new element and unlinking the old: recovery unlinks the stale copy', () => {
    const arena = Arena.create({ cpus: 1, maxBytes: 8 << 20, policy: 'arena', coordinator: 'manual' });
    const cpu = arena.attach(0);
    // One bucket, so every key shares its chain and its lock.
    const ref = HashMap.create(arena, { keySize: 4, valueSize: 8, maxEntries: 1 });
    const map = HashMap.open(cpu, ref);
    const i32 = cpu.i32;
    const elementOf = (n: number) => {
      cpu.readLock();
      const value = map.lookup(k4(n));
      cpu.readUnlock();
      return value - 16; // next, hash, the 4-byte key rounded to 8
    };
    map.update(k4(1), v8(1));
    const old = elementOf(1);
    map.update(k4(1), v8(2));
    const fresh = elementOf(1);
    // What a thread killed inside that update leaves: the new element at the head, the old one
    // still behind it, and the bucket lock naming the thread.
    i32[old >> 2] = i32[fresh >> 2] as number;
    i32[fresh >> 2] = old;
    const lock = ((i32[(ref >> 2) + 9] as number) >> 2) + 1;
    const deadThread = 4242;
    Atomics.store(i32, lock, ((deadThread + 1) << 2) | 1);
    const report = arena.recoverThread(deadThread);
    expect(report.locksReleased).toBe(1);
    expect(report.droppedUnits).toBe(1);
    expect(Atomics.load(i32, lock)).toBe(0);
    // Without the repair, deleting the key would uncover the stale copy.
    expect(map.delete(k4(1))).toBe(MapStatus.OK);
    expect(map.get(k4(1))).toBeUndefined();
  });

  it('prealloc: an overwrite cut after linking, before the unlink and the swap: the stale copy becomes the extra', () => {
    const arena = Arena.create({ cpus: 1, maxBytes: 8 << 20, policy: 'arena', coordinator: 'manual' });
    const cpu = arena.attach(0);
    const ref = HashMap.create(arena, { keySize: 4, valueSize: 8, maxEntries: 1, prealloc: true });
    const map = HashMap.open(cpu, ref);
    const i32 = cpu.i32;
    const elementOf = () => {
      cpu.readLock();
      const value = map.lookup(k4(1));
      cpu.readUnlock();
      return value - 16;
    };
    map.update(k4(1), v8(1));
    const old = elementOf();
    const m = ref >> 2;
    const extraWord = m + 32 + 1; // CPU 0's block: count, extra, …
    const extra = i32[extraWord] as number;
    // The cut: the extra filled as the new element and linked in front of the old one; the old
    // one not yet unlinked, the extra not yet swapped.
    i32[(extra >> 2) + 1] = i32[(old >> 2) + 1] as number;
    i32[(extra >> 2) + 2] = i32[(old >> 2) + 2] as number;
    i32[extra >> 2] = old;
    const lock = ((i32[m + 9] as number) >> 2) + 1;
    Atomics.store(i32, (i32[m + 9] as number) >> 2, extra);
    Atomics.store(i32, lock, ((4444 + 1) << 2) | 1);
    const report = arena.recoverThread(4444);
    expect(report.locksReleased).toBe(1);
    // The old copy is off the chain and is the CPU's extra again; the linked one is not.
    expect(i32[extraWord]).toBe(old);
    for (let n = 0; n < 20; n++) expect(map.update(k4(1), v8(n))).toBe(MapStatus.OK);
    expect(map.get(k4(1))?.[0]).toBe(19);
    expect(map.delete(k4(1))).toBe(MapStatus.OK);
    expect(map.get(k4(1))).toBeUndefined();
  });

  it('a worker killed holding a bucket lock: recovery releases it and updates go on', async () => {
    const arena = Arena.create({ cpus: 1, maxBytes: 8 << 20, policy: 'arena' });
    const ref = HashMap.create(arena, { keySize: 4, valueSize: 8, maxEntries: 1 });
    const i32 = new Int32Array(arena.shared.buffer);
    const lock = ((i32[(ref >> 2) + 9] as number) >> 2) + 1;
    await killWhileHolding(arena, lock);
    expect(arena.recoveries.at(-1)?.locksReleased).toBe(1);
    const map = HashMap.open(arena.attach(0), ref);
    expect(map.update(k4(7), v8(7))).toBe(MapStatus.OK);
    expect(map.get(k4(7))?.[0]).toBe(7);
    await arena.close();
  });
});
