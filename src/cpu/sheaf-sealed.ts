/**
 * The rcu_free sheaves a CPU has sealed (policy cache 'sheaves', src/cpu/sheaf.ts): per class a
 * FIFO in seal order, each sheaf stamped with the rcu epoch at its seal (one epoch request per
 * sheaf: the kernel's call_rcu in __kfree_rcu_sheaf), and what becomes of a sheaf once its GP
 * has passed: rcu_free_sheaf's full sheaf in the barn (or the slab when the barn holds 10), or
 * under sheafReady 'cpu' (arena-sheaves) the CPU's next main sheaf, whole, with the ones it
 * will not use passed to the barn (past 10 full: its ready stack, src/cpu/barn.ts).
 *
 * Who may call: the sheaf handle of the CPU that attached (one instance per handle). Shared
 * words: the epoch words (Atomics, src/epoch/grace-period.ts), the CPU's pending word (an RMW:
 * the fence before a seal), the barn (its mutex) and the slab rows (theirs). The FIFO words
 * (C_SEALED_*), the sheaves in it and their objects' headers are owner-only and use plain
 * accesses; recovery reads them only after the thread died (src/cpu/sheaf-offline.ts).
 */
import { ADVANCED, isExpired, readEpoch, requestEpoch, tryAdvance } from '../epoch/grace-period.js';
import type { Slab } from '../memory/slab.js';
import {
  C_ALLOCS,
  C_SEALED_COUNT,
  C_SEALED_HEAD,
  C_SEALED_TAIL,
  C_SHEAF_FLUSH,
  FLAVOR_RCU,
  type Layout,
  SHEAF_EPOCH,
  SHEAF_NEXT,
  SHEAF_SIZE,
} from '../shm/layout.js';
import type { Barn } from './barn.js';
import { flushSheafToSlab } from './sheaf-offline.js';

/** The pending bit of the rcu flavor (src/cpu/deferred.ts): its RMW is the fence before a seal. */
const kPendingRcu = 1 << FLAVOR_RCU;

export interface SealedOptions {
  /** Epochs a GP takes: 2, or 1 under the oneEpochGp fault (which the tests must catch). */
  readonly gpEpochs: number;
  /** The CPU's CPU_X_PENDING word. */
  readonly pending: number;
  /** gpDrive 'cpus': a CPU that needs a GP tries the rcu advance itself. */
  readonly selfDrive: boolean;
  readonly birthMs: number;
}

export class SealedSheaves {
  readonly #i32: Int32Array;
  readonly #layout: Layout;
  readonly #barn: Barn;
  readonly #slab: Slab;
  readonly #capacity: Int32Array;
  readonly #gpEpochs: number;
  readonly #pending: number;
  readonly #selfDrive: boolean;
  readonly #birthMs: number;
  /**
   * sheafReady 'cpu', per class: C_ALLOCS and the rcu epoch when the current window began, and
   * whether the CPU allocated nothing in the last whole window of a GP (it only frees).
   */
  readonly #allocsAtMark: Int32Array;
  readonly #epochAtMark: Int32Array;
  readonly #freeOnly: Uint8Array;

  constructor(
    i32: Int32Array,
    layout: Layout,
    barn: Barn,
    slab: Slab,
    capacity: Int32Array,
    options: SealedOptions,
  ) {
    this.#i32 = i32;
    this.#layout = layout;
    this.#barn = barn;
    this.#slab = slab;
    this.#capacity = capacity;
    this.#gpEpochs = options.gpEpochs;
    this.#pending = options.pending;
    this.#selfDrive = options.selfDrive;
    this.#birthMs = options.birthMs;
    this.#allocsAtMark = new Int32Array(layout.classes);
    this.#epochAtMark = new Int32Array(layout.classes);
    this.#freeOnly = new Uint8Array(layout.classes);
  }

  /**
   * call_rcu for a sheaf: records the rcu epoch after the fence, appends to the sealed FIFO,
   * requests the GP. `ring` wakes the coordinator for it; a CPU that drives GPs itself passes
   * false for a full sheaf sealed on its free path, where its own advance follows, as the list
   * presets do for a full batch (src/cpu/deferred.ts, #ringFor): the coordinator then finds the
   * request at its next look.
   */
  seal(c: number, sheaf: number, ring = true): void {
    const i32 = this.#i32;
    // The RMW orders the caller's unlink stores before the epoch load (src/cpu/deferred.ts #fence).
    Atomics.or(i32, this.#pending, kPendingRcu);
    const epoch = readEpoch(i32, FLAVOR_RCU);
    i32[sheaf + SHEAF_EPOCH] = epoch;
    i32[sheaf + SHEAF_NEXT] = 0;
    const tail = i32[c + C_SEALED_TAIL] as number;
    if (tail === 0) i32[c + C_SEALED_HEAD] = sheaf;
    else i32[tail + SHEAF_NEXT] = sheaf;
    i32[c + C_SEALED_TAIL] = sheaf;
    i32[c + C_SEALED_COUNT] = (i32[c + C_SEALED_COUNT] as number) + 1;
    requestEpoch(i32, FLAVOR_RCU, (epoch + 2) | 0, ring);
  }

  /** rcu_free_sheaf for every sealed sheaf past its GP: into the barn as a full sheaf, or flushed. */
  progress(cls: number, c: number): void {
    const i32 = this.#i32;
    if ((i32[c + C_SEALED_COUNT] as number) === 0) return;
    const epoch = readEpoch(i32, FLAVOR_RCU);
    for (;;) {
      const sheaf = i32[c + C_SEALED_HEAD] as number;
      if (sheaf === 0 || !isExpired(i32[sheaf + SHEAF_EPOCH] as number, epoch, this.#gpEpochs)) return;
      this.#pop(c);
      this.#retire(cls, c, sheaf, false);
    }
  }

  /**
   * sheafReady 'cpu': passes sealed sheaves this CPU will not use to the barn (or the slab):
   * every one past its GP when `all` (the CPU only frees, or the class went quiet), else those
   * that sat past their GP for a whole GP more without an alloc miss taking them (the CPU
   * frees more than it allocates). The FIFO is in seal order and epochs only grow, so the
   * walk stops at the first sheaf to keep.
   */
  shedReady(cls: number, c: number, all: boolean): void {
    if ((this.#i32[c + C_SEALED_COUNT] as number) === 0) return;
    this.#shed(cls, c, all, readEpoch(this.#i32, FLAVOR_RCU));
  }

  /** shedReady right after a seal (the FIFO is not empty): `all` when the CPU only frees. */
  shedAfterSeal(cls: number, c: number): void {
    const epoch = readEpoch(this.#i32, FLAVOR_RCU);
    this.#shed(cls, c, this.#onlyFrees(cls, c, epoch), epoch);
  }

  #shed(cls: number, c: number, all: boolean, epoch: number): void {
    const i32 = this.#i32;
    const age = all ? this.#gpEpochs : 2 * this.#gpEpochs;
    for (;;) {
      const head = i32[c + C_SEALED_HEAD] as number;
      if (head === 0 || !isExpired(i32[head + SHEAF_EPOCH] as number, epoch, age)) return;
      this.#pop(c);
      this.#retire(cls, c, head, true);
    }
  }

  /**
   * Whether this CPU allocated nothing of `cls` during the last whole GP window (judged at a
   * seal once a GP's worth of epochs passed since the window began): such a CPU only frees,
   * and passes every sheaf past its GP on at once to the CPUs that allocate. A free burst
   * shorter than a GP (batch_add_batch_del) does not count as only freeing.
   */
  #onlyFrees(cls: number, c: number, epoch: number): boolean {
    if (isExpired(this.#epochAtMark[cls] as number, epoch, this.#gpEpochs)) {
      const allocs = this.#i32[c + C_ALLOCS] as number;
      this.#freeOnly[cls] = allocs === (this.#allocsAtMark[cls] as number) ? 1 : 0;
      this.#allocsAtMark[cls] = allocs;
      this.#epochAtMark[cls] = epoch;
    }
    return this.#freeOnly[cls] === 1;
  }

  /** sheafReady 'cpu': the oldest sealed sheaf if its GP has passed (its objects reusable), else 0. */
  takeReady(c: number): number {
    const i32 = this.#i32;
    const sheaf = i32[c + C_SEALED_HEAD] as number;
    if (sheaf === 0) return 0;
    const seal = i32[sheaf + SHEAF_EPOCH] as number;
    const epoch = readEpoch(i32, FLAVOR_RCU);
    if (!isExpired(seal, epoch, this.#gpEpochs)) {
      if (this.#selfDrive !== true) return 0;
      // crossbeam-epoch's collector: the CPU that needs the GP tries the advance (same rule
      // as the coordinator's, src/epoch/grace-period.ts), then looks again. An advance of its
      // own moved the epoch at least one past `epoch`: often all the sheaf needed.
      const advanced = tryAdvance(i32, this.#layout, FLAVOR_RCU, this.#birthMs) === ADVANCED;
      if (!(advanced && isExpired(seal, epoch + 1, this.#gpEpochs))) {
        if (!isExpired(seal, readEpoch(i32, FLAVOR_RCU), this.#gpEpochs)) return 0;
      }
    }
    this.#pop(c);
    return sheaf;
  }

  /**
   * Unlinks the head of the sealed FIFO (past its GP). Its objects keep their DEFERRED headers:
   * the kernel does no per-object work after the GP (rcu_free_sheaf hands the sheaf on whole),
   * and a pass over them cost 1.3 ns of a 19 ns pair (bench/lifo-loop.mjs arena-sheaves). In a
   * main, spare or barn sheaf DEFERRED therefore means past its GP; the header says FREE again
   * once the unit goes to the slab (flushSheafToSlab), ALLOCATED once it is handed out.
   */
  #pop(c: number): void {
    const i32 = this.#i32;
    const sheaf = i32[c + C_SEALED_HEAD] as number;
    i32[c + C_SEALED_HEAD] = i32[sheaf + SHEAF_NEXT] as number;
    if (i32[c + C_SEALED_HEAD] === 0) i32[c + C_SEALED_TAIL] = 0;
    i32[c + C_SEALED_COUNT] = (i32[c + C_SEALED_COUNT] as number) - 1;
  }

  /**
   * rcu_free_sheaf for a popped sheaf: a full one into the barn if it has room, else (or a
   * partial one) to the slab. `ready` (sheafReady 'cpu'): a full one the barn has no room for
   * goes on its ready stack, whole, for the CPUs that allocate.
   */
  #retire(cls: number, c: number, sheaf: number, ready: boolean): void {
    const i32 = this.#i32;
    const n = i32[sheaf + SHEAF_SIZE] as number;
    // A partial sheaf (a barrier's) goes to the slab, as rcu_free_sheaf_nobarn does.
    if (n === (this.#capacity[cls] as number)) {
      if (this.#barn.putFull(cls, sheaf)) return;
      if (ready) {
        this.#barn.putReady(cls, sheaf);
        return;
      }
    }
    i32[c + C_SHEAF_FLUSH] = (i32[c + C_SHEAF_FLUSH] as number) + n;
    flushSheafToSlab(i32, this.#slab, cls, sheaf);
    this.#barn.putEmpty(cls, sheaf);
  }

  /**
   * sheafReady 'cpu', for a class no CPU here used for a while: the barn's ready stack goes to
   * the slab (memory back to the pages, as the idle return of main and spare).
   */
  returnBarnReady(cls: number, c: number): void {
    const i32 = this.#i32;
    for (const sheaf of this.#barn.takeAllReady(cls)) {
      i32[c + C_SHEAF_FLUSH] = (i32[c + C_SHEAF_FLUSH] as number) + (i32[sheaf + SHEAF_SIZE] as number);
      flushSheafToSlab(i32, this.#slab, cls, sheaf);
      this.#barn.putEmpty(cls, sheaf);
    }
  }

  /** Objects in sealed sheaves not yet past their GP. */
  waitingObjects(c: number): number {
    const i32 = this.#i32;
    const epoch = readEpoch(i32, FLAVOR_RCU);
    let n = 0;
    for (let s = i32[c + C_SEALED_HEAD] as number; s !== 0; s = i32[s + SHEAF_NEXT] as number) {
      if (!isExpired(i32[s + SHEAF_EPOCH] as number, epoch, this.#gpEpochs))
        n += i32[s + SHEAF_SIZE] as number;
    }
    return n;
  }
}
