/**
 * Worker side of bench/fastpath.bench.ts: one exported function per (variant, pattern), run by
 * the CPU pool on every CPU of a run at once (see src/service/pool.ts and src/service/cpu-context.ts).
 *
 * Every variant has its own hot-loop functions (`xxxLifo`, `xxxChurn`) so that each loop's type
 * feedback stays monomorphic: one kind of allocator object ever reaches each call site. Passing
 * different allocators through one shared loop function made V8's feedback polymorphic and
 * measured about 2× slower in an earlier experiment. The shared driver (`measure`) calls the
 * loops once per chunk of thousands of pairs, so its own megamorphic call site costs nothing
 * measurable.
 *
 * Patterns (one pair = one alloc + one free of 56 user bytes = one 64-byte arena unit):
 * - LIFO:  `p = alloc(56); free(p)`, one live unit.
 * - churn: 1024 live units; each step frees the unit at a random index and allocates its
 *   replacement. Indices come from a precomputed table of 64 Ki entries (cycled), so the cost of
 *   a random number generator is not measured.
 *
 * Must not use top-level await: the pool loads this module with `require()`.
 */
import { MemPool } from '@thi.ng/malloc';
import type { CpuHandle } from '../src/cpu/cpu.js';
import type { Pointer } from '../src/index.js';
import type { CpuContext } from '../src/service/cpu-context.js';
import { mutexLock, mutexUnlock } from '../src/shm/sync.js';

/** What the main thread passes to every run. */
export interface FastpathArgs {
  /** Timed duration per run, seconds. */
  readonly seconds: number;
  /** Warm-up stops after this many pairs or `warmupSeconds`, whichever comes first. */
  readonly warmupPairs: number;
  readonly warmupSeconds: number;
  /** Word 0 is the one global mutex of the `arena+global-mutex` variant. */
  readonly lock: SharedArrayBuffer;
}

/** What each CPU returns. */
export interface FastpathResult {
  readonly pairs: number;
  readonly seconds: number;
  /** Pairs run during warm-up (for the report's conditions). */
  readonly warmupPairs: number;
}

/** Request size: 56 user bytes + the arena's 8-byte header = one 64-byte unit. */
const SIZE = 56;
const LIVE = 1024;
const INDEX_BITS = 16;
const INDEX_MASK = (1 << INDEX_BITS) - 1;

/** 64 Ki random indices into the live array (xorshift32, fixed seed: every run sees the same). */
const kIndices: Uint16Array = (() => {
  const table = new Uint16Array(1 << INDEX_BITS);
  let x = 0x9e3779b9 | 0;
  for (let i = 0; i < table.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    table[i] = (x >>> 0) % LIVE;
  }
  return table;
})();

// ───────────────────────────── arena (the CPU handle) ─────────────────────────────

function arenaLifo(cpu: CpuHandle, n: number): number {
  let p = 0;
  for (let i = 0; i < n; i++) {
    p = cpu.alloc(SIZE);
    cpu.free(p as Pointer);
  }
  return p;
}

function arenaChurn(cpu: CpuHandle, live: Int32Array, idx: Uint16Array, start: number, n: number): number {
  let p = 0;
  for (let i = 0; i < n; i++) {
    const j = idx[(start + i) & INDEX_MASK] as number;
    cpu.free(live[j] as Pointer);
    p = cpu.alloc(SIZE);
    live[j] = p;
  }
  return p;
}

// ─────────────────────── arena, every op behind one global mutex ───────────────────────

function mutexLifo(cpu: CpuHandle, lock: Int32Array, n: number): number {
  let p = 0;
  for (let i = 0; i < n; i++) {
    mutexLock(lock, 0);
    p = cpu.alloc(SIZE);
    mutexUnlock(lock, 0);
    mutexLock(lock, 0);
    cpu.free(p as Pointer);
    mutexUnlock(lock, 0);
  }
  return p;
}

function mutexChurn(
  cpu: CpuHandle,
  lock: Int32Array,
  live: Int32Array,
  idx: Uint16Array,
  start: number,
  n: number,
): number {
  let p = 0;
  for (let i = 0; i < n; i++) {
    const j = idx[(start + i) & INDEX_MASK] as number;
    mutexLock(lock, 0);
    cpu.free(live[j] as Pointer);
    mutexUnlock(lock, 0);
    mutexLock(lock, 0);
    p = cpu.alloc(SIZE);
    mutexUnlock(lock, 0);
    live[j] = p;
  }
  return p;
}

// ─────────────────── plain free list of 64-byte slots in a typed array ───────────────────

/**
 * The floor: an intrusive LIFO free list of 64-byte slots, the next link in word 0 of each free
 * slot (an Int32Array over the slab), push/pop, no size classes, no headers, no validation.
 * Pointers are byte offsets like the arena's; slot 0 is never handed out so 0 can mean "none".
 */
class FreeList {
  readonly #i32: Int32Array;
  #head = 0;

  constructor(slots: number) {
    this.#i32 = new Int32Array(slots * 16);
    for (let s = slots - 1; s >= 1; s--) this.free(s * 64);
  }

  alloc(_size: number): number {
    const p = this.#head;
    this.#head = this.#i32[p >> 2] as number;
    return p;
  }

  free(p: number): void {
    this.#i32[p >> 2] = this.#head;
    this.#head = p;
  }
}

function freelistLifo(list: FreeList, n: number): number {
  let p = 0;
  for (let i = 0; i < n; i++) {
    p = list.alloc(SIZE);
    list.free(p);
  }
  return p;
}

function freelistChurn(list: FreeList, live: Int32Array, idx: Uint16Array, start: number, n: number): number {
  let p = 0;
  for (let i = 0; i < n; i++) {
    const j = idx[(start + i) & INDEX_MASK] as number;
    list.free(live[j] as number);
    p = list.alloc(SIZE);
    live[j] = p;
  }
  return p;
}

/**
 * The baseline of issue 17's fast-path target: the same free list, but every slot carries the
 * arena's 8-byte header, written and checked as the arena does. Alloc writes the class word and
 * bumps the generation with state ALLOCATED; free checks that state (a double free throws) and
 * marks it FREE. The link lives in the header's first word while the slot is free.
 */
class HeaderFreeList {
  readonly #i32: Int32Array;
  #head = 0;

  constructor(slots: number) {
    this.#i32 = new Int32Array(slots * 16);
    for (let s = slots - 1; s >= 1; s--) {
      this.#i32[s * 16 + 1] = 2;
      this.#i32[s * 16] = this.#head;
      this.#head = s * 64;
    }
  }

  alloc(_size: number): number {
    const unit = this.#head;
    const h = unit >> 2;
    this.#head = this.#i32[h] as number;
    this.#i32[h] = 1;
    this.#i32[h + 1] = (((this.#i32[h + 1] as number) + 4) & ~3) | 1;
    return unit + 8;
  }

  free(p: number): void {
    const h = (p - 8) >> 2;
    const word = this.#i32[h + 1] as number;
    if ((word & 3) !== 1) throw new Error(`free(${p}): not allocated`);
    this.#i32[h + 1] = (word & ~3) | 2;
    this.#i32[h] = this.#head;
    this.#head = p - 8;
  }
}

function headerLifo(list: HeaderFreeList, n: number): number {
  let p = 0;
  for (let i = 0; i < n; i++) {
    p = list.alloc(SIZE);
    list.free(p);
  }
  return p;
}

function headerChurn(
  list: HeaderFreeList,
  live: Int32Array,
  idx: Uint16Array,
  start: number,
  n: number,
): number {
  let p = 0;
  for (let i = 0; i < n; i++) {
    const j = idx[(start + i) & INDEX_MASK] as number;
    list.free(live[j] as number);
    p = list.alloc(SIZE);
    live[j] = p;
  }
  return p;
}

// ─────────────────────── `new` of a small JS object; GC frees ───────────────────────

/** Seven number fields: 56 bytes of payload, like the arena's 56 user bytes. */
class Small {
  a: number;
  b: number;
  c: number;
  d: number;
  e: number;
  f: number;
  g: number;
  constructor(v: number) {
    this.a = v;
    this.b = v;
    this.c = v;
    this.d = v;
    this.e = v;
    this.f = v;
    this.g = v;
  }
}

/** LIFO: the one live object is replaced each step (the store keeps `new` from being elided). */
function objectLifo(slot: Small[], n: number): number {
  for (let i = 0; i < n; i++) slot[0] = new Small(i);
  return (slot[0] as Small).a + 1;
}

function objectChurn(live: Small[], idx: Uint16Array, start: number, n: number): number {
  for (let i = 0; i < n; i++) live[idx[(start + i) & INDEX_MASK] as number] = new Small(i);
  return (live[0] as Small).a + 1;
}

// ─────────────────────────────── @thi.ng/malloc MemPool ───────────────────────────────

function thingLifo(pool: MemPool, n: number): number {
  let p = 0;
  for (let i = 0; i < n; i++) {
    p = pool.malloc(SIZE);
    pool.free(p);
  }
  return p;
}

function thingChurn(pool: MemPool, live: Int32Array, idx: Uint16Array, start: number, n: number): number {
  let p = 0;
  for (let i = 0; i < n; i++) {
    const j = idx[(start + i) & INDEX_MASK] as number;
    pool.free(live[j] as number);
    p = pool.malloc(SIZE);
    live[j] = p;
  }
  return p;
}

function newThingPool(): MemPool {
  return new MemPool({ buf: new SharedArrayBuffer(16 << 20), align: 8 });
}

// ─────────────────────── CPU control: pure ALU work, no memory ───────────────────────

/**
 * Not an allocator: a linear congruential loop that touches no memory. Its 2-worker / 1-worker
 * ratio shows how much of the second CPU the run actually got (on a shared machine, other load
 * takes it); allocator scaling should be read against it.
 */
function controlLoop(seed: number, n: number): number {
  let x = seed | 0;
  for (let i = 0; i < n; i++) x = (Math.imul(x, 1664525) + 1013904223) | 0;
  return x | 1;
}

// ───────────────────────────────────── driver ─────────────────────────────────────

/** Runs `step(start, n)` (n pairs, starting at pair number `start`); returns its last pointer. */
type Step = (start: number, n: number) => number;

function check(p: number, what: string): void {
  if (p === 0) throw new Error(`fastpath bench: ${what} returned 0 (allocation failed)`);
}

/**
 * Warm-up (until `warmupPairs` pairs or `warmupSeconds`), then the start barrier of all CPUs of
 * the run, then chunks of ≈5 ms until `seconds` have passed. Only the timed part is counted.
 */
function measure(ctx: CpuContext<FastpathArgs>, what: string, step: Step): FastpathResult {
  const { seconds, warmupPairs, warmupSeconds } = ctx.args;
  let done = 0;
  let n = 1024;
  const w0 = performance.now();
  let elapsed = 0;
  while (done < warmupPairs && elapsed < warmupSeconds * 1000) {
    const m = Math.min(n, warmupPairs - done);
    check(step(done, m), what);
    done += m;
    n = Math.min(n * 2, 1 << 20);
    elapsed = performance.now() - w0;
  }
  const warmed = done;
  // A chunk of ≈5 ms at the warm-up rate: small enough that two CPUs stop within ~1 chunk.
  const chunk = Math.max(256, Math.min(1 << 20, Math.round((done / Math.max(elapsed, 1e-3)) * 5)));
  ctx.barrier();
  let pairs = 0;
  const t0 = performance.now();
  const limit = seconds * 1000;
  let t = t0;
  do {
    check(step(done + pairs, chunk), what);
    pairs += chunk;
    t = performance.now();
  } while (t - t0 < limit);
  return { pairs, seconds: (t - t0) / 1000, warmupPairs: warmed };
}

function fillLive(alloc: () => number, what: string): Int32Array {
  const live = new Int32Array(LIVE);
  for (let j = 0; j < LIVE; j++) {
    const p = alloc();
    check(p, what);
    live[j] = p;
  }
  return live;
}

function checkLive(live: Int32Array, what: string): void {
  for (const p of live) check(p, what);
}

// ─────────────────────────── exported run functions (one per cell) ───────────────────────────

export function arenaLifoRun(ctx: CpuContext<FastpathArgs>): FastpathResult {
  const cpu = ctx.cpu;
  return measure(ctx, 'arena alloc', (_s, n) => arenaLifo(cpu, n));
}

export function arenaChurnRun(ctx: CpuContext<FastpathArgs>): FastpathResult {
  const cpu = ctx.cpu;
  const live = fillLive(() => cpu.alloc(SIZE), 'arena alloc');
  const r = measure(ctx, 'arena alloc', (s, n) => arenaChurn(cpu, live, kIndices, s, n));
  checkLive(live, 'arena alloc');
  for (const p of live) cpu.free(p as Pointer);
  return r;
}

export function mutexLifoRun(ctx: CpuContext<FastpathArgs>): FastpathResult {
  const cpu = ctx.cpu;
  const lock = new Int32Array(ctx.args.lock);
  return measure(ctx, 'arena alloc (mutex)', (_s, n) => mutexLifo(cpu, lock, n));
}

export function mutexChurnRun(ctx: CpuContext<FastpathArgs>): FastpathResult {
  const cpu = ctx.cpu;
  const lock = new Int32Array(ctx.args.lock);
  const live = fillLive(() => cpu.alloc(SIZE), 'arena alloc (mutex)');
  const r = measure(ctx, 'arena alloc (mutex)', (s, n) => mutexChurn(cpu, lock, live, kIndices, s, n));
  checkLive(live, 'arena alloc (mutex)');
  for (const p of live) cpu.free(p as Pointer);
  return r;
}

export function freelistLifoRun(ctx: CpuContext<FastpathArgs>): FastpathResult {
  const list = new FreeList(4096);
  return measure(ctx, 'free list pop', (_s, n) => freelistLifo(list, n));
}

export function freelistChurnRun(ctx: CpuContext<FastpathArgs>): FastpathResult {
  const list = new FreeList(4096);
  const live = fillLive(() => list.alloc(SIZE), 'free list pop');
  const r = measure(ctx, 'free list pop', (s, n) => freelistChurn(list, live, kIndices, s, n));
  checkLive(live, 'free list pop');
  return r;
}

export function headerLifoRun(ctx: CpuContext<FastpathArgs>): FastpathResult {
  const list = new HeaderFreeList(4096);
  return measure(ctx, 'header free list pop', (_s, n) => headerLifo(list, n));
}

export function headerChurnRun(ctx: CpuContext<FastpathArgs>): FastpathResult {
  const list = new HeaderFreeList(4096);
  const live = fillLive(() => list.alloc(SIZE), 'header free list pop');
  const r = measure(ctx, 'header free list pop', (s, n) => headerChurn(list, live, kIndices, s, n));
  checkLive(live, 'header free list pop');
  return r;
}

export function objectLifoRun(ctx: CpuContext<FastpathArgs>): FastpathResult {
  const slot = [new Small(0)];
  return measure(ctx, 'new Small', (_s, n) => objectLifo(slot, n));
}

export function objectChurnRun(ctx: CpuContext<FastpathArgs>): FastpathResult {
  const live = Array.from({ length: LIVE }, (_, j) => new Small(j));
  return measure(ctx, 'new Small', (s, n) => objectChurn(live, kIndices, s, n));
}

export function thingLifoRun(ctx: CpuContext<FastpathArgs>): FastpathResult {
  const pool = newThingPool();
  return measure(ctx, 'MemPool.malloc', (_s, n) => thingLifo(pool, n));
}

export function thingChurnRun(ctx: CpuContext<FastpathArgs>): FastpathResult {
  const pool = newThingPool();
  const live = fillLive(() => pool.malloc(SIZE), 'MemPool.malloc');
  const r = measure(ctx, 'MemPool.malloc', (s, n) => thingChurn(pool, live, kIndices, s, n));
  checkLive(live, 'MemPool.malloc');
  return r;
}

export function controlRun(ctx: CpuContext<FastpathArgs>): FastpathResult {
  return measure(ctx, 'control loop', (s, n) => controlLoop(s, n));
}
