/**
 * SharedMap as a cache: a fast-check model test of eviction (maxEntries, maxBytes) and TTL
 * against a Map with deadlines — a get returns the model's value or, for a key the map evicted,
 * undefined (every such loss is counted in `evictions`), never a deleted or expired value; the
 * bounds hold after every step; a set that succeeds keeps its own key. Then CLOCK's promise (a
 * key read since the hand last passed survives while unread keys exist), the Map-like surface,
 * `destroy` giving the memory back, and the per-map metrics.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Arena, ArenaError, SharedMap, type SharedMapOptions } from '../src/index.js';
import { sharedMapMetrics } from '../src/service/metrics.js';

function setup(options: Omit<SharedMapOptions, 'maxValueBytes'> & { maxValueBytes?: number }) {
  const arena = Arena.create({ cpus: 1, maxBytes: 128 << 20, policy: 'arena', coordinator: 'manual' });
  const cpu = arena.attach(0);
  const ref = SharedMap.create(arena, { maxKeyBytes: 32, maxValueBytes: 20_000, ...options });
  const map = SharedMap.open(cpu, ref);
  const clock = { now: 1000 };
  map.clock = () => clock.now;
  return { arena, cpu, ref, map, clock };
}

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return e instanceof ArenaError ? e.code : `not an ArenaError: ${String(e)}`;
  }
  return undefined;
};

const keyArb = fc.integer({ min: 0, max: 15 }).map((k) => `k${k}`);
const opArb = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      key: keyArb,
      size: fc.oneof(
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 900, max: 1100 }),
        fc.constant(6000),
      ),
      ttl: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 50 })),
    }),
  },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('get' as const), key: keyArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: keyArb }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 30 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('gp' as const) }) },
);

describe('SharedMap eviction and TTL against a model', () => {
  it.each([
    ['maxEntries 6', { maxEntries: 6, evict: true }],
    ['maxBytes 8 KiB', { maxEntries: 64, maxBytes: 8192, evict: true }],
    ['both, and a default TTL', { maxEntries: 5, maxBytes: 12_288, evict: true, ttlMs: 40 }],
  ] as const)('%s', (_, options) => {
    let totalLost = 0;
    let totalExpired = 0;
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 20, maxLength: 150 }), (ops) => {
        const { arena, map, clock } = setup(options);
        const model = new Map<string, { value: Uint8Array; deadline: number }>();
        let lost = 0;
        let version = 0;
        const live = (key: string) => {
          const entry = model.get(key);
          return entry !== undefined && (entry.deadline === 0 || clock.now < entry.deadline)
            ? entry
            : undefined;
        };
        for (const op of ops) {
          if (op.kind === 'tick') clock.now += op.ms;
          else if (op.kind === 'gp') {
            arena.advance('rcu');
            map.reclaim();
          } else if (op.kind === 'set') {
            const value = new Uint8Array(op.size).fill(++version & 0xff);
            const ok: boolean = map.set(op.key, value, op.ttl === 0 ? {} : { ttlMs: op.ttl });
            // Only a value larger than the whole budget can be refused: the map evicts for the rest.
            // Every value here fits the budget, so an evicting map makes room for it.
            expect(ok).toBe(true);
            const ttl = op.ttl === 0 ? ((options as SharedMapOptions).ttlMs ?? 0) : op.ttl;
            model.set(op.key, { value, deadline: ttl === 0 ? 0 : clock.now + ttl });
            expect(map.has(op.key)).toBe(true);
          } else if (op.kind === 'delete') {
            const had = map.has(op.key);
            expect(map.delete(op.key)).toBe(had);
            model.delete(op.key);
          } else {
            const got = map.get(op.key) as Uint8Array | undefined;
            const want = live(op.key);
            if (want === undefined) expect(got).toBeUndefined();
            else if (got !== undefined) expect(Buffer.compare(got, want.value)).toBe(0);
          }
          // Keys the model holds (live) that the map no longer has were evicted: count them.
          for (const key of [...model.keys()]) {
            if (live(key) === undefined) {
              expect(map.has(key)).toBe(false);
              model.delete(key);
            } else if (!map.has(key)) {
              lost++;
              model.delete(key);
            }
          }
          for (const key of map.keys()) expect(live(key as string)).toBeDefined();
          const stats = map.stats();
          expect(stats.entries).toBeLessThanOrEqual(options.maxEntries);
          expect(stats.bytes).toBeLessThanOrEqual(
            (options as SharedMapOptions).maxBytes ?? Number.POSITIVE_INFINITY,
          );
          // Every loss was an eviction (the hand may also have evicted entries a later step
          // overwrote or found expired, so evictions may be more).
          expect(stats.evictions).toBeGreaterThanOrEqual(lost);
        }
        const stats = map.stats();
        expect(stats.evictions + stats.expired).toBeGreaterThanOrEqual(lost);
        totalLost += lost;
        totalExpired += stats.expired;
      }),
      { numRuns: 60 },
    );
    // The runs did evict and expire entries (a model test that never evicts proves nothing).
    expect(totalLost).toBeGreaterThan(20);
    if ('ttlMs' in options) expect(totalExpired).toBeGreaterThan(20);
  });

  it('a refused set (a value larger than maxBytes) changes nothing', () => {
    const { map } = setup({ maxEntries: 8, maxBytes: 4096, evict: true });
    map.set('kept', 'v');
    expect(map.set('huge', new Uint8Array(6000))).toBe(false);
    expect(map.get('kept')).toBe('v');
    expect(map.stats().evictions).toBe(0);
  });

  it('without evict, a full map refuses new keys, by entries and by bytes', () => {
    const { map } = setup({ maxEntries: 4, maxBytes: 4096 });
    for (let k = 0; k < 4; k++) expect(map.set(`k${k}`, 1)).toBe(true);
    expect(map.set('k4', 1)).toBe(false);
    expect(map.set('k0', new Uint8Array(3900))).toBe(false); // 128 x 4 + 4096 > 4096
    expect(map.stats().evictions).toBe(0);
    expect(map.keys().sort()).toEqual(['k0', 'k1', 'k2', 'k3']);
  });
});

describe('CLOCK', () => {
  it('keys read since the hand last passed survive while unread keys remain', () => {
    const { map } = setup({ maxEntries: 64, evict: true });
    for (let k = 0; k < 64; k++) map.set(`old${k}`, k);
    // New entries start referenced: the first eviction sweeps them all once (clearing every
    // bit) and takes one; after 8, the old keys left are unreferenced.
    for (let k = 0; k < 8; k++) map.set(`warm${k}`, k);
    const kept = (map.keys() as string[]).filter((key) => key.startsWith('old')).slice(0, 16);
    expect(kept.length).toBe(16);
    for (const key of kept) expect(map.get(key)).toBeDefined();
    // 30 more evictions: 40 unread old keys are there to take, all met before the hand comes
    // round to a read key a second time.
    for (let k = 0; k < 30; k++) expect(map.set(`new${k}`, k)).toBe(true);
    for (const key of kept) expect(map.has(key)).toBe(true);
    expect(map.size).toBe(64);
    expect(map.stats().evictions).toBe(38);
  });

  it('expired entries go before live ones, counted as expired', () => {
    const { map, clock } = setup({ maxEntries: 8, evict: true });
    for (let k = 0; k < 4; k++) map.set(`short${k}`, k, { ttlMs: 10 });
    for (let k = 0; k < 4; k++) map.set(`long${k}`, k);
    clock.now += 10;
    expect(map.get('short0')).toBeUndefined();
    expect(map.has('short1')).toBe(false);
    expect(map.keys().sort()).toEqual(['long0', 'long1', 'long2', 'long3']);
    for (let k = 0; k < 4; k++) map.set(`next${k}`, k);
    const stats = map.stats();
    expect(stats.expired).toBe(4);
    expect(stats.evictions).toBe(0);
    for (let k = 0; k < 4; k++) expect(map.get(`long${k}`)).toBe(k);
  });

  it('TTL: present until the deadline, a miss from it on; bad TTLs are EINVAL', () => {
    const { map, clock } = setup({ maxEntries: 8, ttlMs: 100 });
    map.set('a', 1);
    map.set('b', 2, { ttlMs: 0 });
    clock.now += 99;
    expect(map.get('a')).toBe(1);
    clock.now += 1;
    expect(map.get('a')).toBeUndefined();
    expect(map.get('b')).toBe(2);
    for (const ttlMs of [-1, 1.5, 2 ** 31, Number.NaN])
      expect(code(() => map.set('c', 3, { ttlMs }))).toBe('EINVAL');
    expect(map.has('c')).toBe(false);
    expect(code(() => SharedMap.create({} as never, { maxEntries: 4 }))).toBe('EINVAL');
  });
});

describe('SharedMap, Map-like', () => {
  it('size, clear, entries, values, forEach, iteration', () => {
    const { arena, map } = setup({ maxEntries: 64 });
    for (let k = 0; k < 20; k++) map.set(`k${k}`, k);
    map.set('big', 'x'.repeat(6000));
    expect(map.size).toBe(21);
    expect(new Set(map.values())).toEqual(
      new Set([...Array.from({ length: 20 }, (_, k) => k), 'x'.repeat(6000)]),
    );
    const seen: [unknown, unknown][] = [];
    map.forEach((value, key, self) => {
      expect(self).toBe(map);
      seen.push([key, value]);
    });
    expect(new Map(seen)).toEqual(new Map([...map]));
    expect(map.clear()).toBe(21);
    expect(map.size).toBe(0);
    expect([...map]).toEqual([]);
    for (let i = 0; i < 3; i++) {
      arena.advance('rcu');
      arena.advance('ttrace');
    }
    expect(map.reclaim()).toBe(0);
    expect(arena.stats().liveUnits).toBe(0);
    expect(map.set('again', 1)).toBe(true);
  });

  it('destroy frees the table, the header and every value; the ref is gone', () => {
    const { arena, cpu, ref, map } = setup({ maxEntries: 10_000 });
    for (let k = 0; k < 2000; k++) map.set(`k${k}`, new Uint8Array(k % 3 === 0 ? 6000 : 100));
    const { tableBytes } = map.stats();
    const before = arena.stats().bytesInUse;
    map.destroy();
    for (let i = 0; i < 3; i++) {
      arena.advance('rcu');
      arena.advance('ttrace');
    }
    expect(arena.stats().liveUnits).toBe(0);
    // The table's pages but its first one, and the header page, went back; so did the packs
    // of the large values (emptied).
    expect(arena.stats().bytesInUse).toBeLessThanOrEqual(before - tableBytes - (4 << 20));
    expect(code(() => map.get('k1'))).toBe('ECLOSED');
    expect(code(() => map.set('k1', 1))).toBe('ECLOSED');
    expect(code(() => SharedMap.open(cpu, ref))).toBe('EINVAL');
  });

  it('metrics: entries, bytes, hits, misses, evictions, expired', async () => {
    const { map, clock } = setup({ maxEntries: 4, evict: true });
    for (let k = 0; k < 6; k++) map.set(`k${k}`, k, k === 5 ? { ttlMs: 5 } : {});
    map.get('k5');
    map.get('absent');
    clock.now += 5;
    map.get('k5');
    const registry = sharedMapMetrics(map, { labels: { map: 'sessions' } });
    const text = await registry.metrics();
    const value = (name: string) =>
      Number(new RegExp(`^percpu_arena_map_${name}\\{map="sessions"\\} (\\S+)$`, 'm').exec(text)?.[1]);
    const stats = map.stats();
    expect(value('entries')).toBe(stats.entries);
    expect(value('bytes')).toBe(stats.bytes);
    expect(value('hits_total')).toBe(1);
    expect(value('misses_total')).toBe(2);
    expect(value('evictions_total')).toBe(2);
    expect(value('expired_total')).toBe(0);
  });
});
