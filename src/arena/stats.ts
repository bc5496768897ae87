/**
 * Reading an arena's counters into plain objects: per CPU and class (the caches), per class
 * (the slab rows) and totals. Any thread may call; it takes no lock. Shared counters are read
 * with Atomics; owner-only cache words and slab rows are read plainly and racily, so while
 * CPUs run the figures are a recent snapshot, not a consistent cut; when the arena is quiet
 * (every CPU detached) they are exact. GP counters come from the coordinator (src/arena/coordinator.ts).
 */

import { isExpired, readEpoch } from '../epoch/grace-period.js';
import { readShared } from '../shm/atomics.js';
import {
  BARN_FULL,
  BARN_GROWN,
  BARN_MAX_FULL,
  BARN_NR_FULL,
  BARN_READY_HEAD,
  barnWord,
  C_ALLOC_FAIL,
  C_ALLOC_RETRY,
  C_ALLOC_SLOWPATH,
  C_ALLOCS,
  C_BARN_GET,
  C_BARN_GET_FAIL,
  C_BARN_PUT,
  C_BARN_PUT_FAIL,
  C_BATCH,
  C_FREE_COUNT,
  C_FREE_DEFERRED,
  C_FREE_RCU_SHEAF,
  C_FREE_RCU_SHEAF_FAIL,
  C_FREES,
  C_HIGH,
  C_LOW,
  C_RCU_COUNT,
  C_READY_GET,
  C_RECLAIMED,
  C_REFILL_SHORT,
  C_REFILLS,
  C_REMOTE_COUNT,
  C_REMOTE_POSTS,
  C_REMOTE_TAKES,
  C_SEALED_COUNT,
  C_SEALED_HEAD,
  C_SHEAF_FLUSH,
  C_SHEAF_MAIN,
  C_SHEAF_RCU,
  C_SHEAF_REFILL,
  C_SHEAF_SPARE,
  C_SLAB_RETURNED,
  C_SLAB_TAKEN,
  C_TRIMS,
  C_TT_COUNT,
  C_TTW_COUNT,
  C_WAIT_COUNT,
  C_X_INBOX_COUNT,
  C_X_RETURN_COUNT,
  CLS_OBJECT_SIZE,
  CLS_SPAN_PAGES,
  CLS_UNIT_SIZE,
  CPU_ONLINE,
  CPU_X_OWNER,
  CPU_X_STATE,
  cacheWord,
  classWord,
  cpuState,
  cpuWord,
  DEPOT_COUNT,
  DEPOT_SLOTS,
  DEPOT_X_HEAD,
  depotWord,
  FLAVOR_RCU,
  type Layout,
  PAGE_BYTES,
  SHEAF_EPOCH,
  SHEAF_NEXT,
  SHEAF_SIZE,
  SLAB_FREE_COUNT,
  SLAB_SPANS,
  SLAB_UNITS,
  SLAB_X_RETURN_COUNT,
  slabWord,
  X_CPUS_RECOVERED,
  X_DEPOT_PARKS,
  X_DEPOT_TAKES,
  X_PAGE_LIMIT_HITS,
  X_PAGE_LOCK_BUSY,
  X_PAGES_IN_USE,
  X_PEAK_PAGES,
  X_POISON_ERRORS,
  X_POISON_FIRST,
  X_RECLAIM_ADVANCES,
  X_RECLAIM_DRAINED,
  X_RECLAIM_RUNS,
  X_RECLAIM_SUCCEEDED,
  X_SPANS_RELEASED,
  X_STALLS,
} from '../shm/layout.js';
import type { GpStats } from './coordinator.js';

/** SLUB_STATS of one CPU's sheaves of one class (policy cache 'sheaves'; all 0 otherwise). */
export interface SheafStats {
  /** Allocations and frees served by a sheaf (ALLOC_FASTPATH, FREE_FASTPATH: every one under sheaves). */
  readonly alloc_fastpath: number;
  readonly free_fastpath: number;
  /** Full sheaves taken from the barn for an empty main, and misses (BARN_GET, BARN_GET_FAIL). */
  readonly barn_get: number;
  readonly barn_get_fail: number;
  /** Full mains exchanged for a barn empty, and refusals at 10 full (BARN_PUT, BARN_PUT_FAIL). */
  readonly barn_put: number;
  readonly barn_put_fail: number;
  /** Objects refilled into sheaves from the slab, and flushed from sheaves to it. */
  readonly sheaf_refill: number;
  readonly sheaf_flush: number;
  /**
   * rcu_free sheaves sealed (one epoch request each), and freeRcu calls that did not go into one
   * (none could be had; under sheafLocks 'try' never: they take the deferred lists).
   */
  readonly free_rcu_sheaf: number;
  readonly free_rcu_sheaf_fail: number;
  /**
   * Sealed rcu_free sheaves past their GP that became their CPU's main sheaf whole (policy
   * sheafReady 'cpu'; ours, not a SLUB_STATS counter).
   */
  readonly ready_get: number;
  /**
   * Policy sheafLocks 'try' (kmalloc_nolock): allocations served by one unit from the slab
   * (ALLOC_SLOWPATH), retries in the next size class, allocations that returned 0, and frees
   * deferred because no sheaf had room without waiting (kfree_nolock's defer_free).
   */
  readonly alloc_slowpath: number;
  readonly alloc_retry: number;
  readonly alloc_fail: number;
  readonly free_deferred: number;
}

const kSheafCounters = [
  ['barn_get', C_BARN_GET],
  ['barn_get_fail', C_BARN_GET_FAIL],
  ['barn_put', C_BARN_PUT],
  ['barn_put_fail', C_BARN_PUT_FAIL],
  ['sheaf_refill', C_SHEAF_REFILL],
  ['sheaf_flush', C_SHEAF_FLUSH],
  ['free_rcu_sheaf', C_FREE_RCU_SHEAF],
  ['free_rcu_sheaf_fail', C_FREE_RCU_SHEAF_FAIL],
  ['ready_get', C_READY_GET],
  ['alloc_slowpath', C_ALLOC_SLOWPATH],
  ['alloc_retry', C_ALLOC_RETRY],
  ['alloc_fail', C_ALLOC_FAIL],
  ['free_deferred', C_FREE_DEFERRED],
] as const;

function sumSheafStats(cpus: readonly CpuStats[]): SheafStats {
  const total: Record<string, number> = {};
  for (const cpu of cpus) {
    for (const cache of cpu.classes) {
      for (const [name, value] of Object.entries(cache.sheaf)) total[name] = (total[name] ?? 0) + value;
    }
  }
  return total as unknown as SheafStats;
}

/** Objects in the sheaf at word `sheaf` (0: none). */
function sheafSize(i32: Int32Array, sheaf: number): number {
  return sheaf === 0 ? 0 : (i32[sheaf + SHEAF_SIZE] as number);
}

/**
 * The counters and held objects of one cache record's sheaves (racy, like every cache read):
 * `held` counts main, spare and sealed sheaves past their GP (`rcuEpoch` is the rcu epoch now;
 * under sheafReady 'cpu' a CPU keeps such sheaves for its next alloc misses), `waiting` the
 * rcu_free sheaf and sealed sheaves still in their GP.
 */
function readSheaves(
  i32: Int32Array,
  c: number,
  on: boolean,
  rcuEpoch: number,
): { stats: SheafStats; held: number; waiting: number } {
  const stats: Record<string, number> = {
    alloc_fastpath: on ? (i32[c + C_ALLOCS] as number) - (i32[c + C_ALLOC_SLOWPATH] as number) : 0,
    free_fastpath: on
      ? (i32[c + C_FREES] as number) -
        (i32[c + C_FREE_RCU_SHEAF_FAIL] as number) -
        (i32[c + C_FREE_DEFERRED] as number)
      : 0,
  };
  for (const [name, word] of kSheafCounters) stats[name] = i32[c + word] as number;
  if (!on) return { stats: stats as unknown as SheafStats, held: 0, waiting: 0 };
  let held =
    sheafSize(i32, i32[c + C_SHEAF_MAIN] as number) + sheafSize(i32, i32[c + C_SHEAF_SPARE] as number);
  let waiting = sheafSize(i32, i32[c + C_SHEAF_RCU] as number);
  let s = i32[c + C_SEALED_HEAD] as number;
  for (let k = i32[c + C_SEALED_COUNT] as number; s !== 0 && k > 0; k--) {
    if (isExpired(i32[s + SHEAF_EPOCH] as number, rcuEpoch, 2)) held += sheafSize(i32, s);
    else waiting += sheafSize(i32, s);
    s = i32[s + SHEAF_NEXT] as number;
  }
  return { stats: stats as unknown as SheafStats, held, waiting };
}

/** Counters of one CPU's cache of one class. */
export interface CacheStats {
  readonly allocs: number;
  readonly frees: number;
  readonly refills: number;
  /** Refills that got fewer units than a batch because the memory limit was reached. */
  readonly refillsShort: number;
  readonly trims: number;
  /** Units on the cache's free list now. */
  readonly free: number;
  /**
   * Freed units waiting for a GP on this cache's deferred lists (freeByRcu, waitingForGp and
   * the ttrace pair), in its inboxes, or in its owner-return buffer. Under kernel 6.6 units on
   * the ttrace lists may still be reused before their GP.
   */
  readonly deferred: number;
  /** Owner return: batches this cache posted to their owners, and chains it took back. */
  readonly returnPosts: number;
  readonly returnTakes: number;
  /** Units that passed an rcu GP on this cache. */
  readonly reclaimed: number;
  /** Units this cache took from the slab, and gave back to it (the kernel's kmalloc / kfree). */
  readonly slabTaken: number;
  readonly slabReturned: number;
  /** The cache's watermarks and refill batch (0 while its CPU has never been online). */
  readonly low: number;
  readonly high: number;
  readonly batch: number;
  /** Free units in this CPU's main and spare sheaves (policy cache 'sheaves'). */
  readonly sheaved: number;
  readonly sheaf: SheafStats;
}

/** One CPU slot. */
export interface CpuStats {
  readonly cpu: number;
  readonly online: boolean;
  /** threadId of the owning thread, or -1 when offline. */
  readonly threadId: number;
  /** Indexed by class. */
  readonly classes: readonly CacheStats[];
  readonly allocs: number;
  readonly frees: number;
  readonly refills: number;
  readonly trims: number;
  /**
   * trims / refills (overflows per underflow) over all classes: near 1 means units circulate
   * between this CPU's caches and the shared layer a batch at a time (tcmalloc #286); 0 with no
   * refill yet.
   */
  readonly overflowUnderflowRatio: number;
}

/** One size class (or fixed-size cache) of the slab. */
export interface ClassStats {
  /** Bytes per unit, header included. */
  readonly unitSize: number;
  /** Object size of a fixed-size cache; 0 for a general class. */
  readonly objectSize: number;
  /** Spans taken from the page allocator, the pages they hold and units carved from them. */
  readonly spans: number;
  readonly pages: number;
  readonly units: number;
  /** Units on the slab's free list. */
  readonly slabFree: number;
  /** Units on the CPUs' cache free lists. */
  readonly cached: number;
  /** Free units parked in the depot (policy sharing 'depot'). */
  readonly depot: number;
  /** Units on the CPUs' deferred lists and inboxes. */
  readonly deferred: number;
  /** Free units in the CPUs' main and spare sheaves, and in the barn's full sheaves. */
  readonly sheaved: number;
  readonly barn: number;
  /** Units allocated and not freed: units − slabFree − cached − depot − deferred − sheaved − barn. */
  readonly live: number;
}

/** What `arena.stats()` returns. */
export interface ArenaStats {
  /** Bytes of pages handed to slabs now (the arena's memory in use). */
  readonly bytesInUse: number;
  /** Largest `bytesInUse` since the arena was created. */
  readonly peakBytes: number;
  /** The memory limit (pages the arena may hand out, in bytes). */
  readonly maxBytes: number;
  /** Units allocated and not yet freed, over all classes. */
  readonly liveUnits: number;
  /** Times a slab could not grow because of the memory limit. */
  readonly limitHits: number;
  /**
   * Times a slab could not grow because the page lock was busy and its caller may not wait
   * (policy sheafLocks 'try': kmalloc_nolock's new slab only tries the zone lock).
   */
  readonly pageLockBusy: number;
  /** Spans the slabs gave back to the page allocator once all their units were free on the slab. */
  readonly spansReleased: number;
  /** CPUs taken offline because their thread exited holding them (src/arena/recovery.ts). */
  readonly cpusRecovered: number;
  /** Depot traffic: batches parked and taken (policy sharing 'depot'). */
  readonly depot: { readonly parks: number; readonly takes: number };
  /** CPU stalls reported (a CPU held a GP back for `stallWarningMs`). */
  readonly stalls: number;
  readonly classes: readonly ClassStats[];
  readonly cpus: readonly CpuStats[];
  /** Sums over every CPU and class. */
  readonly totals: {
    readonly allocs: number;
    readonly frees: number;
    readonly refills: number;
    readonly trims: number;
    readonly deferred: number;
    readonly reclaimed: number;
    /** The SLUB_STATS counters summed over CPUs and classes (all 0 unless policy cache 'sheaves'). */
    readonly sheaf: SheafStats;
  };
  /** Grace periods per flavor. */
  readonly gp: GpStats;
  /** The poison debug option: failed checks (writes after free) and the first such pointer. */
  readonly poison: { readonly errors: number; readonly firstPtr: number };
  /**
   * The shrinker (src/cpu/shrinker.ts), run when a refill found nothing at the memory limit: runs,
   * parked or offline CPUs it drained, epochs it advanced, and runs after which the refill got
   * units.
   */
  readonly reclaim: {
    readonly runs: number;
    readonly drainedCpus: number;
    readonly gpAdvances: number;
    readonly succeeded: number;
  };
}

/** Units parked in the depot slots of class `cls` (racy snapshot). */
function depotUnits(i32: Int32Array, layout: Layout, cls: number): number {
  let n = 0;
  for (let slot = 0; slot < DEPOT_SLOTS; slot++) {
    const w = depotWord(layout, cls, slot);
    if (Atomics.load(i32, w + DEPOT_X_HEAD) > 0) n += i32[w + DEPOT_COUNT] as number;
  }
  return n;
}

export function readStats(i32: Int32Array, layout: Layout, gp: GpStats): ArenaStats {
  const cpus: CpuStats[] = [];
  const cachedPerClass = new Array<number>(layout.classes).fill(0);
  const deferredPerClass = new Array<number>(layout.classes).fill(0);
  const sheavedPerClass = new Array<number>(layout.classes).fill(0);
  const sheavesOn = layout.sheaves !== 0;
  const rcuEpoch = readEpoch(i32, FLAVOR_RCU);
  let reclaimed = 0;
  for (let cpu = 0; cpu < layout.cpus; cpu++) {
    const classes: CacheStats[] = [];
    const sum = { allocs: 0, frees: 0, refills: 0, trims: 0 };
    for (let cls = 0; cls < layout.classes; cls++) {
      const c = cacheWord(layout, cpu, cls);
      const sheaves = readSheaves(i32, c, sheavesOn, rcuEpoch);
      const s: CacheStats = {
        allocs: i32[c + C_ALLOCS] as number,
        frees: i32[c + C_FREES] as number,
        refills: i32[c + C_REFILLS] as number,
        refillsShort: i32[c + C_REFILL_SHORT] as number,
        trims: i32[c + C_TRIMS] as number,
        free: i32[c + C_FREE_COUNT] as number,
        deferred:
          (i32[c + C_RCU_COUNT] as number) +
          (i32[c + C_WAIT_COUNT] as number) +
          (i32[c + C_TT_COUNT] as number) +
          (i32[c + C_TTW_COUNT] as number) +
          (i32[c + C_REMOTE_COUNT] as number) +
          Atomics.load(i32, c + C_X_INBOX_COUNT) +
          Atomics.load(i32, c + C_X_RETURN_COUNT) +
          sheaves.waiting,
        returnPosts: i32[c + C_REMOTE_POSTS] as number,
        returnTakes: i32[c + C_REMOTE_TAKES] as number,
        reclaimed: i32[c + C_RECLAIMED] as number,
        slabTaken: i32[c + C_SLAB_TAKEN] as number,
        slabReturned: i32[c + C_SLAB_RETURNED] as number,
        low: i32[c + C_LOW] as number,
        high: i32[c + C_HIGH] as number,
        batch: i32[c + C_BATCH] as number,
        sheaved: sheaves.held,
        sheaf: sheaves.stats,
      };
      sheavedPerClass[cls] = (sheavedPerClass[cls] as number) + sheaves.held;
      classes.push(s);
      cachedPerClass[cls] = (cachedPerClass[cls] as number) + s.free;
      deferredPerClass[cls] = (deferredPerClass[cls] as number) + s.deferred;
      reclaimed += s.reclaimed;
      sum.allocs += s.allocs;
      sum.frees += s.frees;
      sum.refills += s.refills;
      sum.trims += s.trims;
    }
    const rec = cpuWord(layout, cpu);
    const online = cpuState(readShared(i32, rec + CPU_X_STATE)) === CPU_ONLINE;
    const overflowUnderflowRatio =
      sum.refills === 0 ? 0 : Math.round((sum.trims / sum.refills) * 1000) / 1000;
    cpus.push({
      cpu,
      online,
      threadId: readShared(i32, rec + CPU_X_OWNER) - 1,
      classes,
      ...sum,
      overflowUnderflowRatio,
    });
  }
  const classes: ClassStats[] = [];
  let liveUnits = 0;
  for (let cls = 0; cls < layout.classes; cls++) {
    const row = slabWord(layout, cls);
    const units = i32[row + SLAB_UNITS] as number;
    const slabFree = (i32[row + SLAB_FREE_COUNT] as number) + Atomics.load(i32, row + SLAB_X_RETURN_COUNT);
    const cached = cachedPerClass[cls] as number;
    const deferred = deferredPerClass[cls] as number;
    const depot = depotUnits(i32, layout, cls);
    const sheaved = sheavedPerClass[cls] as number;
    let barn = 0;
    if (sheavesOn) {
      const b = barnWord(layout, cls);
      const nrFull = Math.min(i32[b + BARN_NR_FULL] as number, BARN_MAX_FULL);
      for (let k = 0; k < nrFull; k++) barn += sheafSize(i32, i32[b + BARN_FULL + k] as number);
      // The ready stack (sheafReady 'cpu'): a racy walk, bounded by the pool in case it raced.
      let bound = layout.sheaves + (i32[b + BARN_GROWN] as number);
      for (
        let s = i32[b + BARN_READY_HEAD] as number;
        s > 0 && bound-- > 0;
        s = i32[s + SHEAF_NEXT] as number
      )
        barn += sheafSize(i32, s);
    }
    const live = units - slabFree - cached - depot - deferred - sheaved - barn;
    liveUnits += live;
    classes.push({
      unitSize: i32[classWord(layout, cls) + CLS_UNIT_SIZE] as number,
      objectSize: i32[classWord(layout, cls) + CLS_OBJECT_SIZE] as number,
      spans: i32[row + SLAB_SPANS] as number,
      pages: (i32[row + SLAB_SPANS] as number) * (i32[classWord(layout, cls) + CLS_SPAN_PAGES] as number),
      units,
      slabFree,
      cached,
      depot,
      deferred,
      sheaved,
      barn,
      live,
    });
  }
  return {
    bytesInUse: readShared(i32, X_PAGES_IN_USE) * PAGE_BYTES,
    peakBytes: readShared(i32, X_PEAK_PAGES) * PAGE_BYTES,
    maxBytes: layout.maxPages * PAGE_BYTES,
    liveUnits,
    limitHits: readShared(i32, X_PAGE_LIMIT_HITS),
    pageLockBusy: readShared(i32, X_PAGE_LOCK_BUSY),
    spansReleased: readShared(i32, X_SPANS_RELEASED),
    cpusRecovered: readShared(i32, X_CPUS_RECOVERED),
    depot: { parks: readShared(i32, X_DEPOT_PARKS), takes: readShared(i32, X_DEPOT_TAKES) },
    stalls: readShared(i32, X_STALLS),
    classes,
    cpus,
    totals: {
      allocs: cpus.reduce((n, c) => n + c.allocs, 0),
      frees: cpus.reduce((n, c) => n + c.frees, 0),
      refills: cpus.reduce((n, c) => n + c.refills, 0),
      trims: cpus.reduce((n, c) => n + c.trims, 0),
      deferred: deferredPerClass.reduce((n, d) => n + d, 0),
      reclaimed,
      sheaf: sumSheafStats(cpus),
    },
    gp,
    poison: { errors: readShared(i32, X_POISON_ERRORS), firstPtr: readShared(i32, X_POISON_FIRST) },
    reclaim: {
      runs: readShared(i32, X_RECLAIM_RUNS),
      drainedCpus: readShared(i32, X_RECLAIM_DRAINED),
      gpAdvances: readShared(i32, X_RECLAIM_ADVANCES),
      succeeded: readShared(i32, X_RECLAIM_SUCCEEDED),
    },
  };
}
