/**
 * Model-based property test of the allocator in the deterministic mode: three CPUs attached on
 * the main thread run random sequences of alloc, free and freeRcu (often on another CPU than the
 * one that allocated), fixed-size alloc, alloc/free bursts (which drive refills and trims), epoch
 * advances of either flavor (the manual coordinator) and CPU detach + reattach, under every
 * preset. The model is the set of live (ptr, size) pairs plus, for every unit freed so that it
 * must wait for an rcu GP, the rcu epoch at its free.
 *
 * After every operation the whole arena is audited against the model, walking the real lists
 * in shared memory rather than trusting the counters:
 *  (a) no two units (live, cached or on a slab free list) overlap, and none is on two lists;
 *  (b) every live pointer's bytes still hold the pattern written when it was allocated;
 *  (c) stats().liveUnits and each class's live count equal the model;
 *  (d) per class, units carved = live + slab free list + every CPU's free list, deferred lists
 *      and inbox; every list's length equals its count word; units on the rcu lists have
 *      header state DEFERRED and all others FREE;
 *  (e) no unit freed with freeRcu (or with free under a policy that reuses after a GP) is handed
 *      out again before the rcu epoch has moved 2 past its free;
 *  and every live unit has header state ALLOCATED and the usableSize of its class. Sequences are
 *  up to 300 operations long (`size: 'max'`: fast-check's default size would keep them under
 *  ~10). A last test injects an allocator fault (a live unit handed out a second time) and
 *  checks that both a fixed sequence and the random property catch it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Barn } from '../src/cpu/barn.js';
import type { CpuHandle, Pointer, PresetName } from '../src/index.js';
import { CLASS_UNIT_SIZES, classOfSize, PRESET_NAMES, PRESETS } from '../src/lab/index.js';
import {
  C_FREE_COUNT,
  C_SEALED_HEAD,
  C_SHEAF_MAIN,
  C_SHEAF_RCU,
  C_SHEAF_SPARE,
  CACHE_LISTS,
  cacheWord,
  DEPOT_COUNT,
  DEPOT_SLOTS,
  DEPOT_X_HEAD,
  depotWord,
  FLAVOR_RCU,
  G_EPOCH,
  gpWord,
  PAGE_BYTES,
  readLayout,
  SHEAF_NEXT,
  SHEAF_OBJECTS,
  SHEAF_SIZE,
  SLAB_FREE_COUNT,
  SLAB_FREE_HEAD,
  slabWord,
  UNIT_ALLOCATED,
  UNIT_DEFERRED,
  UNIT_FREE,
  UNIT_STATE_MASK,
  X_PAGE_LIMIT_HITS,
  X_PAGES_NEXT,
} from '../src/shm/layout.js';
import { createTestArena, type TestArenaOptions } from '../src/testing.js';

const CPUS = 3;
const FIXED_SIZES = [300, 40];
const GENERAL = CLASS_UNIT_SIZES.length;

type Op =
  | { kind: 'alloc'; cpu: number; size: number }
  | { kind: 'free'; cpu: number; pick: number }
  | { kind: 'freeRcu'; cpu: number; pick: number }
  | { kind: 'gp'; flavor: 'rcu' | 'ttrace' }
  | { kind: 'fixed'; cpu: number; id: number }
  | { kind: 'burst'; from: number; to: number; size: number; count: number }
  | { kind: 'replug'; cpu: number }
  | { kind: 'trim' };

interface Live {
  readonly size: number;
  readonly cls: number;
  readonly cpu: number;
  readonly stamp: number;
}

/**
 * The pattern of an allocation is a byte ramp starting at a seed derived from its pointer and
 * its allocation number: bytes[ptr + i] = (seed + i) & 0xff. Writing and checking it are then
 * one native copy and one memcmp against a slice of RAMP, which keeps a full check of every
 * live allocation after every step affordable.
 */
const RAMP = Uint8Array.from({ length: 4096 + 256 }, (_, i) => i & 0xff);
const seedOf = (ptr: number, stamp: number): number => (ptr * 7 + stamp * 13) & 0xff;

/** What a run exercised, summed over runs to show the property reaches the interesting paths. */
interface Coverage {
  crossCpuFrees: number;
  trims: number;
  limitHits: number;
  replugs: number;
  spansReleased: number;
  depotParks: number;
  depotTakes: number;
}

/**
 * Runs `ops` on a fresh arena, auditing after every one; throws (an assertion) on a mismatch.
 * Adds what the run exercised to `coverage`.
 */
function runModel(ops: readonly Op[], options: Partial<TestArenaOptions> = {}, coverage?: Coverage): void {
  const arena = createTestArena({
    cpus: CPUS,
    maxBytes: 2 << 20,
    fixedSizes: FIXED_SIZES,
    coordinator: 'manual',
    ...options,
  });
  const freeDefers = arena.policy.reuse !== 'immediate';
  const i32 = new Int32Array(arena.shared.buffer);
  const bytes = new Uint8Array(arena.shared.buffer);
  const layout = readLayout(i32);
  const classes = layout.classes;
  const unitSizes = arena.stats().classes.map((c) => c.unitSize);
  const handles: CpuHandle[] = Array.from({ length: CPUS }, (_, cpu) => arena.attach(cpu));
  const live = new Map<number, Live>();
  /** Pointers freed so that they must wait for an rcu GP, with the rcu epoch at their free. */
  const deferredAt = new Map<number, number>();
  const rcuEpoch = (): number => Atomics.load(i32, gpWord(FLAVOR_RCU, G_EPOCH));
  const order: number[] = []; // live pointers, for picking one to free
  let stamps = 0;
  // Every unit seen by an audit, as unit * 256 + class, sorted to find duplicates and overlaps.
  const keys = new Float64Array((layout.maxPages * PAGE_BYTES) / 16);

  const handle = (cpu: number): CpuHandle => handles[cpu] as CpuHandle;
  const word = (index: number): number => i32[index] as number;

  function allocOn(cpu: number, size: number, fixedId = -1): void {
    const limitHits = word(X_PAGE_LIMIT_HITS);
    const ptr = fixedId < 0 ? handle(cpu).alloc(size) : handle(cpu).allocFixed(fixedId);
    if (ptr === 0) {
      // The only acceptable reason for a null: the memory limit was reached just now.
      if (word(X_PAGE_LIMIT_HITS) === limitHits)
        expect.fail(`alloc on CPU ${cpu} returned 0 below the limit`);
      return;
    }
    if (live.has(ptr)) expect.fail(`alloc returned the live pointer ${ptr}`);
    const freedAt = deferredAt.get(ptr);
    if (freedAt !== undefined) {
      if (rcuEpoch() - freedAt < 2)
        expect.fail(`${ptr} reused at rcu epoch ${rcuEpoch()}, freed at ${freedAt}`);
      deferredAt.delete(ptr);
    }
    const stamp = ++stamps;
    const seed = seedOf(ptr, stamp);
    bytes.set(RAMP.subarray(seed, seed + size), ptr);
    const cls = fixedId < 0 ? classOfSize(size) : GENERAL + fixedId;
    live.set(ptr, { size, cls, cpu, stamp });
    order.push(ptr);
  }

  function checkPattern(ptr: number, info: Live): void {
    const seed = seedOf(ptr, info.stamp);
    if (Buffer.compare(bytes.subarray(ptr, ptr + info.size), RAMP.subarray(seed, seed + info.size)) !== 0) {
      expect.fail(`the bytes of live ${ptr} (size ${info.size}) were overwritten`);
    }
  }

  function freeOn(cpu: number, index: number, rcu = false): void {
    const ptr = order[index] as number;
    const info = live.get(ptr) as Live;
    checkPattern(ptr, info);
    // The epoch of the free is the one before the call: under gpDrive 'cpus' the call itself
    // may seal a sheaf at this epoch and then advance it.
    const epoch = rcuEpoch();
    if (rcu) handle(cpu).freeRcu(ptr as Pointer);
    else handle(cpu).free(ptr as Pointer);
    if (rcu || freeDefers) deferredAt.set(ptr, epoch);
    else deferredAt.delete(ptr);
    if (coverage && cpu !== info.cpu) coverage.crossCpuFrees++;
    live.delete(ptr);
    order[index] = order[order.length - 1] as number;
    order.pop();
  }

  /**
   * Walks a list from `head`, adding its units to `keys` from `at`; returns its length. Units
   * must have header state `state` (FREE, or DEFERRED on the rcu lists).
   */
  function walk(
    head: number,
    cls: number,
    where: string,
    count: number,
    at: number,
    state = UNIT_FREE,
  ): number {
    let length = 0;
    for (let unit = head; unit !== 0; unit = word(unit >> 2)) {
      if (length === count) expect.fail(`${where}: list longer than its count ${count} (a cycle?)`);
      // Plain ifs, not expect(): this runs for thousands of units per step.
      if ((word((unit >> 2) + 1) & UNIT_STATE_MASK) !== state) {
        expect.fail(`unit ${unit} on ${where} has header ${word((unit >> 2) + 1)}, not state ${state}`);
      }
      keys[at + length++] = unit * 256 + cls;
    }
    if (length !== count) expect.fail(`${where}: list has ${length} units, its count says ${count}`);
    return length;
  }

  /**
   * Adds the units of the sheaf at word `sheaf` (an array, not a chain) to `keys` from `at`.
   * Their header state must be `state`; in a sheaf past its GP (`pastGp`: main, spare, barn)
   * DEFERRED too, which an rcu_free sheaf's objects keep after their GP.
   */
  function walkSheaf(
    sheaf: number,
    cls: number,
    where: string,
    at: number,
    state: number,
    pastGp = false,
  ): number {
    const n = word(sheaf + SHEAF_SIZE);
    for (let k = 0; k < n; k++) {
      const unit = word(sheaf + SHEAF_OBJECTS + k);
      const now = word((unit >> 2) + 1) & UNIT_STATE_MASK;
      if (now !== state && !(pastGp && now === UNIT_DEFERRED)) {
        expect.fail(`unit ${unit} in ${where} has header ${word((unit >> 2) + 1)}, not state ${state}`);
      }
      keys[at + k] = unit * 256 + cls;
    }
    return n;
  }

  /** Policy cache 'sheaves': every CPU's main, spare, rcu_free and sealed sheaves and the barn's full ones. */
  function walkSheaves(cls: number, at: number): number {
    if (layout.sheaves === 0) return 0;
    let n = 0;
    for (let cpu = 0; cpu < CPUS; cpu++) {
      const c = cacheWord(layout, cpu, cls);
      for (const w of [C_SHEAF_MAIN, C_SHEAF_SPARE]) {
        if (word(c + w) !== 0)
          n += walkSheaf(word(c + w), cls, `sheaf ${w} of ${cpu}/${cls}`, at + n, UNIT_FREE, true);
      }
      if (word(c + C_SHEAF_RCU) !== 0)
        n += walkSheaf(word(c + C_SHEAF_RCU), cls, `rcu_free of ${cpu}`, at + n, UNIT_DEFERRED);
      for (let s = word(c + C_SEALED_HEAD); s !== 0; s = word(s + SHEAF_NEXT)) {
        n += walkSheaf(s, cls, `sealed sheaf of ${cpu}`, at + n, UNIT_DEFERRED);
      }
    }
    for (const sheaf of new Barn(i32, layout).fullSheaves(cls)) {
      n += walkSheaf(sheaf, cls, `barn ${cls}`, at + n, UNIT_FREE, true);
    }
    return n;
  }

  function audit(): void {
    const stats = arena.stats();
    // (c) live counts. Plain ifs with expect.fail, not expect(): an audit runs ~30 000 times
    // per test and an expect() costs microseconds.
    if (stats.liveUnits !== live.size) expect.fail(`liveUnits ${stats.liveUnits}, model ${live.size}`);
    const liveByClass = new Array<number>(classes).fill(0);
    for (const info of live.values()) liveByClass[info.cls] = (liveByClass[info.cls] as number) + 1;
    // (d) walk every cache and slab list.
    let n = 0;
    for (let cls = 0; cls < classes; cls++) {
      const first = n;
      for (let cpu = 0; cpu < CPUS; cpu++) {
        const c = cacheWord(layout, cpu, cls);
        const count = word(c + C_FREE_COUNT);
        if (!handle(cpu).attached && count !== 0) expect.fail(`detached CPU ${cpu} caches ${count} units`);
        for (const [head, length, state] of CACHE_LISTS) {
          n += walk(word(c + head), cls, `list ${head} of ${cpu}/${cls}`, word(c + length), n, state);
        }
      }
      n += walkSheaves(cls, n);
      const row = slabWord(layout, cls);
      n += walk(word(row + SLAB_FREE_HEAD), cls, `slab ${cls}`, word(row + SLAB_FREE_COUNT), n);
      for (let slot = 0; slot < DEPOT_SLOTS; slot++) {
        const w = depotWord(layout, cls, slot);
        if (word(w + DEPOT_X_HEAD) !== 0) {
          n += walk(word(w + DEPOT_X_HEAD), cls, `depot ${cls}/${slot}`, word(w + DEPOT_COUNT), n);
        }
      }
      const { live: liveUnits = -1, units = -1 } = stats.classes[cls] ?? {};
      const modelLive = liveByClass[cls] as number;
      if (liveUnits !== modelLive) expect.fail(`class ${cls}: ${liveUnits} live units, model ${modelLive}`);
      if (units !== modelLive + n - first) {
        expect.fail(`class ${cls}: ${units} units carved, but ${modelLive} live + ${n - first} on lists`);
      }
    }
    // Live units: allocated header, the usable size of their class, intact bytes.
    const anyCpu = handles.find((h) => h.attached) as CpuHandle;
    for (const [ptr, info] of live) {
      const unit = ptr - 8;
      if ((word((unit >> 2) + 1) & UNIT_STATE_MASK) !== UNIT_ALLOCATED) {
        expect.fail(`live unit ${unit} has header ${word((unit >> 2) + 1)}, not ALLOCATED`);
      }
      const usable =
        info.cls >= GENERAL
          ? (FIXED_SIZES[info.cls - GENERAL] as number)
          : (unitSizes[info.cls] as number) - 8;
      if (anyCpu.usableSize(ptr as Pointer) !== usable) expect.fail(`usableSize(${ptr}) is not ${usable}`);
      checkPattern(ptr, info);
      keys[n++] = unit * 256 + info.cls;
    }
    // (a) all units, free or live, are distinct, disjoint and inside the pages handed out.
    const sorted = keys.subarray(0, n).sort();
    const pagesEnd = layout.pagesBase + word(X_PAGES_NEXT) * PAGE_BYTES;
    for (let k = 0; k < n; k++) {
      const key = sorted[k] as number;
      const unit = Math.floor(key / 256);
      const end = unit + (unitSizes[key % 256] as number);
      if (unit < layout.pagesBase || end > pagesEnd) expect.fail(`unit ${unit} is outside the pages in use`);
      const next = k + 1 < n ? Math.floor((sorted[k + 1] as number) / 256) : pagesEnd;
      if (next === unit) expect.fail(`unit ${unit} is on two lists, or live and on a list`);
      if (next < end) expect.fail(`units ${unit} and ${next} overlap`);
    }
  }

  audit();
  for (const op of ops) {
    switch (op.kind) {
      case 'alloc':
        allocOn(op.cpu, op.size);
        break;
      case 'fixed':
        allocOn(op.cpu, FIXED_SIZES[op.id] as number, op.id);
        break;
      case 'free':
        if (order.length > 0) freeOn(op.cpu, op.pick % order.length);
        break;
      case 'freeRcu':
        if (order.length > 0) freeOn(op.cpu, op.pick % order.length, true);
        break;
      case 'gp':
        arena.advance(op.flavor);
        break;
      case 'burst': {
        // Allocate a batch on one CPU and free it on another: the kernel's problem case, which
        // fills the freeing CPU's cache past high (trim) and drains the allocating one (refill).
        const first = order.length;
        for (let n = 0; n < op.count; n++) allocOn(op.from, op.size);
        while (order.length > first) freeOn(op.to, order.length - 1);
        break;
      }
      case 'trim':
        // Spans whose units are all on the slab go back to the page allocator once both
        // flavors' GPs have passed since trim() first saw them empty.
        arena.trim();
        for (let k = 0; k < 2; k++) {
          arena.advance('rcu');
          arena.advance('ttrace');
        }
        arena.trim();
        break;
      case 'replug':
        if (coverage) coverage.replugs++;
        handle(op.cpu).detach();
        audit();
        handles[op.cpu] = arena.attach(op.cpu);
        break;
    }
    audit();
  }
  // Teardown: free everything; nothing leaks, and close() brings every deferred unit home.
  while (order.length > 0) freeOn(0, order.length - 1);
  audit();
  const stats = arena.stats();
  void arena.close().then((report) => {
    if (
      report.leaked !== 0 ||
      report.deferred !== 0 ||
      report.stats.classes.some((c) => c.cached + c.deferred)
    ) {
      throw new Error(`close: ${report.leaked} leaked, ${report.deferred} deferred`);
    }
  });
  if (coverage) {
    coverage.limitHits += stats.limitHits;
    coverage.spansReleased += stats.spansReleased;
    coverage.depotParks += stats.depot.parks;
    coverage.depotTakes += stats.depot.takes;
    // Cache counters live in the CPU slot and survive detach + reattach.
    coverage.trims += stats.cpus.reduce((sum, c) => sum + c.trims, 0);
  }
}

const noCoverage = (): Coverage => ({
  crossCpuFrees: 0,
  trims: 0,
  limitHits: 0,
  replugs: 0,
  spansReleased: 0,
  depotParks: 0,
  depotTakes: 0,
});

const cpuArb = fc.integer({ min: 0, max: CPUS - 1 });
/** Mostly small sizes (the classes up to 256 bytes), sometimes anything up to 4088. */
const sizeArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 248 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 4088 }) },
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ kind: fc.constant('alloc' as const), cpu: cpuArb, size: sizeArb }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('free' as const), cpu: cpuArb, pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('freeRcu' as const), cpu: cpuArb, pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('gp' as const),
      flavor: fc.constantFrom('rcu' as const, 'ttrace' as const),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('fixed' as const),
      cpu: cpuArb,
      id: fc.integer({ min: 0, max: 1 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('burst' as const),
      from: cpuArb,
      to: cpuArb,
      size: sizeArb,
      count: fc.integer({ min: 1, max: 150 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('replug' as const), cpu: cpuArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('trim' as const) }) },
);
const opsArb = fc.array(opArb, { maxLength: 300, size: 'max' });

/**
 * Runs the property in rounds of `numRuns` random sequences (a fresh seed each round), summing
 * what they exercised, until `enough(coverage)` holds or `maxRounds` rounds have run. A random
 * round can miss a rare path (a span released needs a whole span's units back on the slab past
 * two GPs of both flavors); one more round is asked for rather than a failed test. The caller
 * then asserts the coverage, which fails only if `maxRounds` rounds never reached it.
 */
function checkUntilCovered(
  run: (ops: readonly Op[], coverage: Coverage) => void,
  numRuns: number,
  enough: (coverage: Coverage) => boolean,
  maxRounds = 4,
): Coverage {
  const coverage = noCoverage();
  for (let round = 0; round < maxRounds && (round === 0 || !enough(coverage)); round++) {
    fc.assert(
      fc.property(opsArb, (ops) => run(ops, coverage)),
      { numRuns },
    );
  }
  return coverage;
}

describe('allocator model', () => {
  it.each(PRESET_NAMES)(
    'matches the model after every operation of random multi-CPU sequences (%s)',
    (preset) => {
      // Deferring presets never push a free on the free list, so only immediate ones trim;
      // sheaves never trim a list (their overflow paths: test/sheaves.test.ts).
      const policy = PRESETS[preset as PresetName];
      const trims = policy.reuse === 'immediate' && preset !== 'prealloc' && policy.cache === 'lists';
      const coverage = checkUntilCovered(
        (ops, sum) => runModel(ops, { policy: preset }, sum),
        40,
        (c) => c.crossCpuFrees > 40 && c.replugs > 4 && c.spansReleased > 0 && (!trims || c.trims > 4),
      );
      // The runs reached the paths the audit is for (counts are summed over every round's runs).
      expect(coverage.crossCpuFrees).toBeGreaterThan(40);
      expect(coverage.replugs).toBeGreaterThan(4);
      expect(coverage.spansReleased).toBeGreaterThan(0);
      if (trims) expect(coverage.trims).toBeGreaterThan(4);
    },
  );

  it('keeps every invariant with adaptive capacity (watermarks that change under the lists)', () => {
    const coverage = checkUntilCovered(
      (ops, sum) => runModel(ops, { policy: { ...PRESETS['kernel-6.6'], capacity: 'adaptive' } }, sum),
      40,
      (c) => c.trims > 4,
    );
    expect(coverage.trims).toBeGreaterThan(4);
  });

  it.each([
    ['immediate reuse', { ...PRESETS['kernel-6.6'], trimVia: 'slab', sharing: 'depot' }],
    ['reuse after a GP', { ...PRESETS.arena, capacity: 'fixed' }],
  ] as const)(
    'keeps every invariant with a depot (%s: trims park batches, refills take them)',
    (_, policy) => {
      const coverage = checkUntilCovered(
        (ops, sum) => runModel(ops, { policy }, sum),
        40,
        (c) => c.depotParks > 4 && c.depotTakes > 4,
      );
      expect(coverage.depotParks).toBeGreaterThan(4);
      expect(coverage.depotTakes).toBeGreaterThan(4);
    },
  );

  it('hits the memory limit without breaking any invariant', () => {
    // Spans are per class, shared by the CPUs: the first prefill takes 35 pages (one span of
    // each class) and 40 pages leave room for little more, so allocations often fail and must
    // fail cleanly.
    const coverage = checkUntilCovered(
      (ops, sum) => runModel(ops, { maxBytes: 40 * PAGE_BYTES }, sum),
      30,
      (c) => c.limitHits > 0,
    );
    expect(coverage.limitHits).toBeGreaterThan(0);
  });

  it('keeps every invariant in a growable arena, whose buffer grows under the handles', () => {
    fc.assert(
      fc.property(opsArb, (ops) => runModel(ops, { growable: true })),
      { numRuns: 20 },
    );
  });

  it('catches an allocator that hands the same unit out twice, so a green run means something', () => {
    const ops: Op[] = [
      // CPU 1 frees 150 units CPU 0 allocated: its cache trims to the slab free list.
      { kind: 'burst', from: 0, to: 1, size: 8, count: 150 },
      // CPU 2 drains its prefill and refills from that free list: each of these allocations
      // leaves the cache below low, so each takes the slow path, where the fault hands the
      // previous (still live) unit out again.
      { kind: 'burst', from: 2, to: 2, size: 8, count: 10 },
    ];
    expect(() => runModel(ops)).not.toThrow();
    expect(() => runModel(ops, { faults: { handOutTwice: true } })).toThrow();
    // And the random property finds it on its own (in a handful of runs, shrunk to ~2 steps).
    const result = fc.check(
      fc.property(opsArb, (random) => runModel(random, { faults: { handOutTwice: true } })),
      { numRuns: 100 },
    );
    expect(result.failed).toBe(true);
  });
});
