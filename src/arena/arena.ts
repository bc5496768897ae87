/**
 * The arena façade: `Arena.create` lays out and initialises the SharedArrayBuffer on the
 * creating thread (normally the main thread); `arena.shared` carries it to workers, which call
 * `attach(shared, cpu)`; `arena.attach(cpu)` attaches on the creating thread (the deterministic
 * mode: several CPUs driven from one thread); `stats()` and `close()` read the whole arena.
 * The arena owns the grace-period coordinator (src/arena/coordinator.ts), which runs on the creating
 * thread's event loop until `close()`; `synchronize()` and `advance()` go through it.
 *
 * Who may call: the thread that created the arena. Shared words: X_CLOSED (set once by
 * `close()`) and, through the coordinator, the GP words; everything else (geometry, policy, GP
 * minimum durations, debug flags, time origin) is written before `arena.shared` exists, so a
 * worker that receives it (postMessage and workerData are synchronising hand-offs) sees it
 * initialised.
 */
import type { Worker } from 'node:worker_threads';
import { attach } from '../cpu/attach.js';
import { initialiseBarns, sheafPoolSize } from '../cpu/barn.js';
import { type CpuHandle, handlesOnThisThread } from '../cpu/cpu.js';
import { ListsByCpu } from '../cpu/deferred.js';
import { FLAVOR_NAMES, type Flavor, flavorIndex, writeBirthMs } from '../epoch/grace-period.js';
import { encodePolicy, type Policy, type PresetName, resolvePolicy } from '../epoch/policy.js';
import { PageAllocator } from '../memory/page-allocator.js';
import {
  CLASS_UNIT_SIZES,
  fixedUnitSize,
  GENERAL_CLASS_COUNT,
  UNIT_HEADER_BYTES,
  watermarksFor,
} from '../memory/size-class.js';
import { Slab } from '../memory/slab.js';
import { type ArenaFaults, FAULT_NAMES, type SharedArena } from '../shm/arena-ref.js';
import { publish, readShared } from '../shm/atomics.js';
import { ArenaError, fail, show } from '../shm/errors.js';
import {
  ARENA_MAGIC,
  CLS_BATCH,
  CLS_HIGH,
  CLS_LOW,
  CLS_OBJECT_SIZE,
  CLS_PREFILL,
  CLS_SPAN_PAGES,
  CLS_SPAN_UNITS,
  CLS_UNIT_SIZE,
  classWord,
  computeLayout,
  DEBUG_POISON,
  FLAVORS,
  H_CLASSES,
  H_CPUS,
  H_DEBUG,
  H_GP_MIN_MS,
  H_MAGIC,
  H_MAX_PAGES,
  H_PAGES_BASE,
  H_POLICY,
  H_SHEAVES,
  H_VERSION,
  LAYOUT_VERSION,
  type Layout,
  MAX_ARENA_BYTES,
  MAX_CLASSES,
  PAGE_BYTES,
  X_CLOSED,
} from '../shm/layout.js';
import { Coordinator, type StallReport, type StallWatch } from './coordinator.js';
import { type RecoveryReport, recoverThread } from './recovery.js';
import { type ArenaStats, readStats } from './stats.js';

/** Options of `Arena.create`. */
export interface ArenaOptions {
  /** Number of CPU slots (1..1024); each thread that allocates attaches one. */
  readonly cpus: number;
  /**
   * Memory limit: bytes of pages the arena may hand to slabs.
   * @defaultValue 64 MiB
   */
  readonly maxBytes?: number;
  /**
   * Create a growable SharedArrayBuffer that starts small and grows up to the limit as pages are
   * needed, instead of reserving the whole limit at once (the OS commits untouched pages lazily
   * either way).
   * @defaultValue false
   */
  readonly growable?: boolean;
  /**
   * Object sizes of fixed-size caches (`bpf_mem_cache_alloc`): `cpu.allocFixed(i)` allocates an
   * object of `fixedSizes[i]` bytes from a cache of its own, with unit size = size + 8 rounded
   * to 8 and the kernel's watermarks for that unit size.
   * @defaultValue []
   */
  readonly fixedSizes?: readonly number[];
  /**
   * When freed units may be reused and where frees go: a preset name or a policy object
   * (src/epoch/policy.ts). `freeRcu()` waits for an `rcu` GP under every policy.
   * @defaultValue 'kernel-6.6'
   */
  readonly policy?: PresetName | Partial<Policy>;
  /**
   * Minimum duration of each epoch, per flavor, in milliseconds: emulates the kernel's slower
   * grace periods (RCU ≈ ms, tasks trace ≈ 100 ms and more). A GP then lasts 1–2 epochs.
   * @defaultValue { rcu: 0, ttrace: 0 } (as fast as the proof allows)
   */
  readonly gpMinMs?: { readonly rcu?: number; readonly ttrace?: number };
  /**
   * `'auto'`: a coordinator runs on this thread's event loop. `'manual'`: nothing runs by itself;
   * `arena.advance(flavor)` steps the epochs (the deterministic mode of tests).
   * @defaultValue 'auto'
   */
  readonly coordinator?: 'auto' | 'manual';
  /**
   * Debug options. `poison`: fill a unit's user bytes with 0x6b when it becomes reusable and
   * check them when it is handed out again; a mismatch (a write after free) is counted in
   * `stats().poison`. Every alloc and free takes the slow path then.
   */
  readonly debug?: { readonly poison?: boolean };
  /**
   * Report a CPU that holds a grace period back (stays inside a read-side section) for this
   * many milliseconds, once per stall: the RCU CPU-stall warning. 0 turns it off.
   * @defaultValue 10000
   */
  readonly stallWarningMs?: number;
  /**
   * Called with each stall report.
   * @defaultValue a `process.emitWarning` naming the CPU, its thread, the flavor and the time
   */
  readonly onStall?: (stall: StallReport) => void;
}

const kDefaultStallWarningMs = 10_000;

function warnStall(stall: StallReport): void {
  process.emitWarning(
    `CPU ${stall.cpu} (thread ${stall.threadId}) has held back the ${stall.flavor} grace period for ${stall.ms} ms`,
    { code: 'PERCPU_ARENA_STALL' },
  );
}

/** What `close()` reports (the kernel's check_leaked_objs). */
export interface CloseReport {
  /** Units allocated and never freed. */
  readonly leaked: number;
  /** Units freed but still waiting for a GP that a reader on another thread holds back. */
  readonly deferred: number;
  /** Leaked units per unit size (classes with none are left out). */
  readonly leakedBySize: Readonly<Record<number, number>>;
  /** CPUs still attached by other threads when the arena closed (their caches were counted as free). */
  readonly attachedCpus: readonly number[];
  /** Stats at close. */
  readonly stats: ArenaStats;
}

const kDefaultMaxBytes = 64 * 1024 * 1024;
/** Longest emulated epoch: one minute. */
const kMaxGpMinMs = 60_000;
/**
 * Most advance rounds `close()` makes to move deferred units of offline CPUs to the slab: a unit
 * may wait behind a batch in flight, then for an rcu GP, then for a ttrace GP; it stops earlier
 * once nothing is deferred or a reader blocks.
 */
const kCloseRounds = 16;
const kMaxCpus = 1024;
/** Pages a span should hold at least this many units, or one refill batch if larger. */
const kMinUnitsPerSpan = 8;

function validateOptions(options: ArenaOptions): {
  cpus: number;
  policy: Policy;
  minMs: number[];
  manual: boolean;
  poison: boolean;
  maxPages: number;
  unitSizes: number[];
  objectSizes: number[];
  stall: StallWatch;
} {
  if (options === null || typeof options !== 'object') fail('EINVAL', 'Arena.create needs an options object');
  const { cpus, maxBytes = kDefaultMaxBytes, fixedSizes = [] } = options;
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > kMaxCpus) {
    fail('EINVAL', `options.cpus must be an integer from 1 to ${kMaxCpus}, got ${show(cpus)}`);
  }
  if (!Number.isInteger(maxBytes) || maxBytes < PAGE_BYTES || maxBytes > MAX_ARENA_BYTES) {
    fail(
      'EINVAL',
      `options.maxBytes must be an integer from ${PAGE_BYTES} to ${MAX_ARENA_BYTES}, got ${show(maxBytes)}`,
    );
  }
  if (!Array.isArray(fixedSizes) || fixedSizes.length > MAX_CLASSES - GENERAL_CLASS_COUNT) {
    fail(
      'EINVAL',
      `options.fixedSizes must be an array of at most ${MAX_CLASSES - GENERAL_CLASS_COUNT} sizes`,
    );
  }
  for (const size of fixedSizes) {
    if (!Number.isInteger(size) || size < 1 || fixedUnitSize(size) > 1024 * 1024) {
      fail('EINVAL', `options.fixedSizes: ${show(size)} is not an object size from 1 to ${1024 * 1024 - 8}`);
    }
  }
  const gpMinMs = options.gpMinMs ?? {};
  if (gpMinMs === null || typeof gpMinMs !== 'object')
    fail('EINVAL', 'options.gpMinMs must be { rcu?, ttrace? }');
  const minMs = FLAVOR_NAMES.map((flavor) => {
    const ms = gpMinMs[flavor] ?? 0;
    if (!Number.isInteger(ms) || ms < 0 || ms > kMaxGpMinMs) {
      fail(
        'EINVAL',
        `options.gpMinMs.${flavor} must be an integer from 0 to ${kMaxGpMinMs}, got ${show(ms)}`,
      );
    }
    return ms;
  });
  for (const key of Object.keys(gpMinMs)) {
    if (flavorIndex(key) < 0) fail('EINVAL', `options.gpMinMs: unknown flavor '${key}' (rcu or ttrace)`);
  }
  const coordinator = options.coordinator ?? 'auto';
  if (coordinator !== 'auto' && coordinator !== 'manual') {
    fail('EINVAL', `options.coordinator must be 'auto' or 'manual', got ${show(coordinator)}`);
  }
  const { stallWarningMs = kDefaultStallWarningMs, onStall = warnStall } = options;
  if (!Number.isInteger(stallWarningMs) || stallWarningMs < 0) {
    fail('EINVAL', `options.stallWarningMs must be an integer >= 0, got ${show(stallWarningMs)}`);
  }
  if (typeof onStall !== 'function') fail('EINVAL', 'options.onStall must be a function');
  return {
    stall: { afterMs: stallWarningMs, report: onStall },
    cpus,
    policy: resolvePolicy(options.policy),
    minMs,
    manual: coordinator === 'manual',
    poison: options.debug?.poison === true,
    maxPages: Math.floor(maxBytes / PAGE_BYTES),
    unitSizes: [...CLASS_UNIT_SIZES, ...fixedSizes.map(fixedUnitSize)],
    objectSizes: [...CLASS_UNIT_SIZES.map(() => 0), ...fixedSizes],
  };
}

export class Arena {
  /** Pass this to workers (`workerData`, `postMessage`) and `attach(shared, cpu)` there. */
  readonly shared: SharedArena;
  readonly #i32: Int32Array;
  readonly #layout: Layout;
  /** The resolved reuse policy. */
  readonly policy: Policy;
  /** The arena's time origin (the key of its handles on this thread). */
  readonly #birthMs: number;
  readonly #coordinator: Coordinator;
  readonly #lists: ListsByCpu;
  readonly #recoveries: RecoveryReport[] = [];
  readonly #watched = new WeakSet<Worker>();
  #closeReport: CloseReport | undefined;

  private constructor(
    shared: SharedArena,
    layout: Layout,
    policy: Policy,
    manual: boolean,
    birthMs: number,
    stall: StallWatch,
  ) {
    this.shared = shared;
    this.policy = policy;
    this.#birthMs = birthMs;
    this.#i32 = new Int32Array(shared.buffer);
    this.#layout = layout;
    // This thread recovers dead workers' locks from its event loop, so it must never wait on one.
    const slab = new Slab(this.#i32, layout, new PageAllocator(this.#i32, layout, shared.buffer), true);
    const lists = new ListsByCpu(
      this.#i32,
      new Uint8Array(shared.buffer),
      layout,
      slab,
      birthMs,
      // The stallInTransit fault is for a CPU's own thread; this one drains and must go on.
      shared.faults === undefined ? undefined : { ...shared.faults, stallInTransit: false },
    );

    this.#lists = lists;
    this.#coordinator = new Coordinator(this.#i32, layout, lists, slab, birthMs, manual, stall);
    this.#coordinator.start();
  }

  /** Lays out a new arena. Throws `EINVAL` for bad options (naming the option). */
  static create(options: ArenaOptions): Arena;
  // The second parameter is reachable only through `createArenaWithFaults` (percpu-arena/testing).
  static create(options: ArenaOptions, faults?: ArenaFaults): Arena {
    const { cpus, policy, minMs, manual, poison, maxPages, unitSizes, objectSizes, stall } =
      validateOptions(options);
    const sheaves = policy.cache === 'sheaves' ? sheafPoolSize(cpus) : 0;
    const layout = computeLayout(cpus, unitSizes.length, maxPages, sheaves);
    if (layout.totalBytes > MAX_ARENA_BYTES) {
      fail('EINVAL', `options.maxBytes plus the arena's tables exceed ${MAX_ARENA_BYTES} bytes`);
    }
    const growable = options.growable === true;
    const initialBytes = growable
      ? Math.min(layout.totalBytes, layout.pagesBase + 64 * PAGE_BYTES)
      : layout.totalBytes;
    const buffer = growable
      ? new SharedArrayBuffer(initialBytes, { maxByteLength: layout.totalBytes })
      : new SharedArrayBuffer(layout.totalBytes);
    const i32 = new Int32Array(buffer);
    i32[H_VERSION] = LAYOUT_VERSION;
    i32[H_CPUS] = cpus;
    i32[H_CLASSES] = unitSizes.length;
    i32[H_MAX_PAGES] = maxPages;
    i32[H_PAGES_BASE] = layout.pagesBase;
    i32[H_POLICY] = encodePolicy(policy);
    i32[H_SHEAVES] = sheaves;
    for (let f = 0; f < FLAVORS; f++) i32[H_GP_MIN_MS + f] = minMs[f] as number;
    i32[H_DEBUG] = poison ? DEBUG_POISON : 0;
    const birthMs = performance.timeOrigin + performance.now();
    writeBirthMs(buffer, birthMs);
    unitSizes.forEach((unitSize, cls) => {
      const w = classWord(layout, cls);
      // The kernel computes a fixed-size cache's watermarks from object size + 8; only the
      // layout rounds the unit up to 8 bytes.
      const objectSize = objectSizes[cls] as number;
      const marks = watermarksFor(objectSize !== 0 ? objectSize + UNIT_HEADER_BYTES : unitSize);
      const spanPages = Math.ceil((unitSize * Math.max(kMinUnitsPerSpan, marks.batch)) / PAGE_BYTES);
      i32[w + CLS_UNIT_SIZE] = unitSize;
      i32[w + CLS_LOW] = marks.low;
      i32[w + CLS_HIGH] = marks.high;
      i32[w + CLS_BATCH] = marks.batch;
      i32[w + CLS_PREFILL] = marks.prefill;
      i32[w + CLS_SPAN_PAGES] = spanPages;
      i32[w + CLS_SPAN_UNITS] = Math.floor((spanPages * PAGE_BYTES) / unitSize);
      i32[w + CLS_OBJECT_SIZE] = objectSize;
    });
    initialiseBarns(i32, layout, unitSizes, policy.sheafCapacity);
    // The magic goes last: a buffer is an arena only once its header is complete.
    publish(i32, H_MAGIC, ARENA_MAGIC);
    const shared: SharedArena = faults ? { buffer, faults: { ...faults } } : { buffer };
    return new Arena(shared, layout, policy, manual, birthMs, stall);
  }

  /** True once `close()` has been called. */
  get closed(): boolean {
    return readShared(this.#i32, X_CLOSED) !== 0 || this.#closeReport !== undefined;
  }

  /** Number of CPU slots. */
  get cpus(): number {
    return this.#layout.cpus;
  }

  /** Attaches CPU slot `cpu` to this thread (see `attach`); several slots may be attached here. */
  attach(cpu: number): CpuHandle {
    this.#checkOpen();
    return attach(this.shared, cpu);
  }

  /** Counters of the whole arena; see `ArenaStats` for what is exact and when. */
  stats(): ArenaStats {
    return readStats(this.#i32, this.#layout, this.#coordinator.stats());
  }

  /**
   * Resolves once a full grace period of `flavor` has passed: every read-side section of that
   * flavor that was open when it was called has ended (synchronize_rcu). Keeps the process
   * alive while it waits. With the manual coordinator it steps the epochs itself and rejects
   * with `EBUSY` if a CPU stays inside a section (the epochs it already moved stay moved, which
   * only brings other GPs closer).
   */
  synchronize(flavor: Flavor = 'rcu'): Promise<void> {
    const f = flavorIndex(flavor);
    if (f < 0)
      return Promise.reject(new ArenaError('EINVAL', `synchronize(): unknown flavor ${show(flavor)}`));
    if (readShared(this.#i32, X_CLOSED) !== 0)
      return Promise.reject(new ArenaError('ECLOSED', 'the arena is closed'));
    return this.#coordinator.synchronize(f);
  }

  /**
   * Manual coordinator: tries one epoch advance of `flavor` and drains parked and offline CPUs
   * whose batches are due. Returns true if the epoch moved, false if a reader held it back or
   * the flavor's minimum epoch duration has not passed.
   */
  advance(flavor: Flavor = 'rcu'): boolean {
    const f = flavorIndex(flavor);
    if (f < 0) fail('EINVAL', `advance(): unknown flavor ${show(flavor)}`);
    if (!this.#coordinator.manual)
      fail('EINVAL', "advance() steps a manual coordinator (options.coordinator: 'manual')");
    this.#checkOpen();
    return this.#coordinator.advance(f) === -1;
  }

  /**
   * Watches a worker thread: when it exits — by `terminate()`, an uncaught exception, or the
   * end of its script — every CPU its thread still holds goes offline, wherever the thread
   * stopped (src/arena/recovery.ts), and the slot can be attached again. Watch every worker that
   * attaches CPUs (`CpuPool` watches its own). Throws `EINVAL` for anything but a running
   * `Worker` of this process.
   */
  watch(worker: Worker): void {
    this.#checkOpen();
    const threadId = (worker as { threadId?: unknown } | null)?.threadId;
    if (typeof threadId !== 'number' || typeof worker.once !== 'function') {
      fail('EINVAL', 'watch(worker) needs a worker_threads Worker');
    }
    if (threadId < 0) fail('EINVAL', 'watch(worker): the worker has already exited');
    if (this.#watched.has(worker)) return;
    this.#watched.add(worker);
    worker.once('exit', () => this.recoverThread(threadId));
  }

  /**
   * Takes the CPUs of thread `threadId`, which has exited, offline (see `watch`); returns what
   * it found. For threads the arena does not watch; calling it for a live thread corrupts the
   * arena. Does nothing after `close()`.
   */
  recoverThread(threadId: number): RecoveryReport {
    if (!Number.isInteger(threadId) || threadId < 0)
      fail('EINVAL', `recoverThread(${show(threadId)}): not a threadId`);
    if (readShared(this.#i32, X_CLOSED) !== 0) {
      return { threadId, cpus: [], drainedCpus: [], locksReleased: 0, droppedUnits: 0, leakedByCpu: {} };
    }
    const report = recoverThread(this.#i32, this.#layout, this.#lists, threadId);
    if (report.cpus.length + report.drainedCpus.length + report.locksReleased > 0)
      this.#recoveries.push(report);
    return report;
  }

  /** What recovering exited threads found, one report per thread that held CPUs or locks. */
  get recoveries(): readonly RecoveryReport[] {
    return this.#recoveries;
  }

  /**
   * Gives the pages of every span whose units are all free on the slab back to the page
   * allocator now (the coordinator does it once a second by itself; `malloc_trim` for the
   * arena) and returns the bytes given back. Units cached by CPUs or waiting for a GP stay.
   */
  trim(): number {
    this.#checkOpen();
    const before = this.stats().bytesInUse;
    this.#coordinator.releaseEmptySpans();
    return before - this.stats().bytesInUse;
  }

  /** `await using arena = Arena.create(...)`: closes the arena at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Closes the arena: every handle attached on this thread is detached (however it was
   * attached), so it and the structures opened on it throw `ECLOSED`; structures on other
   * threads throw `ECLOSED` at their next call, those threads' handles at their next refill or
   * trim; and every unit is accounted for. Returns the leak report; calling it again returns the
   * same report.
   */
  async close(): Promise<CloseReport> {
    if (this.#closeReport) return this.#closeReport;
    this.#coordinator.stop();
    for (const handle of handlesOnThisThread(this.#birthMs)) {
      if (handle.attached || handle.parked) handle.detach();
    }
    // Like bpf_mem_alloc_destroy's rcu_barrier: let the deferred units of offline CPUs pass
    // their GPs (without the timing emulation) and reach the slab; a reader still pinned on
    // another thread keeps its units deferred, and the report says how many.
    for (let round = 0; round < kCloseRounds && this.stats().totals.deferred > 0; round++) {
      let moved = false;
      for (let f = 0; f < FLAVORS; f++) moved = this.#coordinator.advance(f, true) === -1 || moved;
      if (!moved) break;
    }
    publish(this.#i32, X_CLOSED, 1);
    const stats = this.stats();
    const leakedBySize: Record<number, number> = {};
    for (const c of stats.classes) {
      if (c.live !== 0) leakedBySize[c.unitSize] = (leakedBySize[c.unitSize] ?? 0) + c.live;
    }
    this.#closeReport = {
      leaked: stats.liveUnits,
      deferred: stats.classes.reduce((n, c) => n + c.deferred, 0),
      leakedBySize,
      attachedCpus: stats.cpus.filter((c) => c.online).map((c) => c.cpu),
      stats,
    };
    return this.#closeReport;
  }

  #checkOpen(): void {
    if (readShared(this.#i32, X_CLOSED) !== 0) throw new ArenaError('ECLOSED', 'the arena is closed');
  }
}

/**
 * `Arena.create` with test-only faults injected into `arena.shared` (so every thread that
 * attaches sees them); exported to users only by `percpu-arena/testing`.
 */
export function createArenaWithFaults(options: ArenaOptions, faults: ArenaFaults): Arena {
  if (typeof faults !== 'object' || faults === null) {
    fail('EINVAL', `createArenaWithFaults: faults must be an object, got ${show(faults)}`);
  }
  for (const [name, on] of Object.entries(faults)) {
    if (!(FAULT_NAMES as readonly string[]).includes(name)) {
      fail('EINVAL', `createArenaWithFaults: unknown fault '${name}' (one of ${FAULT_NAMES.join(', ')})`);
    }
    if (typeof on !== 'boolean')
      fail('EINVAL', `createArenaWithFaults: faults.${name} must be true or false`);
  }
  return (Arena.create as (options: ArenaOptions, faults?: ArenaFaults) => Arena)(options, faults);
}
