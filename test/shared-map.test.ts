/**
 * SharedMap (src/service/shared-map.ts), the service-level map: a fast-check model test against a JS Map
 * (string and byte keys, byte / string / JSON values, small and large, GPs and reclaims between
 * steps, two CPUs taking turns), memory coming back after everything is deleted, bad input that
 * changes nothing, a full map, and two piscina workers sharing one map through
 * `SharedMap.open` with their slots given back when the pool ends.
 */
import fc from 'fast-check';
import { Piscina } from 'piscina';
import { describe, expect, it } from 'vitest';
import {
  Arena,
  ArenaError,
  SharedMap,
  type SharedMapKey,
  type SharedMapValue,
  watchPool,
} from '../src/index.js';
import { PackAllocator, type PackRef } from '../src/structures/index.js';

const keyArb: fc.Arbitrary<SharedMapKey> = fc.oneof(
  fc.constantFrom('a', 'b', 'key', 'ключ', '🔑', 'x'.repeat(40)),
  fc.constantFrom(Uint8Array.of(0x61), Uint8Array.of(0, 1, 2), Uint8Array.of(255)),
);
const valueArb: fc.Arbitrary<SharedMapValue> = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.uint8Array({ maxLength: 40 }),
  fc.record({
    n: fc.integer(),
    s: fc.string({ maxLength: 10 }),
    list: fc.array(fc.boolean(), { maxLength: 5 }),
  }),
  fc.integer({ min: 4090, max: 30_000 }).map((n) => 'L'.repeat(n)),
  fc.constantFrom(null, 0, true, ''),
);
const opArb = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({ kind: fc.constant('set' as const), cpu: fc.nat(1), key: keyArb, value: valueArb }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), cpu: fc.nat(1), key: keyArb }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('get' as const), cpu: fc.nat(1), key: keyArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('gp' as const) }) },
);

const id = (key: SharedMapKey): string => (typeof key === 'string' ? `s:${key}` : `b:${[...key].join(',')}`);

function setup(maxEntries = 64) {
  const arena = Arena.create({ cpus: 2, maxBytes: 64 << 20, policy: 'arena', coordinator: 'manual' });
  const cpus = [arena.attach(0), arena.attach(1)] as const;
  const ref = SharedMap.create(arena, { maxEntries, maxKeyBytes: 200, maxValueBytes: 40_000 });
  return { arena, maps: [SharedMap.open(cpus[0], ref), SharedMap.open(cpus[1], ref)] as const };
}

describe('SharedMap against a Map model', () => {
  it('get, set, delete, has, size, keys; memory comes back', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 10, maxLength: 120, size: 'max' }), (ops) => {
        const { arena, maps } = setup();
        const model = new Map<string, { key: SharedMapKey; value: SharedMapValue }>();
        for (const op of ops) {
          if (op.kind === 'gp') {
            arena.advance('rcu');
            arena.advance('ttrace');
            for (const m of maps) m.reclaim();
            continue;
          }
          const map = maps[op.cpu] as SharedMap;
          if (op.kind === 'set') {
            expect(map.set(op.key, op.value)).toBe(true);
            model.set(id(op.key), { key: op.key, value: op.value });
          } else if (op.kind === 'delete') {
            expect(map.delete(op.key)).toBe(model.delete(id(op.key)));
          } else {
            expect(map.get(op.key)).toEqual(model.get(id(op.key))?.value);
            expect(map.has(op.key)).toBe(model.has(id(op.key)));
          }
          expect(map.size).toBe(model.size);
        }
        expect(maps[0].keys().map(id).sort()).toEqual([...model.keys()].sort());
        expect(new Map([...maps[1]].map(([k, v]) => [id(k), v]))).toEqual(
          new Map([...model].map(([k, e]) => [k, e.value])),
        );
        for (const { key } of model.values()) expect(maps[0].delete(key)).toBe(true);
        for (let i = 0; i < 3; i++) {
          arena.advance('rcu');
          arena.advance('ttrace');
        }
        expect(maps[0].reclaim() + maps[1].reclaim()).toBe(0);
        expect(arena.stats().liveUnits).toBe(0);
      }),
      { numRuns: 40 },
    );
  });

  it('a large value replaced goes back to the arena only after a grace period', () => {
    const { arena, maps } = setup();
    const [map] = maps;
    map.set('big', 'x'.repeat(30_000));
    const inUse = arena.stats().bytesInUse;
    map.set('big', 'y'.repeat(30_000));
    expect(map.reclaim()).toBe(1);
    arena.advance('rcu');
    expect(map.reclaim()).toBe(1); // one epoch is not a grace period
    arena.advance('rcu');
    expect(map.reclaim()).toBe(0);
    expect(arena.stats().bytesInUse).toBeLessThanOrEqual(inUse);
    expect((map.get('big') as string)[0]).toBe('y');
  });
});

describe('SharedMap memory across handles', () => {
  it('large values replaced through short-lived handles are freed by whoever writes next', () => {
    const { arena, maps } = setup();
    const cpu = maps[0].cpu;
    // A handle per task, as a piscina task that opens the map each time.
    for (let task = 0; task < 50; task++) {
      SharedMap.open(cpu, maps[0].ref).set('k', `${task}`.padEnd(6000, '.'));
      arena.advance('rcu');
    }
    arena.advance('rcu');
    arena.advance('rcu');
    expect(SharedMap.open(cpu, maps[0].ref).reclaim()).toBe(0);
    // One live value: one pack block, and in the slab only the map's element.
    expect(arena.stats().liveUnits).toBe(1);
    const packRef = new Int32Array(arena.shared.buffer)[(maps[0].ref >> 2) + 2] as PackRef;
    expect(PackAllocator.open(arena, packRef).stats().blocks).toBe(1);
    expect((maps[1].get('k') as string).startsWith('49')).toBe(true);
  });

  it('a write on a parked handle fails before allocating anything', () => {
    const { arena, maps } = setup();
    maps[1].set('big', 'x'.repeat(6000));
    const before = JSON.stringify(arena.stats());
    maps[0].cpu.park();
    expect(() => maps[0].set('big2', 'y'.repeat(6000))).toThrow(/ECLOSED/);
    expect(() => maps[0].delete('big')).toThrow(/ECLOSED/);
    maps[0].cpu.unpark();
    expect(JSON.stringify(arena.stats())).toBe(before);
  });

  it('create without room leaves nothing allocated', () => {
    const arena = Arena.create({ cpus: 1, maxBytes: 1 << 20, policy: 'arena', coordinator: 'manual' });
    const before = arena.stats().bytesInUse;
    expect(() => SharedMap.create(arena, { maxEntries: 1 << 20 })).toThrow(/ENOMEM/);
    expect(arena.stats().bytesInUse).toBe(before);
  });
});

describe('SharedMap bad input: clear errors, nothing changed', () => {
  it('keys, values, options, policies', () => {
    const { arena, maps } = setup(4);
    const [map] = maps;
    map.set('kept', 'v');
    const before = JSON.stringify(arena.stats());
    const code = (fn: () => unknown): string | undefined => {
      try {
        fn();
      } catch (e) {
        return e instanceof ArenaError ? e.code : `not an ArenaError: ${String(e)}`;
      }
      return undefined;
    };
    for (const key of ['', 'k'.repeat(201), 42, null, undefined, new Uint8Array(0)]) {
      expect(code(() => map.set(key as SharedMapKey, 'v'))).toBe('EINVAL');
      expect(code(() => map.get(key as SharedMapKey))).toBe('EINVAL');
      expect(code(() => map.delete(key as SharedMapKey))).toBe('EINVAL');
    }
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    for (const value of ['v'.repeat(40_001), new Uint8Array(40_001), 10n, undefined, () => 1, circular]) {
      expect(code(() => map.set('k', value as SharedMapValue))).toBe('EINVAL');
    }
    expect(code(() => SharedMap.create(arena, { maxEntries: 0 }))).toBe('EINVAL');
    expect(code(() => SharedMap.create(arena, { maxEntries: 4, maxKeyBytes: 600 }))).toBe('EINVAL');
    expect(code(() => SharedMap.open(map.cpu, 4096 as never))).toBe('EINVAL');
    const immediate = Arena.create({
      cpus: 1,
      maxBytes: 8 << 20,
      policy: 'kernel-6.6',
      coordinator: 'manual',
    });
    expect(code(() => SharedMap.create(immediate, { maxEntries: 4 }))).toBe('EINVAL');
    expect(JSON.stringify(arena.stats())).toBe(before);
    expect(map.keys()).toEqual(['kept']);
  });

  it('a full map refuses a new key and keeps what it has', () => {
    const { maps } = setup(2);
    const [map] = maps;
    expect(map.set('a', 1)).toBe(true);
    expect(map.set('b', 2)).toBe(true);
    // maxEntries may be passed by one entry per CPU (the kernel's per-CPU count), not more.
    let added = 0;
    for (let i = 0; i < 10; i++) if (map.set(`c${i}`, i)) added++;
    expect(added).toBeLessThanOrEqual(2);
    expect(map.get('a')).toBe(1);
    expect(map.set('a', 'replaced')).toBe(true);
  });
});

describe('SharedMap in piscina workers', () => {
  it('two workers share one map; each claims a slot on its first task and gives it back when the pool ends', async () => {
    const arena = Arena.create({ cpus: 3, maxBytes: 64 << 20, policy: 'arena' });
    const ref = SharedMap.create(arena, { maxEntries: 4096, maxValueBytes: 16_384 });
    const pool = new Piscina({
      filename: new URL('./fixtures/shared-map-task.ts', import.meta.url).href,
      name: 'writeOwnKeys',
      atomics: 'async',
      minThreads: 2,
      maxThreads: 2,
      execArgv: ['--import', import.meta.resolve('tsx')],
    });
    watchPool(arena, pool);
    try {
      const results = (await Promise.all(
        [0, 1].map((writer) => pool.run({ shared: arena.shared, ref, writer, keys: 200, rounds: 8 })),
      )) as [number, number, number][];
      expect(results.map((r) => r[1])).toEqual([0, 0]);
      expect(new Set(results.map((r) => r[0])).size).toBe(2);
      // The main thread reads what the workers left: every key not deleted in the last round.
      const main = SharedMap.open(arena.attach(2), ref);
      for (const writer of [0, 1]) {
        for (let k = 0; k < 200; k++) {
          const value = main.get(`w${writer}:${k}`);
          if (k % 5 === 0) expect(value).toBeUndefined();
          else expect(JSON.stringify(value)).toContain(`w${writer}:${k}`);
        }
      }
      expect(arena.stats().cpus.filter((c) => c.online).length).toBe(3);
      await pool.destroy();
      for (let k = 0; k < 50 && arena.stats().cpus.filter((c) => c.online).length > 1; k++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(
        arena
          .stats()
          .cpus.filter((c) => c.online)
          .map((c) => c.cpu),
      ).toEqual([2]);
    } finally {
      await pool.destroy();
      await arena.close();
    }
  });
});
