/**
 * Crash recovery: when a thread that held CPUs has exited (a `Worker`'s 'exit' event: killed by
 * `terminate()`, ended by an uncaught exception, or simply finished without `detach()`), its
 * CPUs go offline wherever the thread stopped — inside a read-side section, halfway through a
 * list update, holding a slab row's mutex — so that grace periods go on and the slots can be
 * attached again:
 *
 * 1. Locks: every robust mutex (slab rows, the page lock, and those of every structure on the
 *    structure chain, each repaired by the recoverer its magic names: src/shm/structure-chain.ts,
 *    src/structures/recoverers.ts; src/shm/sync.ts) whose word names the thread is repaired and
 *    released. A row's free list is walked by its count and cut at
 *    the first unit that is not a free unit of the row's class (the thread may have died between
 *    moving the head and fixing the count); the units cut off are reported as dropped.
 * 2. CPUs: each CPU whose state word names the thread — as its owner (ONLINE or IDLE) or as
 *    the drainer of someone else's parked or offline CPU — is claimed by CAS, its pins cleared
 *    (an owner's), and each of its lists checked the same way: a list that is not a chain of
 *    exactly its count of units in the state the list holds is dropped (reported), a sound one
 *    is kept. An owner's CPU goes offline: its free lists go back to the slab, its deferred
 *    lists, remote buffer and inboxes move on over their GPs as any offline CPU's do
 *    (src/cpu/deferred.ts). A parked CPU whose drainer died goes back to its owner.
 *    Depot slots the thread had claimed are freed (the batch it held is lost and reported).
 *    Under policy cache 'sheaves' the CPU's sheaves are returned first (src/cpu/sheaf-offline.ts,
 *    returnDeadSheaves: main and spare objects to the slab, rcu_free ones onto the deferred
 *    lists) and the barns' mutexes are recovered like the rows'.
 * 3. Leaks: units still allocated whose owner hint names one of those CPUs are reported as
 *    leaked by it (the thread may have handed some to others that still use them; the arena
 *    cannot tell, as the kernel's check_leaked_objs cannot).
 *
 * A chain the thread was moving to the slab or onto its free list (a trim, an offline flush, a
 * batch past its GP) is in its CPU's transit record (src/cpu/transit.ts): recovery finishes
 * the move (`finishTransit`).
 *
 * What it cannot see: any other chain the thread held only in its locals (a refill between the
 * slab and the free list, a trim into the depot or a ttrace list) is lost — neither on a list
 * nor allocated; a push to another CPU's inbox cut
 * between its count and its CAS leaves that count too high (stats only: takers walk to the
 * chain's end); the page allocator's counters if it died inside the page lock. V8 stops
 * a terminated thread at function entries, loop back-edges and, as measured, right around
 * calls into its Atomics builtins — so any gap between two shared writes is a possible kill
 * point; the state words, mutexes and depot slots name their thread in the same word they
 * change, which is what makes them recoverable.
 *
 * Who may call: the arena's creating thread, once the thread is known to have exited (it can
 * never write again, so its owner-only words are plain memory now). Shared words: the CPUs'
 * state, owner and pin words (Atomics), the robust mutexes' words, the depot slots, the slab rows
 * and lists under those locks or a claimed CPU state, as the coordinator does.
 */
import { threadId } from 'node:worker_threads';
import type { ListsByCpu } from '../cpu/deferred.js';
import { releaseDeadClaims } from '../cpu/depot.js';
import { returnDeadSheaves } from '../cpu/sheaf-offline.js';
import { ringCoordinator } from '../epoch/grace-period.js';
import { PageAllocator } from '../memory/page-allocator.js';
import { forEachUnitStart, isUnitStart, Slab } from '../memory/slab.js';
import { claim, publish } from '../shm/atomics.js';
import {
  BARN_GROWN,
  BARN_MAX_EMPTY,
  BARN_MAX_FULL,
  BARN_NR_EMPTY,
  BARN_NR_FULL,
  BARN_NR_READY,
  BARN_READY_HEAD,
  BARN_X_LOCK,
  barnWord,
  C_FREE_HEAD,
  C_TAKING_INBOX,
  C_TAKING_RETURN,
  C_X_INBOX_COUNT,
  C_X_RETURN_COUNT,
  CACHE_LISTS,
  CLS_UNIT_SIZE,
  CPU_DRAINING_IDLE,
  CPU_DRAINING_OFFLINE,
  CPU_IDLE,
  CPU_OFFLINE,
  CPU_TRANSIT_CLASS,
  CPU_TRANSIT_COUNT,
  CPU_TRANSIT_FROM,
  CPU_TRANSIT_HEAD,
  CPU_X_OWNER,
  CPU_X_PIN,
  CPU_X_STATE,
  cacheWord,
  classWord,
  cpuState,
  cpuStateWord,
  cpuThread,
  cpuWord,
  FLAVORS,
  HINT_CLASS_BITS,
  HINT_CLASS_MASK,
  type Layout,
  PAGE_BYTES,
  SHEAF_NEXT,
  SLAB_FREE_COUNT,
  SLAB_FREE_HEAD,
  SLAB_X_LOCK,
  SLAB_X_RETURN_COUNT,
  SLAB_X_RETURNS,
  slabWord,
  UNIT_ALLOCATED,
  UNIT_FREE,
  UNIT_STATE_MASK,
  X_CPUS_RECOVERED,
  X_PAGE_LOCK,
  X_PAGES_NEXT,
} from '../shm/layout.js';
import { recoverStructures } from '../shm/structure-chain.js';
import { mutexRecover } from '../shm/sync.js';
import { STRUCTURE_RECOVERERS } from '../structures/recoverers.js';

/** What recovering one exited thread found. */
export interface RecoveryReport {
  /** threadId of the thread that exited. */
  readonly threadId: number;
  /** CPUs it held, now offline. */
  readonly cpus: readonly number[];
  /** CPUs it was draining (as the coordinator or a shrinker does), repaired and handed back. */
  readonly drainedCpus: readonly number[];
  /** Robust mutexes it held when it died, repaired and released. */
  readonly locksReleased: number;
  /** Units on lists it was changing when it died (not sound chains), taken off those lists. */
  readonly droppedUnits: number;
  /** Units still allocated whose owner hint names one of its CPUs, per CPU. */
  readonly leakedByCpu: Readonly<Record<number, number>>;
}

/** Inbox takes as [taking word, the inbox's count word]. */
const kTakings = [
  [C_TAKING_INBOX, C_X_INBOX_COUNT],
  [C_TAKING_RETURN, C_X_RETURN_COUNT],
] as const;

/** How long to wait for another drainer to hand back a CPU of the dead thread. */
const kClaimWaitMs = 1000;

export function recoverThread(
  i32: Int32Array,
  layout: Layout,
  lists: ListsByCpu,
  deadThreadId: number,
): RecoveryReport {
  let locksReleased = 0;
  let droppedUnits = 0;
  for (let cls = 0; cls < layout.classes; cls++) {
    const row = slabWord(layout, cls);
    const repair = (): void => {
      // Only this thread pushes to the return stack, so its count can be made exact here (a
      // taker killed in its walk took a chain and left the count).
      const returns = Atomics.load(i32, row + SLAB_X_RETURN_COUNT);
      const onStack = chainLength(i32, Atomics.load(i32, row + SLAB_X_RETURNS), returns);
      droppedUnits += returns - onStack;
      Atomics.store(i32, row + SLAB_X_RETURN_COUNT, onStack);
      const count = i32[row + SLAB_FREE_COUNT] as number;
      const sound = soundPrefix(i32, layout, i32[row + SLAB_FREE_HEAD] as number, count, cls, UNIT_FREE);
      if (sound < count) {
        droppedUnits += count - sound;
        cutAfter(i32, row + SLAB_FREE_HEAD, sound);
        i32[row + SLAB_FREE_COUNT] = sound;
      }
    };
    if (mutexRecover(i32, row + SLAB_X_LOCK, deadThreadId, repair)) locksReleased++;
  }
  if (mutexRecover(i32, X_PAGE_LOCK, deadThreadId, () => {})) locksReleased++;
  // Barn mutexes (policy cache 'sheaves'): a barn operation is a few plain stores; a cut one can
  // at worst leave a count off by one, so the counts are clamped to the stacks' sizes, and the
  // ready stack's count is its length (its head is written before its count; a sheaf cut out
  // between its link and the head store stays the dead thread's: leaked, as in a cut exchange).
  for (let cls = 0; layout.sheaves !== 0 && cls < layout.classes; cls++) {
    const b = barnWord(layout, cls);
    const repair = (): void => {
      i32[b + BARN_NR_FULL] = Math.min(Math.max(i32[b + BARN_NR_FULL] as number, 0), BARN_MAX_FULL);
      i32[b + BARN_NR_EMPTY] = Math.min(Math.max(i32[b + BARN_NR_EMPTY] as number, 0), BARN_MAX_EMPTY);
      const pool = layout.sheaves + (i32[b + BARN_GROWN] as number);
      let ready = 0;
      for (
        let s = i32[b + BARN_READY_HEAD] as number;
        s > 0 && ready < pool;
        s = i32[s + SHEAF_NEXT] as number
      )
        ready++;
      i32[b + BARN_NR_READY] = ready;
    };
    if (mutexRecover(i32, b + BARN_X_LOCK, deadThreadId, repair)) locksReleased++;
  }
  let slab: Slab | undefined;
  // The creating thread never waits on a slab row (src/memory/slab.ts): a non-blocking slab.
  const sheafSlab = (): Slab => {
    slab ??= new Slab(i32, layout, new PageAllocator(i32, layout, i32.buffer as SharedArrayBuffer), true);
    return slab;
  };
  const structures = recoverStructures(i32, STRUCTURE_RECOVERERS, deadThreadId);
  locksReleased += structures.released;
  droppedUnits += structures.unlinked;
  // A sleeper the dead thread's unlock woke may have been the dead thread itself, which then
  // never took the lock: wake every sleeper on every mutex; they re-check the word.
  for (let cls = 0; cls < layout.classes; cls++) Atomics.notify(i32, slabWord(layout, cls) + SLAB_X_LOCK);
  Atomics.notify(i32, X_PAGE_LOCK);
  droppedUnits += releaseDeadClaims(i32, layout, deadThreadId);

  const cpus: number[] = [];
  const drained: number[] = [];
  for (let cpu = 0; cpu < layout.cpus; cpu++) {
    const rec = cpuWord(layout, cpu);
    const claimed = claimDeadCpu(i32, rec, deadThreadId);
    if (claimed === undefined) continue;
    const { word, asDrainer } = claimed;
    // Grace periods go on at once (a drainer holds no pins of the CPU it drains).
    if (!asDrainer) for (let f = 0; f < FLAVORS; f++) publish(i32, rec + CPU_X_PIN + f, 0);
    droppedUnits += repairLists(i32, layout, cpu);
    droppedUnits += finishTransit(i32, layout, cpu, sheafSlab());
    const cpuLists = lists.of(cpu);
    if (asDrainer && cpuState(word) === CPU_DRAINING_IDLE) {
      // The drainer died on a parked CPU whose owner lives: hand it back to its owner.
      const owner = Atomics.load(i32, rec + CPU_X_OWNER) - 1;
      publish(i32, rec + CPU_X_STATE, cpuStateWord(CPU_IDLE, owner));
      Atomics.notify(i32, rec + CPU_X_STATE);
      drained.push(cpu);
      continue;
    }
    droppedUnits += returnDeadSheaves(i32, layout, cpu, sheafSlab(), (c, h) => cpuLists.deferRcu(c, h));
    for (let cls = 0; cls < layout.classes; cls++) cpuLists.flushFreeList(cls);
    cpuLists.pollAll(true);
    // Owner first: once the state says OFFLINE another thread may attach and write its own.
    publish(i32, rec + CPU_X_OWNER, 0);
    publish(i32, rec + CPU_X_STATE, CPU_OFFLINE);
    Atomics.notify(i32, rec + CPU_X_STATE);
    if (asDrainer) {
      drained.push(cpu);
      continue;
    }
    Atomics.add(i32, X_CPUS_RECOVERED, 1);
    cpus.push(cpu);
  }
  if (cpus.length + drained.length > 0) ringCoordinator(i32);
  return {
    threadId: deadThreadId,
    cpus,
    drainedCpus: drained,
    locksReleased,
    droppedUnits,
    leakedByCpu: cpus.length > 0 ? countAllocatedBy(i32, layout, new Set(cpus)) : {},
  };
}

/**
 * Claims CPU record `rec` if thread `dead` held it: as its owner (ONLINE or IDLE; waiting while
 * a live drainer holds the parked CPU) or as its drainer (DRAINING). Returns the word it found
 * and which, or undefined if the CPU is not the dead thread's.
 */
function claimDeadCpu(
  i32: Int32Array,
  rec: number,
  dead: number,
): { readonly word: number; readonly asDrainer: boolean } | undefined {
  const deadline = Date.now() + kClaimWaitMs;
  for (;;) {
    const word = Atomics.load(i32, rec + CPU_X_STATE);
    const state = cpuState(word);
    if (cpuThread(word) === dead) {
      const asDrainer = state === CPU_DRAINING_IDLE || state === CPU_DRAINING_OFFLINE;
      const next = cpuStateWord(asDrainer ? state : CPU_DRAINING_OFFLINE, threadId);
      if (claim(i32, rec + CPU_X_STATE, word, next)) return { word, asDrainer };
      continue;
    }
    // A live drainer holds the dead owner's parked CPU: wait until it hands the CPU back.
    const ownerDied = Atomics.load(i32, rec + CPU_X_OWNER) === dead + 1;
    if (!ownerDied || state !== CPU_DRAINING_IDLE || Date.now() > deadline) return undefined;
    Atomics.wait(i32, rec + CPU_X_STATE, word, 1);
  }
}

/**
 * Makes the lists of CPU `cpu` sound: finishes an inbox take cut short in its walk (the chain
 * is out of the inbox, its count not yet subtracted; the chain itself is lost with the thread's
 * locals), and drops each list that is not a sound chain of its count. Returns the units dropped.
 */
function repairLists(i32: Int32Array, layout: Layout, cpu: number): number {
  let dropped = 0;
  for (let cls = 0; cls < layout.classes; cls++) {
    const c = cacheWord(layout, cpu, cls);
    for (const [takingWord, countWord] of kTakings) {
      const taken = i32[c + takingWord] as number;
      if (taken === 0) continue;
      const n = chainLength(i32, taken, Atomics.load(i32, c + countWord));
      Atomics.sub(i32, c + countWord, n);
      dropped += n;
      i32[c + takingWord] = 0;
    }
    for (const [headWord, countWord, state, shared] of CACHE_LISTS) {
      // The inboxes are other CPUs' to push to: their chains are whole by construction.
      if (shared) continue;
      const count = i32[c + countWord] as number;
      if (soundPrefix(i32, layout, i32[c + headWord] as number, count, cls, state) !== count) {
        dropped += Math.max(0, count);
        i32[c + headWord] = 0;
        i32[c + countWord] = 0;
      }
    }
  }
  return dropped;
}

/**
 * Finishes the move of a chain the thread was making from one of CPU `cpu`'s lists to the slab
 * or the free list (src/cpu/transit.ts), after `repairLists`: the chain is where it was, where
 * it went, or at the head of the slab row (whose lock was the thread's, if it got that far);
 * otherwise it is in no list, and its units go to the slab as FREE (they were free, or past
 * their GP). Returns the units dropped: those after the first that is not a unit of the class
 * or is allocated (none, unless the record itself was cut).
 */
function finishTransit(i32: Int32Array, layout: Layout, cpu: number, slab: Slab): number {
  const rec = cpuWord(layout, cpu);
  const n = i32[rec + CPU_TRANSIT_COUNT] as number;
  if (n === 0) return 0;
  i32[rec + CPU_TRANSIT_COUNT] = 0;
  const head = i32[rec + CPU_TRANSIT_HEAD] as number;
  const cls = i32[rec + CPU_TRANSIT_CLASS] as number;
  const c = cacheWord(layout, cpu, cls);
  const from = (i32[rec + CPU_TRANSIT_FROM] as number) - c;
  const startsWith = (headOffset: number): boolean => {
    const list = CACHE_LISTS.find(([h]) => h === headOffset);
    return list !== undefined && i32[c + headOffset] === head && (i32[c + list[1]] as number) >= n;
  };
  if (startsWith(from) || startsWith(C_FREE_HEAD)) return 0;
  const row = slabWord(layout, cls);
  if (i32[row + SLAB_FREE_HEAD] === head) return 0;
  const end = layout.pagesBase + (Atomics.load(i32, X_PAGES_NEXT) as number) * PAGE_BYTES;
  const unitSize = i32[classWord(layout, cls) + CLS_UNIT_SIZE] as number;
  let tail = 0;
  let k = 0;
  for (let unit = head; k < n; k++) {
    if (!isUnitOf(i32, layout, unit, unitSize, end)) break;
    const h = unit >> 2;
    if (((i32[h + 1] as number) & UNIT_STATE_MASK) === UNIT_ALLOCATED) break;
    i32[h + 1] = ((i32[h + 1] as number) & ~UNIT_STATE_MASK) | UNIT_FREE;
    tail = unit;
    unit = i32[h] as number;
  }
  if (k > 0) {
    i32[tail >> 2] = 0;
    slab.returnBatch(cls, head, tail, k);
  }
  return n - k;
}

/** Whether `unit` is a unit start (unit-start bit set, inside the carved pages, ending before `end`). */
function isUnitOf(i32: Int32Array, layout: Layout, unit: number, unitSize: number, end: number): boolean {
  return (
    unit >= layout.pagesBase && unit + unitSize <= end && (unit & 7) === 0 && isUnitStart(i32, layout, unit)
  );
}

/**
 * How many units from `head`, up to `count`, form a sound chain: each a unit start of class
 * `cls` (unit-start bit set, inside the carved pages) in header state `state`.
 */
function soundPrefix(
  i32: Int32Array,
  layout: Layout,
  head: number,
  count: number,
  cls: number,
  state: number,
): number {
  const end = layout.pagesBase + (Atomics.load(i32, X_PAGES_NEXT) as number) * PAGE_BYTES;
  const unitSize = i32[classWord(layout, cls) + CLS_UNIT_SIZE] as number;
  let unit = head;
  for (let k = 0; k < count; k++) {
    if (!isUnitOf(i32, layout, unit, unitSize, end)) return k;
    if (((i32[(unit >> 2) + 1] as number) & UNIT_STATE_MASK) !== state) return k;
    unit = i32[unit >> 2] as number;
  }
  return count;
}

/** Length of the 0-terminated chain from `head`, at most `bound`. */
function chainLength(i32: Int32Array, head: number, bound: number): number {
  let n = 0;
  for (let unit = head; unit !== 0 && n < bound; unit = i32[unit >> 2] as number) n++;
  return n;
}

/** Ends the chain whose head is at word `headWord` after its first `n` units. */
function cutAfter(i32: Int32Array, headWord: number, n: number): void {
  if (n === 0) {
    i32[headWord] = 0;
    return;
  }
  let unit = i32[headWord] as number;
  for (let k = 1; k < n; k++) unit = i32[unit >> 2] as number;
  i32[unit >> 2] = 0;
}

/** Allocated units whose owner hint names one of `cpus`, per CPU (a scan of the unit-start map). */
function countAllocatedBy(
  i32: Int32Array,
  layout: Layout,
  cpus: ReadonlySet<number>,
): Record<number, number> {
  const counts: Record<number, number> = {};
  forEachUnitStart(i32, layout, (unit) => {
    const h = unit >> 2;
    if (((i32[h + 1] as number) & UNIT_STATE_MASK) !== UNIT_ALLOCATED) return;
    const cpu = (i32[h] as number) >> HINT_CLASS_BITS;
    if (cpus.has(cpu) && ((i32[h] as number) & HINT_CLASS_MASK) < layout.classes) {
      counts[cpu] = (counts[cpu] ?? 0) + 1;
    }
  });
  return counts;
}
