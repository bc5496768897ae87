/**
 * The whole public surface under misuse, generated from one table. Every exported function and
 * every public method or getter of every exported class has an entry: how to call it with good
 * arguments and which kind each argument is. From it the test generates, per argument, the bad
 * values of its kind (wrong type, null/undefined, NaN, ±Infinity, negative, non-integer, 2^31,
 * 2^53, empty and over-long keys, ill-formed strings, short buffers, pointers into the middle of
 * a unit, pointers and refs of another arena or structure) plus random junk from fast-check, and
 * the lifecycle cases (after `detach`, `park` and `close`). After each case it checks that the
 * call threw an `ArenaError` with the documented code (or returned the documented value) and
 * that the arena's bytes and `stats()` are exactly as before.
 *
 * The table is the one list a new public function must join: the first test fails when an export
 * or a class member is missing from it.
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as root from '../src/index.js';
import { ArenaError } from '../src/index.js';
import * as lab from '../src/lab/index.js';
import * as metricsModule from '../src/service/metrics.js';
import * as structures from '../src/structures/index.js';
import * as testing from '../src/testing.js';
import { type Bad, EINVAL, type Entry, type Expect, type Kind, kindDefault, kinds } from './surface/kinds.js';
import { CORE_ENTRIES } from './surface/table-core.js';
import { LAB_ENTRIES } from './surface/table-lab.js';
import { STRUCTURE_ENTRIES } from './surface/table-structures.js';
import { KEY, makeWorld, pools, VALUE, type World } from './surface/world.js';

/** The table: every public function and member, with its arguments' kinds. */
const ENTRIES: Entry[] = [...CORE_ENTRIES, ...STRUCTURE_ENTRIES, ...LAB_ENTRIES];

afterAll(async () => {
  for (const pool of pools.splice(0)) await pool.close();
});

/**
 * Exports that take no input: constants, enums and the error class (constructing an ArenaError
 * is the library's own business; a user's `new ArenaError(...)` changes nothing).
 */
const NO_INPUT = new Set([
  'ArenaError',
  'CHUNK_BYTES',
  'CLASS_UNIT_SIZES',
  'DEFAULT_PRESET',
  'HTAB_USE_CASES',
  'HUGE_BYTES',
  'MAX_ALLOC_BYTES',
  'MapStatus',
  'PACK_BYTES',
  'PRESETS',
  'PRESET_NAMES',
  'REF_PAYLOAD_OFFSET',
  'TrieStatus',
  'UpdateFlag',
]);

/**
 * Class members that are another member under a second name: `Symbol.iterator` is `entries()`,
 * `Symbol.dispose` is `detach()`, `Symbol.asyncDispose` is `close()`.
 */
const MEMBER_ALIASES = new Set([
  `SharedMap.${String(Symbol.iterator)}`,
  `CpuHandle.${String(Symbol.dispose)}`,
  `Arena.${String(Symbol.asyncDispose)}`,
  `CpuPool.${String(Symbol.asyncDispose)}`,
]);

/** Entries whose bad cases return a promise that must reject (instead of throwing). */
const ASYNC = new Set([
  'Arena.synchronize',
  'Arena.close',
  'CpuPool.run',
  'CpuPool.close',
  'runHtabMem',
  'runXmalloc',
  'runTorture',
  'runPackBench',
]);

const byName = new Map(ENTRIES.map((e) => [e.name, e]));

/** Every name a class exposes: own statics and prototype members (methods and getters). */
function membersOf(name: string, cls: { prototype: object }): string[] {
  const statics = Object.getOwnPropertyNames(cls).filter((k) => !['length', 'name', 'prototype'].includes(k));
  const proto = Reflect.ownKeys(cls.prototype)
    .filter((k) => k !== 'constructor')
    .map((k) => String(k));
  return [...statics, ...proto].map((k) => `${name}.${k}`);
}

/** What `thing()` did: threw (an ArenaError code, or something else), or returned. */
async function settle(
  entry: Entry,
  thing: () => unknown,
): Promise<{ code?: string; other?: unknown; value?: unknown }> {
  try {
    const value = thing();
    if (ASYNC.has(entry.name) && value instanceof Promise) return { value: await value };
    return { value };
  } catch (error) {
    if (error instanceof ArenaError) return { code: error.code };
    return { other: error };
  }
}

/** The arena's state: its bytes and its stats (the structures live in its bytes). */
function snapshot(x: World): { bytes: Buffer; stats: string } {
  return {
    bytes: Buffer.from(new Uint8Array(x.arena.shared.buffer)),
    stats: JSON.stringify(x.arena.stats()),
  };
}

async function expectCase(
  x: World,
  entry: Entry,
  args: unknown[],
  expected: Expect,
  label: string,
): Promise<void> {
  const before = snapshot(x);
  const outcome = await settle(entry, () => entry.call(x, args));
  const what = `${entry.name} with ${label}`;
  if ('code' in expected) {
    expect(outcome.other, `${what}: threw something other than an ArenaError`).toBeUndefined();
    expect(outcome.code, `${what}: expected ${expected.code}`).toBe(expected.code);
  } else {
    expect(outcome.code ?? outcome.other, `${what}: threw`).toBeUndefined();
    expect(outcome.value, `${what}: the documented return`).toStrictEqual(expected.returns);
  }
  // A view of the live bytes, not a second copy.
  const now = Buffer.from(x.arena.shared.buffer);
  expect(before.bytes.equals(now), `${what}: changed the arena's bytes`).toBe(true);
  expect(JSON.stringify(x.arena.stats()), `${what}: changed stats()`).toBe(before.stats);
}

describe('the misuse table', () => {
  it('names every export and every public member of every exported class', () => {
    const missing: string[] = [];
    for (const [name, value] of Object.entries({
      ...root,
      ...structures,
      ...lab,
      ...metricsModule,
      ...testing,
    })) {
      if (NO_INPUT.has(name)) continue;
      if (typeof value === 'function' && /^class /.test(Function.prototype.toString.call(value))) {
        if (
          name !== 'Arena' &&
          name !== 'CpuHandle' &&
          name !== 'HashMap' &&
          name !== 'QpTrie' &&
          name !== 'PackAllocator' &&
          name !== 'SharedMap' &&
          name !== 'CpuPool' &&
          !byName.has(name)
        )
          missing.push(name);
        for (const member of membersOf(name, value as { prototype: object })) {
          if (!byName.has(member) && !MEMBER_ALIASES.has(member)) missing.push(member);
        }
      } else if (typeof value === 'function' && !byName.has(name)) {
        missing.push(name);
      } else if (typeof value !== 'function') {
        missing.push(`${name} (a value: list it in NO_INPUT)`);
      }
    }
    expect(missing).toEqual([]);
  });
});

/** The expectation for bad value `bad` of argument `i`: its own, the entry's, its kind's, EINVAL. */
function expectationOf(entry: Entry, kind: Kind, bad: Bad, own: boolean): Expect {
  if (own && bad.expect) return bad.expect;
  return entry.onBad ?? bad.expect ?? kindDefault[kind] ?? EINVAL;
}

describe('every public entry point rejects bad arguments and leaves the arena as it was', () => {
  let x: World;
  beforeAll(() => {
    x = makeWorld();
  });

  for (const entry of ENTRIES) {
    if (entry.kinds.length === 0) continue;
    it(entry.name, async () => {
      let cases = 0;
      for (let i = 0; i < entry.kinds.length; i++) {
        const kind = entry.kinds[i] as Kind;
        // The entry's own bad values replace a kind's value of the same label.
        const bads = new Map<string, [Bad, boolean]>();
        for (const bad of kinds[kind] as Bad[]) bads.set(bad.label, [bad, false]);
        for (const bad of entry.extra?.[i] ?? []) bads.set(bad.label, [bad, true]);
        for (const [bad, own] of bads.values()) {
          const args = entry.args(x);
          while (args.length <= i) args.push(undefined);
          args[i] = bad.value(x);
          await expectCase(
            x,
            entry,
            args,
            expectationOf(entry, kind, bad, own),
            `argument ${i} = ${bad.label}`,
          );
          cases++;
        }
      }
      expect(cases).toBeGreaterThan(0);
    });
  }

  it('random junk of any type in any argument (fast-check)', async () => {
    // Junk is never a valid argument: strings with a lone surrogate, objects, arrays, fractions.
    const junk = fc.oneof(
      fc.constant(null),
      fc.string().map((text) => `${text}\ud800`),
      fc.object({ maxDepth: 1 }),
      fc.array(fc.anything({ maxDepth: 1 }), { maxLength: 3 }),
      fc.double({ noInteger: true }),
      fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
      fc.constant(Symbol('junk')),
    );
    // Arena.create takes only options; arenaMetrics and CheckedUnit take anything at all as a
    // first argument that is not theirs, which the table's own values cover.
    // Objects are valid options (and policies) where every option has a default, and valid values
    // of a SharedMap (JSON).
    const withArgs = ENTRIES.filter(
      (e) =>
        e.kinds.length > 0 &&
        !e.kinds.some((k) => k === 'options' || k === 'policyObject' || k === 'sharedValue'),
    );
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...withArgs), fc.nat(), junk, async (entry, at, value) => {
        const i = at % entry.kinds.length;
        const kind = entry.kinds[i] as Kind;
        const args = entry.args(x);
        while (args.length <= i) args.push(undefined);
        args[i] = value;
        const expected = entry.onBad ?? kindDefault[kind] ?? EINVAL;
        await expectCase(x, entry, args, expected, `argument ${i} = junk`);
        runs++;
      }),
      { numRuns: 300 },
    );
    expect(runs).toBe(300);
  });
});

type State = 'detached' | 'parked' | 'closed';

/** The entries a lifecycle state must refuse with ECLOSED. */
function refusedIn(state: State): Entry[] {
  return ENTRIES.filter((e) => e.lifecycle === 'handle' || (state === 'closed' && e.lifecycle === 'arena'));
}

describe('after detach, park and close every handle-bound call throws ECLOSED and changes nothing', () => {
  const states: Record<State, (x: World) => Promise<unknown>> = {
    detached: async (x) => x.cpu.detach(),
    parked: async (x) => x.cpu.park(),
    closed: (x) => x.arena.close(),
  };
  for (const [state, enter] of Object.entries(states) as [State, (x: World) => Promise<unknown>][]) {
    it(state, async () => {
      const y = makeWorld();
      await enter(y);
      const refused = refusedIn(state);
      expect(refused.length).toBeGreaterThan(30);
      for (const entry of refused) await expectCase(y, entry, entry.args(y), { code: 'ECLOSED' }, state);
    });
  }

  it('a parked handle unparks, and a parked or detached handle still says what it is', () => {
    const x = makeWorld();
    x.cpu.park();
    expect(x.cpu.parked).toBe(true);
    expect(x.cpu.attached).toBe(false);
    x.cpu.unpark();
    expect(x.cpu.attached).toBe(true);
    x.cpu.detach();
    expect(x.cpu.attached).toBe(false);
    expect(() => x.cpu.unpark()).toThrow(ArenaError);
  });
});

describe('from another thread', () => {
  it("a worker's structures throw ECLOSED once the arena is closed, and a held slot is EBUSY there", async () => {
    const x = makeWorld();
    const dist = new URL('../dist/src/index.js', import.meta.url).href;
    const distStructures = new URL('../dist/src/structures/index.js', import.meta.url).href;
    // The worker attaches slot 3, opens the hash map, the trie and the shared map, and waits;
    // after the close it calls each once and reports the error codes.
    const worker = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       Promise.all([import(${JSON.stringify(dist)}), import(${JSON.stringify(distStructures)})]).then(([m, s]) => {
         const code = (f) => { try { f(); return 'ok'; } catch (e) { return e.code ?? String(e); } };
         const busy = code(() => m.attach(workerData.shared, 0));
         const cpu = m.attach(workerData.shared, 3);
         const map = s.HashMap.open(cpu, workerData.mapRef);
         const trie = s.QpTrie.open(cpu, workerData.trieRef);
         const shared = m.SharedMap.open(cpu, workerData.sharedRef);
         const pack = s.PackAllocator.open(cpu, workerData.packRef);
         parentPort.postMessage({ busy });
         parentPort.once('message', () => {
           const key = new Uint8Array(${KEY}).fill(1);
           parentPort.postMessage({
             get: code(() => shared.get('a')),
             set: code(() => shared.set('a', 'x')),
             delete: code(() => shared.delete('a')),
             update: code(() => map.update(key, new Uint8Array(${VALUE}))),
             lookup: code(() => map.get(key)),
             trie: code(() => trie.update(Uint8Array.of(1), Uint8Array.of(1))),
             pack: code(() => pack.alloc(64)),
             attach: code(() => m.attach(workerData.shared, 2)),
           });
         });
       });`,
      {
        eval: true,
        workerData: {
          shared: x.arena.shared,
          mapRef: x.mapRef,
          trieRef: x.trieRef,
          sharedRef: x.sharedRef,
          packRef: x.packRef,
        },
      },
    );
    try {
      const [first] = (await once(worker, 'message')) as [{ busy: string }];
      expect(first.busy).toBe('EBUSY');
      await x.arena.close();
      const before = snapshot(x);
      worker.postMessage('go');
      const [codes] = (await once(worker, 'message')) as [Record<string, string>];
      expect(codes).toEqual({
        get: 'ECLOSED',
        set: 'ECLOSED',
        delete: 'ECLOSED',
        update: 'ECLOSED',
        lookup: 'ECLOSED',
        trie: 'ECLOSED',
        pack: 'ECLOSED',
        attach: 'ECLOSED',
      });
      expect(before.bytes.equals(Buffer.from(x.arena.shared.buffer))).toBe(true);
    } finally {
      await worker.terminate();
    }
  });
});
