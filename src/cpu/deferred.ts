/**
 * The deferred lists of one CPU's caches, the moves between them, and the two batch moves of a
 * cache's free list side by side, as in the kernel: alloc_bulk (refill) and free_bulk (trim)
 * (kernel/bpf/memalloc.c: unit_free_rcu, check_free_by_rcu, __free_by_rcu, free_bulk,
 * do_call_rcu_ttrace, alloc_bulk):
 *
 * ```
 *  freeRcu / deferring free ─► freeByRcu ─seal(epoch)─► waitingForGp ─rcu GP─► free list | ttrace lists | slab  (policy)
 *  trim (free_bulk) ─► freeByRcuTtrace (own, or the owner's inbox) ─seal─► waitingForGpTtrace ─ttrace GP─► slab
 *                      └──────────── kernel 6.6: refill takes units from both ttrace lists first ───────────┘
 *  owner return: remote free ─► remote buffer (one owner, ≤ batch) ─post─► owner's return inbox ─take─► owner's freeByRcu
 * ```
 * Owner return (policy remoteFree 'owner') defers a unit on its owner's lists: the owner seals
 * it after taking it from its inbox, which comes after the free, so the proof in
 * src/epoch/grace-period.ts holds unchanged (the seal loads the epoch after the unlink).
 * One batch per flavor and cache is in flight at a time (call_rcu_in_progress): while it waits,
 * new frees pile up on the `freeBy…` list, and the next operation after the batch's GP moves it
 * and seals the pile. That is the kernel's accumulation, kept on purpose (the blow-up Hou Tao
 * measured, https://lore.kernel.org/all/20221209010947.3130477-1-houtao@huaweicloud.com/).
 * A ttrace batch is sealed with both epochs and waits for both GPs: a tasks-trace GP
 * implies an rcu GP in the kernel (rcu_trace_implies_rcu_gp()).
 *
 * Who may call: the thread that holds the CPU, either as its owner (state ONLINE) or as a
 * drainer that claimed it (DRAINING_IDLE / DRAINING_OFFLINE, src/arena/coordinator.ts); never two at
 * once. Those words (every cache word but the two inboxes) are owner-only and plain. Shared
 * words: the epochs (read to seal and to test expiry, src/epoch/grace-period.ts), the CPU's pending bits
 * (CPU_X_PENDING, Atomics.or / and), the ttrace and return inboxes' head and count of every cache
 * (other CPUs push with a CAS, the holder takes all with an exchange: no ABA, since nobody pops
 * one unit), the
 * slab rows (their mutex) and the poison counters. Units on a list belong to the list's holder;
 * a chain pushed to an inbox was written by the sender before the CAS that publishes it.
 */

import { isExpired, readEpoch, requestEpoch, ringCoordinator, tryAdvance } from '../epoch/grace-period.js';
import { ADAPTIVE_MAX_SCALE, P_REFILL_ALL, readPolicyWord } from '../epoch/policy.js';
import { checkPoison, poisonEnabled, poisonUnit } from '../memory/poison.js';
import type { Slab } from '../memory/slab.js';
import type { ArenaFaults } from '../shm/arena-ref.js';
import {
  C_BATCH,
  C_FREE_COUNT,
  C_FREE_HEAD,
  C_HIGH,
  C_RCU_COUNT,
  C_RCU_HEAD,
  C_RCU_TAIL,
  C_RCU_TGT,
  C_RECLAIMED,
  C_REFILL_SHORT,
  C_REFILLS,
  C_REMOTE_COUNT,
  C_REMOTE_HEAD,
  C_REMOTE_OWNER,
  C_REMOTE_POSTS,
  C_REMOTE_TAIL,
  C_REMOTE_TAKES,
  C_SLAB_RETURNED,
  C_SLAB_TAKEN,
  C_TAKING_INBOX,
  C_TAKING_RETURN,
  C_TRIM_TO,
  C_TRIMS,
  C_TT_COUNT,
  C_TT_HEAD,
  C_TT_TAIL,
  C_TTW_COUNT,
  C_TTW_EPOCH,
  C_TTW_EPOCH_RCU,
  C_TTW_HEAD,
  C_TTW_TAIL,
  C_WAIT_COUNT,
  C_WAIT_EPOCH,
  C_WAIT_HEAD,
  C_WAIT_TAIL,
  C_X_INBOX_COUNT,
  C_X_INBOX_HEAD,
  C_X_RETURN_COUNT,
  C_X_RETURN_HEAD,
  CPU_ONLINE,
  CPU_TRANSIT_COUNT,
  CPU_X_PENDING,
  CPU_X_STATE,
  cacheWord,
  cpuState,
  cpuWord,
  DEPOT_SLOTS,
  FLAVOR_RCU,
  FLAVOR_TTRACE,
  H_POLICY,
  HINT_CLASS_BITS,
  type Layout,
  UNIT_DEFERRED,
  UNIT_FREE,
  UNIT_STATE_MASK,
} from '../shm/layout.js';
import { type Chain, emptyChain, llistAdd, walkTaken } from '../shm/llist.js';
import { Depot } from './depot.js';
import { beginTransit, endTransit, stallInTransit, transitCountWord } from './transit.js';

/** CPU_X_PENDING bits: the CPU holds rcu-deferred units, ttrace-deferred units (or inbox units). */
export const PENDING_RCU = 1 << FLAVOR_RCU;
export const PENDING_TTRACE = 1 << FLAVOR_TTRACE;

/** After-rcu-GP destinations (policy bits). */
const AFTER_TTRACE = 0;
const AFTER_FREE_LIST = 1;

/**
 * A CPU helps advance an epoch once a cache's pile of deferred units reaches this many times
 * its high watermark while the batch in flight still waits (the main thread may be busy).
 */
const kHelpFactor = 4;

/** What alloc_bulk calls when the arena is at its limit: the CPU's shrinker (src/cpu/shrinker.ts). */
export interface Reclaimer {
  reclaim(): void;
  succeeded(): void;
}

export class DeferredLists {
  readonly #i32: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #layout: Layout;
  readonly #slab: Slab;
  readonly #birthMs: number;
  readonly #afterRcu: number;
  readonly #unbounded: boolean;
  readonly #trimTtrace: boolean;
  /** Hint policies send ttrace batches to the units' owner (c->tgt), not this CPU. */
  readonly #hint: boolean;
  /** Adaptive capacity: a batch that passed its GP stays whole, up to ADAPTIVE_MAX_SCALE × high. */
  readonly #keepBatches: boolean;
  /** CPUs drive GPs (policy gpDrive 'cpus'): help at every look, ring only for a lone batch. */
  readonly #selfDrive: boolean;
  /** Refill from the ttrace lists: 0 none, 1 the unsealed list, P_REFILL_ALL both. */
  readonly #refillFromTtrace: number;
  /** Trims park whole batches in the depot (policy sharing 'depot'), if a slot is free. */
  readonly depot: Depot | undefined;
  readonly #poison: boolean;
  readonly cpu: number;
  /** The chain the last `#popFirst` unlinked: its result, owned here, read before the next pop. */
  readonly #popped: Chain = emptyChain();

  /** Epochs after its seal at which a batch is past its GP: 2, or 1 with the oneEpochGp fault. */
  readonly #gpEpochs: number;
  /** The CPU's record: its transit words (src/cpu/transit.ts). */
  readonly #rec: number;
  /** Test fault: stop forever with a chain in transit to the slab. */
  readonly #stallInTransit: boolean;

  constructor(
    i32: Int32Array,
    bytes: Uint8Array,
    layout: Layout,
    slab: Slab,
    cpu: number,
    birthMs: number,
    faults?: ArenaFaults,
  ) {
    this.#gpEpochs = faults?.oneEpochGp === true ? 1 : 2;
    this.#stallInTransit = faults?.stallInTransit === true;
    this.#rec = cpuWord(layout, cpu);
    this.#i32 = i32;
    this.#bytes = bytes;
    this.#layout = layout;
    this.#slab = slab;
    this.#birthMs = birthMs;
    const policy = readPolicyWord(i32[H_POLICY] as number);
    this.#afterRcu = policy.afterRcuGp;
    this.#unbounded = policy.unbounded;
    this.#trimTtrace = policy.trimViaTtrace;
    this.#hint = policy.hint;
    this.#keepBatches = policy.adaptive;
    this.#selfDrive = policy.cpusDriveGp;
    this.#refillFromTtrace = policy.refillFromTtrace;
    this.depot = policy.depot ? new Depot(i32, layout) : undefined;
    this.#poison = poisonEnabled(i32);
    this.cpu = cpu;
  }

  /** Puts the allocated unit at header word `h` on the freeByRcu list of the cache at word `c`. */
  deferRcu(c: number, h: number): void {
    const i32 = this.#i32;
    const unit = h << 2;
    // unit_free_rcu's c->tgt = the hint, read before the list link overwrites it.
    i32[c + C_RCU_TGT] = (i32[h] as number) >> HINT_CLASS_BITS;
    i32[h + 1] = ((i32[h + 1] as number) & ~UNIT_STATE_MASK) | UNIT_DEFERRED;
    if ((i32[c + C_RCU_COUNT] as number) === 0) i32[c + C_RCU_TAIL] = unit;
    i32[h] = i32[c + C_RCU_HEAD] as number;
    i32[c + C_RCU_HEAD] = unit;
    i32[c + C_RCU_COUNT] = (i32[c + C_RCU_COUNT] as number) + 1;
  }

  /**
   * check_free_by_rcu: if the batch in flight is past its rcu GP, moves it on (policy); then
   * seals the pile as the next batch. `offline`: the CPU's free list must stay empty.
   */
  progressRcu(cls: number, offline: boolean): void {
    const i32 = this.#i32;
    const c = cacheWord(this.#layout, this.cpu, cls);
    if (Atomics.load(i32, c + C_X_RETURN_HEAD) !== 0) this.#takeReturns(c);
    const waiting = i32[c + C_WAIT_COUNT] as number;
    if (waiting !== 0) {
      if (!isExpired(i32[c + C_WAIT_EPOCH] as number, readEpoch(i32, FLAVOR_RCU), this.#gpEpochs)) {
        this.#maybeHelp(FLAVOR_RCU, c, i32[c + C_RCU_COUNT] as number);
        return;
      }
      const head = i32[c + C_WAIT_HEAD] as number;
      const tail = i32[c + C_WAIT_TAIL] as number;
      const toFreeList = this.#afterRcu === AFTER_FREE_LIST && !offline;
      // In transit unless it goes to a ttrace list (src/cpu/transit.ts).
      if (this.#afterRcu !== AFTER_TTRACE) beginTransit(i32, this.#rec, head, waiting, cls, c + C_WAIT_HEAD);
      i32[c + C_WAIT_COUNT] = 0;
      i32[c + C_WAIT_HEAD] = 0;
      i32[c + C_RECLAIMED] = (i32[c + C_RECLAIMED] as number) + waiting;
      this.#markReusable(cls, head, waiting);
      if (toFreeList) {
        i32[tail >> 2] = i32[c + C_FREE_HEAD] as number;
        // Count before head (as the slab's returnBatch): a kill between leaves a free list
        // shorter than its count, which recovery drops, never one that holds the chain.
        i32[c + C_FREE_COUNT] = (i32[c + C_FREE_COUNT] as number) + waiting;
        i32[c + C_FREE_HEAD] = head;
        endTransit(i32, this.#rec);
        // A batch that passed its GP may push the free list above high: trim it as a free would
        // (adaptive capacity keeps it whole: it is what this CPU frees per GP, and it allocates
        // at that rate again; up to a cap, and until the CPU goes quiet).
        const keep = this.#keepBatches
          ? ADAPTIVE_MAX_SCALE * (i32[c + C_HIGH] as number)
          : (i32[c + C_HIGH] as number);
        if ((i32[c + C_FREE_COUNT] as number) > keep && !this.#unbounded) {
          this.freeBulk(cls, this.cpu, this.#keepBatches ? keep : i32[c + C_TRIM_TO]);
        }
      } else if (this.#afterRcu === AFTER_TTRACE) {
        // __free_by_rcu: to tgt's free_by_rcu_ttrace (kernel 6.6), or here (6.1, no hint yet).
        this.sendTtrace(cls, this.#hint ? (i32[c + C_RCU_TGT] as number) : this.cpu, head, tail, waiting);
      } else {
        this.#toSlab(c, cls, head, tail, waiting);
      }
    }
    const pile = i32[c + C_RCU_COUNT] as number;
    if (pile === 0) return;
    // The read-modify-write orders the caller's unlink store before the epoch load (see #fence).
    this.#fence(PENDING_RCU);
    const epoch = readEpoch(i32, FLAVOR_RCU);
    i32[c + C_WAIT_HEAD] = i32[c + C_RCU_HEAD] as number;
    i32[c + C_WAIT_TAIL] = i32[c + C_RCU_TAIL] as number;
    i32[c + C_WAIT_COUNT] = pile;
    i32[c + C_WAIT_EPOCH] = epoch;
    i32[c + C_RCU_HEAD] = 0;
    i32[c + C_RCU_COUNT] = 0;
    requestEpoch(i32, FLAVOR_RCU, (epoch + 2) | 0, this.#ringFor(c, pile));
  }

  /**
   * Whether a seal of `pile` units at cache word `c` rings the coordinator (see #selfDrive): a
   * self-driving CPU rings for a lone batch, and from `pollAll` (the doorbell or a drain: no
   * look of its own may follow).
   */
  #ringFor(c: number, pile: number): boolean {
    return !this.#selfDrive || this.#polling || pile < (this.#i32[c + C_BATCH] as number);
  }

  /** True while `pollAll` runs. */
  #polling = false;

  /**
   * do_call_rcu_ttrace and __free_rcu: takes the inbox; if the batch in flight is past both GPs,
   * returns it to the slab; then seals the pile as the next batch.
   */
  progressTtrace(cls: number): void {
    const i32 = this.#i32;
    const c = cacheWord(this.#layout, this.cpu, cls);
    if (Atomics.load(i32, c + C_X_INBOX_HEAD) !== 0) this.#takeInbox(cls, c);
    const waiting = i32[c + C_TTW_COUNT] as number;
    if (waiting !== 0) {
      if (
        !isExpired(i32[c + C_TTW_EPOCH] as number, readEpoch(i32, FLAVOR_TTRACE), this.#gpEpochs) ||
        !isExpired(i32[c + C_TTW_EPOCH_RCU] as number, readEpoch(i32, FLAVOR_RCU), this.#gpEpochs)
      ) {
        this.#maybeHelp(FLAVOR_TTRACE, c, i32[c + C_TT_COUNT] as number);
        return;
      }
      const head = i32[c + C_TTW_HEAD] as number;
      beginTransit(i32, this.#rec, head, waiting, cls, c + C_TTW_HEAD);
      // Unlinked before the slab links it: a kill in between must not leave it on both.
      i32[c + C_TTW_COUNT] = 0;
      i32[c + C_TTW_HEAD] = 0;
      this.#toSlab(c, cls, head, i32[c + C_TTW_TAIL] as number, waiting);
    }
    const pile = i32[c + C_TT_COUNT] as number;
    if (pile === 0) return;
    this.#fence(PENDING_TTRACE);
    const epoch = readEpoch(i32, FLAVOR_TTRACE);
    const epochRcu = readEpoch(i32, FLAVOR_RCU);
    i32[c + C_TTW_HEAD] = i32[c + C_TT_HEAD] as number;
    i32[c + C_TTW_TAIL] = i32[c + C_TT_TAIL] as number;
    i32[c + C_TTW_COUNT] = pile;
    i32[c + C_TTW_EPOCH] = epoch;
    i32[c + C_TTW_EPOCH_RCU] = epochRcu;
    i32[c + C_TT_HEAD] = 0;
    i32[c + C_TT_COUNT] = 0;
    const ring = this.#ringFor(c, pile);
    requestEpoch(i32, FLAVOR_TTRACE, (epoch + 2) | 0, ring);
    requestEpoch(i32, FLAVOR_RCU, (epochRcu + 2) | 0, ring);
  }

  /**
   * alloc_bulk: refills the free list of `cls` with up to `want` units: first the deferred
   * lists whose GP has passed, then (kernels 6.2+) the ttrace lists, then the depot and the
   * slab; at the memory limit, `reclaimer` (the CPU's shrinker) runs once before a last try.
   * `chain` is the caller's scratch. Callers have checked that the arena is open.
   */
  allocBulk(cls: number, want: number, chain: Chain, reclaimer: Reclaimer): void {
    const i32 = this.#i32;
    const c = cacheWord(this.#layout, this.cpu, cls);
    i32[c + C_REFILLS] = (i32[c + C_REFILLS] as number) + 1;
    const before = i32[c + C_FREE_COUNT] as number;
    this.progressRcu(cls, false);
    this.progressTtrace(cls);
    let need = want - ((i32[c + C_FREE_COUNT] as number) - before);
    const refill = this.#refillFromTtrace;
    if (need > 0 && refill !== 0) {
      this.takeTtrace(cls, need, refill === P_REFILL_ALL, chain);
      this.#splice(c, chain);
      need -= chain.count;
    }
    if (need <= 0) return;
    const depot = this.depot;
    if (depot !== undefined) {
      // Whole parked batches, whatever their length: one CAS and one store each.
      for (let k = 0; k < DEPOT_SLOTS && need > 0; k++) {
        depot.take(cls, chain);
        if (chain.head === 0) break;
        this.#splice(c, chain);
        need -= chain.count;
      }
      if (need <= 0) return;
    }
    this.#slab.takeBatch(cls, need, chain);
    this.#splice(c, chain);
    i32[c + C_SLAB_TAKEN] = (i32[c + C_SLAB_TAKEN] as number) + chain.count;
    if (chain.count >= need) return;
    i32[c + C_REFILL_SHORT] = (i32[c + C_REFILL_SHORT] as number) + 1;
    if ((i32[c + C_FREE_COUNT] as number) !== 0) return;
    // Nothing at all to hand out: the arena is at its limit. Reclaim, then try once more.
    reclaimer.reclaim();
    this.progressRcu(cls, false);
    this.progressTtrace(cls);
    if (refill !== 0) {
      this.takeTtrace(cls, want, refill === P_REFILL_ALL, chain);
      this.#splice(c, chain);
    }
    if ((i32[c + C_FREE_COUNT] as number) === 0) {
      this.#slab.takeBatch(cls, want, chain);
      this.#splice(c, chain);
      i32[c + C_SLAB_TAKEN] = (i32[c + C_SLAB_TAKEN] as number) + chain.count;
    }
    if ((i32[c + C_FREE_COUNT] as number) !== 0) reclaimer.succeeded();
  }

  /** Puts `chain` (free units; possibly empty) on the cache's free list at word `c`. */
  #splice(c: number, chain: Chain): void {
    if (chain.head === 0) return;
    const i32 = this.#i32;
    i32[chain.tail >> 2] = i32[c + C_FREE_HEAD] as number;
    i32[c + C_FREE_HEAD] = chain.head;
    i32[c + C_FREE_COUNT] = (i32[c + C_FREE_COUNT] as number) + chain.count;
  }

  /**
   * free_bulk: trims the free list of `cls` to `keep` units ((low + high) / 2 unless told) in
   * one batch, to the depot (if the policy has one and `park`, and a slot is free), the slab or
   * (as the policy says) to the freeByRcuTtrace list of `target`: the hint of the last free, or
   * this CPU.
   */
  freeBulk(cls: number, target: number, keep?: number, park = true): void {
    const i32 = this.#i32;
    const c = cacheWord(this.#layout, this.cpu, cls);
    const n = (i32[c + C_FREE_COUNT] as number) - (keep ?? (i32[c + C_TRIM_TO] as number));
    i32[c + C_TRIMS] = (i32[c + C_TRIMS] as number) + 1;
    if (n <= 0) return;
    // The depot holds refill-sized batches (a larger one would overshoot the taker's refill).
    const toDepot = park && n <= 2 * (i32[c + C_BATCH] as number) && this.depot !== undefined;
    if (!toDepot && !this.#trimTtrace) {
      this.#freeListToSlab(c, cls, n);
      return;
    }
    const { head, tail } = this.#popFree(c, n);
    if (toDepot && this.depot?.park(cls, head, tail, n)) return;
    if (this.#trimTtrace) {
      this.sendTtrace(cls, target, head, tail, n);
      this.progressTtrace(cls);
    } else {
      // A full depot: to the slab, untracked (transit covers the moves decided before the pop).
      this.#toSlab(c, cls, head, tail, n);
    }
  }

  /** Returns the whole free list of `cls` to the slab (a CPU going offline). */
  flushFreeList(cls: number): void {
    const c = cacheWord(this.#layout, this.cpu, cls);
    const n = this.#i32[c + C_FREE_COUNT] as number;
    if (n === 0) return;
    this.#freeListToSlab(c, cls, n);
  }

  /** Moves the first `n` units of the free list at cache word `c` to the slab, in transit. */
  #freeListToSlab(c: number, cls: number, n: number): void {
    const i32 = this.#i32;
    beginTransit(i32, this.#rec, i32[c + C_FREE_HEAD] as number, n, cls, c + C_FREE_HEAD);
    const { head, tail } = this.#popFree(c, n);
    this.#toSlab(c, cls, head, tail, n);
  }

  /**
   * Gives a chain of `n` units of the cache at word `c` back to the slab, counting them; a
   * chain in transit (src/cpu/transit.ts) arrives under the row's lock.
   */
  #toSlab(c: number, cls: number, head: number, tail: number, n: number): void {
    const i32 = this.#i32;
    const inTransit = (i32[this.#rec + CPU_TRANSIT_COUNT] as number) !== 0;
    if (inTransit && this.#stallInTransit) stallInTransit(i32, this.#rec);
    this.#slab.returnBatch(cls, head, tail, n, true, inTransit ? transitCountWord(this.#rec) : -1);
    i32[c + C_SLAB_RETURNED] = (i32[c + C_SLAB_RETURNED] as number) + n;
  }

  /** Unlinks the first `n` units of the free list at cache word `c` (see `#popFirst`). */
  #popFree(c: number, n: number): Chain {
    return this.#popFirst(c + C_FREE_HEAD, c + C_FREE_COUNT, n);
  }

  /**
   * Unlinks the first `n` (1..count) units of the list whose head and count are at words
   * `headWord` and `countWord`; returns them as a chain (this object's `#popped`: read it before
   * the next pop) whose tail's link still points into the list: the caller relinks or ends it.
   */
  #popFirst(headWord: number, countWord: number, n: number): Chain {
    const i32 = this.#i32;
    const head = i32[headWord] as number;
    let tail = head;
    for (let k = 1; k < n; k++) tail = i32[tail >> 2] as number;
    i32[headWord] = i32[tail >> 2] as number;
    i32[countWord] = (i32[countWord] as number) - n;
    const popped = this.#popped;
    popped.head = head;
    popped.tail = tail;
    popped.count = n;
    return popped;
  }

  /**
   * Owner return: puts the allocated unit at header word `h` (allocated by CPU `owner`, not this
   * one) in the remote buffer of the cache at word `c`. The buffer holds units of one owner; it
   * is posted first if it holds another owner's, and posted once it reaches a refill batch.
   * True if this call posted (it touched shared words).
   */
  deferRemote(c: number, h: number, owner: number): boolean {
    const i32 = this.#i32;
    const unit = h << 2;
    let posted = false;
    if ((i32[c + C_REMOTE_COUNT] as number) !== 0 && (i32[c + C_REMOTE_OWNER] as number) !== owner) {
      this.postRemote(c);
      posted = true;
    }
    i32[h + 1] = ((i32[h + 1] as number) & ~UNIT_STATE_MASK) | UNIT_DEFERRED;
    const count = (i32[c + C_REMOTE_COUNT] as number) + 1;
    if (count === 1) {
      i32[c + C_REMOTE_TAIL] = unit;
      i32[c + C_REMOTE_OWNER] = owner;
      i32[h] = 0;
      // The doorbell (pollAll) posts a buffer that never fills.
      this.#setPending(PENDING_RCU);
    } else {
      i32[h] = i32[c + C_REMOTE_HEAD] as number;
    }
    i32[c + C_REMOTE_HEAD] = unit;
    i32[c + C_REMOTE_COUNT] = count;
    if (count >= (i32[c + C_BATCH] as number)) {
      this.postRemote(c);
      posted = true;
    }
    return posted;
  }

  /**
   * Posts the remote buffer of the cache at word `c` to its owner's return inbox in one CAS
   * (llist_add of a whole chain); the owner's pending bit says it has units to take, and a
   * parked or offline owner gets the coordinator rung for it.
   */
  postRemote(c: number): void {
    const i32 = this.#i32;
    const n = i32[c + C_REMOTE_COUNT] as number;
    if (n === 0) return;
    const owner = i32[c + C_REMOTE_OWNER] as number;
    const head = i32[c + C_REMOTE_HEAD] as number;
    const tail = i32[c + C_REMOTE_TAIL] as number;
    i32[c + C_REMOTE_COUNT] = 0;
    i32[c + C_REMOTE_HEAD] = 0;
    i32[c + C_REMOTE_POSTS] = (i32[c + C_REMOTE_POSTS] as number) + 1;
    this.#pushChain(this.#ownerCache(c, owner) + C_X_RETURN_HEAD, head, tail, n, owner, PENDING_RCU);
  }

  /** The cache word of CPU `owner` for the class of this CPU's cache word `c`. */
  #ownerCache(c: number, owner: number): number {
    return c + (cacheWord(this.#layout, owner, 0) - cacheWord(this.#layout, this.cpu, 0));
  }

  /** Adds a chain of reusable units to this CPU's freeByRcuTtrace of class `cls`. */
  appendTtrace(cls: number, head: number, tail: number, n: number): void {
    const i32 = this.#i32;
    const c = cacheWord(this.#layout, this.cpu, cls);
    if ((i32[c + C_TT_COUNT] as number) === 0) i32[c + C_TT_TAIL] = tail;
    i32[tail >> 2] = i32[c + C_TT_HEAD] as number;
    i32[c + C_TT_HEAD] = head;
    i32[c + C_TT_COUNT] = (i32[c + C_TT_COUNT] as number) + n;
    this.#setPending(PENDING_TTRACE);
  }

  /**
   * Sends a chain of reusable units to the freeByRcuTtrace list of `target` (the kernel's
   * enque_to_free(tgt, …)): appended here when it is this CPU, else pushed to the target
   * cache's inbox (llist_add) for its holder to take.
   */
  sendTtrace(cls: number, target: number, head: number, tail: number, n: number): void {
    if (target === this.cpu) {
      this.appendTtrace(cls, head, tail, n);
      return;
    }
    this.#pushChain(
      cacheWord(this.#layout, target, cls) + C_X_INBOX_HEAD,
      head,
      tail,
      n,
      target,
      PENDING_TTRACE,
    );
  }

  /**
   * llist_add of a whole chain (head … tail, `n` units) to the inbox whose head is at word
   * `headWord` (its count follows it) of CPU `target`, then sets the target's `pending` bit. An
   * online target takes its inbox at its next refill or doorbell; only a parked or offline one
   * needs the coordinator. (A CPU that parks after this load rings the coordinator itself, and
   * its pending bit is already set.) Ringing on every push cost a futex wake per batch.
   */
  #pushChain(headWord: number, head: number, tail: number, n: number, target: number, pending: number): void {
    const i32 = this.#i32;
    llistAdd(i32, headWord, headWord + 1, head, tail, n);
    const rec = cpuWord(this.#layout, target);
    Atomics.or(i32, rec + CPU_X_PENDING, pending);
    if (cpuState(Atomics.load(i32, rec + CPU_X_STATE)) !== CPU_ONLINE) ringCoordinator(i32);
  }

  /**
   * alloc_bulk's first sources since kernel 6.2: takes up to `want` units from freeByRcuTtrace
   * and, with `waitingToo` (kernel 6.6), then from waitingForGpTtrace, before their GP. Returns
   * them into `out` (empty if none).
   */
  takeTtrace(cls: number, want: number, waitingToo: boolean, out: Chain): void {
    const i32 = this.#i32;
    const c = cacheWord(this.#layout, this.cpu, cls);
    if (Atomics.load(i32, c + C_X_INBOX_HEAD) !== 0) this.#takeInbox(cls, c);
    let head = 0;
    let tail = 0;
    let got = 0;
    for (const [headWord, countWord] of [
      [c + C_TT_HEAD, c + C_TT_COUNT],
      [c + C_TTW_HEAD, c + C_TTW_COUNT],
    ] as const) {
      const count = i32[countWord] as number;
      if (count === 0 || got === want || (headWord === c + C_TTW_HEAD && !waitingToo)) continue;
      const n = Math.min(count, want - got);
      const popped = this.#popFirst(headWord, countWord, n);
      if (tail !== 0) i32[tail >> 2] = popped.head;
      else head = popped.head;
      tail = popped.tail;
      got += n;
    }
    if (tail !== 0) i32[tail >> 2] = 0;
    out.head = head;
    out.tail = tail;
    out.count = got;
  }

  /**
   * Posts the remote buffers and moves every list of every class as far as the epochs allow
   * (the doorbell's work, and a drainer's) and clears the pending bits of flavors with nothing left. Returns the units still
   * deferred.
   */
  pollAll(offline: boolean): number {
    const i32 = this.#i32;
    const pendingWord = cpuWord(this.#layout, this.cpu) + CPU_X_PENDING;
    // Clear first: a sender that pushes after this sets the bit again.
    Atomics.store(i32, pendingWord, 0);
    let rcu = 0;
    let ttrace = 0;
    this.#polling = true;
    try {
      for (let cls = 0; cls < this.#layout.classes; cls++) {
        const c = cacheWord(this.#layout, this.cpu, cls);
        this.postRemote(c);
        this.progressRcu(cls, offline);
        this.progressTtrace(cls);
        rcu +=
          (i32[c + C_RCU_COUNT] as number) +
          (i32[c + C_WAIT_COUNT] as number) +
          Atomics.load(i32, c + C_X_RETURN_COUNT);
        ttrace +=
          (i32[c + C_TT_COUNT] as number) +
          (i32[c + C_TTW_COUNT] as number) +
          Atomics.load(i32, c + C_X_INBOX_COUNT);
      }
    } finally {
      this.#polling = false;
    }
    const bits = (rcu !== 0 ? PENDING_RCU : 0) | (ttrace !== 0 ? PENDING_TTRACE : 0);
    if (bits !== 0) Atomics.or(i32, pendingWord, bits);
    return rcu + ttrace;
  }

  /** Debug option: checks unit `unit` of class `cls` for its poison (src/memory/poison.ts). */
  checkPoison(unit: number, cls: number): void {
    checkPoison(this.#i32, this.#layout, unit, cls);
  }

  /** Debug option: poisons unit `unit` of class `cls` (src/memory/poison.ts). */
  poisonUnit(unit: number, cls: number): void {
    poisonUnit(this.#i32, this.#bytes, this.#layout, unit, cls);
  }

  get poison(): boolean {
    return this.#poison;
  }

  /**
   * Marks the `n` units of a deferred chain FREE (and poisons them): they may be handed out from
   * now on. Walks by count, so a corrupted chain (a concurrent double free) cannot loop it.
   */
  #markReusable(cls: number, head: number, n: number): void {
    const i32 = this.#i32;
    for (let unit = head, k = 0; k < n && unit !== 0; k++, unit = i32[unit >> 2] as number) {
      const h = unit >> 2;
      i32[h + 1] = ((i32[h + 1] as number) & ~UNIT_STATE_MASK) | UNIT_FREE;
      if (this.#poison) this.poisonUnit(unit, cls);
    }
  }

  /** llist_del_all on the ttrace inbox, appended to freeByRcuTtrace. */
  #takeInbox(cls: number, c: number): void {
    const taken = this.#taken;
    this.#takeChain(c + C_X_INBOX_HEAD, c + C_TAKING_INBOX, taken);
    if (taken.head !== 0) this.appendTtrace(cls, taken.head, taken.tail, taken.count);
  }

  /** Owner return: llist_del_all on the return inbox, appended to freeByRcu (sealed with it). */
  #takeReturns(c: number): void {
    const i32 = this.#i32;
    const taken = this.#taken;
    this.#takeChain(c + C_X_RETURN_HEAD, c + C_TAKING_RETURN, taken);
    if (taken.head === 0) return;
    if ((i32[c + C_RCU_COUNT] as number) === 0) i32[c + C_RCU_TAIL] = taken.tail;
    i32[taken.tail >> 2] = i32[c + C_RCU_HEAD] as number;
    i32[c + C_RCU_HEAD] = taken.head;
    i32[c + C_RCU_COUNT] = (i32[c + C_RCU_COUNT] as number) + taken.count;
    i32[c + C_REMOTE_TAKES] = (i32[c + C_REMOTE_TAKES] as number) + 1;
    this.#setPending(PENDING_RCU);
  }

  /** The inbox chain `#takeChain` took last (no allocation per take). */
  readonly #taken: Chain = emptyChain();

  /**
   * Takes the whole chain of the inbox whose head is at `headWord` (count at `headWord + 1`)
   * with an exchange into `out` (empty if the inbox was).
   */
  #takeChain(headWord: number, takingWord: number, out: Chain): void {
    const i32 = this.#i32;
    const head = Atomics.exchange(i32, headWord, 0);
    out.head = head;
    if (head === 0) return;
    // A terminate() in the walk below leaves the chain named here for recovery. One that falls
    // between the exchange and this store (V8 may stop a thread there too) loses the chain and
    // leaves the count too high: not repaired.
    i32[takingWord] = head;
    walkTaken(i32, head, Atomics.load(i32, headWord + 1), `CPU ${this.cpu}: a remote-free chain`, out);
    Atomics.sub(i32, headWord + 1, out.count);
    i32[takingWord] = 0;
  }

  /**
   * The main thread may be busy: once a pile grows past the bound, this CPU tries the advance
   * itself (same rule, src/epoch/grace-period.ts). Frees look at their batch once per refill batch, so
   * every look may scan the pins.
   */
  #maybeHelp(flavor: number, c: number, pile: number): void {
    if (!this.#selfDrive && pile < kHelpFactor * (this.#i32[c + C_HIGH] as number)) return;
    tryAdvance(this.#i32, this.#layout, flavor, this.#birthMs);
    if (flavor === FLAVOR_TTRACE) tryAdvance(this.#i32, this.#layout, FLAVOR_RCU, this.#birthMs);
  }

  /**
   * Sets a pending bit with a read-modify-write. Before a seal this is also the fence the proof
   * needs: the caller unlinked the units with stores, possibly plain ones, and an Atomics load
   * alone does not keep an earlier store before it (on x86 it is a plain `mov`, which may pass a
   * store still in the store buffer). A locked RMW (x86) or a release-acquire RMW (arm64) does,
   * like the SeqCst fence crossbeam-epoch puts before sealing a bag.
   */
  #fence(bit: number): void {
    Atomics.or(this.#i32, cpuWord(this.#layout, this.cpu) + CPU_X_PENDING, bit);
  }

  #setPending(bit: number): void {
    const index = cpuWord(this.#layout, this.cpu) + CPU_X_PENDING;
    if ((Atomics.load(this.#i32, index) & bit) === 0) Atomics.or(this.#i32, index, bit);
  }
}

/**
 * The deferred lists of every CPU of an arena, made on first use: for a thread that works on
 * other CPUs' lists (the coordinator, a shrinking CPU), always through a claimed state word.
 */
export class ListsByCpu {
  readonly #lists: (DeferredLists | undefined)[] = [];
  readonly #make: (cpu: number) => DeferredLists;

  constructor(
    i32: Int32Array,
    bytes: Uint8Array,
    layout: Layout,
    slab: Slab,
    birthMs: number,
    faults: ArenaFaults | undefined,
  ) {
    this.#make = (cpu) => new DeferredLists(i32, bytes, layout, slab, cpu, birthMs, faults);
  }

  of(cpu: number): DeferredLists {
    let lists = this.#lists[cpu];
    if (lists === undefined) {
      lists = this.#make(cpu);
      this.#lists[cpu] = lists;
    }
    return lists;
  }
}
