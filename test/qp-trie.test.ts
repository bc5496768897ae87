/**
 * The qp-trie on one thread: a fast-check model test against a JS Map (variable-length keys
 * that are prefixes of each other, two CPUs of the deterministic mode taking turns, GPs) under
 * immediate reuse and after-GP reuse, with each version mode; bad input that must leave the
 * trie unchanged; and the deterministic replays of the lab's verdict (docs/lab.md): a lookup
 * standing on a node freed and reused under it answers wrongly without versions and restarts
 * with them; a torn entry read defeats the seed's per-node versions and not generation ones; and
 * the value pointer of `lookup` is read after every check, so no version protects it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Arena, ArenaError, type PresetName } from '../src/index.js';
import { QpTrie, TrieStatus, type TrieVersions } from '../src/structures/index.js';

// Leaves of keys up to 8 bytes with 64-byte values are 96-byte units; branches of 2 to 4
// children 64-byte units: the replays below reuse branches and leaves separately.
const VALUE = 64;

function setup(policy: PresetName, versions: TrieVersions, maxKeyBytes = 8) {
  const arena = Arena.create({ cpus: 2, maxBytes: 8 << 20, policy, coordinator: 'manual' });
  const cpus = [arena.attach(0), arena.attach(1)] as const;
  const ref = QpTrie.create(arena, { maxKeyBytes, maxValueBytes: VALUE, versions });
  const tries = [QpTrie.open(cpus[0], ref), QpTrie.open(cpus[1], ref)] as const;
  return { arena, cpus, tries };
}

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);
const value = (n: number, length = VALUE): Uint8Array => new Uint8Array(length).fill(n & 0xff);
const hex = (k: Uint8Array): string => Buffer.from(k).toString('hex');

type Op =
  | { kind: 'update'; cpu: number; key: number[]; value: number; length: number }
  | { kind: 'delete'; cpu: number; key: number[] }
  | { kind: 'read'; cpu: number; key: number[] }
  | { kind: 'gp' };

// 84 keys of 1 to 3 bytes from 4 values: many share prefixes or are prefixes of others, and
// deletes often hit.
const keyArb = fc.array(fc.constantFrom(0x00, 0x01, 0x10, 0xff), { minLength: 1, maxLength: 3 });
const cpuArb = fc.integer({ min: 0, max: 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('update' as const),
      cpu: cpuArb,
      key: keyArb,
      value: fc.nat({ max: 255 }),
      length: fc.integer({ min: 1, max: VALUE }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), cpu: cpuArb, key: keyArb }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('read' as const), cpu: cpuArb, key: keyArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('gp' as const) }) },
);

describe('QpTrie against a Map model', () => {
  const cases: [PresetName, TrieVersions][] = [
    ['kernel-6.6', 'none'],
    ['kernel-6.6', 'per-node'],
    ['kernel-6.6', 'generation'],
    ['reuse-after-gp', 'none'],
    ['arena', 'generation'],
  ];
  it.each(cases)('policy %s, versions %s', (policy, versions) => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 10, maxLength: 250, size: 'max' }), (ops) => {
        const { arena, tries } = setup(policy, versions);
        const model = new Map<string, Uint8Array>();
        const out = new Uint8Array(VALUE);
        for (const op of ops) {
          if (op.kind === 'gp') {
            arena.advance('rcu');
            arena.advance('ttrace');
            continue;
          }
          const trie = tries[op.cpu] as QpTrie;
          const key = Uint8Array.from(op.key);
          if (op.kind === 'update') {
            const v = value(op.value, op.length);
            expect(trie.update(key, v)).toBe(TrieStatus.OK);
            model.set(hex(key), v);
          } else if (op.kind === 'delete') {
            expect(trie.delete(key)).toBe(model.has(hex(key)) ? TrieStatus.OK : TrieStatus.NOT_FOUND);
            model.delete(hex(key));
          } else {
            const length = trie.read(key, out);
            const want = model.get(hex(key));
            expect(length).toBe(want ? want.length : -1);
            if (want) expect(out.subarray(0, length)).toEqual(want);
            expect(trie.has(key)).toBe(want !== undefined);
          }
          expect(trie.size).toBe(model.size);
        }
        // keys() walks in key order (nibble order, a key before its extensions).
        expect(tries[0].keys().map(hex)).toEqual([...model.keys()].sort());
        expect(tries[0].restarts + tries[1].restarts).toBe(0);
      }),
      { numRuns: 60 },
    );
  });

  it('a deleted or replaced node goes back through the allocator', () => {
    const { arena, tries } = setup('kernel-6.6', 'none');
    for (let i = 0; i < 50; i++) tries[0].update(bytes(i, i + 1), value(i));
    for (let i = 0; i < 50; i++) tries[1].update(bytes(i, i + 1), value(i + 1));
    for (let i = 0; i < 50; i++) expect((tries[i & 1] as QpTrie).delete(bytes(i, i + 1))).toBe(TrieStatus.OK);
    expect(tries[0].size).toBe(0);
    expect(tries[0].keys()).toEqual([]);
    // Every leaf and branch ever built was freed: no unit is live once the trie is empty.
    const stats = arena.stats();
    expect(stats.liveUnits).toBe(0);
    expect(stats.totals.frees).toBe(stats.totals.allocs);
    expect(tries[0].reusedNodes + tries[1].reusedNodes).toBeGreaterThan(0);
  });
});

describe('QpTrie bad input: clear errors, nothing changed', () => {
  const code = (fn: () => unknown): string | undefined => {
    try {
      fn();
    } catch (e) {
      return e instanceof ArenaError ? e.code : 'not an ArenaError';
    }
    return undefined;
  };

  it('keys, values, options, refs and lookups outside a section', () => {
    const { arena, cpus, tries } = setup('kernel-6.6', 'generation', 4);
    const trie = tries[0];
    trie.update(bytes(1), value(1));
    const stats = JSON.stringify(arena.stats());
    const badKeys: unknown[] = [new Uint8Array(0), new Uint8Array(5), [1, 2], 'ab', undefined];
    for (const key of badKeys) {
      expect(code(() => trie.update(key as Uint8Array, value(1)))).toBe('EINVAL');
      expect(code(() => trie.delete(key as Uint8Array))).toBe('EINVAL');
      expect(code(() => trie.get(key as Uint8Array))).toBe('EINVAL');
    }
    expect(code(() => trie.update(bytes(2), new Uint8Array(0)))).toBe('EINVAL');
    expect(code(() => trie.update(bytes(2), new Uint8Array(VALUE + 1)))).toBe('EINVAL');
    expect(code(() => trie.read(bytes(1), new Uint8Array(VALUE - 1)))).toBe('EINVAL');
    expect(code(() => trie.lookup(bytes(1)))).toBe('EINVAL');
    expect(code(() => QpTrie.create(arena, { maxKeyBytes: 0, maxValueBytes: 8 }))).toBe('EINVAL');
    expect(code(() => QpTrie.create(arena, { maxKeyBytes: 256, maxValueBytes: 8 }))).toBe('EINVAL');
    expect(code(() => QpTrie.create(arena, { maxKeyBytes: 8, maxValueBytes: 4065 }))).toBe('EINVAL');
    expect(
      code(() => QpTrie.create(arena, { maxKeyBytes: 8, maxValueBytes: 8, versions: 'yes' as TrieVersions })),
    ).toBe('EINVAL');
    expect(code(() => QpTrie.open(cpus[0], 12345 as never))).toBe('EINVAL');
    expect(code(() => QpTrie.open(cpus[0], 4096 as never))).toBe('EINVAL');
    expect(JSON.stringify(arena.stats())).toBe(stats);
    expect(trie.keys()).toEqual([bytes(1)]);
    cpus[1].park();
    expect(code(() => tries[1].update(bytes(3), value(3)))).toBe('ECLOSED');
    cpus[1].unpark();
    expect(trie.size).toBe(1);
  });
});

/** A hook that runs `writer` once, the first time the lookup reaches `step` at `where`. */
function once(
  trie: QpTrie,
  step: 'entry' | 'node',
  where: (word: number) => boolean,
  writer: () => void,
): void {
  trie.onStep = (s, word) => {
    if (s !== step || !where(word)) return;
    trie.onStep = undefined;
    writer();
  };
}

describe('QpTrie under immediate reuse: deterministic replays of the lab verdict', () => {
  it('generation versions: a node reused by another trie with the same counter value is still caught', () => {
    // The review's case against a per-trie counter: two tries, one writer CPU, the same version
    // numbers. The allocator's generation differs for every incarnation, whoever allocates.
    const arena = Arena.create({ cpus: 2, maxBytes: 8 << 20, policy: 'kernel-6.6', coordinator: 'manual' });
    const reader = arena.attach(0);
    const writer = arena.attach(1);
    const options = { maxKeyBytes: 8, maxValueBytes: VALUE, versions: 'generation' as const };
    const a = QpTrie.open(reader, QpTrie.create(arena, options));
    const aWriter = QpTrie.open(writer, a.ref);
    const b = QpTrie.open(writer, QpTrie.create(arena, options));
    aWriter.update(bytes(0x10), value(0x10));
    aWriter.update(bytes(0x20), value(0x20));
    const leaf = () => {
      reader.readLock();
      const at = a.lookup(bytes(0x20));
      reader.readUnlock();
      return at;
    };
    const before = leaf();
    once(
      a,
      'node',
      (node) => node <= before && before < node + 128 && reader.i32[(node >> 2) + 1] === 0,
      () => {
        // A replaces 0x20's leaf; B's new leaf for 0x20 takes the freed unit at once.
        aWriter.update(bytes(0x20), value(0x21));
        b.update(bytes(0x20), value(0xbb));
      },
    );
    const got = a.get(bytes(0x20));
    expect(got?.[0]).toBe(0x21);
    expect(a.restarts).toBe(1);
  });

  it.each(['none', 'per-node'] as const)(
    'versions %s: a lookup standing on a branch freed and reused under it',
    (versions) => {
      // Keys 0x10, 0x11, 0x20: the root tests nibble 0, a branch B below it nibble 1.
      const { cpus, tries } = setup('kernel-6.6', versions);
      const [reader, writer] = tries;
      for (const k of [0x10, 0x11, 0x20]) writer.update(bytes(k), value(k));
      const rootEntry = reader.ref >> 2;
      const i32 = cpus[0].i32;
      const root = i32[rootEntry + 8] as number;
      const branch = i32[(root >> 2) + 4] as number; // the root's first entry: nibble 1 (0x1_)
      const generation = (i32[(branch >> 2) - 1] as number) >>> 2;
      once(
        reader,
        'node',
        (node) => node === branch,
        () => {
          // The writer deletes 0x10 (B, left with one child, is replaced by leaf 0x11 and freed)
          // and adds 0x20 0x01: its new two-way branch takes B's unit at once.
          expect(writer.delete(bytes(0x10))).toBe(TrieStatus.OK);
          expect(writer.update(bytes(0x20, 0x01), value(0x21))).toBe(TrieStatus.OK);
          expect((i32[(branch >> 2) - 1] as number) >>> 2).toBe(generation + 1);
        },
      );
      const got = reader.get(bytes(0x11));
      if (versions === 'none') {
        // B now tests nibble 2 of 0x20 0x01: the lookup of a key that was there all along fails.
        expect(got).toBeUndefined();
      } else {
        expect(got?.[0]).toBe(0x11);
        expect(reader.restarts).toBe(1);
      }
    },
  );

  it.each(['per-node', 'generation'] as const)(
    'versions %s: a torn entry read (old pointer, new version) and a reused node with that version',
    (versions) => {
      // Keys 0x10, 0x20: the root R is a two-way branch. Branches of 2 to 4 children share one
      // size class; the writer's CPU hands its units out last-freed first.
      const { cpus, tries } = setup('kernel-6.6', versions);
      const [reader, writer] = tries;
      const i32 = cpus[0].i32;
      const rootEntry = (reader.ref >> 2) + 8;
      writer.update(bytes(0x10), value(0x10));
      writer.update(bytes(0x20), value(0x20));
      // History: R's unit and another branch unit U go round until both carry the same version
      // (0x30 and 0x40 grow and shrink the root; 0x11 adds and removes a branch below it).
      writer.update(bytes(0x30), value(0x30));
      writer.update(bytes(0x40), value(0x40));
      writer.delete(bytes(0x40));
      writer.delete(bytes(0x30));
      writer.update(bytes(0x11), value(0x11));
      writer.delete(bytes(0x11));
      const r = i32[rootEntry] as number;
      once(
        reader,
        'entry',
        (word) => word === rootEntry,
        () => {
          // The reader has loaded R from the root entry, not yet its version. The writer adds
          // 0x30 (a three-way copy in U replaces R; R is freed) and 0x11 (a two-way branch
          // under nibble 1 takes R's unit at once).
          writer.update(bytes(0x30), value(0x30));
          writer.update(bytes(0x11), value(0x11));
          expect(i32[rootEntry]).not.toBe(r);
          expect(i32[(r >> 2) + 2]).toBe(1); // R's unit is now the branch testing nibble 1
        },
      );
      const got = reader.get(bytes(0x20));
      if (versions === 'per-node') {
        const reusedVersion = i32[r >> 2] as number;
        const rootVersion = i32[rootEntry + 1] as number;
        // R's new incarnation carries the version U was linked with: the check passes, the walk
        // reads a branch for 0x10 / 0x11 and reports 0x20, present all along, missing.
        expect(reusedVersion).toBe(rootVersion);
        expect(got).toBeUndefined();
      } else {
        // The entry is one 64-bit word: the reader got R with R's own generation, which R's
        // reuse changed (whatever U's generation is).
        expect(got?.[0]).toBe(0x20);
        expect(reader.restarts).toBe(1);
      }
    },
  );

  it.each([
    ['kernel-6.6', true],
    ['arena', false],
  ] as const)(
    '%s, generation versions: the value pointer of lookup is read after every check (changes: %s)',
    (policy, changes) => {
      const { cpus, tries } = setup(policy, 'generation');
      const [reader, writer] = tries;
      writer.update(bytes(0x10), value(0x10));
      writer.update(bytes(0x20), value(0x20));
      cpus[0].readLock();
      const at = reader.lookup(bytes(0x20));
      expect(cpus[0].bytes[at]).toBe(0x20);
      // A BPF program holds `at` while the writer deletes 0x20 and adds 0x21, whose leaf takes
      // 0x20's unit under immediate reuse.
      writer.delete(bytes(0x20));
      writer.update(bytes(0x21), value(0x21));
      expect(cpus[0].bytes[at]).toBe(changes ? 0x21 : 0x20);
      cpus[0].readUnlock();
    },
  );
});

describe('QpTrie and crash recovery', () => {
  it('a writer that died between the two stores of a publish: recovery mends the entry and releases the lock', () => {
    const { arena, cpus, tries } = setup('kernel-6.6', 'per-node');
    const [reader, writer] = tries;
    for (const k of [0x10, 0x20, 0x30]) writer.update(bytes(k), value(k));
    const i32 = cpus[0].i32;
    const t = reader.ref >> 2;
    // Cut inside #publishEntry: the root entry's new version is stored, its pointer is not.
    i32[t + 8 + 1] = (i32[t + 8 + 1] as number) + 7;
    const deadThread = 4343;
    Atomics.store(i32, t + 4, ((deadThread + 1) << 2) | 1);
    const report = arena.recoverThread(deadThread);
    expect(report.locksReleased).toBe(1);
    expect(Atomics.load(i32, t + 4)).toBe(0);
    // Without the repair every lookup would restart on the root until it gave up (EBADARENA).
    expect(reader.get(bytes(0x20))?.[0]).toBe(0x20);
    expect(reader.restarts).toBe(0);
    expect(writer.update(bytes(0x40), value(0x40))).toBe(TrieStatus.OK);
  });
});
