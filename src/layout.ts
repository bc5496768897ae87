/**
 * The arena's memory map: every offset, stride and word index of the SharedArrayBuffer lives
 * here, derived from three numbers (CPUs, classes, pages) and checked when this module loads.
 *
 * ```
 * | header + GP state | CPU table [cpu] | class table [class] | caches [cpu][class] | slab directory [class] | depot [class] | unit-start map | page table | pages ... |
 * ```
 *
 * - A pointer is a byte offset into the arena; 0 is null. A unit starts with its 8-byte header
 *   and the user pointer is unit + 8. Header word 0 is the free-list link while the unit is free
 *   and the owner hint (cpu << 8 | class) while it is allocated; word 1 is generation << 2 | state.
 * - Names starting with `X_` are shared words: other threads read or write them, always through
 *   Atomics (src/atomics.ts). Every other word is either immutable after `Arena.create` (class
 *   table, header geometry) or owned by one party: a cache by its CPU, a slab row by whoever
 *   holds that row's mutex, the unit-start map words of a span by the row that took the span.
 * - Records are 16 words (64 bytes, one cache line) so that two CPUs' records never share a
 *   line; a cache record is four lines: the fast path's words in the first, the deferred lists
 *   and the ttrace inbox (written by other CPUs) in the second, the owner-return buffer in the
 *   third, the owner-return inbox (written by other CPUs) in the fourth.
 *
 * Who may call: anyone; this module only computes numbers.
 */
import { ArenaError } from './errors.js';

/** Bytes of one page handed out by the page allocator (the kernel's PAGE_SIZE). */
export const PAGE_SHIFT = 12;
export const PAGE_BYTES = 1 << PAGE_SHIFT;

/** Identifies an arena buffer ("PCPA") and the version of this map. */
export const ARENA_MAGIC = 0x50435041;
export const LAYOUT_VERSION = 5;

/** Words of every fixed-size record (CPU, class, cache, slab row): 64 bytes. */
export const RECORD_SHIFT = 4;
export const RECORD_WORDS = 1 << RECORD_SHIFT;

/** Header words (word index from the start of the arena). */
export const H_MAGIC = 0;
export const H_VERSION = 1;
export const H_CPUS = 2;
export const H_CLASSES = 3;
export const H_MAX_PAGES = 4;
export const H_PAGES_BASE = 5;
/** The reuse policy, encoded by src/policy.ts. */
export const H_POLICY = 6;
/** Minimum duration of one epoch, per flavor, in milliseconds (GP timing emulation). */
export const H_GP_MIN_MS = 7;
/** Debug flags (DEBUG_POISON). */
export const H_DEBUG = 9;
export const DEBUG_POISON = 1;
/**
 * Float64 at words 10..11: the arena's time origin (ms since the Unix epoch, fractional), so
 * every thread measures GP timing on one clock (`performance.timeOrigin + performance.now()`).
 */
export const H_BIRTH_MS = 10;
/** Set once by `close()`; attached handles see it on their next slow path. */
export const X_CLOSED = 16;
/**
 * Page allocator mutex (a robust mutex, src/sync.ts) guarding the words below up to
 * X_PAGE_LIMIT_HITS and the free-span list (X_FREE_SPANS, X_FREE_SPAN_PAGES).
 */
export const X_PAGE_LOCK = 17;
/** Pages ever carved off the top of the page region (high-water mark). */
export const X_PAGES_NEXT = 18;
/** Pages currently handed to slabs: the arena's memory in use. */
export const X_PAGES_IN_USE = 19;
export const X_PEAK_PAGES = 20;
/** Times a slab could not get a page because of the memory limit. */
export const X_PAGE_LIMIT_HITS = 21;
/** Poison checks that failed on reuse, and the user pointer of the first (debug option). */
export const X_POISON_ERRORS = 22;
export const X_POISON_FIRST = 23;
/** Start barrier of the CPU pool: parties, arrived, generation, broken (src/sync.ts). */
export const X_BARRIER = 24;
/**
 * The coordinator's doorbell: CPUs add 1 and notify when they seal a batch or leave a read
 * section the coordinator waits for; it sleeps on this word with `Atomics.waitAsync`.
 */
export const X_GP_REQUEST = 28;
/** 1 while the coordinator sleeps on X_GP_REQUEST (CPUs notify only then). */
export const X_GP_SLEEPING = 29;
/** 1 while an automatic coordinator runs on the creating thread. */
export const X_GP_COORDINATOR = 30;

/** Grace-period flavors: normal RCU and RCU tasks trace. */
export const FLAVOR_RCU = 0;
export const FLAVOR_TTRACE = 1;
export const FLAVORS = 2;
/** GP state block of flavor f starts at X_GP + f * GP_WORDS. */
export const X_GP = 32;
export const GP_WORDS = 8;
/** The global epoch (wraps; compared by signed distance). */
export const G_EPOCH = 0;
/** The epoch somebody waits for (a sealed batch's expiry, a synchronize() target). */
export const G_WANT = 1;
/** 1 while an advance waits for readers: `readUnlock` then rings X_GP_REQUEST. */
export const G_URGENT = 2;
/** Time of the last advance, ms since H_BIRTH_MS rounded up (for the minimum GP duration). */
export const G_LAST_ADVANCE = 3;
/** Epoch advances in total and those made by CPUs helping (the main thread was busy). */
export const G_ADVANCES = 4;
export const G_HELPED = 5;
/**
 * The shrinker's counters (src/shrinker.ts): runs (a refill found the slab empty at the memory
 * limit), parked or offline CPUs it drained, epochs it advanced itself, and runs after which the
 * refill got units.
 */
export const X_RECLAIM_RUNS = 48;
export const X_RECLAIM_DRAINED = 49;
export const X_RECLAIM_ADVANCES = 50;
export const X_RECLAIM_SUCCEEDED = 51;
/**
 * Spans the slabs gave back (every unit free on the slab): a list through the spans' first
 * words (next, pages) guarded by X_PAGE_LOCK, the pages on it, and spans released in total.
 */
export const X_FREE_SPANS = 52;
export const X_FREE_SPAN_PAGES = 53;
export const X_SPANS_RELEASED = 54;
/** The same chain for the shared maps' tables (src/shared-table.ts): their bucket locks. */
export const X_TABLE_CHAIN = 55;
/** CPUs taken offline because their thread exited while it held them, and CPU stalls reported. */
export const X_CPUS_RECOVERED = 56;
export const X_STALLS = 57;
/** Depot traffic: batches parked there and taken from it (src/depot.ts). */
export const X_DEPOT_PARKS = 58;
export const X_DEPOT_TAKES = 59;
/** Spans carved from reused pages so far: their generation bases (SLAB_CARVE_GEN). */
export const X_SPAN_GENERATIONS = 60;
/**
 * The most recently created pack allocator's ref; each one's header links the one before
 * (src/pack.ts), so that crash recovery can find their robust mutexes.
 */
export const X_PACK_CHAIN = 61;
/** The same chain for the hash maps (src/hash-map.ts): their bucket and pool locks. */
export const X_MAP_CHAIN = 62;
/** The same chain for the qp-tries (src/qp-trie.ts): their writer locks. */
export const X_TRIE_CHAIN = 63;
export const HEADER_WORDS = 64;

/** CPU table record. */
export const CPU_X_STATE = 0;
/** threadId + 1 of the thread that owns the slot (0: nobody); for diagnostics. */
export const CPU_X_OWNER = 1;
/** Pin word of flavor f at CPU_X_PIN + f: 0 when quiescent, (epoch << 1) | 1 inside a section. */
export const CPU_X_PIN = 2;
/** The CPU's doorbell (irq_work analogue): the coordinator adds 1 and notifies. */
export const CPU_X_DOORBELL = 4;
/** Bit f set while the CPU holds deferred units of flavor f (src/deferred.ts). */
export const CPU_X_PENDING = 5;
/**
 * CPU states. The owner moves ONLINE <-> IDLE (park) and ONLINE -> OFFLINE (detach); anybody
 * may claim IDLE or OFFLINE -> DRAINING to work on the CPU's lists and must put back what it
 * found. Attach and unpark wait while a CPU is DRAINING. The state word is
 * `(threadId + 1) << CPU_STATE_BITS | state`: the owner's thread while ONLINE or IDLE, the
 * drainer's while DRAINING, none while OFFLINE — so that one CAS both changes the state and names
 * the thread responsible, and a thread killed at any moment is found by recovery
 * (src/recovery.ts). CPU_X_OWNER keeps the owner's thread while a drainer holds an IDLE CPU.
 */
export const CPU_OFFLINE = 0;
export const CPU_ONLINE = 1;
export const CPU_IDLE = 2;
export const CPU_DRAINING_OFFLINE = 3;
export const CPU_DRAINING_IDLE = 4;
export const CPU_STATE_BITS = 3;
export const CPU_STATE_MASK = (1 << CPU_STATE_BITS) - 1;

/** The state in a CPU state word. */
export function cpuState(word: number): number {
  return word & CPU_STATE_MASK;
}

/** The thread a CPU state word names (owner or drainer), or -1. */
export function cpuThread(word: number): number {
  return (word >>> CPU_STATE_BITS) - 1;
}

/** A CPU state word: `state`, held by thread `threadId`. */
export function cpuStateWord(state: number, threadId: number): number {
  return state === CPU_OFFLINE ? CPU_OFFLINE : ((threadId + 1) << CPU_STATE_BITS) | state;
}

/** Class table record: immutable after create. */
export const CLS_UNIT_SIZE = 0;
export const CLS_LOW = 1;
export const CLS_HIGH = 2;
export const CLS_BATCH = 3;
export const CLS_PREFILL = 4;
export const CLS_SPAN_PAGES = 5;
export const CLS_SPAN_UNITS = 6;
/** User bytes per object of a fixed-size cache; 0 for a general class. */
export const CLS_OBJECT_SIZE = 7;

/**
 * Cache record (per CPU and class), 4 lines: owner CPU only (or whoever holds the CPU in a
 * DRAINING state), read racily by `stats()`; except the X_ inbox words, which other CPUs push to.
 */
export const CACHE_SHIFT = 6;
export const CACHE_WORDS = 1 << CACHE_SHIFT;
export const C_FREE_HEAD = 0;
export const C_FREE_COUNT = 1;
export const C_ALLOCS = 2;
export const C_FREES = 3;
export const C_REFILLS = 4;
export const C_TRIMS = 5;
/** Refills that got fewer units than asked because the memory limit was reached. */
export const C_REFILL_SHORT = 6;
/**
 * The fast path's gates, next to the list head so it reads them from a line it already has:
 * an alloc that would leave the count at or below GATE_LOW, or a free that would raise it above
 * GATE_HIGH, takes the slow path. They equal the watermarks under an immediate policy; a policy
 * or debug option that must see every free (or every alloc) closes a gate instead of adding a
 * branch to the fast path.
 */
export const C_GATE_LOW = 7;
export const C_GATE_HIGH = 8;
export const C_BATCH = 9;
/** Free units a trim keeps: (low + high) / 2. */
export const C_TRIM_TO = 10;
/** The cache's watermarks, copied from its class when the CPU comes online. */
export const C_LOW = 11;
export const C_HIGH = 12;
/** Units that passed a grace period here. */
export const C_RECLAIMED = 13;
/**
 * The kernel's c->tgt for rcu frees: the CPU that allocated the last unit deferred here; under
 * hint policies the batch goes to that CPU's ttrace lists after its rcu GP (__free_by_rcu).
 */
export const C_RCU_TGT = 14;
/**
 * Deferred lists (named after the kernel's): each is a chain through header word 0 with head,
 * tail and count. `freeByRcu` collects rcu-deferred frees; sealed with the rcu epoch it becomes
 * `waitingForGp` (one batch in flight, as the kernel's call_rcu_in_progress). The ttrace pair is
 * the same for the tasks-trace flavor; its sealed batch carries both epochs (a ttrace GP implies
 * an rcu GP, rcu_trace_implies_rcu_gp()).
 */
export const C_RCU_HEAD = 16;
export const C_RCU_TAIL = 17;
export const C_RCU_COUNT = 18;
export const C_WAIT_HEAD = 19;
export const C_WAIT_TAIL = 20;
export const C_WAIT_COUNT = 21;
export const C_WAIT_EPOCH = 22;
export const C_TT_HEAD = 23;
export const C_TT_TAIL = 24;
export const C_TT_COUNT = 25;
export const C_TTW_HEAD = 26;
export const C_TTW_TAIL = 27;
export const C_TTW_COUNT = 28;
export const C_TTW_EPOCH = 29;
export const C_TTW_EPOCH_RCU = 15;
/**
 * Remote-free inbox (shared): other CPUs push chains with a CAS on the head (llist_add) and add
 * to the count; the owner takes the whole list with an exchange (llist_del_all).
 */
export const C_X_INBOX_HEAD = 30;
export const C_X_INBOX_COUNT = 31;
/**
 * Owner return (policy remoteFree 'owner'): frees of units another CPU allocated collect here,
 * all for one owner (C_REMOTE_OWNER), until a batch is full or the owner changes; then the
 * chain goes to that owner's return inbox in one CAS. Owner-only.
 */
export const C_REMOTE_HEAD = 32;
export const C_REMOTE_TAIL = 33;
export const C_REMOTE_COUNT = 34;
export const C_REMOTE_OWNER = 35;
/** Batches this cache posted to owners, and chains it took from its own return inbox. */
export const C_REMOTE_POSTS = 36;
export const C_REMOTE_TAKES = 37;
/**
 * The allocs + frees count the last idle check saw (src/cpu.ts: a class whose count did not
 * move between two coordinator ticks is idle and gives its cached units back).
 */
export const C_IDLE_MARK = 38;
/**
 * The chain an inbox taker (the ttrace inbox, the return inbox) has exchanged out of the inbox
 * but not yet subtracted from its count: a thread killed in that walk leaves it here, and
 * recovery finishes the subtraction (src/recovery.ts). Owner-only.
 */
export const C_TAKING_INBOX = 39;
export const C_TAKING_RETURN = 40;
/** The owner-return inbox: other CPUs push chains (CAS on the head), the holder takes all. */
export const C_X_RETURN_HEAD = 48;
export const C_X_RETURN_COUNT = 49;

/** Slab row (per class): guarded by the row's mutex at SLAB_X_LOCK. */
export const SLAB_X_LOCK = 0;
export const SLAB_FREE_HEAD = 1;
export const SLAB_FREE_COUNT = 2;
/** Next uncarved unit of the newest span and the end of that span (byte offsets). */
export const SLAB_CARVE_NEXT = 3;
export const SLAB_CARVE_END = 4;
/** Units ever carved into this class and spans taken from the page allocator. */
export const SLAB_UNITS = 5;
export const SLAB_SPANS = 6;
/**
 * Generation the units of the row's current span start from: 0 for pages never used before; for
 * a span taken from the free-span list, a fresh base from X_SPAN_GENERATIONS, so that units in
 * pages a released span gave back do not restart at a generation an old reference still holds
 * (src/unit-ref.ts).
 */
export const SLAB_CARVE_GEN = 7;
/**
 * Units returned by a thread that must not block (the creating thread: its event loop is where
 * a dead lock holder is recovered): a lock-free stack of chains (CAS push, exchange take) that
 * whoever next holds the row's mutex moves onto the free list.
 */
export const SLAB_X_RETURNS = 8;
export const SLAB_X_RETURN_COUNT = 9;

/**
 * Depot (policy sharing 'depot'): per class DEPOT_SLOTS slots of whole batches, each slot
 * DEPOT_SLOT_WORDS words: head (0 empty, -(threadId + 1) while that thread fills or empties it,
 * else the chain's head), tail, count. A CPU claims a slot with one CAS, writes or reads the
 * chain's tail and count, and releases it with one store (src/depot.ts).
 */
export const DEPOT_SLOTS = 16;
export const DEPOT_SLOT_WORDS = 4;
export const DEPOT_X_HEAD = 0;
export const DEPOT_TAIL = 1;
export const DEPOT_COUNT = 2;

/**
 * Unit-start map: one bit per 8 bytes of the page region, set for every unit start of every
 * span a slab took (written under the slab row lock when the span is taken). `free()` checks a
 * pointer against it in O(1): a unit header is genuine only where its bit is set. One map word
 * covers 2^UNIT_MAP_SHIFT bytes (256), so a page's map words belong to that page's span only.
 */
export const UNIT_MAP_SHIFT = 8;
export const UNIT_MAP_WORDS_PER_PAGE = PAGE_BYTES >> UNIT_MAP_SHIFT;

/**
 * Owner hint in word 0 of an allocated unit: (cpu << HINT_CLASS_BITS) | class. The class is
 * what `free()` needs; the CPU is the kernel's `tgt` hint for later policies.
 */
export const HINT_CLASS_BITS = 8;
export const HINT_CLASS_MASK = (1 << HINT_CLASS_BITS) - 1;
export const MAX_CLASSES = HINT_CLASS_MASK;

/** Unit header: word 1 = generation << 2 | state. */
export const UNIT_NEVER = 0;
export const UNIT_ALLOCATED = 1;
export const UNIT_FREE = 2;
/** Freed, waiting on a deferred list for a grace period; not reusable yet. */
export const UNIT_DEFERRED = 3;
export const UNIT_STATE_MASK = 3;
export const UNIT_GENERATION_STEP = 4;

/**
 * Every chain a cache record holds, as [head word, count word, header state of its units,
 * shared]: the free list, the four deferred lists, the owner-return buffer, and the two inboxes
 * other CPUs push to (`shared`: read their words with Atomics). For whoever audits or repairs a
 * cache (src/recovery.ts, the tests' audits).
 */
export const CACHE_LISTS: ReadonlyArray<
  readonly [head: number, count: number, state: number, shared: boolean]
> = [
  [C_FREE_HEAD, C_FREE_COUNT, UNIT_FREE, false],
  [C_RCU_HEAD, C_RCU_COUNT, UNIT_DEFERRED, false],
  [C_WAIT_HEAD, C_WAIT_COUNT, UNIT_DEFERRED, false],
  [C_TT_HEAD, C_TT_COUNT, UNIT_FREE, false],
  [C_TTW_HEAD, C_TTW_COUNT, UNIT_FREE, false],
  [C_REMOTE_HEAD, C_REMOTE_COUNT, UNIT_DEFERRED, false],
  [C_X_INBOX_HEAD, C_X_INBOX_COUNT, UNIT_FREE, true],
  [C_X_RETURN_HEAD, C_X_RETURN_COUNT, UNIT_DEFERRED, true],
];

/** Largest arena: pointers are int32 byte offsets. */
export const MAX_ARENA_BYTES = 0x7fff_f000;

/** Word offsets of one arena's regions, derived from its geometry. */
export interface Layout {
  readonly cpus: number;
  readonly classes: number;
  readonly maxPages: number;
  readonly cpuTable: number;
  readonly classTable: number;
  readonly caches: number;
  readonly slabs: number;
  readonly depot: number;
  readonly unitMap: number;
  readonly pageTable: number;
  /** Byte offset of page 0. */
  readonly pagesBase: number;
  /** Byte length of the whole arena at its limit. */
  readonly totalBytes: number;
}

const alignUp = (n: number, to: number): number => Math.ceil(n / to) * to;

/** Computes the memory map for `cpus` CPUs, `classes` classes and at most `maxPages` pages. */
export function computeLayout(cpus: number, classes: number, maxPages: number): Layout {
  const cpuTable = HEADER_WORDS;
  const classTable = cpuTable + cpus * RECORD_WORDS;
  const caches = classTable + classes * RECORD_WORDS;
  const slabs = caches + cpus * classes * CACHE_WORDS;
  const depot = slabs + classes * RECORD_WORDS;
  const unitMap = depot + classes * DEPOT_SLOTS * DEPOT_SLOT_WORDS;
  const pageTable = unitMap + maxPages * UNIT_MAP_WORDS_PER_PAGE;
  const pagesBase = alignUp((pageTable + maxPages) * 4, PAGE_BYTES);
  return {
    cpus,
    classes,
    maxPages,
    cpuTable,
    classTable,
    caches,
    slabs,
    depot,
    unitMap,
    pageTable,
    pagesBase,
    totalBytes: pagesBase + maxPages * PAGE_BYTES,
  };
}

/** Word index of the cache record of (`cpu`, `cls`). */
export function cacheWord(layout: Layout, cpu: number, cls: number): number {
  return layout.caches + ((cpu * layout.classes + cls) << CACHE_SHIFT);
}

/** Word index of the CPU table record of `cpu`. */
export function cpuWord(layout: Layout, cpu: number): number {
  return layout.cpuTable + (cpu << RECORD_SHIFT);
}

/** Word index of word `g` of the GP state block of `flavor`. */
export function gpWord(flavor: number, g: number): number {
  return X_GP + flavor * GP_WORDS + g;
}

/** Word index of the class table record of `cls`. */
export function classWord(layout: Layout, cls: number): number {
  return layout.classTable + (cls << RECORD_SHIFT);
}

/** Word index of depot slot `slot` of class `cls`. */
export function depotWord(layout: Layout, cls: number, slot: number): number {
  return layout.depot + (cls * DEPOT_SLOTS + slot) * DEPOT_SLOT_WORDS;
}

/** Word index of the slab row of `cls`. */
export function slabWord(layout: Layout, cls: number): number {
  return layout.slabs + (cls << RECORD_SHIFT);
}

/** Reads the geometry from an arena's header and checks that it is one of ours. */
export function readLayout(i32: Int32Array): Layout {
  if (i32.length < HEADER_WORDS || i32[H_MAGIC] !== ARENA_MAGIC) {
    throw new ArenaError('EBADARENA', 'the shared buffer is not a percpu-arena arena');
  }
  if (i32[H_VERSION] !== LAYOUT_VERSION) {
    throw new ArenaError(
      'EBADARENA',
      `arena layout version ${i32[H_VERSION]} is not ${LAYOUT_VERSION}; use the same percpu-arena on every thread`,
    );
  }
  const layout = computeLayout(i32[H_CPUS] as number, i32[H_CLASSES] as number, i32[H_MAX_PAGES] as number);
  if (layout.pagesBase !== i32[H_PAGES_BASE]) {
    throw new ArenaError('EBADARENA', 'the arena header does not match its own geometry');
  }
  return layout;
}

/** Load-time check of the constants above: fields fit their records, header words are distinct. */
function checkConstants(): void {
  const records: Record<string, number[]> = {
    cpu: [CPU_X_STATE, CPU_X_OWNER, CPU_X_PIN, CPU_X_PIN + 1, CPU_X_DOORBELL, CPU_X_PENDING],
    class: [
      CLS_UNIT_SIZE,
      CLS_LOW,
      CLS_HIGH,
      CLS_BATCH,
      CLS_PREFILL,
      CLS_SPAN_PAGES,
      CLS_SPAN_UNITS,
      CLS_OBJECT_SIZE,
    ],
    cache: [
      C_FREE_HEAD,
      C_FREE_COUNT,
      C_ALLOCS,
      C_FREES,
      C_REFILLS,
      C_TRIMS,
      C_REFILL_SHORT,
      C_GATE_LOW,
      C_GATE_HIGH,
      C_BATCH,
      C_TRIM_TO,
      C_LOW,
      C_HIGH,
      C_RECLAIMED,
      C_RCU_TGT,
      C_TTW_EPOCH_RCU,
      C_RCU_HEAD,
      C_RCU_TAIL,
      C_RCU_COUNT,
      C_WAIT_HEAD,
      C_WAIT_TAIL,
      C_WAIT_COUNT,
      C_WAIT_EPOCH,
      C_TT_HEAD,
      C_TT_TAIL,
      C_TT_COUNT,
      C_TTW_HEAD,
      C_TTW_TAIL,
      C_TTW_COUNT,
      C_TTW_EPOCH,
      C_X_INBOX_HEAD,
      C_X_INBOX_COUNT,
      C_REMOTE_HEAD,
      C_REMOTE_TAIL,
      C_REMOTE_COUNT,
      C_REMOTE_OWNER,
      C_REMOTE_POSTS,
      C_REMOTE_TAKES,
      C_IDLE_MARK,
      C_TAKING_INBOX,
      C_TAKING_RETURN,
      C_X_RETURN_HEAD,
      C_X_RETURN_COUNT,
    ],
    slab: [
      SLAB_X_LOCK,
      SLAB_FREE_HEAD,
      SLAB_FREE_COUNT,
      SLAB_CARVE_NEXT,
      SLAB_CARVE_END,
      SLAB_UNITS,
      SLAB_SPANS,
      SLAB_CARVE_GEN,
      SLAB_X_RETURNS,
      SLAB_X_RETURN_COUNT,
    ],
    header: [
      H_MAGIC,
      H_VERSION,
      H_CPUS,
      H_CLASSES,
      H_MAX_PAGES,
      H_PAGES_BASE,
      H_POLICY,
      H_GP_MIN_MS,
      H_GP_MIN_MS + 1,
      H_DEBUG,
      H_BIRTH_MS,
      H_BIRTH_MS + 1,
      X_CLOSED,
      X_PAGE_LOCK,
      X_PAGES_NEXT,
      X_PAGES_IN_USE,
      X_PEAK_PAGES,
      X_PAGE_LIMIT_HITS,
      X_POISON_ERRORS,
      X_POISON_FIRST,
      X_BARRIER,
      X_BARRIER + 1,
      X_BARRIER + 2,
      X_BARRIER + 3,
      X_GP_REQUEST,
      X_GP_SLEEPING,
      X_GP_COORDINATOR,
      ...Array.from({ length: FLAVORS * GP_WORDS }, (_, k) => X_GP + k),
      X_RECLAIM_RUNS,
      X_RECLAIM_DRAINED,
      X_RECLAIM_ADVANCES,
      X_RECLAIM_SUCCEEDED,
      X_FREE_SPANS,
      X_FREE_SPAN_PAGES,
      X_SPANS_RELEASED,
      X_CPUS_RECOVERED,
      X_STALLS,
      X_DEPOT_PARKS,
      X_DEPOT_TAKES,
      X_SPAN_GENERATIONS,
    ],
  };
  for (const [name, fields] of Object.entries(records)) {
    const limit = name === 'header' ? HEADER_WORDS : name === 'cache' ? CACHE_WORDS : RECORD_WORDS;
    if (new Set(fields).size !== fields.length || fields.some((f) => f < 0 || f >= limit)) {
      throw new Error(`percpu-arena layout: ${name} fields overlap or leave their record`);
    }
  }
  if (
    PAGE_BYTES % 64 !== 0 ||
    (UNIT_GENERATION_STEP & UNIT_STATE_MASK) !== 0 ||
    H_BIRTH_MS % 2 !== 0 ||
    C_X_INBOX_HEAD >> RECORD_SHIFT === 0 ||
    C_X_RETURN_HEAD >> RECORD_SHIFT === C_REMOTE_HEAD >> RECORD_SHIFT
  ) {
    throw new Error('percpu-arena layout: page size or unit header encoding is inconsistent');
  }
}
checkConstants();
