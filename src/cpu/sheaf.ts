/**
 * SLUB sheaves as a CPU's cache (policy cache 'sheaves'; mm/slub.c of kernel 7.0, checked in
 * kernel-2025.md §2): per CPU and class a `main` and a `spare` sheaf — fixed-capacity LIFO
 * arrays of unit pointers in the arena's memory — and an `rcu_free` sheaf for `freeRcu`, all
 * exchanged whole with the class's barn (src/cpu/barn.ts).
 *
 * ```
 *  alloc: pop main ─ empty? ─ spare non-empty: swap (__pcs_replace_empty_main)
 *                            └ barn_replace_empty_sheaf: main in, full out (BARN_GET / BARN_GET_FAIL)
 *                            └ refill main from the slab, whole sheaf (SHEAF_REFILL counts objects)
 *  free:  push main ─ full?  ─ no spare: barn empty (spare = main), else a pool sheaf, else flush main (__pcs_replace_full_main)
 *                            └ spare not full: swap
 *                            └ barn_replace_full_sheaf: main in, empty out (BARN_PUT)
 *                              · -E2BIG (10 full): flush the spare to the slab, it becomes main (BARN_PUT_FAIL, SHEAF_FLUSH)
 *                              · no empty: a pool sheaf, main into the barn; none: flush main (sheaf_flush_main)
 *  freeRcu: append to rcu_free (from the empty spare, a barn empty, the pool; none: the deferred
 *           lists, FREE_RCU_SHEAF_FAIL); full → sealed with the rcu epoch, one epoch request
 *           (call_rcu; FREE_RCU_SHEAF); past its GP → a full sheaf in the barn, or flushed when
 *           the barn holds 10 (rcu_free_sheaf)
 *  sheafReady 'cpu' (arena-sheaves): a sealed sheaf past its GP stays in the FIFO; the next alloc
 *           miss takes it as main whole (READY_GET; gpDrive 'cpus': seals and misses try the rcu
 *           advance); a CPU that allocated nothing for a GP window passes every one past its GP
 *           to the barn, others those unused for a GP more; quiet classes give sheaves back
 *  sheafLocks 'try' (nolock: kmalloc_nolock/kfree_nolock, allow_spin false): barn and slab locks
 *           are only tried; an alloc miss swaps the spare or tries the barn, then takes one unit
 *           from the slab (ALLOC_SLOWPATH, never a refill), then the next size class once; else
 *           0. A free overflow swaps the spare or tries the barn, never flushes or allocates a
 *           sheaf: otherwise the unit is deferred (src/cpu/sheaf-nolock.ts) and drained at poll()
 *           and the doorbell. freeRcu takes the per-object deferred lists
 * ```
 * The parts: this handle (fast paths, the alloc-miss order, freeRcu, timely return, going
 * offline), src/cpu/sheaf-exchange.ts (the free-overflow order, refill, flush, nolock's single
 * unit), src/cpu/sheaf-sealed.ts (the sealed rcu_free FIFO), src/cpu/sheaf-nolock.ts (deferred
 * frees), src/cpu/sheaf-offline.ts (flushing, crash recovery), src/cpu/barn.ts.
 * Flushes to the slab go in chains of at most 32 units (PCS_BATCH_MAX), one row lock each.
 * Remote frees (a unit another CPU allocated) go into this CPU's sheaves, or straight to the slab
 * under sheafRemoteFree 'slab' (the kernel's rule for remote-node objects, 989b09b73978).
 * Differences from the kernel: one barn per arena (one node); sheaves come from a fixed pool in
 * the arena (the kernel kmallocs them) — an exhausted pool takes the kernel's allocation-failure
 * paths; an alloc miss refills the empty main in place (the kernel refills the spare or a barn
 * empty and installs it: the same objects move); a sealed rcu_free sheaf is checked by its CPU
 * (at its next freeRcu seal, alloc miss, `poll()`) rather than by an rcu callback; a sheaf's
 * objects may be reused once the GP of the last one freed into it has passed.
 *
 * Who may call: the thread that attached the CPU (as src/cpu/cpu.ts). Shared words: the barn
 * (its robust mutex), the slab rows, the epoch words (Atomics). The cache words C_SHEAF_* and
 * C_SEALED_*, the SLUB_STATS counters and the sheaves this CPU holds are owner-only and use
 * plain accesses: no atomics on the alloc/free fast path. A sheaf moves between owners only
 * through the barn's mutex, which orders the plain writes made to it before the next holder's.
 * While the CPU is parked or offline it holds no sheaf (park and detach flush them), so a
 * drainer never needs to read them; a thread that dies while attached leaves its sheaves to
 * recovery (src/arena/recovery.ts with `returnDeadSheaves`, src/cpu/sheaf-offline.ts).
 */
import { readBirthMs, tryAdvance } from '../epoch/grace-period.js';
import { readPolicyWord } from '../epoch/policy.js';
import { PageAllocator } from '../memory/page-allocator.js';
import { GENERAL_CLASS_COUNT, SIZE_TO_CLASS } from '../memory/size-class.js';
import { Slab } from '../memory/slab.js';
import type { SharedArena } from '../shm/arena-ref.js';
import { readShared } from '../shm/atomics.js';
import { fail } from '../shm/errors.js';
import {
  C_ALLOC_FAIL,
  C_ALLOC_RETRY,
  C_ALLOCS,
  C_BARN_GET,
  C_BARN_GET_FAIL,
  C_FREE_COUNT,
  C_FREE_RCU_SHEAF,
  C_FREE_RCU_SHEAF_FAIL,
  C_FREES,
  C_READY_GET,
  C_SEALED_COUNT,
  C_SEALED_HEAD,
  C_SEALED_TAIL,
  C_SHEAF_FLUSH,
  C_SHEAF_MAIN,
  C_SHEAF_RCU,
  C_SHEAF_REFILL,
  C_SHEAF_SPARE,
  CACHE_SHIFT,
  CPU_X_PENDING,
  cacheWord,
  checkFastPathLiterals,
  cpuWord,
  FLAVOR_RCU,
  H_POLICY,
  HINT_CLASS_BITS,
  HINT_CLASS_MASK,
  type Layout,
  SHEAF_CAPACITY,
  SHEAF_NEXT,
  SHEAF_OBJECTS,
  SHEAF_SIZE,
  UNIT_ALLOCATED,
  UNIT_DEFERRED,
  UNIT_FREE,
  UNIT_GENERATION_STEP,
  UNIT_STATE_MASK,
  X_CLOSED,
} from '../shm/layout.js';
import type { Pointer } from '../shm/refs.js';
import { Barn } from './barn.js';
import { addDoorbellWork, type CpuHandle } from './cpu.js';
import { SheafExchange } from './sheaf-exchange.js';
import { DEFER_BATCH, deferFree, drainDeferred } from './sheaf-nolock.js';
import { SealedSheaves } from './sheaf-sealed.js';
import { allocatedHeader } from './unit-check.js';

/**
 * The fast path spells these layout constants as literals (V8 on Node 20 does not fold imported
 * constants in optimised code; see src/cpu/cpu.ts kFastPathLiterals); checked at load.
 */
const kSheafLiterals: ReadonlyArray<readonly [name: string, literal: number, actual: number]> = [
  ['C_SHEAF_MAIN', 41, C_SHEAF_MAIN],
  ['C_SHEAF_RCU', 43, C_SHEAF_RCU],
  ['C_ALLOCS', 2, C_ALLOCS],
  ['C_FREES', 3, C_FREES],
  ['CACHE_SHIFT', 6, CACHE_SHIFT],
  ['HINT_CLASS_MASK', 0xff, HINT_CLASS_MASK],
  ['SHEAF_SIZE', 0, SHEAF_SIZE],
  ['SHEAF_CAPACITY', 3, SHEAF_CAPACITY],
  ['SHEAF_OBJECTS', 4, SHEAF_OBJECTS],
  ['UNIT_STATE_MASK', 3, UNIT_STATE_MASK],
  ['UNIT_ALLOCATED', 1, UNIT_ALLOCATED],
  ['UNIT_FREE', 2, UNIT_FREE],
  ['UNIT_DEFERRED', 3, UNIT_DEFERRED],
  ['UNIT_GENERATION_STEP', 4, UNIT_GENERATION_STEP],
];
checkFastPathLiterals('sheaf fast-path', kSheafLiterals);

/** Timely return (capacity 'adaptive'): a class with no alloc and no free for this long gives its sheaves back. */
const kIdleCheckMs = 1000;
/** The pending bit of the rcu flavor (src/cpu/deferred.ts): its RMW is the fence before a seal. */
const kPendingRcu = 1 << FLAVOR_RCU;

/**
 * The classes of a CPU handle whose caches are sheaves, made from CpuHandle on first use
 * (src/cpu/attach.ts `sheafHandleClasses`: this module cannot import CpuHandle's value, whose
 * module imports this one). `attach` returns one for an arena of policy cache 'sheaves' (the
 * kfree one, or under a deferring reuse the kfree_rcu one); the list presets never see these
 * classes, so their fast path is unchanged.
 */
export function defineSheafHandle(Base: typeof CpuHandle): SheafHandleClasses {
  const SheafCpuHandle = class SheafCpuHandle extends Base {
    readonly #layout: Layout;
    readonly #barn: Barn;
    readonly #slab: Slab;
    readonly #sizeToClass: Uint8Array = SIZE_TO_CLASS;
    readonly #cacheBase: number = 0;
    readonly #hintBase: number = 0;
    readonly #pagesBase: number = 0;
    readonly #pagesEnd: number = 0;
    readonly #unitMap: number = 0;
    readonly #pending: number = 0;
    /** The main sheaf against the barn and the slab (src/cpu/sheaf-exchange.ts). */
    readonly #exchange: SheafExchange;
    /** The FIFO of sealed rcu_free sheaves and what becomes of them (src/cpu/sheaf-sealed.ts). */
    readonly #sealed: SealedSheaves;
    /** sheafRemoteFree 'slab': a unit another CPU allocated goes around the sheaves to the slab. */
    readonly #remoteToSlab: boolean = false;
    /** sheafReady 'cpu': a sealed sheaf past its GP becomes this CPU's main (the arena preset). */
    readonly #readyOnCpu: boolean = false;
    /**
     * sheafLocks 'try' (the nolock preset): the slow paths only try the barn and slab locks, an
     * alloc miss takes one unit from the slab instead of a refill, and a free that finds no room
     * is deferred (src/cpu/sheaf-nolock.ts).
     */
    readonly #tryLocks: boolean = false;
    /** capacity 'adaptive': classes that go quiet give their sheaves back (#returnIdle). */
    readonly #adaptive: boolean = false;
    /** Per class, allocs + frees at the last idle check. */
    readonly #idleMark: Int32Array;
    #lastIdleCheckMs = 0;
    /** gpDrive 'cpus': an alloc miss whose oldest sealed sheaf still waits tries the rcu advance itself. */
    readonly #selfDrive: boolean = false;
    readonly #birthMs: number = 0;
    /**
     * True while attached and not parked (the base class keeps its own flag private). Tested as
     * `!== true`: a pointer compare, where `!this.#live` compiles to a full ToBoolean.
     */
    #live = false;

    constructor(shared: SharedArena, cpu: number, layout: Layout, remoteToSlab: boolean) {
      super(shared, cpu);
      const i32 = this.i32;
      const policy = readPolicyWord(i32[H_POLICY] as number);
      this.#readyOnCpu = policy.sheafReadyOnCpu;
      this.#tryLocks = policy.sheafTryLocks;
      this.#selfDrive = policy.cpusDriveGp;
      this.#birthMs = readBirthMs(shared.buffer);
      this.#adaptive = policy.adaptive;
      this.#idleMark = new Int32Array(layout.classes);
      this.#lastIdleCheckMs = performance.now();
      this.#remoteToSlab = remoteToSlab;
      this.#layout = layout;
      const pages = new PageAllocator(i32, layout, shared.buffer);
      this.#barn = new Barn(i32, layout, pages);
      this.#slab = new Slab(i32, layout, pages);
      // Sheaf capacity per class (from the barn records, fixed at create).
      const capacity = Int32Array.from({ length: layout.classes }, (_, cls) => this.#barn.capacity(cls));
      this.#cacheBase = cacheWord(layout, cpu, 0);
      this.#hintBase = cpu << HINT_CLASS_BITS;
      this.#pagesBase = layout.pagesBase;
      this.#pagesEnd = layout.totalBytes;
      this.#unitMap = layout.unitMap;
      this.#pending = cpuWord(layout, cpu) + CPU_X_PENDING;
      this.#exchange = new SheafExchange(i32, this.#barn, this.#slab, capacity);
      this.#sealed = new SealedSheaves(i32, layout, this.#barn, this.#slab, capacity, {
        gpEpochs: shared.faults?.oneEpochGp === true ? 1 : 2,
        pending: this.#pending,
        selfDrive: this.#selfDrive,
        birthMs: this.#birthMs,
      });
      this.#installMains();
      this.#live = true;
      // The doorbell, after the lists' work: sealed sheaves move on, quiet classes give back.
      addDoorbellWork(this, () => {
        if (this.#live === true) this.#serviceSheaves();
      });
    }

    /** The kernel's bootstrap: every class gets an (empty) main sheaf, so the fast path never tests for none. */
    #installMains(): void {
      const i32 = this.i32;
      for (let cls = 0; cls < this.#layout.classes; cls++) {
        const c = this.#cacheBase + (cls << CACHE_SHIFT);
        const main = this.#barn.getEmpty(cls) || this.#barn.takeUnused(cls);
        if (main === 0) {
          this.#flushAllSheaves();
          super.detach();
          fail('ENOMEM', `CPU ${this.cpu}: the sheaf pool of class ${cls} is used up`);
        }
        i32[c + C_SHEAF_MAIN] = main;
        i32[c + C_SHEAF_SPARE] = 0;
        i32[c + C_SHEAF_RCU] = 0;
        i32[c + C_SEALED_HEAD] = 0;
        i32[c + C_SEALED_TAIL] = 0;
        i32[c + C_SEALED_COUNT] = 0;
      }
    }

    override alloc(size: number): Pointer {
      if (this.#live !== true) this.#closed();
      if (typeof size !== 'number' || (size | 0) !== size || size < 1 || size > /* MAX_ALLOC_BYTES */ 4088)
        return 0 as Pointer;
      return this.#sheafAlloc(this.#sizeToClass[(size + 15) >> 3] as number) as Pointer;
    }

    override allocFixed(id: number): Pointer {
      if (this.#live !== true) this.#closed();
      const cls = GENERAL_CLASS_COUNT + id;
      if (typeof id !== 'number' || (id | 0) !== id || id < 0 || cls >= this.#layout.classes)
        return 0 as Pointer;
      return this.#sheafAlloc(cls) as Pointer;
    }

    /** kfree: into the main sheaf; immediate reuse. */
    override free(ptr: Pointer): void {
      if (this.#remoteToSlab === true) {
        this.#freeRemoteToSlab(ptr);
        return;
      }
      if (this.#live !== true) this.#closed();
      if (ptr === 0) return;
      const h = allocatedHeader(this.i32, this.#pagesBase, this.#pagesEnd, this.#unitMap, ptr);
      this.#pushMain(h, (this.i32[h] as number) & 0xff);
    }

    /** `free` under kFreeRemoteToSlab: a unit another CPU allocated goes to the slab. */
    #freeRemoteToSlab(ptr: Pointer): void {
      if (this.#live !== true) this.#closed();
      if (ptr === 0) return;
      const h = allocatedHeader(this.i32, this.#pagesBase, this.#pagesEnd, this.#unitMap, ptr);
      const i32 = this.i32;
      const hint = i32[h] as number;
      const cls = hint & HINT_CLASS_MASK;
      if (hint >> HINT_CLASS_BITS === this.cpu) {
        this.#pushMain(h, cls);
        return;
      }
      this.#checkOpen();
      i32[h + 1] = ((i32[h + 1] as number) & ~UNIT_STATE_MASK) | UNIT_FREE;
      this.#slab.returnBatch(cls, h << 2, h << 2, 1);
      const c = this.#cacheBase + (cls << CACHE_SHIFT);
      i32[c + C_FREES] = (i32[c + C_FREES] as number) + 1;
    }

    /** Marks the ALLOCATED unit at header `h` free and pushes it on the main sheaf of `cls`. */
    #pushMain(h: number, cls: number): void {
      const i32 = this.i32;
      // Literals: see kSheafLiterals (cache shift 6, C_SHEAF_MAIN 41, C_FREES 3; sheaf: size 0,
      // capacity 3, objects 4; header: state mask 3, FREE 2).
      const c = this.#cacheBase + (cls << 6);
      let main = i32[c + 41] as number;
      let n = i32[main] as number;
      if (n === (i32[main + 3] as number)) {
        main = this.#replaceFullMain(cls, c);
        if (main === 0) {
          this.#deferFree(h, cls, c);
          return;
        }
        n = i32[main] as number;
      }
      i32[h + 1] = ((i32[h + 1] as number) & ~3) | 2;
      i32[main + 4 + n] = h << 2;
      i32[main] = n + 1;
      i32[c + 3] = (i32[c + 3] as number) + 1;
    }

    /** kfree_rcu: into the rcu_free sheaf; a full one is sealed with one epoch request. */
    override freeRcu(ptr: Pointer): void {
      if (this.#live !== true) this.#closed();
      if (ptr === 0) return;
      const h = allocatedHeader(this.i32, this.#pagesBase, this.#pagesEnd, this.#unitMap, ptr);
      const i32 = this.i32;
      // Literals: see kSheafLiterals (class mask 0xff, cache shift 6, C_SHEAF_RCU 43, C_FREES 3;
      // sheaf: size 0, capacity 3, objects 4; header: state mask 3, DEFERRED 3).
      const cls = (i32[h] as number) & 0xff;
      const c = this.#cacheBase + (cls << 6);
      // Under sheafLocks 'try' this CPU never holds an rcu_free sheaf (its freeRcu takes the
      // lists, and sheafReady 'cpu', which stashes one, needs reuse 'after-gp'): the miss path.
      let rcu = i32[c + 43] as number;
      if (rcu === 0) {
        rcu = this.#rcuSheafMiss(ptr, cls, c);
        if (rcu === 0) return;
      }
      const n = i32[rcu] as number;
      // DEFERRED is both state bits: or-ing it in replaces ALLOCATED.
      i32[h + 1] = (i32[h + 1] as number) | 3;
      i32[rcu + 4 + n] = h << 2;
      i32[rcu] = n + 1;
      i32[c + 3] = (i32[c + 3] as number) + 1;
      if (n + 1 === (i32[rcu + 3] as number)) this.#sealFullRcu(cls, c, rcu);
    }

    /**
     * freeRcu without an rcu_free sheaf to append to: installs one (the empty spare, a barn
     * empty one, the pool) and returns it, or frees `ptr` through the deferred lists and returns
     * 0 — under sheafLocks 'try', or when no empty sheaf is left (FREE_RCU_SHEAF_FAIL).
     */
    #rcuSheafMiss(ptr: Pointer, cls: number, c: number): number {
      const i32 = this.i32;
      if (this.#tryLocks === true) {
        // kfree_rcu's batching takes a lock a nolock context may not wait for: each unit waits
        // for its GP on the deferred lists (call_rcu, then kfree_nolock), as BPF local storage does.
        super.freeRcu(ptr);
        i32[c + C_FREE_RCU_SHEAF_FAIL] = (i32[c + C_FREE_RCU_SHEAF_FAIL] as number) + 1;
        return 0;
      }
      this.#checkOpen();
      const rcu = this.#emptyForRcu(cls, c);
      if (rcu === 0) {
        // __kfree_rcu_sheaf failed: the classic kfree_rcu batching (here: the deferred lists).
        i32[c + C_FREE_RCU_SHEAF_FAIL] = (i32[c + C_FREE_RCU_SHEAF_FAIL] as number) + 1;
        super.freeRcu(ptr);
        return 0;
      }
      i32[c + C_SHEAF_RCU] = rcu;
      return rcu;
    }

    /** The rcu_free sheaf `rcu` of `cls` is full: sealed with one epoch request (__kfree_rcu_sheaf's call_rcu). */
    #sealFullRcu(cls: number, c: number, rcu: number): void {
      const i32 = this.i32;
      this.#checkOpen();
      i32[c + C_SHEAF_RCU] = 0;
      this.#sealed.seal(c, rcu, this.#selfDrive !== true);
      i32[c + C_FREE_RCU_SHEAF] = (i32[c + C_FREE_RCU_SHEAF] as number) + 1;
      // gpDrive 'cpus': every seal is a look at the GP (crossbeam-epoch's collect on a full bag).
      if (this.#selfDrive === true) tryAdvance(i32, this.#layout, FLAVOR_RCU, this.#birthMs);
      if (this.#readyOnCpu === true) this.#sealed.shedAfterSeal(cls, c);
      else this.#sealed.progress(cls, c);
    }

    /** Moves sealed rcu_free sheaves past their GP on (see `freeRcu`), then the lists' work. */
    override poll(): number {
      const waiting = super.poll();
      return waiting + this.#serviceSheaves();
    }

    /**
     * Moves sealed sheaves past their GP on (to the barn; under sheafReady 'cpu' those that sat
     * unused for a GP more), gives quiet classes' sheaves back (capacity 'adaptive'), and keeps
     * the CPU's rcu pending bit set while a sealed sheaf waits, so that the coordinator rings
     * again. Returns the objects still waiting for their GP.
     */
    #serviceSheaves(): number {
      if (this.#adaptive === true) this.#returnIdle();
      let waiting = 0;
      for (let cls = 0; cls < this.#layout.classes; cls++) {
        const c = this.#cacheBase + (cls << CACHE_SHIFT);
        // The irq_work of kfree_nolock: deferred frees go to the slab now that waiting is allowed.
        if ((this.i32[c + C_FREE_COUNT] as number) !== 0) drainDeferred(this.i32, this.#slab, cls, c, true);
        if (this.#readyOnCpu === true) this.#sealed.shedReady(cls, c, false);
        else this.#sealed.progress(cls, c);
        waiting += this.#sealed.waitingObjects(c);
      }
      if (waiting !== 0) Atomics.or(this.i32, this.#pending, kPendingRcu);
      return waiting;
    }

    /**
     * Timely return, at most once a second: a class with no alloc and no free since the last
     * check seals its partial rcu_free sheaf (it would otherwise wait for frees that do not
     * come), sends its sealed sheaves past their GP and the objects of its main and spare (under
     * sheafReady 'cpu' also the barn's ready stack) to the slab (memory goes back to the pages,
     * as the list presets' idle return does).
     */
    #returnIdle(): void {
      const now = performance.now();
      if (now - this.#lastIdleCheckMs < kIdleCheckMs) return;
      this.#lastIdleCheckMs = now;
      const i32 = this.i32;
      for (let cls = 0; cls < this.#layout.classes; cls++) {
        const c = this.#cacheBase + (cls << CACHE_SHIFT);
        const activity = ((i32[c + C_ALLOCS] as number) + (i32[c + C_FREES] as number)) | 0;
        if (activity !== this.#idleMark[cls]) {
          this.#idleMark[cls] = activity;
          continue;
        }
        const rcu = i32[c + C_SHEAF_RCU] as number;
        if (rcu !== 0 && (i32[rcu + SHEAF_SIZE] as number) !== 0) {
          i32[c + C_SHEAF_RCU] = 0;
          this.#sealed.seal(c, rcu);
          i32[c + C_FREE_RCU_SHEAF] = (i32[c + C_FREE_RCU_SHEAF] as number) + 1;
        }
        this.#sealed.shedReady(cls, c, true);
        if (this.#readyOnCpu === true) this.#sealed.returnBarnReady(cls, c);
        for (const word of [C_SHEAF_MAIN, C_SHEAF_SPARE]) {
          const sheaf = i32[c + word] as number;
          if (sheaf !== 0 && (i32[sheaf + SHEAF_SIZE] as number) !== 0)
            this.#exchange.flushMain(cls, c, sheaf);
        }
      }
    }

    /**
     * flush_all_rcu_sheaves (the first half of kvfree_rcu_barrier): seals every partial rcu_free
     * sheaf of this CPU with one epoch request each; `poll()` then reports the objects still
     * waiting, 0 once every sealed sheaf passed its GP.
     */
    flushRcuSheaves(): void {
      if (this.#live !== true) this.#closed();
      this.#checkOpen();
      const i32 = this.i32;
      for (let cls = 0; cls < this.#layout.classes; cls++) {
        const c = this.#cacheBase + (cls << CACHE_SHIFT);
        const rcu = i32[c + C_SHEAF_RCU] as number;
        if (rcu === 0 || (i32[rcu + SHEAF_SIZE] as number) === 0) continue;
        i32[c + C_SHEAF_RCU] = 0;
        this.#sealed.seal(c, rcu);
        i32[c + C_FREE_RCU_SHEAF] = (i32[c + C_FREE_RCU_SHEAF] as number) + 1;
      }
    }

    /** Parking gives the sheaves back (slub_cpu_dead's flush): a parked CPU holds none. */
    override park(): void {
      if (this.#live !== true) this.#closed();
      if (this.inReadSection) fail('EBUSY', `CPU ${this.cpu}: park() inside a read-side section`);
      this.#flushAllSheaves();
      this.#live = false;
      super.park();
    }

    override unpark(): void {
      super.unpark();
      this.#installMains();
      this.#live = true;
    }

    /** Going offline flushes every sheaf to the slab (rcu_free ones wait on the deferred lists), then detaches. */
    override detach(): void {
      if (this.parked) this.unpark();
      if (this.#live && readShared(this.i32, X_CLOSED) === 0) this.#flushAllSheaves();
      this.#live = false;
      super.detach();
    }

    #sheafAlloc(cls: number): number {
      const i32 = this.i32;
      // Literals: see kSheafLiterals (cache shift 6, C_SHEAF_MAIN 41, C_ALLOCS 2; sheaf: size 0,
      // objects 4; header: generation step 4, state mask 3, ALLOCATED 1).
      const c = this.#cacheBase + (cls << 6);
      let main = i32[c + 41] as number;
      let n = i32[main] as number;
      if (n === 0) {
        main = this.#replaceEmptyMain(cls, c);
        if (main === 0) return this.#tryLocks === true ? this.#allocNolockMiss(cls, c) : 0;
        n = i32[main] as number;
      }
      const unit = i32[main + 3 + n] as number;
      i32[main] = n - 1;
      i32[c + 2] = (i32[c + 2] as number) + 1;
      const h = unit >> 2;
      i32[h] = this.#hintBase | cls;
      i32[h + 1] = (((i32[h + 1] as number) + 4) & ~3) | 1;
      return unit + 8;
    }

    /**
     * __pcs_replace_empty_main: swap in a non-empty spare, else exchange the empty main for a
     * barn full sheaf, else refill main from the slab. Returns the new main, or 0 at the memory
     * limit. Sealed rcu_free sheaves past their GP go to the barn first (they are what it offers).
     */
    #replaceEmptyMain(cls: number, c: number): number {
      this.#checkOpen();
      const i32 = this.i32;
      const main = i32[c + C_SHEAF_MAIN] as number;
      const spare = i32[c + C_SHEAF_SPARE] as number;
      if (spare !== 0 && (i32[spare + SHEAF_SIZE] as number) !== 0) {
        i32[c + C_SHEAF_MAIN] = spare;
        i32[c + C_SHEAF_SPARE] = main;
        return spare;
      }
      if (this.#readyOnCpu === true) {
        const ready = this.#sealed.takeReady(c);
        if (ready !== 0) {
          i32[c + C_SHEAF_MAIN] = ready;
          i32[c + C_READY_GET] = (i32[c + C_READY_GET] as number) + 1;
          this.#stashEmpty(cls, c, main);
          return ready;
        }
      } else if ((i32[c + C_SEALED_COUNT] as number) !== 0) this.#sealed.progress(cls, c);
      // Let go of main before the barn may take it (see SheafExchange.replaceFullMain).
      i32[c + C_SHEAF_MAIN] = 0;
      const full = this.#barn.replaceEmpty(cls, main, this.#tryLocks !== true);
      if (full !== 0) {
        i32[c + C_BARN_GET] = (i32[c + C_BARN_GET] as number) + 1;
        i32[c + C_SHEAF_MAIN] = full;
        return full;
      }
      i32[c + C_SHEAF_MAIN] = main;
      i32[c + C_BARN_GET_FAIL] = (i32[c + C_BARN_GET_FAIL] as number) + 1;
      // kmalloc_nolock may neither spin nor block: no refill (#allocNolockMiss takes one unit).
      if (this.#tryLocks === true) return 0;
      const got = this.#exchange.refill(cls, main);
      i32[c + C_SHEAF_REFILL] = (i32[c + C_SHEAF_REFILL] as number) + got;
      return got === 0 ? 0 : main;
    }

    /**
     * __pcs_replace_full_main: a main sheaf with room for one more object; under sheafLocks
     * 'try' (kfree_nolock) 0 when none could be had without waiting, and the free is deferred.
     */
    #replaceFullMain(cls: number, c: number): number {
      this.#checkOpen();
      return this.#tryLocks === true
        ? this.#exchange.replaceFullMainNolock(cls, c)
        : this.#exchange.replaceFullMain(cls, c);
    }

    /**
     * kmalloc_nolock after alloc_from_pcs failed: one unit from the slab under a trylock of its
     * row (__slab_alloc_node, ALLOC_SLOWPATH), else the whole attempt once more in the next
     * general size class (the next kmalloc bucket); 0 when that fails too ("NULL … means
     * ENOMEM. There is no reason to call it again").
     */
    #allocNolockMiss(cls: number, c: number): number {
      const i32 = this.i32;
      let unit = this.#exchange.slabOne(cls, c, this.#hintBase);
      if (unit === 0 && cls + 1 < GENERAL_CLASS_COUNT && cls + 1 < this.#layout.classes) {
        i32[c + C_ALLOC_RETRY] = (i32[c + C_ALLOC_RETRY] as number) + 1;
        const next = cls + 1;
        const c2 = c + (1 << CACHE_SHIFT);
        const main = i32[c2 + C_SHEAF_MAIN] as number;
        if ((i32[main + SHEAF_SIZE] as number) !== 0 || this.#replaceEmptyMain(next, c2) !== 0)
          unit = this.#sheafAlloc(next);
        else unit = this.#exchange.slabOne(next, c2, this.#hintBase);
      }
      if (unit === 0) i32[c + C_ALLOC_FAIL] = (i32[c + C_ALLOC_FAIL] as number) + 1;
      return unit;
    }

    /**
     * kfree_nolock's defer_free: the unit at header `h` onto the deferred list; once a batch
     * has collected, the CPU tries to give it to the slab without waiting (the kernel's
     * irq_work would have run by then).
     */
    #deferFree(h: number, cls: number, c: number): void {
      const i32 = this.i32;
      i32[c + C_FREES] = (i32[c + C_FREES] as number) + 1;
      if (deferFree(i32, c, h) >= DEFER_BATCH) drainDeferred(i32, this.#slab, cls, c, false);
    }

    /** An empty sheaf for rcu_free: the spare if it is empty, a barn empty one, or one from the pool. */
    #emptyForRcu(cls: number, c: number): number {
      const i32 = this.i32;
      const spare = i32[c + C_SHEAF_SPARE] as number;
      if (spare !== 0 && (i32[spare + SHEAF_SIZE] as number) === 0) {
        i32[c + C_SHEAF_SPARE] = 0;
        return spare;
      }
      return this.#barn.getEmpty(cls) || this.#barn.takeUnused(cls);
    }

    /** An empty sheaf this CPU no longer uses as main: the rcu_free sheaf if it has none, else the spare, else the barn. */
    #stashEmpty(cls: number, c: number, empty: number): void {
      const i32 = this.i32;
      if ((i32[c + C_SHEAF_RCU] as number) === 0) i32[c + C_SHEAF_RCU] = empty;
      else if ((i32[c + C_SHEAF_SPARE] as number) === 0) i32[c + C_SHEAF_SPARE] = empty;
      else this.#barn.putEmpty(cls, empty);
    }

    /**
     * Gives every sheaf of this CPU back, and its deferred frees (sheafLocks 'try'): main, spare
     * and deferred objects to the slab (the sheaves to the barn's empty stack or the pool);
     * rcu_free and sealed objects have not passed their GP, so
     * they go onto this CPU's deferred lists (freeRcu of the list path), which the coordinator
     * finishes for a CPU that is offline or parked.
     */
    #flushAllSheaves(): void {
      const i32 = this.i32;
      for (let cls = 0; cls < this.#layout.classes; cls++) {
        const c = this.#cacheBase + (cls << CACHE_SHIFT);
        if ((i32[c + C_FREE_COUNT] as number) !== 0) drainDeferred(i32, this.#slab, cls, c, true);
        for (const word of [C_SHEAF_MAIN, C_SHEAF_SPARE]) {
          const sheaf = i32[c + word] as number;
          if (sheaf === 0) continue;
          i32[c + word] = 0;
          i32[c + C_SHEAF_FLUSH] = (i32[c + C_SHEAF_FLUSH] as number) + (i32[sheaf + SHEAF_SIZE] as number);
          this.#exchange.flushToSlab(cls, sheaf);
          this.#barn.putEmpty(cls, sheaf);
        }
        const rcu = i32[c + C_SHEAF_RCU] as number;
        i32[c + C_SHEAF_RCU] = 0;
        if (rcu !== 0) this.#toDeferredLists(cls, c, rcu);
        for (let s = i32[c + C_SEALED_HEAD] as number; s !== 0; ) {
          const next = i32[s + SHEAF_NEXT] as number;
          this.#toDeferredLists(cls, c, s);
          s = next;
        }
        i32[c + C_SEALED_HEAD] = 0;
        i32[c + C_SEALED_TAIL] = 0;
        i32[c + C_SEALED_COUNT] = 0;
      }
    }

    /** The objects of an rcu_free sheaf onto the deferred lists (a later seal: conservative), the sheaf to the barn. */
    #toDeferredLists(cls: number, c: number, sheaf: number): void {
      const i32 = this.i32;
      const n = i32[sheaf + SHEAF_SIZE] as number;
      for (let k = 0; k < n; k++) {
        const unit = i32[sheaf + SHEAF_OBJECTS + k] as number;
        const h = unit >> 2;
        // Back to ALLOCATED (same generation: it was never handed out) so freeRcu accepts it.
        i32[h + 1] = ((i32[h + 1] as number) & ~UNIT_STATE_MASK) | UNIT_ALLOCATED;
        super.freeRcu((unit + 8) as Pointer);
        // freeRcu counted a free the rcu_free sheaf had counted already.
        i32[c + C_FREES] = (i32[c + C_FREES] as number) - 1;
      }
      i32[sheaf + SHEAF_SIZE] = 0;
      this.#barn.putEmpty(cls, sheaf);
    }

    #checkOpen(): void {
      if (readShared(this.i32, X_CLOSED) !== 0) fail('ECLOSED', `CPU ${this.cpu}: the arena was closed`);
    }

    #closed(): never {
      if (this.parked) fail('ECLOSED', `CPU ${this.cpu}: the CPU is parked; unpark() it first`);
      fail('ECLOSED', `CPU ${this.cpu}: this handle was detached or its arena closed`);
    }
  };
  /**
   * Reuse 'after-gp' (arena-sheaves, sheaves-rcu): every free is a kfree_rcu. A class of its own
   * rather than a mode test in `free`: V8 inlines a call only while the inlined bytecode fits
   * one budget per function (--max-inlined-bytecode-size-cumulative), and a `free` that also
   * carried the kfree path left no room for freeRcu's pointer check in the caller's loop.
   */
  const RcuSheafCpuHandle = class RcuSheafCpuHandle extends SheafCpuHandle {
    override free(ptr: Pointer): void {
      this.freeRcu(ptr);
    }
  };
  return { SheafCpuHandle, RcuSheafCpuHandle };
}

/** A CPU handle of an arena of policy cache 'sheaves'. */
export interface SheafCpuHandle extends CpuHandle {
  /** Seals every partial rcu_free sheaf (flush_all_rcu_sheaves); `poll()` reports what still waits. */
  flushRcuSheaves(): void;
}

/** The constructors `defineSheafHandle` returns: `free` as kfree, and `free` as kfree_rcu. */
export interface SheafHandleClasses {
  readonly SheafCpuHandle: SheafHandleClass;
  readonly RcuSheafCpuHandle: SheafHandleClass;
}

/** A sheaf handle's constructor. */
export type SheafHandleClass = new (
  shared: SharedArena,
  cpu: number,
  layout: Layout,
  remoteToSlab: boolean,
) => SheafCpuHandle;
