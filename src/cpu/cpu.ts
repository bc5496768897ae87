/**
 * A CPU handle: one numbered CPU slot of an arena, owned by the thread that attached it, with
 * its per-class caches (the kernel's `struct bpf_mem_cache`, one per CPU and class) and its
 * read-side sections.
 *
 * ```
 *  alloc(size) ─ class = SIZE_TO_CLASS[(size + 15) >> 3] ─ pop cache.free ─┬─ count ≤ gate low?  slow path: refill (deferred lists, ttrace lists, slab)
 *  free(ptr)   ─ unit-start bit, header state, class from hint ─ push cache.free ─┴─ count > gate high? slow path: policy (defer, trim, send to tgt)
 *  readLock()  ─ pin = (epoch << 1) | 1         readUnlock() ─ pin = 0; urgent? ring the coordinator
 *
 *  unit:  | word 0: next free unit (free) / hint = cpu << 8 | class (allocated) | word 1: generation << 2 | state | user bytes … |
 *         ^ unit                                                                                           ^ ptr = unit + 8
 * ```
 * Watermarks per unit size (kernel formula): ≤ 256 B → low 32, high 96, batch 48; 512 → 16/48/24;
 * 1024 → 8/24/12; 2048 → 4/12/6; 4096 → 2/6/3. A CPU coming online is prefilled with 4 units
 * (≤ 256 B) or 1. The kernel refills from irq_work and returns NULL on an empty list; we refill
 * synchronously. Where a free goes is the arena's policy (src/epoch/policy.ts): the fast path is the
 * kernel's unit_alloc/unit_free under every policy, and a policy that must see every free (a
 * deferring one) or the poison option closes the cache's gate instead of adding a branch.
 *
 * Who may call: only the thread that attached the CPU, one call at a time (a JS thread is never
 * preempted by itself, so there is no `active` re-entry counter as in the kernel).
 * Shared words: the CPU's state and owner words (CPU_X_STATE: claimed on attach, IDLE while
 * parked, released on detach; CPU_X_OWNER), its pin words (src/epoch/grace-period.ts), its doorbell,
 * and through src/cpu/deferred.ts and src/memory/slab.ts the epochs, inboxes and slab rows. The cache
 * records are owner-only and use plain accesses: no atomics on the alloc/free fast path. While
 * the CPU is parked its owner does not touch them, so a drainer may (src/arena/coordinator.ts); the
 * state word's Atomics transitions order the two. Unit headers belong to whoever holds the unit;
 * a pointer handed to another CPU must travel through a synchronising channel (postMessage, an
 * Atomics-published queue), which orders the header writes before the free. `stats()` on another
 * thread reads cache words racily; an aligned 32-bit read cannot tear, so it sees a recent value.
 * Readers inside `readLock` read units another CPU may free at any moment; the generation in
 * word 1 tells them whether the unit was reused (see src/epoch/grace-period.ts for when it cannot be).
 */
import { pinValue, readBirthMs, ringCoordinator } from '../epoch/grace-period.js';
import { ADAPTIVE_MAX_SCALE, readPolicyWord } from '../epoch/policy.js';
import { PageAllocator } from '../memory/page-allocator.js';
import { poisonEnabled } from '../memory/poison.js';
import { GENERAL_CLASS_COUNT, MAX_ALLOC_BYTES, SIZE_TO_CLASS, trimTarget } from '../memory/size-class.js';
import { Slab } from '../memory/slab.js';
import type { SharedArena } from '../shm/arena-ref.js';
import { readShared } from '../shm/atomics.js';
import { fail, show } from '../shm/errors.js';
import {
  C_ALLOCS,
  C_BATCH,
  C_FREE_COUNT,
  C_FREE_HEAD,
  C_FREES,
  C_GATE_HIGH,
  C_GATE_LOW,
  C_HIGH,
  C_IDLE_MARK,
  C_LOW,
  C_RCU_COUNT,
  C_REMOTE_COUNT,
  C_REMOTE_OWNER,
  C_TRIM_TO,
  C_WAIT_COUNT,
  CACHE_SHIFT,
  CLS_BATCH,
  CLS_HIGH,
  CLS_LOW,
  CLS_OBJECT_SIZE,
  CLS_PREFILL,
  CLS_UNIT_SIZE,
  CPU_X_PIN,
  cacheWord,
  checkFastPathLiterals,
  classWord,
  cpuWord,
  FLAVOR_RCU,
  FLAVOR_TTRACE,
  G_EPOCH,
  G_URGENT,
  gpWord,
  H_POLICY,
  HINT_CLASS_BITS,
  HINT_CLASS_MASK,
  type Layout,
  readLayout,
  UNIT_ALLOCATED,
  UNIT_FREE,
  UNIT_GENERATION_STEP,
  UNIT_MAP_SHIFT,
  UNIT_STATE_MASK,
  X_CLOSED,
} from '../shm/layout.js';
import { type Chain, emptyChain } from '../shm/llist.js';
import type { Pointer } from '../shm/refs.js';
import { CpuSlot } from './cpu-slot.js';
import { type DeferredLists, ListsByCpu } from './deferred.js';
import { Shrinker } from './shrinker.js';
import { allocatedHeader } from './unit-check.js';

/**
 * The fast path (alloc, free and what they inline) spells the layout constants below as
 * literals, each marked with its name: V8 on Node 20 does not fold imported or module-level
 * constants in optimised code (measured: 30 → 58 M LIFO pairs/s). This table ties each literal
 * to its definition when the module loads.
 */
const kFastPathLiterals: ReadonlyArray<readonly [name: string, literal: number, actual: number]> = [
  ['C_FREE_HEAD', 0, C_FREE_HEAD],
  ['C_FREE_COUNT', 1, C_FREE_COUNT],
  ['C_ALLOCS', 2, C_ALLOCS],
  ['C_FREES', 3, C_FREES],
  ['C_GATE_LOW', 7, C_GATE_LOW],
  ['C_GATE_HIGH', 8, C_GATE_HIGH],
  ['CACHE_SHIFT', 6, CACHE_SHIFT],
  ['UNIT_STATE_MASK', 3, UNIT_STATE_MASK],
  ['UNIT_ALLOCATED', 1, UNIT_ALLOCATED],
  ['UNIT_FREE', 2, UNIT_FREE],
  ['UNIT_GENERATION_STEP', 4, UNIT_GENERATION_STEP],
  ['UNIT_MAP_SHIFT', 8, UNIT_MAP_SHIFT],
  ['HINT_CLASS_BITS', 8, HINT_CLASS_BITS],
  ['HINT_CLASS_MASK', 0xff, HINT_CLASS_MASK],
  ['MAX_ALLOC_BYTES', 4088, MAX_ALLOC_BYTES],
];
checkFastPathLiterals('fast-path', kFastPathLiterals);

/**
 * The handles attached on this thread, by arena (its time origin, the key every thread's copy of
 * `shared` agrees on): `Arena.close()` detaches all of them, however they were attached
 * (`arena.attach`, `attach`, `attachFree`, `SharedMap.open` on an arena). Module state is per thread.
 */
const threadHandles = new Map<number, Set<CpuHandle>>();

/** The handles attached on the calling thread to the arena born at `birthMs` (see above). */
export function handlesOnThisThread(birthMs: number): readonly CpuHandle[] {
  return [...(threadHandles.get(birthMs) ?? [])];
}

/**
 * x86 is TSO: a plain store is never reordered before earlier loads, so on x86 `readUnlock` may
 * clear its pin with a plain store (V8 keeps typed-array accesses in program order). Elsewhere
 * (arm64) it needs the release that only an Atomics store gives. See src/epoch/grace-period.ts.
 */
const kTotalStoreOrder = process.arch === 'x64' || process.arch === 'ia32';
// (On x86 V8's Atomics.store is an `xchg`, a full barrier; on arm64 it is an `stlr`, which a
// later plain load may pass, so there readLock adds an acquire load after the pin store.)

/** Largest int32: a gate that never opens. */
const kGateClosed = 0x7fffffff;

/** Adaptive capacity: slow-path events, the largest scale, and how long a scale lasts unused. */
const kUnderflow = 1;
const kOverflow = 2;
const kAdaptDecayMs = 1000;
/**
 * Work a subclass (the sheaf handle) adds to the doorbell's, after the lists' (irq work, timely
 * return, deferred lists); kept here rather than as a method so that it is not public surface.
 */
const doorbellWork = new WeakMap<CpuHandle, () => void>();

/** Adds `work` to what the doorbell of `handle` runs (src/cpu/sheaf.ts: its sheaves' work). */
export function addDoorbellWork(handle: CpuHandle, work: () => void): void {
  doorbellWork.set(handle, work);
}

/**
 * One CPU slot, attached to the calling thread: its allocation fast path, read-side sections and
 * slow paths. States (docs/lifecycle.md): attached; parked (`park()`: every call but `unpark`,
 * `detach` and the getters throws `ECLOSED`); detached (`detach()`, or `close()` of the arena on
 * this thread: dead). `free(0)` and `freeRcu(0)` do nothing.
 */
export class CpuHandle {
  /**
   * Fields are initialised with a value of their type where they are declared (class fields
   * start as `undefined` otherwise, and V8 then keeps a number field as a generic tagged value,
   * which costs a Smi check on every fast-path read).
   */
  /** This handle's CPU slot. */
  readonly cpu: number = 0;
  /** The whole arena as bytes: the usable bytes of `ptr = alloc(size)` are `bytes[ptr .. ptr + size)`. */
  readonly bytes: Uint8Array;
  /** The whole arena as 32-bit words (for callers that lay out their own records). */
  readonly i32: Int32Array;
  /** The arena this handle belongs to: a handle is an `ArenaRef` too (`X.create(cpu, ...)`). */
  readonly shared: SharedArena;
  readonly #layout: Layout;
  readonly #slab: Slab;
  readonly #lists: DeferredLists;
  readonly #shrinker: Shrinker;
  /** SIZE_TO_CLASS, held by the instance so the fast path does not load a module binding. */
  readonly #sizeToClass: Uint8Array = SIZE_TO_CLASS;
  /** Number of general + fixed classes; fixed cache `id` is class GENERAL_CLASS_COUNT + id. */
  readonly #classes: number = 0;
  /** Word index of this CPU's cache of class 0; class c is at `#cacheBase + (c << CACHE_SHIFT)`. */
  readonly #cacheBase: number = 0;
  /** Owner hint of this CPU without the class bits. */
  readonly #hintBase: number = 0;
  readonly #pagesBase: number = 0;
  readonly #pagesEnd: number = 0;
  readonly #unitMap: number = 0;
  /** The arena's policy (H_POLICY, decoded by readPolicyWord): what this handle tests. */
  readonly #deferring: boolean = false;
  readonly #unbounded: boolean = false;
  readonly #hint: boolean = false;
  /** Remote frees go back to their owner (policy remoteFree 'owner'). */
  readonly #ownerReturn: boolean = false;
  /**
   * When the doorbell last ran the idle check (timely return); the attach counts as one, so the
   * first check comes a second after it whatever the thread's age (`performance.now()` counts
   * from the thread's start).
   */
  #lastIdleCheckMs = performance.now();
  readonly #slot: CpuSlot;
  /** Pin words and the epoch and urgent words of both flavors. */
  readonly #pinRcu: number = 0;
  readonly #pinTtrace: number = 0;
  readonly #epochRcu: number = gpWord(FLAVOR_RCU, G_EPOCH);
  readonly #epochTtrace: number = gpWord(FLAVOR_TTRACE, G_EPOCH);
  readonly #urgentRcu: number = gpWord(FLAVOR_RCU, G_URGENT);
  readonly #urgentTtrace: number = gpWord(FLAVOR_TTRACE, G_URGENT);
  readonly #plainUnpin: boolean = kTotalStoreOrder;
  readonly #handOutTwice: boolean = false;
  /** The chain a refill source hands over (this handle's scratch, refilled per source). */
  readonly #chain: Chain = emptyChain();
  /** With the handOutTwice fault: the unit the last slow-path allocation returned. */
  #faultUnit = 0;
  /** Read-side nesting depth per flavor (owner-only). */
  #nestRcu = 0;
  #nestTtrace = 0;
  #attached = false;
  #parked = false;
  /** The arena's time origin: this handle's key in `threadHandles`. */
  #birthMs = 0;
  /**
   * Adaptive capacity (owner-only state): per class the scale of the watermarks (1..8), the
   * last slow-path event (UNDERFLOW refill, OVERFLOW trim) and when it happened.
   */
  readonly #adaptive: boolean = false;
  readonly #scale: Uint8Array;
  readonly #lastEvent: Uint8Array;
  readonly #lastEventMs: Float64Array;
  /**
   * Policy refillWork 'irq-work' (owner-only): per class, whether a refill or trim was raised
   * and not run yet (its gates are closed until it runs), and the trim's target then.
   */
  readonly #irqWork: boolean = false;
  readonly #irqPending: Uint8Array;
  readonly #irqTarget: Int32Array;

  /** Use `attach(shared, cpu)` or `arena.attach(cpu)`. */
  constructor(shared: SharedArena, cpu: number) {
    const i32 = new Int32Array(shared.buffer);
    const layout = readLayout(i32);
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= layout.cpus) {
      fail('EINVAL', `CPU ${show(cpu)} is not a slot of this arena (0..${layout.cpus - 1})`);
    }
    if (readShared(i32, X_CLOSED) !== 0) fail('ECLOSED', 'the arena is closed');
    this.cpu = cpu;
    this.i32 = i32;
    this.shared = shared;
    this.bytes = new Uint8Array(shared.buffer);
    this.#layout = layout;
    this.#slab = new Slab(i32, layout, new PageAllocator(i32, layout, shared.buffer));
    const birthMs = readBirthMs(shared.buffer);
    const lists = new ListsByCpu(i32, this.bytes, layout, this.#slab, birthMs, shared.faults);
    this.#lists = lists.of(cpu);
    this.#shrinker = new Shrinker(i32, layout, lists, this.#slab, cpu, birthMs);
    this.#handOutTwice = shared.faults?.handOutTwice === true;
    this.#classes = layout.classes;
    this.#cacheBase = cacheWord(layout, cpu, 0);
    this.#hintBase = cpu << HINT_CLASS_BITS;
    this.#pagesBase = layout.pagesBase;
    this.#pagesEnd = layout.totalBytes;
    this.#unitMap = layout.unitMap;
    const policy = readPolicyWord(i32[H_POLICY] as number);
    this.#deferring = policy.deferring;
    this.#unbounded = policy.unbounded;
    this.#hint = policy.hint;
    this.#adaptive = policy.adaptive;
    this.#ownerReturn = policy.ownerReturn;
    this.#scale = new Uint8Array(layout.classes).fill(1);
    this.#lastEvent = new Uint8Array(layout.classes);
    this.#lastEventMs = new Float64Array(layout.classes);
    this.#irqWork = policy.irqWork;
    this.#irqPending = new Uint8Array(layout.classes);
    this.#irqTarget = new Int32Array(layout.classes);
    const rec = cpuWord(layout, cpu);
    this.#pinRcu = rec + CPU_X_PIN + FLAVOR_RCU;
    this.#pinTtrace = rec + CPU_X_PIN + FLAVOR_TTRACE;
    this.#slot = new CpuSlot(i32, layout, cpu);
    this.#slot.claimOnline();
    this.#attached = true;
    this.#birthMs = birthMs;
    const mine = threadHandles.get(birthMs) ?? new Set<CpuHandle>();
    threadHandles.set(birthMs, mine);
    mine.add(this);
    this.#prefill();
    this.#slot.listen(this.#onDoorbell);
  }

  /** True until `detach()` (or the arena's `close()` on this thread); false while parked. */
  get attached(): boolean {
    return this.#attached;
  }

  /** True inside `readLock()` or `readLockTrace()` (owner-only, like the sections themselves). */
  get inReadSection(): boolean {
    return this.#nestRcu !== 0 || this.#nestTtrace !== 0;
  }

  /** True between `park()` and `unpark()`. */
  get parked(): boolean {
    return this.#parked;
  }

  /**
   * Allocates `size` usable bytes (1..4088) and returns the byte offset of the first, or 0 when
   * `size` is not such an integer or memory is exhausted. Never throws for a size or for memory;
   * throws `ECLOSED` on a detached or parked handle, or when a refill finds the arena closed.
   */
  alloc(size: number): Pointer {
    if (this.#attached !== true) this.#closedError();
    if (typeof size !== 'number' || (size | 0) !== size || size < 1 || size > /* MAX_ALLOC_BYTES */ 4088)
      return 0 as Pointer;
    return this.#unitAlloc(this.#sizeToClass[(size + 15) >> 3] as number) as Pointer;
  }

  /**
   * Allocates one object from fixed-size cache `id` (an index into `ArenaOptions.fixedSizes`),
   * like `bpf_mem_cache_alloc`; returns 0 for an unknown id or when memory is exhausted.
   */
  allocFixed(id: number): Pointer {
    if (this.#attached !== true) this.#closedError();
    if (typeof id !== 'number' || (id | 0) !== id || id < 0 || GENERAL_CLASS_COUNT + id >= this.#classes)
      return 0 as Pointer;
    return this.#unitAlloc(GENERAL_CLASS_COUNT + id) as Pointer;
  }

  /**
   * Frees a pointer returned by `alloc` or `allocFixed` on any CPU of this arena (the kernel's
   * bpf_mem_free); the arena's policy decides when the unit may be reused. `free(0)` does
   * nothing, as `free(NULL)` and `bpf_mem_free(ma, NULL)`. Throws `EINVAL` for anything else
   * that is not an allocated unit (including a double free) and leaves the arena unchanged then.
   */
  free(ptr: Pointer): void {
    if (this.#attached !== true) this.#closedError();
    if (ptr === 0) return;
    const h = allocatedHeader(this.i32, this.#pagesBase, this.#pagesEnd, this.#unitMap, ptr);
    const i32 = this.i32;
    // Literals: see kFastPathLiterals (class mask 0xff, cache shift 6, cache word gate high 8).
    const cls = (i32[h] as number) & 0xff;
    const c = this.#cacheBase + (cls << 6);
    const count = (i32[c + 1] as number) + 1;
    if (count > (i32[c + 8] as number)) {
      this.#freeSlow(h, cls, c);
      return;
    }
    this.#push(h, c, count);
  }

  /**
   * Frees a pointer so that it is not reused before an `rcu` grace period has passed, whatever
   * the policy (the kernel's bpf_mem_free_rcu): readers inside `readLock()` that still hold it
   * keep reading valid, unchanged bytes. `freeRcu(0)` does nothing; otherwise throws like `free`.
   */
  freeRcu(ptr: Pointer): void {
    if (this.#attached !== true) this.#closedError();
    if (ptr === 0) return;
    const h = allocatedHeader(this.i32, this.#pagesBase, this.#pagesEnd, this.#unitMap, ptr);
    const cls = (this.i32[h] as number) & HINT_CLASS_MASK;
    this.#deferFree(h, cls, this.#cacheBase + (cls << CACHE_SHIFT));
  }

  /**
   * Enters an `rcu` read-side section (rcu_read_lock): until the matching `readUnlock`, no unit
   * freed with `freeRcu`, or by `free` under a policy that reuses after a GP, is reused. Sections
   * nest. One Atomics store on the outermost level (the epoch is read plainly: a stale value is
   * an older epoch, which the proof in src/epoch/grace-period.ts allows); no allocation.
   */
  readLock(): void {
    if (this.#attached !== true) this.#closedError();
    if (this.#nestRcu++ === 0) {
      Atomics.store(this.i32, this.#pinRcu, pinValue(this.i32[this.#epochRcu] as number));
      // arm64: an acquire load after the release store keeps the section's reads after the pin.
      if (!this.#plainUnpin) Atomics.load(this.i32, this.#pinRcu);
    }
  }

  /** Leaves an `rcu` read-side section; throws `EINVAL` without a matching `readLock`. */
  readUnlock(): void {
    if (this.#attached !== true) this.#closedError();
    if (this.#nestRcu === 0) fail('EINVAL', `CPU ${this.cpu}: readUnlock() without readLock()`);
    if (--this.#nestRcu === 0) {
      if (this.#plainUnpin) this.i32[this.#pinRcu] = 0;
      else Atomics.store(this.i32, this.#pinRcu, 0);
      // A GP waits for this reader (see src/arena/coordinator.ts): say that it left. A plain read may
      // miss a flag set an instant ago; the coordinator re-checks by itself (liveness only).
      if ((this.i32[this.#urgentRcu] as number) !== 0) ringCoordinator(this.i32);
    }
  }

  /** Enters a `ttrace` (sleepable, tasks-trace) read-side section (rcu_read_lock_trace). */
  readLockTrace(): void {
    if (this.#attached !== true) this.#closedError();
    if (this.#nestTtrace++ === 0) {
      Atomics.store(this.i32, this.#pinTtrace, pinValue(this.i32[this.#epochTtrace] as number));
      if (!this.#plainUnpin) Atomics.load(this.i32, this.#pinTtrace);
    }
  }

  /** Leaves a `ttrace` read-side section; throws `EINVAL` without a matching `readLockTrace`. */
  readUnlockTrace(): void {
    if (this.#attached !== true) this.#closedError();
    if (this.#nestTtrace === 0) fail('EINVAL', `CPU ${this.cpu}: readUnlockTrace() without readLockTrace()`);
    if (--this.#nestTtrace === 0) {
      if (this.#plainUnpin) this.i32[this.#pinTtrace] = 0;
      else Atomics.store(this.i32, this.#pinTtrace, 0);
      if ((this.i32[this.#urgentTtrace] as number) !== 0) ringCoordinator(this.i32);
    }
  }

  /**
   * Does the work the coordinator's doorbell asks for (the kernel's irq_work): moves every
   * deferred list whose GP has passed and seals the next batches. Runs by itself when this
   * thread's event loop is free; call it from a loop that never yields. Returns the units still
   * waiting for a GP.
   */
  poll(): number {
    if (this.#attached !== true) this.#closedError();
    this.#checkOpen();
    this.#runAllIrqWork();
    this.#returnIdle();
    return this.#lists.pollAll(false);
  }

  /**
   * Parks the CPU (state IDLE) while this thread blocks or waits on something else: a parked
   * CPU never holds a GP back and the coordinator may move its deferred lists itself. Every
   * call but `unpark`, `detach` and `attached` throws `ECLOSED` until `unpark()`. Throws
   * `EBUSY` inside a read-side section.
   */
  park(): void {
    if (this.#attached !== true) this.#closedError();
    if (this.#nestRcu !== 0 || this.#nestTtrace !== 0) {
      fail('EBUSY', `CPU ${this.cpu}: park() inside a read-side section`);
    }
    this.#resetCapacity();
    this.#attached = false;
    this.#parked = true;
    this.#slot.park();
  }

  /** Takes a parked CPU back (waiting while the coordinator is draining it). */
  unpark(): void {
    if (!this.#parked) fail('EINVAL', `CPU ${this.cpu}: unpark() of a CPU that is not parked`);
    this.#slot.unpark();
    this.#parked = false;
    this.#attached = true;
  }

  /** Marks the unit at header `h` free and pushes it on the cache at `c` (new count `count`). */
  #push(h: number, c: number, count: number): void {
    const i32 = this.i32;
    // Literals: see kFastPathLiterals (header: state mask 3, FREE 2; cache words: head 0,
    // count 1, frees 3).
    i32[h + 1] = ((i32[h + 1] as number) & ~3) | 2;
    i32[h] = i32[c] as number;
    i32[c] = h << 2;
    i32[c + 1] = count;
    i32[c + 3] = (i32[c + 3] as number) + 1;
  }

  /**
   * A free the gate sent here: defer it (policies that reuse after a GP), or push it and trim
   * the overflow above the high watermark (free_bulk) to where the policy says. Any open check
   * comes before anything changes.
   */
  #freeSlow(h: number, cls: number, c: number): void {
    const i32 = this.i32;
    if (this.#deferring) {
      this.#deferFree(h, cls, c);
      return;
    }
    this.#checkOpen();
    if (this.#irqPending[cls] !== 0) this.#runIrqWork(cls);
    // c->tgt = the hint of the unit being freed: free_bulk sends the batch to its owner.
    const target = (i32[h] as number) >> HINT_CLASS_BITS;
    if (this.#lists.poison) this.#lists.poisonUnit(h << 2, cls);
    const count = (i32[c + C_FREE_COUNT] as number) + 1;
    this.#push(h, c, count);
    if (count > (i32[c + C_HIGH] as number) && !this.#unbounded && this.#irqWork) {
      this.#raiseIrqWork(cls, this.#hint ? target : this.cpu);
    } else if (count > (i32[c + C_HIGH] as number) && !this.#unbounded) {
      if (this.#adaptive) this.#adapt(cls, kOverflow);
      // The adaptation may have raised the watermark past the count: then nothing to trim.
      if (count > (i32[c + C_HIGH] as number)) this.#lists.freeBulk(cls, this.#hint ? target : this.cpu);
    }
  }

  #deferFree(h: number, cls: number, c: number): void {
    const i32 = this.i32;
    if (this.#ownerReturn) {
      const owner = (i32[h] as number) >> HINT_CLASS_BITS;
      if (owner !== this.cpu) {
        // Posting (a full buffer, or one for another owner) touches shared words: check first.
        const buffered = i32[c + C_REMOTE_COUNT] as number;
        if (
          buffered + 1 >= (i32[c + C_BATCH] as number) ||
          (buffered !== 0 && (i32[c + C_REMOTE_OWNER] as number) !== owner)
        ) {
          this.#checkOpen();
        }
        this.#lists.deferRemote(c, h, owner);
        i32[c + C_FREES] = (i32[c + C_FREES] as number) + 1;
        return;
      }
    }
    // A lone free seals its batch at once (nothing else is in flight: it must not wait for
    // company). While a batch is in flight, look at it once per refill batch of frees: reading
    // the epoch on every free cost more than the free. The CPU's next refill, its doorbell and
    // the coordinator (for a parked CPU) move it on otherwise, as before.
    const pile = (i32[c + C_RCU_COUNT] as number) + 1;
    const look = (pile === 1 && i32[c + C_WAIT_COUNT] === 0) || pile % (i32[c + C_BATCH] as number) === 0;
    // Only that look touches shared words (the epoch, the wanted epoch): check for close before
    // it and before anything changes, not on every deferred free (an Atomics load each).
    if (look) this.#checkOpen();
    this.#lists.deferRcu(c, h);
    i32[c + C_FREES] = (i32[c + C_FREES] as number) + 1;
    if (look) this.#lists.progressRcu(cls, false);
  }

  /**
   * Usable bytes of the unit at `ptr` (its unit size minus the header, or the object size of a
   * fixed-size cache), like `ksize()`; throws `EINVAL` if `ptr` is not an allocated unit and
   * `ECLOSED` on a parked or detached handle.
   */
  usableSize(ptr: Pointer): number {
    if (this.#attached !== true) this.#closedError();
    const h = allocatedHeader(this.i32, this.#pagesBase, this.#pagesEnd, this.#unitMap, ptr);
    const w = classWord(this.#layout, (this.i32[h] as number) & HINT_CLASS_MASK);
    const objectSize = this.i32[w + CLS_OBJECT_SIZE] as number;
    return objectSize !== 0 ? objectSize : (this.i32[w + CLS_UNIT_SIZE] as number) - 8;
  }

  /**
   * Takes the CPU offline: returns every cached unit to the slab, moves the deferred lists as
   * far as the epochs allow (the coordinator finishes them later), leaves any read-side section
   * and releases the CPU slot; the handle is dead after. After the arena was closed (by another
   * thread) it only releases the slot: the close report has already counted the units.
   */
  detach(): void {
    if (!this.#attached && !this.#parked) this.#closedError();
    if (this.#parked) this.unpark();
    const i32 = this.i32;
    if (readShared(i32, X_CLOSED) === 0) {
      this.#flushAll();
      this.#lists.pollAll(true);
    }
    this.#attached = false;
    this.#nestRcu = 0;
    this.#nestTtrace = 0;
    this.#slot.release();
    const mine = threadHandles.get(this.#birthMs);
    mine?.delete(this);
    if (mine?.size === 0) threadHandles.delete(this.#birthMs);
  }

  /**
   * Throws `ECLOSED`, naming `call`, unless this handle is attached (not parked, not detached)
   * and its arena open. The structures built on a handle call it before they touch anything; the
   * allocation fast path does not (it reads no shared word, so a handle on another thread learns
   * of `close()` at its next refill or trim).
   */
  ensureUsable(call: string): void {
    if (!this.#attached) {
      fail(
        'ECLOSED',
        `${call}: CPU ${this.cpu} is ${this.#parked ? 'parked; unpark() it first' : 'detached'}`,
      );
    }
    if (readShared(this.i32, X_CLOSED) !== 0) fail('ECLOSED', `${call}: the arena is closed`);
  }

  /** `using cpu = arena.attach(0)`: detaches at the end of the block (if still attached). */
  [Symbol.dispose](): void {
    if (this.#attached || this.#parked) this.detach();
  }

  #unitAlloc(cls: number): number {
    const i32 = this.i32;
    // Literals: see kFastPathLiterals (cache words: head 0, count 1, allocs 2, gate low 7;
    // cache shift 6; header: generation step 4, state mask 3, ALLOCATED 1).
    const c = this.#cacheBase + (cls << 6);
    const count = i32[c + 1] as number;
    if (count <= (i32[c + 7] as number)) return this.#unitAllocSlow(cls);
    const unit = i32[c] as number;
    const h = unit >> 2;
    i32[c] = i32[h] as number;
    i32[c + 1] = count - 1;
    i32[c + 2] = (i32[c + 2] as number) + 1;
    i32[h] = this.#hintBase | cls;
    i32[h + 1] = (((i32[h + 1] as number) + 4) & ~3) | 1;
    return unit + 8;
  }

  /**
   * The pop that leaves the cache below its low watermark (or any pop, when the poison option
   * closed the gate): refill first if it is empty (the kernel would return NULL and refill from
   * irq_work), pop, then refill a batch as the kernel's irq_work does. The open check comes
   * before any change.
   */
  #unitAllocSlow(cls: number): number {
    this.#checkOpen();
    if (this.#handOutTwice) {
      const again = this.#faultUnit;
      this.#faultUnit = 0;
      const h = again >> 2;
      if (
        again !== 0 &&
        ((this.i32[h] as number) & HINT_CLASS_MASK) === cls &&
        ((this.i32[h + 1] as number) & UNIT_STATE_MASK) === UNIT_ALLOCATED
      ) {
        return again + 8;
      }
    }
    const i32 = this.i32;
    const c = this.#cacheBase + (cls << CACHE_SHIFT);
    if (this.#irqPending[cls] !== 0) this.#runIrqWork(cls);
    if ((i32[c + C_FREE_COUNT] as number) === 0) {
      if (this.#adaptive) this.#adapt(cls, kUnderflow);
      this.#lists.allocBulk(cls, i32[c + C_BATCH] as number, this.#chain, this.#shrinker);
    }
    const unit = i32[c + C_FREE_HEAD] as number;
    if (unit === 0) return 0;
    const h = unit >> 2;
    if (this.#lists.poison) this.#lists.checkPoison(unit, cls);
    i32[c + C_FREE_HEAD] = i32[h] as number;
    const count = (i32[c + C_FREE_COUNT] as number) - 1;
    i32[c + C_FREE_COUNT] = count;
    i32[c + C_ALLOCS] = (i32[c + C_ALLOCS] as number) + 1;
    i32[h] = this.#hintBase | cls;
    i32[h + 1] = (((i32[h + 1] as number) + UNIT_GENERATION_STEP) & ~UNIT_STATE_MASK) | UNIT_ALLOCATED;
    if (count < (i32[c + C_LOW] as number) && this.#irqWork) {
      this.#raiseIrqWork(cls, this.cpu);
    } else if (count < (i32[c + C_LOW] as number)) {
      if (this.#adaptive) this.#adapt(cls, kUnderflow);
      this.#lists.allocBulk(cls, i32[c + C_BATCH] as number, this.#chain, this.#shrinker);
    }
    if (this.#handOutTwice) this.#faultUnit = unit;
    return unit + 8;
  }

  /**
   * irq_work_raise: the refill or trim of `cls` waits for the next slow-path entry, which both
   * gates now force (the kernel's self-interrupt after the raising call); `target` is c->tgt.
   */
  #raiseIrqWork(cls: number, target: number): void {
    const c = this.#cacheBase + (cls << CACHE_SHIFT);
    this.#irqPending[cls] = 1;
    this.#irqTarget[cls] = target;
    this.i32[c + C_GATE_LOW] = kGateClosed;
    this.i32[c + C_GATE_HIGH] = -1;
  }

  /**
   * bpf_mem_refill: decides from the count it finds (below low: alloc_bulk a batch; above
   * high: free_bulk), then opens the gates again. Callers have checked that the arena is open.
   */
  #runIrqWork(cls: number): void {
    const i32 = this.i32;
    const c = this.#cacheBase + (cls << CACHE_SHIFT);
    this.#irqPending[cls] = 0;
    this.#setWatermarks(cls, this.#scale[cls] as number);
    const count = i32[c + C_FREE_COUNT] as number;
    if (count < (i32[c + C_LOW] as number)) {
      this.#lists.allocBulk(cls, i32[c + C_BATCH] as number, this.#chain, this.#shrinker);
    } else if (count > (i32[c + C_HIGH] as number)) this.#lists.freeBulk(cls, this.#irqTarget[cls] as number);
  }

  #runAllIrqWork(): void {
    if (!this.#irqWork) return;
    for (let cls = 0; cls < this.#classes; cls++) if (this.#irqPending[cls] !== 0) this.#runIrqWork(cls);
  }

  /**
   * Brings the CPU online: watermarks from the class table, the fast path's gates (closed where
   * the policy or the poison option must see every free or alloc), then the kernel's prefill
   * (bpf_mem_alloc's; a sheaves CPU starts with empty sheaves instead and never allocates from
   * these lists, so units prefilled here would only strand).
   */
  #prefill(): void {
    const i32 = this.i32;
    for (let cls = 0; cls < this.#classes; cls++) {
      this.#setWatermarks(cls, 1);
      if (this.#layout.sheaves !== 0) continue;
      this.#lists.allocBulk(
        cls,
        i32[classWord(this.#layout, cls) + CLS_PREFILL] as number,
        this.#chain,
        this.#shrinker,
      );
    }
  }

  /**
   * Sets the cache's watermarks, batch and trim target to `scale` times its class's, and the
   * fast path's gates to match (closed where the policy or the poison option must see every
   * free or alloc).
   */
  #setWatermarks(cls: number, scale: number): void {
    const i32 = this.i32;
    const poison = poisonEnabled(i32);
    const w = classWord(this.#layout, cls);
    const c = this.#cacheBase + (cls << CACHE_SHIFT);
    const low = (i32[w + CLS_LOW] as number) * scale;
    const high = (i32[w + CLS_HIGH] as number) * scale;
    i32[c + C_LOW] = low;
    i32[c + C_HIGH] = high;
    i32[c + C_GATE_LOW] = poison ? kGateClosed : low;
    i32[c + C_GATE_HIGH] = poison || this.#deferring ? -1 : this.#unbounded ? kGateClosed : high;
    i32[c + C_BATCH] = (i32[w + CLS_BATCH] as number) * scale;
    i32[c + C_TRIM_TO] = trimTarget({ low, high, batch: 0, prefill: 0 });
    this.#scale[cls] = scale;
  }

  /**
   * Adaptive capacity at a slow-path event of class `cls` (a refill: underflow; a trim:
   * overflow). When the two alternate, units are circulating through the slab a batch at a time
   * (tcmalloc #286: an overflow/underflow ratio near 1), so the watermarks double, up to 8 times
   * the kernel's. A class with no event for a second halves back first. Bound: a cache holds at
   * most 8 × high free units.
   */
  #adapt(cls: number, event: number): void {
    const now = performance.now();
    let scale = this.#scale[cls] as number;
    if (scale > 1 && now - (this.#lastEventMs[cls] as number) > kAdaptDecayMs) scale >>= 1;
    if (this.#lastEvent[cls] !== 0 && this.#lastEvent[cls] !== event && scale < ADAPTIVE_MAX_SCALE)
      scale <<= 1;
    if (scale !== this.#scale[cls]) this.#setWatermarks(cls, scale);
    this.#lastEvent[cls] = event;
    this.#lastEventMs[cls] = now;
  }

  /** A CPU that parks gives adapted capacity back: kernel watermarks, trimmed to high. */
  #resetCapacity(): void {
    if (!this.#adaptive) return;
    for (let cls = 0; cls < this.#classes; cls++) {
      if (this.#scale[cls] !== 1) this.#setWatermarks(cls, 1);
      this.#lastEvent[cls] = 0;
      const c = this.#cacheBase + (cls << CACHE_SHIFT);
      if ((this.i32[c + C_FREE_COUNT] as number) > (this.i32[c + C_HIGH] as number)) {
        this.#lists.freeBulk(cls, this.cpu, undefined, false);
      }
    }
  }

  /**
   * Timely return (adaptive capacity), at most once a second, from the doorbell (the
   * coordinator rings every online CPU once a second) or `poll()`: a class with no alloc and no
   * free since the last check gives its cached units back down to its prefill and posts its
   * remote buffer, so nothing strands on a CPU that went quiet; a busy class whose scale was
   * not needed for a second halves it.
   */
  #returnIdle(): void {
    if (!this.#adaptive) return;
    const now = performance.now();
    if (now - this.#lastIdleCheckMs < kAdaptDecayMs) return;
    this.#lastIdleCheckMs = now;
    const i32 = this.i32;
    for (let cls = 0; cls < this.#classes; cls++) {
      const c = this.#cacheBase + (cls << CACHE_SHIFT);
      const activity = ((i32[c + C_ALLOCS] as number) + (i32[c + C_FREES] as number)) | 0;
      const idle = activity === i32[c + C_IDLE_MARK];
      i32[c + C_IDLE_MARK] = activity;
      const scale = this.#scale[cls] as number;
      if (idle) {
        if (scale !== 1) this.#setWatermarks(cls, 1);
        this.#lastEvent[cls] = 0;
        this.#lists.postRemote(c);
        const keep = i32[classWord(this.#layout, cls) + CLS_PREFILL] as number;
        // To the slab, not the depot: the point is that memory can go back to the pages.
        if ((i32[c + C_FREE_COUNT] as number) > keep) this.#lists.freeBulk(cls, this.cpu, keep, false);
      } else if (scale > 1 && now - (this.#lastEventMs[cls] as number) > kAdaptDecayMs) {
        this.#setWatermarks(cls, scale >> 1);
        this.#lastEvent[cls] = 0;
        if ((i32[c + C_FREE_COUNT] as number) > (i32[c + C_HIGH] as number))
          this.#lists.freeBulk(cls, this.cpu);
      }
    }
  }

  #flushAll(): void {
    for (let cls = 0; cls < this.#classes; cls++) this.#lists.flushFreeList(cls);
  }

  /** The doorbell's work (see CpuSlot.listen); false once the handle is detached. */
  readonly #onDoorbell = (): boolean => {
    if (!this.#attached && !this.#parked) return false;
    if (this.#attached && readShared(this.i32, X_CLOSED) === 0) {
      this.#runAllIrqWork();
      this.#returnIdle();
      this.#lists.pollAll(false);
      doorbellWork.get(this)?.();
    }
    return true;
  };

  #checkOpen(): void {
    // The handle stays attached: detach() after close still releases the slot.
    if (readShared(this.i32, X_CLOSED) !== 0) fail('ECLOSED', `CPU ${this.cpu}: the arena was closed`);
  }

  #closedError(): never {
    if (this.#parked) fail('ECLOSED', `CPU ${this.cpu}: the CPU is parked; unpark() it first`);
    fail('ECLOSED', `CPU ${this.cpu}: this handle was detached or its arena closed`);
  }
}
