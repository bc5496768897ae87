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
 * - Every record's words come from one ordered field list (`record` below), each field with its
 *   length and its access — `shared` (other threads touch it: always Atomics), `owner` (one party
 *   at a time, plain) or `fixed` (written before the arena is shared). A shared field has `X_` in
 *   its name (the GP blocks' `G_*` words are all shared); the list is checked when this module
 *   loads, so a new word cannot escape the check, and test/layout.test.ts pins every offset.
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
export const LAYOUT_VERSION = 14;

/** Words of every fixed-size record (CPU, class, cache, slab row): 64 bytes. */
export const RECORD_SHIFT = 4;
export const RECORD_WORDS = 1 << RECORD_SHIFT;

/**
 * Who may touch a word, the one marking of every word of the map:
 * - `shared`: other threads read or write it while the arena is in use; always through Atomics
 *   (or src/shm/sync.ts, src/shm/llist.ts, which use Atomics). Its name has `X_` in it, except
 *   the GP blocks' words (`G_*`), which are all shared.
 * - `owner`: one party at a time uses it with plain accesses — a cache by its CPU (or a drainer
 *   holding that CPU's state), a slab row by its lock holder, a depot slot by its claimant —
 *   and other threads at most read it racily for stats (an aligned 32-bit read cannot tear).
 * - `fixed`: written before the arena is shared (`Arena.create`, a CPU coming online), then read.
 */
export type Access = 'shared' | 'owner' | 'fixed';

/** One field of a record: its name, its length in words, who may touch it; `-` pads. */
type Field = readonly [name: string, words: number, access: Access | 'pad'];

/** Every record's fields, for audits and the load-time check (`recordFields('cache')`). */
const kRecords = new Map<string, readonly Field[]>();

/**
 * Lays out `fields` in order from word 0 and returns each name's word offset; throws at load if
 * they overflow `words`, if a name repeats, or if a name's `X_` disagrees with its access. Every
 * offset of the map comes from one of these lists, so no word escapes the check.
 */
function record<const F extends readonly Field[]>(
  name: string,
  words: number,
  fields: F,
  allShared = false,
): { readonly [K in Exclude<F[number][0], '-'>]: number } {
  const offsets: Record<string, number> = {};
  let at = 0;
  for (const [field, length, access] of fields) {
    if (field !== '-') {
      if (field in offsets) throw new Error(`percpu-arena layout: ${name}.${field} twice`);
      const marked = /(^|_)X_/.test(field) || allShared;
      if (marked !== (access === 'shared')) {
        throw new Error(
          `percpu-arena layout: ${name}.${field} is ${access} but ${marked ? 'is' : 'is not'} marked shared`,
        );
      }
      offsets[field] = at;
    }
    at += length;
  }
  if (at !== words) throw new Error(`percpu-arena layout: ${name} fields take ${at} words, not ${words}`);
  kRecords.set(name, fields);
  return offsets as { readonly [K in Exclude<F[number][0], '-'>]: number };
}

/** The fields of record `name` ('header', 'gp', 'cpu', 'class', 'cache', 'slab', 'depot'). */
export function recordFields(name: string): readonly Field[] {
  const fields = kRecords.get(name);
  if (fields === undefined) throw new Error(`percpu-arena layout: no record ${name}`);
  return fields;
}

/** Grace-period flavors: normal RCU and RCU tasks trace. */
export const FLAVOR_RCU = 0;
export const FLAVOR_TTRACE = 1;
export const FLAVORS = 2;

/** Words of the header, the GP blocks and the CPU pool's barrier. */
export const HEADER_WORDS = 64;
export const GP_WORDS = 8;
const kBarrierWords = 4;

/** Header words (word index from the start of the arena). */
const header = record('header', HEADER_WORDS, [
  /** Identifies an arena buffer (ARENA_MAGIC) and the version of this map; written last. */
  ['H_MAGIC', 1, 'fixed'],
  ['H_VERSION', 1, 'fixed'],
  ['H_CPUS', 1, 'fixed'],
  ['H_CLASSES', 1, 'fixed'],
  ['H_MAX_PAGES', 1, 'fixed'],
  ['H_PAGES_BASE', 1, 'fixed'],
  /** The reuse policy, encoded by src/epoch/policy.ts. */
  ['H_POLICY', 1, 'fixed'],
  /** Minimum duration of one epoch, per flavor, in milliseconds (GP timing emulation). */
  ['H_GP_MIN_MS', FLAVORS, 'fixed'],
  /** Debug flags (DEBUG_POISON). */
  ['H_DEBUG', 1, 'fixed'],
  /**
   * Float64 at words 10..11: the arena's time origin (ms since the Unix epoch, fractional), so
   * every thread measures GP timing on one clock (`performance.timeOrigin + performance.now()`).
   */
  ['H_BIRTH_MS', 2, 'fixed'],
  /** Sheaves per class in the sheaf pool (policy cache 'sheaves'; 0: no sheaf region). */
  ['H_SHEAVES', 1, 'fixed'],
  ['-', 3, 'pad'],
  /** Set once by `close()`; attached handles see it on their next slow path. */
  ['X_CLOSED', 1, 'shared'],
  /**
   * Page allocator mutex (a robust mutex, src/shm/sync.ts) guarding the words below up to
   * X_PAGE_LIMIT_HITS and the free-span list (X_FREE_SPANS, X_FREE_SPAN_PAGES).
   */
  ['X_PAGE_LOCK', 1, 'shared'],
  /** Pages ever carved off the top of the page region (high-water mark). */
  ['X_PAGES_NEXT', 1, 'shared'],
  /** Pages currently handed to slabs: the arena's memory in use. */
  ['X_PAGES_IN_USE', 1, 'shared'],
  ['X_PEAK_PAGES', 1, 'shared'],
  /** Times a slab could not get a page because of the memory limit. */
  ['X_PAGE_LIMIT_HITS', 1, 'shared'],
  /** Poison checks that failed on reuse, and the user pointer of the first (debug option). */
  ['X_POISON_ERRORS', 1, 'shared'],
  ['X_POISON_FIRST', 1, 'shared'],
  /** Start barrier of the CPU pool: parties, arrived, generation, broken (src/shm/sync.ts). */
  ['X_BARRIER', kBarrierWords, 'shared'],
  /**
   * The coordinator's doorbell: CPUs add 1 and notify when they seal a batch or leave a read
   * section the coordinator waits for; it sleeps on this word with `Atomics.waitAsync`.
   */
  ['X_GP_REQUEST', 1, 'shared'],
  /** 1 while the coordinator sleeps on X_GP_REQUEST (CPUs notify only then). */
  ['X_GP_SLEEPING', 1, 'shared'],
  /** 1 while an automatic coordinator runs on the creating thread. */
  ['X_GP_COORDINATOR', 1, 'shared'],
  ['-', 1, 'pad'],
  /** GP state block of flavor f starts at X_GP + f * GP_WORDS (the `gp` record below). */
  ['X_GP', FLAVORS * GP_WORDS, 'shared'],
  /**
   * The shrinker's counters (src/cpu/shrinker.ts): runs (a refill found the slab empty at the
   * memory limit), parked or offline CPUs it drained, epochs it advanced itself, and runs after
   * which the refill got units.
   */
  ['X_RECLAIM_RUNS', 1, 'shared'],
  ['X_RECLAIM_DRAINED', 1, 'shared'],
  ['X_RECLAIM_ADVANCES', 1, 'shared'],
  ['X_RECLAIM_SUCCEEDED', 1, 'shared'],
  /**
   * Spans the slabs gave back (every unit free on the slab): a list through the spans' first
   * words (next, pages) guarded by X_PAGE_LOCK, the pages on it, and spans released in total.
   */
  ['X_FREE_SPANS', 1, 'shared'],
  ['X_FREE_SPAN_PAGES', 1, 'shared'],
  ['X_SPANS_RELEASED', 1, 'shared'],
  ['-', 1, 'pad'],
  /** CPUs taken offline because their thread exited while it held them, and CPU stalls reported. */
  ['X_CPUS_RECOVERED', 1, 'shared'],
  ['X_STALLS', 1, 'shared'],
  /** Depot traffic: batches parked there and taken from it (src/cpu/depot.ts). */
  ['X_DEPOT_PARKS', 1, 'shared'],
  ['X_DEPOT_TAKES', 1, 'shared'],
  /** Spans carved from reused pages so far: their generation bases (SLAB_CARVE_GEN). */
  ['X_SPAN_GENERATIONS', 1, 'shared'],
  /**
   * The most recently created data structure's ref (a hash map, qp-trie or pack allocator); each
   * one's region links the one before (src/shm/structure-chain.ts), so that crash recovery finds
   * their robust mutexes without this map naming any of them.
   */
  ['X_STRUCT_CHAIN', 1, 'shared'],
  /** Times a caller that must not wait found the page lock busy (nolock: no new span then). */
  ['X_PAGE_LOCK_BUSY', 1, 'shared'],
  ['-', 1, 'pad'],
]);
export const {
  H_MAGIC,
  H_VERSION,
  H_CPUS,
  H_CLASSES,
  H_MAX_PAGES,
  H_PAGES_BASE,
  H_POLICY,
  H_GP_MIN_MS,
  H_DEBUG,
  H_BIRTH_MS,
  H_SHEAVES,
  X_CLOSED,
  X_PAGE_LOCK,
  X_PAGES_NEXT,
  X_PAGES_IN_USE,
  X_PEAK_PAGES,
  X_PAGE_LIMIT_HITS,
  X_POISON_ERRORS,
  X_POISON_FIRST,
  X_BARRIER,
  X_GP_REQUEST,
  X_GP_SLEEPING,
  X_GP_COORDINATOR,
  X_GP,
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
  X_STRUCT_CHAIN,
  X_PAGE_LOCK_BUSY,
} = header;
export const DEBUG_POISON = 1;

/** One flavor's GP state block (at X_GP + flavor * GP_WORDS): every word shared. */
export const { G_EPOCH, G_WANT, G_URGENT, G_LAST_ADVANCE } = record(
  'gp',
  GP_WORDS,
  [
    /** The global epoch (wraps; compared by signed distance). From 0, one per advance: their count. */
    ['G_EPOCH', 1, 'shared'],
    /** The epoch somebody waits for (a sealed batch's expiry, a synchronize() target). */
    ['G_WANT', 1, 'shared'],
    /** 1 while an advance waits for readers: `readUnlock` then rings X_GP_REQUEST. */
    ['G_URGENT', 1, 'shared'],
    /** Time of the last advance, ms since H_BIRTH_MS rounded up (for the minimum GP duration). */
    ['G_LAST_ADVANCE', 1, 'shared'],
    ['-', 4, 'pad'],
  ],
  true,
);

/** CPU table record. */
export const {
  CPU_X_STATE,
  CPU_X_OWNER,
  CPU_X_PIN,
  CPU_X_DOORBELL,
  CPU_X_PENDING,
  CPU_TRANSIT_COUNT,
  CPU_TRANSIT_HEAD,
  CPU_TRANSIT_CLASS,
  CPU_TRANSIT_FROM,
} = record('cpu', RECORD_WORDS, [
  /** The state word (CPU states below). */
  ['CPU_X_STATE', 1, 'shared'],
  /** threadId + 1 of the thread that owns the slot (0: nobody); for diagnostics. */
  ['CPU_X_OWNER', 1, 'shared'],
  /** Pin word of flavor f at CPU_X_PIN + f: 0 when quiescent, (epoch << 1) | 1 inside a section. */
  ['CPU_X_PIN', FLAVORS, 'shared'],
  /** The CPU's doorbell (irq_work analogue): the coordinator adds 1 and notifies. */
  ['CPU_X_DOORBELL', 1, 'shared'],
  /** Bit f set while the CPU holds deferred units of flavor f (src/cpu/deferred.ts). */
  ['CPU_X_PENDING', 1, 'shared'],
  /**
   * A chain in transit from one of the CPU's lists to the slab or its free list, for crash
   * recovery (src/cpu/transit.ts): units (0: none), first unit, class, and the cache word
   * index of the list it left. Written by whoever holds the CPU; the count last.
   */
  ['CPU_TRANSIT_COUNT', 1, 'owner'],
  ['CPU_TRANSIT_HEAD', 1, 'owner'],
  ['CPU_TRANSIT_CLASS', 1, 'owner'],
  ['CPU_TRANSIT_FROM', 1, 'owner'],
  ['-', 6, 'pad'],
]);

/**
 * CPU states. The owner moves ONLINE <-> IDLE (park) and ONLINE -> OFFLINE (detach); anybody
 * may claim IDLE or OFFLINE -> DRAINING to work on the CPU's lists and must put back what it
 * found. Attach and unpark wait while a CPU is DRAINING. The state word is
 * `(threadId + 1) << CPU_STATE_BITS | state`: the owner's thread while ONLINE or IDLE, the
 * drainer's while DRAINING, none while OFFLINE — so that one CAS both changes the state and names
 * the thread responsible, and a thread killed at any moment is found by recovery
 * (src/arena/recovery.ts). CPU_X_OWNER keeps the owner's thread while a drainer holds an IDLE CPU.
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

/** Class table record: written by `Arena.create`. */
export const {
  CLS_UNIT_SIZE,
  CLS_LOW,
  CLS_HIGH,
  CLS_BATCH,
  CLS_PREFILL,
  CLS_SPAN_PAGES,
  CLS_SPAN_UNITS,
  CLS_OBJECT_SIZE,
} = record('class', RECORD_WORDS, [
  ['CLS_UNIT_SIZE', 1, 'fixed'],
  ['CLS_LOW', 1, 'fixed'],
  ['CLS_HIGH', 1, 'fixed'],
  ['CLS_BATCH', 1, 'fixed'],
  ['CLS_PREFILL', 1, 'fixed'],
  ['CLS_SPAN_PAGES', 1, 'fixed'],
  ['CLS_SPAN_UNITS', 1, 'fixed'],
  /** User bytes per object of a fixed-size cache; 0 for a general class. */
  ['CLS_OBJECT_SIZE', 1, 'fixed'],
  ['-', 8, 'pad'],
]);

/**
 * Cache record (per CPU and class), 4 lines: owner CPU only (or whoever holds the CPU in a
 * DRAINING state), read racily by `stats()`; except the X_ inbox words, which other CPUs push to.
 */
export const CACHE_SHIFT = 6;
export const CACHE_WORDS = 1 << CACHE_SHIFT;
export const {
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
  C_SHEAF_MAIN,
  C_SHEAF_SPARE,
  C_SHEAF_RCU,
  C_SEALED_HEAD,
  C_SEALED_TAIL,
  C_SEALED_COUNT,
  C_FREE_DEFERRED,
  C_SLAB_TAKEN,
  C_SLAB_RETURNED,
  C_READY_GET,
  C_ALLOC_SLOWPATH,
  C_ALLOC_RETRY,
  C_ALLOC_FAIL,
  C_X_RETURN_HEAD,
  C_X_RETURN_COUNT,
  C_BARN_GET,
  C_BARN_GET_FAIL,
  C_BARN_PUT,
  C_BARN_PUT_FAIL,
  C_SHEAF_REFILL,
  C_SHEAF_FLUSH,
  C_FREE_RCU_SHEAF,
  C_FREE_RCU_SHEAF_FAIL,
} = record('cache', CACHE_WORDS, [
  // Line 0: the fast path's words (src/cpu/cpu.ts spells these offsets as literals).
  ['C_FREE_HEAD', 1, 'owner'],
  ['C_FREE_COUNT', 1, 'owner'],
  ['C_ALLOCS', 1, 'owner'],
  ['C_FREES', 1, 'owner'],
  ['C_REFILLS', 1, 'owner'],
  ['C_TRIMS', 1, 'owner'],
  /** Refills that got fewer units than asked because the memory limit was reached. */
  ['C_REFILL_SHORT', 1, 'owner'],
  /**
   * The fast path's gates, next to the list head so it reads them from a line it already has:
   * an alloc that would leave the count at or below GATE_LOW, or a free that would raise it
   * above GATE_HIGH, takes the slow path. They equal the watermarks under an immediate policy; a
   * policy or debug option that must see every free (or every alloc) closes a gate instead of
   * adding a branch to the fast path.
   */
  ['C_GATE_LOW', 1, 'owner'],
  ['C_GATE_HIGH', 1, 'owner'],
  ['C_BATCH', 1, 'owner'],
  /** Free units a trim keeps: (low + high) / 2. */
  ['C_TRIM_TO', 1, 'owner'],
  /** The cache's watermarks, copied from its class when the CPU comes online. */
  ['C_LOW', 1, 'owner'],
  ['C_HIGH', 1, 'owner'],
  /** Units that passed a grace period here. */
  ['C_RECLAIMED', 1, 'owner'],
  /**
   * The kernel's c->tgt for rcu frees: the CPU that allocated the last unit deferred here;
   * under hint policies the batch goes to that CPU's ttrace lists after its rcu GP
   * (__free_by_rcu).
   */
  ['C_RCU_TGT', 1, 'owner'],
  /** The rcu epoch a sealed ttrace batch also waits for (see C_TTW_EPOCH). */
  ['C_TTW_EPOCH_RCU', 1, 'owner'],
  // Line 1: the deferred lists and the ttrace inbox.
  /**
   * Deferred lists (named after the kernel's): each is a chain through header word 0 with
   * head, tail and count. `freeByRcu` collects rcu-deferred frees; sealed with the rcu epoch it
   * becomes `waitingForGp` (one batch in flight, as the kernel's call_rcu_in_progress). The
   * ttrace pair is the same for the tasks-trace flavor; its sealed batch carries both epochs (a
   * ttrace GP implies an rcu GP, rcu_trace_implies_rcu_gp()).
   */
  ['C_RCU_HEAD', 1, 'owner'],
  ['C_RCU_TAIL', 1, 'owner'],
  ['C_RCU_COUNT', 1, 'owner'],
  ['C_WAIT_HEAD', 1, 'owner'],
  ['C_WAIT_TAIL', 1, 'owner'],
  ['C_WAIT_COUNT', 1, 'owner'],
  ['C_WAIT_EPOCH', 1, 'owner'],
  ['C_TT_HEAD', 1, 'owner'],
  ['C_TT_TAIL', 1, 'owner'],
  ['C_TT_COUNT', 1, 'owner'],
  ['C_TTW_HEAD', 1, 'owner'],
  ['C_TTW_TAIL', 1, 'owner'],
  ['C_TTW_COUNT', 1, 'owner'],
  ['C_TTW_EPOCH', 1, 'owner'],
  /**
   * Remote-free inbox: other CPUs push chains with a CAS on the head (llist_add) and add to the
   * count; the owner takes the whole list with an exchange (llist_del_all).
   */
  ['C_X_INBOX_HEAD', 1, 'shared'],
  ['C_X_INBOX_COUNT', 1, 'shared'],
  // Line 2: owner return (owner-only).
  /**
   * Owner return (policy remoteFree 'owner'): frees of units another CPU allocated collect here,
   * all for one owner (C_REMOTE_OWNER), until a batch is full or the owner changes; then the
   * chain goes to that owner's return inbox in one CAS.
   */
  ['C_REMOTE_HEAD', 1, 'owner'],
  ['C_REMOTE_TAIL', 1, 'owner'],
  ['C_REMOTE_COUNT', 1, 'owner'],
  ['C_REMOTE_OWNER', 1, 'owner'],
  /** Batches this cache posted to owners, and chains it took from its own return inbox. */
  ['C_REMOTE_POSTS', 1, 'owner'],
  ['C_REMOTE_TAKES', 1, 'owner'],
  /**
   * The allocs + frees count the last idle check saw (src/cpu/cpu.ts: a class whose count did
   * not move between two coordinator ticks is idle and gives its cached units back).
   */
  ['C_IDLE_MARK', 1, 'owner'],
  /**
   * The chain an inbox taker (the ttrace inbox, the return inbox) has exchanged out of the
   * inbox but not yet subtracted from its count: a thread killed in that walk leaves it here,
   * and recovery finishes the subtraction (src/arena/recovery.ts).
   */
  ['C_TAKING_INBOX', 1, 'owner'],
  ['C_TAKING_RETURN', 1, 'owner'],
  /**
   * Policy cache 'sheaves' (src/cpu/sheaf.ts): the word index of this CPU's main, spare and
   * rcu_free sheaves in the sheaf pool (0: none), and the FIFO of its sealed rcu_free sheaves
   * waiting for their GP (linked through SHEAF_NEXT).
   */
  ['C_SHEAF_MAIN', 1, 'owner'],
  ['C_SHEAF_SPARE', 1, 'owner'],
  ['C_SHEAF_RCU', 1, 'owner'],
  ['C_SEALED_HEAD', 1, 'owner'],
  ['C_SEALED_TAIL', 1, 'owner'],
  ['C_SEALED_COUNT', 1, 'owner'],
  /**
   * Policy sheafLocks 'try' (the nolock preset): frees that found no room in the sheaves without
   * waiting for a lock and went onto the CPU's deferred list (kfree_nolock's defer_free). The
   * deferred list itself is this record's free list (C_FREE_HEAD / C_FREE_COUNT), which a
   * sheaves CPU uses for nothing else: its units are FREE and wait to be drained to the slab.
   */
  ['C_FREE_DEFERRED', 1, 'owner'],
  // Line 3: the owner-return inbox: other CPUs push chains (CAS on the head), the holder takes all.
  ['C_X_RETURN_HEAD', 1, 'shared'],
  ['C_X_RETURN_COUNT', 1, 'shared'],
  /** SLUB_STATS counters of the sheaf slow paths (owner-only; stats() reads them racily). */
  ['C_BARN_GET', 1, 'owner'],
  ['C_BARN_GET_FAIL', 1, 'owner'],
  ['C_BARN_PUT', 1, 'owner'],
  ['C_BARN_PUT_FAIL', 1, 'owner'],
  ['C_SHEAF_REFILL', 1, 'owner'],
  ['C_SHEAF_FLUSH', 1, 'owner'],
  ['C_FREE_RCU_SHEAF', 1, 'owner'],
  ['C_FREE_RCU_SHEAF_FAIL', 1, 'owner'],
  /**
   * Units this cache took from the slab (refills that reached it: the kernel's kmalloc in
   * alloc_bulk) and gave back to it (the kernel's kfree), counted by whoever moved them (the
   * owner, or the coordinator for a parked CPU); read by the htab-mem bench's memcg model.
   */
  ['C_SLAB_TAKEN', 1, 'owner'],
  ['C_SLAB_RETURNED', 1, 'owner'],
  /**
   * Sealed rcu_free sheaves past their GP that became this CPU's main sheaf at an alloc miss
   * (policy sheafReady 'cpu': the arena preset; not a SLUB_STATS counter).
   */
  ['C_READY_GET', 1, 'owner'],
  /**
   * Policy sheafLocks 'try': allocations served by one unit from the slab, not by a sheaf
   * (kmalloc_nolock's __slab_alloc_node: ALLOC_SLOWPATH); those that found nothing without
   * waiting and tried the next size class once (its retry in the next kmalloc bucket); and
   * those that returned 0 (the retry failed too, or there was no next class).
   */
  ['C_ALLOC_SLOWPATH', 1, 'owner'],
  ['C_ALLOC_RETRY', 1, 'owner'],
  ['C_ALLOC_FAIL', 1, 'owner'],
]);

/** Slab row (per class): the owner words are the holder's of the row's mutex at SLAB_X_LOCK. */
export const {
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
} = record('slab', RECORD_WORDS, [
  ['SLAB_X_LOCK', 1, 'shared'],
  ['SLAB_FREE_HEAD', 1, 'owner'],
  ['SLAB_FREE_COUNT', 1, 'owner'],
  /** Next uncarved unit of the newest span and the end of that span (byte offsets). */
  ['SLAB_CARVE_NEXT', 1, 'owner'],
  ['SLAB_CARVE_END', 1, 'owner'],
  /** Units ever carved into this class and spans taken from the page allocator. */
  ['SLAB_UNITS', 1, 'owner'],
  ['SLAB_SPANS', 1, 'owner'],
  /**
   * Generation the units of the row's current span start from: 0 for pages never used before;
   * for a span taken from the free-span list, a fresh base from X_SPAN_GENERATIONS, so that
   * units in pages a released span gave back do not restart at a generation an old reference
   * still holds (src/structures/unit-ref.ts).
   */
  ['SLAB_CARVE_GEN', 1, 'owner'],
  /**
   * Units returned by a thread that must not block (the creating thread: its event loop is
   * where a dead lock holder is recovered): a lock-free stack of chains (CAS push, exchange
   * take) that whoever next holds the row's mutex moves onto the free list.
   */
  ['SLAB_X_RETURNS', 1, 'shared'],
  ['SLAB_X_RETURN_COUNT', 1, 'shared'],
  ['-', 6, 'pad'],
]);

/**
 * Depot (policy sharing 'depot'): per class DEPOT_SLOTS slots of whole batches, each slot
 * DEPOT_SLOT_WORDS words: head (0 empty, -(threadId + 1) while that thread fills or empties it,
 * else the chain's head), tail, count. A CPU claims a slot with one CAS, writes or reads the
 * chain's tail and count, and releases it with one store (src/cpu/depot.ts).
 */
export const DEPOT_SLOTS = 16;
export const DEPOT_SLOT_WORDS = 4;
export const { DEPOT_X_HEAD, DEPOT_TAIL, DEPOT_COUNT } = record('depot', DEPOT_SLOT_WORDS, [
  ['DEPOT_X_HEAD', 1, 'shared'],
  /** The claimant's, between its CAS on the head and its releasing store. */
  ['DEPOT_TAIL', 1, 'owner'],
  ['DEPOT_COUNT', 1, 'owner'],
  ['-', 1, 'pad'],
]);

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
 * cache (src/arena/recovery.ts, the tests' audits).
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

/**
 * Barn (policy cache 'sheaves', src/cpu/barn.ts): per class one record guarded by its robust
 * mutex BARN_X_LOCK: the sheaf capacity, the full and empty sheaves it holds (at most
 * BARN_MAX_FULL / BARN_MAX_EMPTY, the kernel's MAX_FULL_SHEAVES / MAX_EMPTY_SHEAVES), and the
 * stack of unused sheaves of the pool (the kernel's alloc_empty_sheaf / free_empty_sheaf). Then
 * the class's pool of H_SHEAVES sheaves of SHEAF_WORDS words each.
 */
export const BARN_MAX_FULL = 10;
export const BARN_MAX_EMPTY = 10;
export const BARN_WORDS = 32;
export const {
  BARN_X_LOCK,
  BARN_CAPACITY,
  BARN_NR_FULL,
  BARN_NR_EMPTY,
  BARN_UNUSED_HEAD,
  BARN_UNUSED_COUNT,
  BARN_FULL,
  BARN_EMPTY,
  BARN_GROWN,
  BARN_READY_HEAD,
  BARN_NR_READY,
} = record('barn', BARN_WORDS, [
  ['BARN_X_LOCK', 1, 'shared'],
  ['BARN_CAPACITY', 1, 'fixed'],
  /** Counts and stacks: the lock holder's (read racily before locking, as 082942292109). */
  ['BARN_NR_FULL', 1, 'owner'],
  ['BARN_NR_EMPTY', 1, 'owner'],
  ['BARN_UNUSED_HEAD', 1, 'owner'],
  ['BARN_UNUSED_COUNT', 1, 'owner'],
  ['BARN_FULL', BARN_MAX_FULL, 'owner'],
  ['BARN_EMPTY', BARN_MAX_EMPTY, 'owner'],
  /**
   * Sheaves added to the pool from pages when it ran out (alloc_empty_sheaf's kmalloc): the pool
   * holds H_SHEAVES + BARN_GROWN sheaves; grown ones stay in it for the arena's life.
   */
  ['BARN_GROWN', 1, 'owner'],
  /**
   * sheafReady 'cpu' (arena-sheaves): full sheaves past their GP that a CPU passed on while the
   * full stack held BARN_MAX_FULL, linked through SHEAF_NEXT (no bound but the pool): a CPU
   * that only frees sends its sheaves to the CPUs that allocate whole, not through the slab.
   */
  ['BARN_READY_HEAD', 1, 'owner'],
  ['BARN_NR_READY', 1, 'owner'],
  ['-', 3, 'pad'],
]);
/** Largest sheaf capacity: the kernel's largest base capacity (objects < 256 B). */
export const SHEAF_MAX_CAPACITY = 60;
export const SHEAF_WORDS = 64;
/**
 * A sheaf: its object count, the rcu epoch it was sealed at (rcu_free), the link of the list it
 * is on (unused stack, sealed FIFO), its capacity (its class's, written once at create: the
 * free fast path compares the count with it on the same cache line), then up to
 * SHEAF_MAX_CAPACITY unit byte offsets. Its holder's: a CPU (main, spare, rcu_free, sealed), the
 * barn's lock holder, or a drainer.
 */
export const { SHEAF_SIZE, SHEAF_EPOCH, SHEAF_NEXT, SHEAF_CAPACITY, SHEAF_OBJECTS } = record(
  'sheaf',
  SHEAF_WORDS,
  [
    ['SHEAF_SIZE', 1, 'owner'],
    ['SHEAF_EPOCH', 1, 'owner'],
    ['SHEAF_NEXT', 1, 'owner'],
    ['SHEAF_CAPACITY', 1, 'fixed'],
    ['SHEAF_OBJECTS', SHEAF_MAX_CAPACITY, 'owner'],
  ],
);

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
  /** Barns and sheaf pools (policy cache 'sheaves'): per class a barn record, then its sheaves. */
  readonly barns: number;
  /** Sheaves per class in the pool (0: no sheaf region). */
  readonly sheaves: number;
  readonly unitMap: number;
  readonly pageTable: number;
  /** Byte offset of page 0. */
  readonly pagesBase: number;
  /** Byte length of the whole arena at its limit. */
  readonly totalBytes: number;
}

const alignUp = (n: number, to: number): number => Math.ceil(n / to) * to;

/**
 * Ties the literals a fast path spells (V8 on Node 20 does not fold imported or module-level
 * constants in optimised code) to the constants they stand for; throws at module load when one
 * no longer matches. `where` names the fast path in the message.
 */
export function checkFastPathLiterals(
  where: string,
  literals: ReadonlyArray<readonly [name: string, literal: number, actual: number]>,
): void {
  for (const [name, literal, actual] of literals) {
    if (literal !== actual)
      throw new Error(`percpu-arena: ${where} literal ${name} = ${literal} but layout says ${actual}`);
  }
}

/** Computes the memory map for `cpus` CPUs, `classes` classes and at most `maxPages` pages. */
export function computeLayout(cpus: number, classes: number, maxPages: number, sheaves = 0): Layout {
  const cpuTable = HEADER_WORDS;
  const classTable = cpuTable + cpus * RECORD_WORDS;
  const caches = classTable + classes * RECORD_WORDS;
  const slabs = caches + cpus * classes * CACHE_WORDS;
  const depot = slabs + classes * RECORD_WORDS;
  const barns = depot + classes * DEPOT_SLOTS * DEPOT_SLOT_WORDS;
  const unitMap = barns + (sheaves === 0 ? 0 : classes * (BARN_WORDS + sheaves * SHEAF_WORDS));
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
    barns,
    sheaves,
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

/** Word index of the barn record of `cls` (its pool's sheaves follow it). */
export function barnWord(layout: Layout, cls: number): number {
  return layout.barns + cls * (BARN_WORDS + layout.sheaves * SHEAF_WORDS);
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
  const layout = computeLayout(
    i32[H_CPUS] as number,
    i32[H_CLASSES] as number,
    i32[H_MAX_PAGES] as number,
    i32[H_SHEAVES] as number,
  );
  if (layout.pagesBase !== i32[H_PAGES_BASE]) {
    throw new ArenaError('EBADARENA', 'the arena header does not match its own geometry');
  }
  return layout;
}

/** Load-time check of what the field lists cannot see: encodings and line placement. */
function checkConstants(): void {
  if (
    PAGE_BYTES % 64 !== 0 ||
    (UNIT_GENERATION_STEP & UNIT_STATE_MASK) !== 0 ||
    H_BIRTH_MS % 2 !== 0 ||
    X_GP % GP_WORDS !== 0 ||
    C_X_INBOX_HEAD >> RECORD_SHIFT === 0 ||
    C_X_RETURN_HEAD >> RECORD_SHIFT === C_REMOTE_HEAD >> RECORD_SHIFT
  ) {
    throw new Error('percpu-arena layout: page size, unit header encoding or line placement is inconsistent');
  }
}
checkConstants();
