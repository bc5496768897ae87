/**
 * The misuse table's vocabulary (test/surface.test.ts): the kinds of argument with their bad
 * values, what a bad case must do, and the shape of a table entry.
 */
import type { ArenaErrorCode } from '../../src/index.js';
import { KEY, VALUE, type World } from './world.js';

/** What a bad case must do: throw an ArenaError with `code`, or return `returns`. */
export type Expect = { code: ArenaErrorCode } | { returns: unknown };
export const EINVAL: Expect = { code: 'EINVAL' };

export interface Bad {
  label: string;
  value: (w: World) => unknown;
  expect?: Expect | undefined;
}

export const v = (label: string, value: unknown, expect?: Expect): Bad => ({
  label,
  value: () => value,
  expect,
});
export const w = (label: string, value: (world: World) => unknown, expect?: Expect): Bad => ({
  label,
  value,
  expect,
});

/** Wrong types every argument rejects. */
export const kWrongTypes: Bad[] = [v('null', null), v('a symbol', Symbol('x')), v('a function', () => 1)];
const kNotNumbers: Bad[] = [...kWrongTypes, v("'8'", '8'), v('{}', {}), v('[]', [])];
const kBadNumbers: Bad[] = [
  v('NaN', Number.NaN),
  v('Infinity', Number.POSITIVE_INFINITY),
  v('-Infinity', Number.NEGATIVE_INFINITY),
  v('-8', -8),
  v('1.5', 1.5),
  v('2^31', 2 ** 31),
  v('2^53', 2 ** 53),
];

/** The kinds of argument, each with its bad values. */
export const kinds = {
  /** A user pointer to an allocated unit. */
  ptr: [
    ...kNotNumbers,
    ...kBadNumbers,
    w('ptr + 1', (x) => x.ptr + 1),
    w('ptr + 8 (inside the unit)', (x) => x.ptr + 8),
    w('ptr - 8 (the header)', (x) => x.ptr - 8),
    w('a freed unit', (x) => x.freed),
    w('a unit of another arena', (x) => x.otherPtr),
    v('a pointer into the tables', 64),
  ],
  /** A size for alloc: bad sizes return 0 (the hot path never throws). */
  allocSize: [...kNotNumbers, ...kBadNumbers, v('0', 0), v('4089', 4089)],
  /** A RefCounts payload: 0 is a valid payload, past 4080 bytes is too large for a unit. */
  payloadSize: [...kNotNumbers, ...kBadNumbers, v('4081', 4081)],
  fixedId: [...kNotNumbers, ...kBadNumbers, v('1 (no such cache)', 1)],
  /** A count or size that must be a positive integer in range. */
  count: [...kNotNumbers, ...kBadNumbers, v('0', 0)],
  cpuSlot: [...kNotNumbers, ...kBadNumbers, v('4 (one past the last)', 4)],
  shared: [
    ...kNotNumbers,
    v('undefined', undefined),
    v('{ buffer: ArrayBuffer }', { buffer: new ArrayBuffer(64) }),
    v('not an arena', { buffer: new SharedArrayBuffer(1 << 16) }, { code: 'EBADARENA' }),
  ],
  arena: [
    ...kNotNumbers,
    v('undefined', undefined),
    v('{ buffer: ArrayBuffer }', { buffer: new ArrayBuffer(64) }),
  ],
  /** An Arena object (the creating thread's), not its `shared`. */
  arenaObject: [...kNotNumbers, v('undefined', undefined), w('arena.shared', (x) => x.arena.shared)],
  handle: [...kNotNumbers, v('undefined', undefined), w('an Arena', (x) => x.arena)],
  /** A buffer to copy into: any Uint8Array (a short one is allowed), nothing else. */
  byteTarget: [...kNotNumbers, v('undefined', undefined), v('42', 42), v('an Int32Array', new Int32Array(4))],
  /** A function argument (a reader, a callback). */
  callback: [
    v('null', null),
    v('a symbol', Symbol('x')),
    v("'8'", '8'),
    v('{}', {}),
    v('[]', []),
    v('undefined', undefined),
    v('42', 42),
  ],
  /** A SharedMap handle (sharedMapMetrics). */
  sharedMapObject: [...kNotNumbers, v('undefined', undefined), w('an Arena', (x) => x.arena)],
  /** What SharedMap.open takes: a CPU handle or an arena (`arena.shared` or the Arena). */
  cpuOrArena: [
    ...kNotNumbers,
    v('undefined', undefined),
    v('{ buffer: ArrayBuffer }', { buffer: new ArrayBuffer(64) }),
    v('not an arena', { buffer: new SharedArrayBuffer(1 << 16) }, { code: 'EBADARENA' }),
  ],
  options: [v('null', null), v('42', 42), v("'x'", 'x')],
  flavor: [v("'rcu '", 'rcu '), v('0', 0), v('null', null), v('{}', {})],
  /** A HashMap key: a Uint8Array of keySize bytes. */
  mapKey: [
    ...kNotNumbers,
    v('undefined', undefined),
    v('a short key', new Uint8Array(KEY - 1)),
    v('a long key', new Uint8Array(KEY + 1)),
    v('a string', 'abcdefgh'),
    v('an Int32Array', new Int32Array(KEY / 4)),
  ],
  mapValue: [
    ...kNotNumbers,
    v('undefined', undefined),
    v('short', new Uint8Array(VALUE - 1)),
    v('long', new Uint8Array(VALUE + 1)),
  ],
  mapOut: [...kNotNumbers, v('short', new Uint8Array(VALUE - 1)), v('a string', 'x'.repeat(VALUE))],
  updateFlag: [v('3', 3), v('-1', -1), v('1.5', 1.5), v("'0'", '0'), v('null', null)],
  trieKey: [
    ...kNotNumbers,
    v('undefined', undefined),
    v('empty', new Uint8Array(0)),
    v('17 bytes', new Uint8Array(17)),
  ],
  trieValue: [
    ...kNotNumbers,
    v('undefined', undefined),
    v('empty', new Uint8Array(0)),
    v('33 bytes', new Uint8Array(33)),
  ],
  trieOut: [...kNotNumbers, v('undefined', undefined), v('short', new Uint8Array(31))],
  structureRef: [...kNotNumbers, ...kBadNumbers, v('0', 0), v('4096 (a page of the tables)', 4096)],
  /** A key of the shared map (maxKeyBytes 16). */
  sharedKey: [
    ...kWrongTypes,
    v('undefined', undefined),
    v('42', 42),
    v('{}', {}),
    v("''", ''),
    v('17 characters', 'x'.repeat(17)),
    v('a lone high surrogate', '\ud800'),
    v('a lone low surrogate', 'a\udc00b'),
    v('empty bytes', new Uint8Array(0)),
    v('17 bytes', new Uint8Array(17)),
  ],
  sharedValue: [
    v('undefined', undefined),
    v('a symbol', Symbol('x')),
    v('a function', () => 1),
    v('a BigInt', 1n),
    v('a lone surrogate', 'x\ud800'),
    v('8193 bytes', new Uint8Array(8193)),
    w('a circular object', () => {
      const o: Record<string, unknown> = {};
      o.self = o;
      return o;
    }),
  ],
  block: [
    ...kNotNumbers,
    ...kBadNumbers,
    w('block + 64', (x) => x.block + 64),
    w('block + 1', (x) => x.block + 1),
    v('4096', 4096),
  ],
  bytes: [
    ...kNotNumbers,
    v('undefined', undefined),
    v('an array', [1, 2]),
    v('too long', new Uint8Array(1 << 20)),
  ],
  offset: [...kNotNumbers, ...kBadNumbers],
  objectPtr: [...kNotNumbers, ...kBadNumbers, w('object + 4', (x) => x.object + 4), v('8 (the header)', 8)],
  unitRef: [...kNotNumbers, ...kBadNumbers.filter((b) => b.label !== '2^31')],
  token: [
    ...kNotNumbers,
    v('undefined', undefined),
    v('a symbol of its own name', Symbol('UnitRefs.checked')),
  ],
  checkedOffset: [...kNotNumbers, ...kBadNumbers, w('size (past the unit)', (x) => x.checked.size)],
  checkedOffset32: [
    ...kNotNumbers,
    ...kBadNumbers,
    w('size (past the unit)', (x) => x.checked.size),
    w('size - 3 (a word across the end)', (x) => x.checked.size - 3),
  ],
  int32: [...kNotNumbers, v('NaN', Number.NaN), v('1.5', 1.5), v('2^31', 2 ** 31)],
  byteValue: [...kNotNumbers, ...kBadNumbers, v('256', 256)],
  u32Value: [...kNotNumbers, v('NaN', Number.NaN), v('-1', -1), v('1.5', 1.5), v('2^32', 2 ** 32)],
  worker: [...kNotNumbers, v('undefined', undefined), v('{ threadId: 1 }', { threadId: 1 })],
  piscina: [...kNotNumbers, v('undefined', undefined), v('{ threads: [] }', { threads: [] })],
  threadId: [...kNotNumbers, v('-1', -1), v('1.5', 1.5), v('NaN', Number.NaN)],
  module: [...kWrongTypes, v('{}', {}), v('[]', []), v('undefined', undefined), v('42', 42), v("''", '')],
  functionName: [...kWrongTypes, v('{}', {}), v('[]', []), v('undefined', undefined), v("''", '')],
  policyObject: [v('null', null), v('42', 42), v("'arena'", 'arena')],
  unitSize: [...kNotNumbers, ...kBadNumbers, v('0', 0)],
} satisfies Record<string, Bad[]>;

export type Kind = keyof typeof kinds;

/** Kinds whose bad values have a documented return instead of an error: the alloc path's 0. */
export const kindDefault: Partial<Record<Kind, Expect>> = {
  allocSize: { returns: 0 },
  fixedId: { returns: 0 },
  payloadSize: { returns: 0 },
};

/** How an entry behaves once its handle is detached or parked, or its arena closed. */
export type Lifecycle = 'handle' | 'arena' | 'none';

export interface Entry {
  /** `Export.member`, `Export.static`, or the export's own name. */
  name: string;
  /** Good arguments: the call must succeed with them (checked once, in a fresh world). */
  args: (x: World) => unknown[];
  call: (x: World, args: unknown[]) => unknown;
  kinds: Kind[];
  /** Bad values per argument beyond its kind's, and replacements of a kind's expectations. */
  extra?: Bad[][];
  /** What the call does after detach / park (`handle`: ECLOSED) or close (`handle`, `arena`: ECLOSED). */
  lifecycle: Lifecycle;
  /** The documented outcome of every bad value of this entry (instead of its kind's). */
  onBad?: Expect;
}

export const none = (): unknown[] => [];

/** Enough of a piscina pool for watchPool's checks to accept (it has no workers to watch). */
export const kFakePool = { on: () => undefined, threads: [], options: {} };
