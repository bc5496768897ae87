/**
 * The misuse table, part one: the arena, attaching, the CPU handle, pools, metrics and the pure
 * functions. Every public function and member joins here or in table-structures.ts.
 */
import { Arena, attach, attachFree, CpuPool, watchPool } from '../../src/index.js';
import { classOfSize, fixedUnitSize, PRESETS, presetOf, watermarksFor } from '../../src/lab/index.js';
import * as metricsModule from '../../src/service/metrics.js';
import { type Entry, kFakePool, none, v } from './kinds.js';
import type { Untyped } from './world.js';

export const CORE_ENTRIES: Entry[] = [
  // --- Arena ---
  {
    name: 'Arena.create',
    args: () => [{ cpus: 1, maxBytes: 1 << 20, coordinator: 'manual' }],
    call: (_, [o]) => Arena.create(o as Untyped),
    kinds: ['options'],
    extra: [
      [
        v('no cpus', { maxBytes: 1 << 20 }),
        v('cpus 0', { cpus: 0 }),
        v('cpus 1025', { cpus: 1025 }),
        v('cpus 1.5', { cpus: 1.5 }),
        v("cpus '2'", { cpus: '2' }),
        v('maxBytes -1', { cpus: 1, maxBytes: -1 }),
        v('maxBytes 2^53', { cpus: 1, maxBytes: 2 ** 53 }),
        v('an unknown preset', { cpus: 1, policy: 'kernel-9' }),
        v('policy reuse bogus', { cpus: 1, policy: { reuse: 'bogus' } }),
        v('fixedSizes not an array', { cpus: 1, fixedSizes: 40 }),
        v('fixedSizes [0]', { cpus: 1, fixedSizes: [0] }),
        v('gpMinMs.rcu -1', { cpus: 1, gpMinMs: { rcu: -1 } }),
        v('gpMinMs.bogus', { cpus: 1, gpMinMs: { bogus: 1 } }),
        v("coordinator 'x'", { cpus: 1, coordinator: 'x' }),
        v('stallWarningMs -1', { cpus: 1, stallWarningMs: -1 }),
        v('onStall 1', { cpus: 1, onStall: 1 }),
      ],
    ],
    lifecycle: 'none',
  },
  { name: 'Arena.closed', args: none, call: (x) => x.arena.closed, kinds: [], lifecycle: 'none' },
  { name: 'Arena.cpus', args: none, call: (x) => x.arena.cpus, kinds: [], lifecycle: 'none' },
  {
    name: 'Arena.attach',
    args: () => [2],
    call: (x, [c]) => x.arena.attach(c as number),
    kinds: ['cpuSlot'],
    extra: [[v('a held slot', 1, { code: 'EBUSY' })]],
    lifecycle: 'arena',
  },
  { name: 'Arena.stats', args: none, call: (x) => x.arena.stats(), kinds: [], lifecycle: 'none' },
  {
    name: 'Arena.synchronize',
    args: () => ['rcu'],
    call: (x, [f]) => x.arena.synchronize(f as Untyped),
    kinds: ['flavor'],
    lifecycle: 'arena',
    // A rejected promise, not a throw: checked through `settle` below.
  },
  {
    name: 'Arena.advance',
    args: () => ['rcu'],
    call: (x, [f]) => x.arena.advance(f as Untyped),
    kinds: ['flavor'],
    lifecycle: 'arena',
  },
  {
    name: 'Arena.watch',
    args: () => [undefined],
    call: (x, [wk]) => x.arena.watch(wk as Untyped),
    kinds: ['worker'],
    lifecycle: 'arena',
  },
  {
    name: 'Arena.recoverThread',
    args: () => [123456],
    call: (x, [t]) => x.arena.recoverThread(t as number),
    kinds: ['threadId'],
    lifecycle: 'none',
  },
  { name: 'Arena.recoveries', args: none, call: (x) => x.arena.recoveries, kinds: [], lifecycle: 'none' },
  { name: 'Arena.trim', args: none, call: (x) => x.arena.trim(), kinds: [], lifecycle: 'arena' },
  { name: 'Arena.close', args: none, call: (x) => x.arena.close(), kinds: [], lifecycle: 'none' },

  // --- attaching ---
  {
    name: 'attach',
    args: (x) => [x.arena.shared, 3],
    call: (_, [s, c]) => attach(s as Untyped, c as number),
    kinds: ['shared', 'cpuSlot'],
    extra: [[], [v('a held slot', 0, { code: 'EBUSY' })]],
    lifecycle: 'arena',
  },
  {
    name: 'attachFree',
    args: (x) => [x.arena.shared],
    call: (_, [s]) => attachFree(s as Untyped),
    kinds: ['shared'],
    lifecycle: 'arena',
  },

  // --- CpuHandle ---
  { name: 'CpuHandle.attached', args: none, call: (x) => x.cpu.attached, kinds: [], lifecycle: 'none' },
  {
    name: 'CpuHandle.inReadSection',
    args: none,
    call: (x) => x.cpu.inReadSection,
    kinds: [],
    lifecycle: 'none',
  },
  { name: 'CpuHandle.parked', args: none, call: (x) => x.cpu.parked, kinds: [], lifecycle: 'none' },
  {
    name: 'CpuHandle.alloc',
    args: () => [64],
    call: (x, [n]) => x.cpu.alloc(n as number),
    kinds: ['allocSize'],
    lifecycle: 'handle',
  },
  {
    name: 'CpuHandle.allocFixed',
    args: () => [0],
    call: (x, [n]) => x.cpu.allocFixed(n as number),
    kinds: ['fixedId'],
    lifecycle: 'handle',
  },
  {
    name: 'CpuHandle.free',
    args: (x) => [x.ptr],
    call: (x, [p]) => x.cpu.free(p as Untyped),
    kinds: ['ptr'],
    extra: [[v('0 (null: a no-op)', 0, { returns: undefined })]],
    lifecycle: 'handle',
  },
  {
    name: 'CpuHandle.freeRcu',
    args: (x) => [x.ptr],
    call: (x, [p]) => x.cpu.freeRcu(p as Untyped),
    kinds: ['ptr'],
    extra: [[v('0 (null: a no-op)', 0, { returns: undefined })]],
    lifecycle: 'handle',
  },
  {
    name: 'CpuHandle.usableSize',
    args: (x) => [x.ptr],
    call: (x, [p]) => x.cpu.usableSize(p as Untyped),
    kinds: ['ptr'],
    extra: [[v('0', 0)]],
    lifecycle: 'handle',
  },
  { name: 'CpuHandle.readLock', args: none, call: (x) => x.cpu.readLock(), kinds: [], lifecycle: 'handle' },
  {
    name: 'CpuHandle.readUnlock',
    args: none,
    call: (x) => x.cpu.readUnlock(),
    kinds: [],
    lifecycle: 'handle',
    extra: [],
  },
  {
    name: 'CpuHandle.readLockTrace',
    args: none,
    call: (x) => x.cpu.readLockTrace(),
    kinds: [],
    lifecycle: 'handle',
  },
  {
    name: 'CpuHandle.readUnlockTrace',
    args: none,
    call: (x) => x.cpu.readUnlockTrace(),
    kinds: [],
    lifecycle: 'handle',
  },
  { name: 'CpuHandle.poll', args: none, call: (x) => x.cpu.poll(), kinds: [], lifecycle: 'handle' },
  { name: 'CpuHandle.park', args: none, call: (x) => x.cpu.park(), kinds: [], lifecycle: 'handle' },
  {
    name: 'CpuHandle.unpark',
    args: none,
    call: (x) => x.cpu.unpark(),
    kinds: [],
    lifecycle: 'none',
    // Only a parked handle unparks: on an attached one it is misuse.
  },
  {
    name: 'CpuHandle.detach',
    args: none,
    call: (x) => x.cpu.detach(),
    kinds: [],
    lifecycle: 'none',
  },
  {
    name: 'CpuHandle.ensureUsable',
    args: () => ['call'],
    call: (x, [c]) => x.cpu.ensureUsable(c as string),
    kinds: [],
    lifecycle: 'handle',
  },

  // --- pools and metrics ---
  {
    name: 'CpuPool.start',
    args: (x) => [x.arena, { cpus: [2] }],
    call: (_, [a, o]) => CpuPool.start(a as Untyped, o as Untyped),
    kinds: ['arenaObject', 'options'],
    extra: [
      [],
      [
        v('cpus 0', { cpus: 0 }),
        v('cpus 5', { cpus: 5 }),
        v('cpus [0, 0]', { cpus: [0, 0] }),
        v('cpus [9]', { cpus: [9] }),
        v("cpus '1'", { cpus: '1' }),
        v('barrierTimeoutMs -1', { barrierTimeoutMs: -1 }),
      ],
    ],
    lifecycle: 'arena',
    // Starting a pool starts worker threads: not run as a good call here (test/pool covers it).
  },
  { name: 'CpuPool.cpus', args: none, call: (x) => x.pool().cpus, kinds: [], lifecycle: 'none' },
  {
    name: 'CpuPool.run',
    args: () => [new URL('./no-such-module.js', import.meta.url), 'run'],
    call: (x, [m, f]) => x.pool().run(m as Untyped, f as Untyped),
    kinds: ['module', 'functionName'],
    lifecycle: 'arena',
  },
  { name: 'CpuPool.close', args: none, call: (x) => x.pool().close(), kinds: [], lifecycle: 'none' },
  {
    name: 'watchPool',
    args: (x) => [x.arena, kFakePool],
    call: (_, [a, p]) => watchPool(a as Untyped, p as Untyped),
    kinds: ['arenaObject', 'piscina'],
    lifecycle: 'arena',
  },
  {
    name: 'sharedMapMetrics',
    args: (x) => [x.shared, {}],
    call: (_, [m, o]) => metricsModule.sharedMapMetrics(m as Untyped, o as Untyped),
    kinds: ['sharedMapObject', 'options'],
    extra: [
      [],
      [
        v("prefix '9x'", { prefix: '9x' }),
        v('label value 1', { labels: { map: 1 } }),
        v('registry {}', { registry: {} }),
      ],
    ],
    lifecycle: 'none',
  },
  {
    name: 'arenaMetrics',
    args: (x) => [x.arena, {}],
    call: (_, [a, o]) => metricsModule.arenaMetrics(a as Untyped, o as Untyped),
    kinds: ['arenaObject', 'options'],
    extra: [
      [],
      [
        v('prefix 1', { prefix: 1 }),
        v("prefix '9x'", { prefix: '9x' }),
        v('labels 1', { labels: 1 }),
        v('label value 1', { labels: { a: 1 } }),
        v("label 'cpu'", { labels: { cpu: 'x' } }),
        v('registry {}', { registry: {} }),
      ],
    ],
    lifecycle: 'none',
  },

  // --- pure functions ---
  {
    name: 'presetOf',
    args: () => [PRESETS.arena],
    call: (_, [p]) => presetOf(p as Untyped),
    kinds: ['policyObject'],
    lifecycle: 'none',
  },
  {
    name: 'classOfSize',
    args: () => [100],
    call: (_, [n]) => classOfSize(n as number),
    kinds: ['allocSize'],
    onBad: { returns: -1 },
    lifecycle: 'none',
  },
  {
    name: 'fixedUnitSize',
    args: () => [40],
    call: (_, [n]) => fixedUnitSize(n as number),
    kinds: ['count'],
    lifecycle: 'none',
  },
  {
    name: 'watermarksFor',
    args: () => [64],
    call: (_, [n]) => watermarksFor(n as number),
    kinds: ['unitSize'],
    lifecycle: 'none',
  },
];
