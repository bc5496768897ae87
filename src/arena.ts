/**
 * The arena façade: `Arena.create` lays out and initialises the SharedArrayBuffer on the
 * creating thread (normally the main thread); `arena.shared` carries it to workers, which call
 * `attach(shared, cpu)`; `arena.attach(cpu)` attaches on the creating thread (the deterministic
 * mode: several CPUs driven from one thread); `stats()` and `close()` read the whole arena.
 *
 * Who may call: the thread that created the arena. Shared words: X_CLOSED (set once by
 * `close()`); everything else is written before `arena.shared` exists, so a worker that
 * receives it (postMessage and workerData are synchronising hand-offs) sees it initialised.
 */
import { publish, readShared } from './atomics.js';
import { type ArenaFaults, attach, type CpuHandle, type SharedArena } from './cpu.js';
import { ArenaError, fail } from './errors.js';
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
  H_CLASSES,
  H_CPUS,
  H_MAGIC,
  H_MAX_PAGES,
  H_PAGES_BASE,
  H_VERSION,
  LAYOUT_VERSION,
  type Layout,
  MAX_ARENA_BYTES,
  MAX_CLASSES,
  PAGE_BYTES,
  X_CLOSED,
} from './layout.js';
import {
  CLASS_UNIT_SIZES,
  fixedUnitSize,
  GENERAL_CLASS_COUNT,
  UNIT_HEADER_BYTES,
  watermarksFor,
} from './size-class.js';
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
  /** Test-only fault injection, to prove that a stress oracle detects what it looks for. */
  readonly faults?: ArenaFaults;
}

/** What `close()` reports (the kernel's check_leaked_objs). */
export interface CloseReport {
  /** Units allocated and never freed. */
  readonly leaked: number;
  /** Leaked units per unit size (classes with none are left out). */
  readonly leakedBySize: Readonly<Record<number, number>>;
  /** CPUs still attached by other threads when the arena closed (their caches were counted as free). */
  readonly attachedCpus: readonly number[];
  /** Stats at close. */
  readonly stats: ArenaStats;
}

const kDefaultMaxBytes = 64 * 1024 * 1024;
const kMaxCpus = 1024;
/** Pages a span should hold at least this many units, or one refill batch if larger. */
const kMinUnitsPerSpan = 8;

function validateOptions(options: ArenaOptions): {
  cpus: number;
  maxPages: number;
  unitSizes: number[];
  objectSizes: number[];
} {
  if (options === null || typeof options !== 'object') fail('EINVAL', 'Arena.create needs an options object');
  const { cpus, maxBytes = kDefaultMaxBytes, fixedSizes = [] } = options;
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > kMaxCpus) {
    fail('EINVAL', `options.cpus must be an integer from 1 to ${kMaxCpus}, got ${String(cpus)}`);
  }
  if (!Number.isInteger(maxBytes) || maxBytes < PAGE_BYTES || maxBytes > MAX_ARENA_BYTES) {
    fail(
      'EINVAL',
      `options.maxBytes must be an integer from ${PAGE_BYTES} to ${MAX_ARENA_BYTES}, got ${String(maxBytes)}`,
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
      fail(
        'EINVAL',
        `options.fixedSizes: ${String(size)} is not an object size from 1 to ${1024 * 1024 - 8}`,
      );
    }
  }
  return {
    cpus,
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
  readonly #localHandles = new Set<CpuHandle>();
  #closeReport: CloseReport | undefined;

  private constructor(shared: SharedArena, layout: Layout) {
    this.shared = shared;
    this.#i32 = new Int32Array(shared.buffer);
    this.#layout = layout;
  }

  /** Lays out a new arena. Throws `EINVAL` for bad options (naming the option). */
  static create(options: ArenaOptions): Arena {
    const { cpus, maxPages, unitSizes, objectSizes } = validateOptions(options);
    const layout = computeLayout(cpus, unitSizes.length, maxPages);
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
    // The magic goes last: a buffer is an arena only once its header is complete.
    publish(i32, H_MAGIC, ARENA_MAGIC);
    const shared: SharedArena = options.faults ? { buffer, faults: { ...options.faults } } : { buffer };
    return new Arena(shared, layout);
  }

  /** Number of CPU slots. */
  get cpus(): number {
    return this.#layout.cpus;
  }

  /** Attaches CPU slot `cpu` to this thread (see `attach`); several slots may be attached here. */
  attach(cpu: number): CpuHandle {
    this.#checkOpen();
    const handle = attach(this.shared, cpu);
    this.#localHandles.add(handle);
    return handle;
  }

  /** Counters of the whole arena; see `ArenaStats` for what is exact and when. */
  stats(): ArenaStats {
    return readStats(this.#i32, this.#layout);
  }

  /**
   * Closes the arena: handles attached on this thread become dead, handles on other threads
   * fail with `ECLOSED` at their next refill or trim, and every unit is accounted for. Returns
   * the leak report; calling it again returns the same report.
   */
  async close(): Promise<CloseReport> {
    if (this.#closeReport) return this.#closeReport;
    for (const handle of this.#localHandles) {
      if (handle.attached) handle.detach();
    }
    this.#localHandles.clear();
    publish(this.#i32, X_CLOSED, 1);
    const stats = this.stats();
    const leakedBySize: Record<number, number> = {};
    for (const c of stats.classes) {
      if (c.live !== 0) leakedBySize[c.unitSize] = (leakedBySize[c.unitSize] ?? 0) + c.live;
    }
    this.#closeReport = {
      leaked: stats.liveUnits,
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
