/**
 * The grace-period coordinator: runs on the thread that created the arena (normally the main
 * thread) without blocking it. It sleeps on X_GP_REQUEST with `Atomics.waitAsync`; CPUs ring it
 * when they seal a batch or a sheaf (src/cpu/deferred.ts, src/cpu/sheaf-sealed.ts; under gpDrive
 * 'cpus' only when no look of their own follows), park, detach or push to another CPU's inbox, and
 * readers ring it when they leave a section while an advance waits for them (G_URGENT, the
 * kernel's urgent-QS request). Awake, it advances every flavor whose wanted epoch is ahead
 * (src/epoch/grace-period.ts), times each GP, resolves `synchronize()` callers, rings the doorbells of
 * online CPUs whose batches are due, and drains parked and offline CPUs itself.
 *
 * Sleep protocol (no lost wake-up): the coordinator loads the request counter, works, stores
 * SLEEPING = 1, re-checks, then waits for the counter to change. A CPU raises G_WANT (or clears
 * its pin), adds 1 to the counter, then notifies if SLEEPING is 1. With sequentially consistent
 * Atomics either the coordinator's re-check sees the CPU's change, or the CPU sees SLEEPING and
 * notifies, or the counter differs from what the coordinator waits on and the wait returns at once.
 * The urgent flag is stored before the pins are read and a reader reads it after clearing its
 * pin, so a reader that leaves while an advance is blocked on it normally rings; its read is
 * plain (one Atomics operation per section), so it can miss the flag by an instant: the
 * coordinator then retries and sleeps at most 16 ms. A CPU that never leaves its section (a
 * worker blocked inside it, or killed there without being watched: src/arena/recovery.ts) holds the
 * GP back; after `stallWarningMs` the coordinator reports it (the RCU CPU-stall warning).
 *
 * A pending `Atomics.waitAsync` does not keep Node's event loop alive, so an idle arena never
 * keeps a process alive; while `synchronize()` callers wait, a ref'd timer does.
 *
 * In the manual mode (deterministic tests) nothing runs by itself: `advance()` steps one epoch
 * and drains parked and offline CPUs, and `synchronize()` steps until done or fails with EBUSY.
 *
 * Who may call: the creating thread only. Shared words: X_GP_REQUEST, X_GP_SLEEPING,
 * X_GP_COORDINATOR, the GP blocks, CPU state, pending and doorbell words (Atomics); the cache
 * records of a CPU only while holding it in a DRAINING state (claimed by CAS from IDLE or OFFLINE,
 * so its owner is not using them; put back with a store, which publishes the plain writes).
 */
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { drainIfIdle } from '../cpu/cpu-slot.js';
import type { ListsByCpu } from '../cpu/deferred.js';
import { Depot } from '../cpu/depot.js';
import {
  ADVANCED,
  arenaNowMs,
  FLAVOR_NAMES,
  type Flavor,
  isBefore,
  RACED,
  readEpoch,
  requestEpoch,
  TOO_EARLY,
  tryAdvance,
} from '../epoch/grace-period.js';
import { readPolicyWord } from '../epoch/policy.js';
import type { Slab } from '../memory/slab.js';
import { ArenaError } from '../shm/errors.js';
import {
  CPU_IDLE,
  CPU_ONLINE,
  CPU_X_DOORBELL,
  CPU_X_OWNER,
  CPU_X_PENDING,
  CPU_X_STATE,
  cpuState,
  cpuWord,
  FLAVORS,
  G_LAST_ADVANCE,
  G_URGENT,
  G_WANT,
  gpWord,
  H_GP_MIN_MS,
  H_POLICY,
  type Layout,
  X_GP_COORDINATOR,
  X_GP_REQUEST,
  X_GP_SLEEPING,
  X_STALLS,
} from '../shm/layout.js';

/** GP counters and latency of one flavor. */
export interface GpFlavorStats {
  /** The global epoch now. */
  readonly epoch: number;
  /** Grace periods completed: times the epoch reached what somebody waited for. */
  readonly completed: number;
  /** Epoch advances, and how many of them CPUs made themselves (the coordinator was late). */
  readonly advances: number;
  readonly helpedAdvances: number;
  /** GPs that had to wait for a reader to leave its section (urgent requests). */
  readonly urgent: number;
  /** Time from the coordinator noticing a request to the epoch reaching it, in µs. */
  readonly latencyUs: {
    readonly count: number;
    readonly mean: number;
    readonly p50: number;
    readonly p90: number;
    readonly p99: number;
    readonly max: number;
  };
}

export type GpStats = Readonly<Record<Flavor, GpFlavorStats>>;

/** Longest sleep without a request, and the period of the tick. */
const kIdleSleepMs = 1000;
const kTickMs = 1000;
/**
 * While a reader blocks an advance: retry this many times at once (a reader that just left may
 * not have seen the urgent flag: its plain read can pass its own unpin store on x86), then sleep
 * until its ring, or a timeout that doubles from 1 ms to 16 ms (a safety net, like liburcu's
 * busy-poll then futex wait).
 */
const kReaderSpins = 64;
const kReaderSleepMinMs = 1;
const kReaderSleepMaxMs = 16;
/** After this many busy rounds in a row the loop yields to the event loop with setImmediate. */
const kBusyRoundsPerYield = 64;
/** Advances `synchronize()` tries in the manual mode before it reports a blocking reader. */
const kManualSteps = 8;

/** A CPU-stall report: `cpu` has held back the `flavor` GP for `ms` milliseconds. */
export interface StallReport {
  readonly cpu: number;
  /** threadId of the thread that owns the CPU (-1 if none). */
  readonly threadId: number;
  readonly flavor: Flavor;
  readonly ms: number;
}

/** Stall detection: report a CPU that blocks an advance for `afterMs` (0: never) to `report`. */
export interface StallWatch {
  readonly afterMs: number;
  readonly report: (stall: StallReport) => void;
}

interface Blocked {
  readonly cpu: number;
  readonly sinceMs: number;
  reported: boolean;
}

interface Waiter {
  readonly flavor: number;
  readonly target: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

interface Wave {
  readonly target: number;
  readonly startMs: number;
  urgent: boolean;
}

export class Coordinator {
  readonly #i32: Int32Array;
  readonly #layout: Layout;
  readonly #birthMs: number;
  readonly #manual: boolean;
  readonly #lists: ListsByCpu;
  readonly #slab: Slab;
  readonly #adaptive: boolean;
  /** The depot (policy sharing 'depot'), emptied into the slab at each tick. */
  readonly #depot: Depot | undefined;
  #lastTickMs = performance.now();
  readonly #waiters: Waiter[] = [];
  readonly #waves: (Wave | undefined)[] = [undefined, undefined];
  readonly #stall: StallWatch;
  /** Per flavor: the CPU whose pin blocks the advance now, and since when. */
  readonly #blocked: (Blocked | undefined)[] = [undefined, undefined];
  readonly #latency: RecordableHistogram[] = [createHistogram(), createHistogram()];
  readonly #completed = [0, 0];
  /** Per flavor, the advances this coordinator made (the epoch counts them all). */
  readonly #advances = [0, 0];
  readonly #urgent = [0, 0];
  #running = false;
  #keepAlive: NodeJS.Timeout | undefined;
  #sleepMs = kIdleSleepMs;
  #readerSleepMs = kReaderSleepMinMs;
  /** The coordinator's waitAsync on X_GP_REQUEST and the value it waits on (see `#sleep`). */
  #pendingWait: Promise<void> | undefined;
  #pendingSeq = 0;
  #wake: (() => void) | undefined;
  #lastServicedRequest = -1;

  constructor(
    i32: Int32Array,
    layout: Layout,
    lists: ListsByCpu,
    slab: Slab,
    birthMs: number,
    manual: boolean,
    stall: StallWatch,
  ) {
    this.#stall = stall;
    this.#i32 = i32;
    this.#layout = layout;
    this.#lists = lists;
    this.#slab = slab;
    const policy = readPolicyWord(i32[H_POLICY] as number);
    this.#adaptive = policy.adaptive;
    this.#depot = policy.depot ? new Depot(i32, layout) : undefined;
    this.#birthMs = birthMs;
    this.#manual = manual;
  }

  get manual(): boolean {
    return this.#manual;
  }

  /** Starts the loop (automatic mode). */
  start(): void {
    if (this.#manual || this.#running) return;
    this.#running = true;
    Atomics.store(this.#i32, X_GP_COORDINATOR, 1);
    void this.#loop();
  }

  /** Stops the loop and fails pending `synchronize()` calls with ECLOSED. */
  stop(): void {
    this.#running = false;
    Atomics.store(this.#i32, X_GP_COORDINATOR, 0);
    Atomics.add(this.#i32, X_GP_REQUEST, 1);
    Atomics.notify(this.#i32, X_GP_REQUEST);
    for (const w of this.#waiters.splice(0)) w.reject(new ArenaError('ECLOSED', 'the arena was closed'));
    this.#updateKeepAlive();
  }

  /** Resolves once a full GP of `flavor` has passed since the call. */
  synchronize(flavor: number): Promise<void> {
    const target = (readEpoch(this.#i32, flavor) + 2) | 0;
    if (this.#manual) return this.#synchronizeByHand(flavor, target);
    if (!this.#running) return Promise.reject(new ArenaError('ECLOSED', 'the arena was closed'));
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ flavor, target, resolve, reject });
      this.#updateKeepAlive();
      requestEpoch(this.#i32, flavor, target);
    });
  }

  /**
   * Manual mode: one advance attempt of `flavor` (respecting the minimum GP duration unless
   * `ignoreMinimum`), then drains parked and offline CPUs. Returns what `tryAdvance` returned.
   */
  advance(flavor: number, ignoreMinimum = false): number {
    const result = this.#tryAdvance(flavor, ignoreMinimum);
    if (result === ADVANCED) this.#noteProgress(flavor);
    this.#serviceCpus(false);
    return result;
  }

  /**
   * The tick (timely return): empty spans back to the page allocator; under adaptive capacity,
   * every online CPU's doorbell (it trims the classes that went idle) and the caches of parked
   * CPUs back to the slab (they refill when unparked).
   */
  #tick(): void {
    const i32 = this.#i32;
    for (let cpu = 0; cpu < this.#layout.cpus; cpu++) {
      const rec = cpuWord(this.#layout, cpu);
      const state = cpuState(Atomics.load(i32, rec + CPU_X_STATE));
      // Every policy: a CPU with pending work hears its doorbell at least once a tick (a remote
      // buffer that never fills, a batch nobody asked a GP for).
      const pending = Atomics.load(i32, rec + CPU_X_PENDING) !== 0;
      if (state === CPU_ONLINE && (this.#adaptive || pending)) {
        Atomics.add(i32, rec + CPU_X_DOORBELL, 1);
        Atomics.notify(i32, rec + CPU_X_DOORBELL);
      } else if (this.#adaptive && state === CPU_IDLE) {
        drainIfIdle(i32, this.#layout, cpu, () => {
          const lists = this.#lists.of(cpu);
          lists.pollAll(false);
          for (let cls = 0; cls < this.#layout.classes; cls++) lists.flushFreeList(cls);
        });
      }
    }
    this.releaseEmptySpans();
  }

  /**
   * Sends the depot's parked batches to the slab and gives every class's empty spans back to the
   * page allocator; returns how many spans.
   */
  releaseEmptySpans(): number {
    let spans = 0;
    for (let cls = 0; cls < this.#layout.classes; cls++) {
      this.#depot?.drainTo(this.#slab, cls);
      spans += this.#slab.releaseEmptySpans(cls);
    }
    return spans;
  }

  stats(): GpStats {
    const one = (f: number): GpFlavorStats => {
      const h = this.#latency[f] as RecordableHistogram;
      const us = (ns: number): number => (h.count === 0 ? 0 : Math.round(ns / 100) / 10);
      // One read: CPUs may advance meanwhile, and the three figures must agree.
      const epoch = readEpoch(this.#i32, f);
      return {
        epoch,
        completed: this.#completed[f] as number,
        advances: epoch >>> 0,
        helpedAdvances: ((epoch >>> 0) - (this.#advances[f] as number)) >>> 0,
        urgent: this.#urgent[f] as number,
        latencyUs: {
          count: h.count,
          mean: us(h.mean),
          p50: us(h.percentile(50)),
          p90: us(h.percentile(90)),
          p99: us(h.percentile(99)),
          max: us(h.max),
        },
      };
    };
    return { rcu: one(0), ttrace: one(1) };
  }

  async #loop(): Promise<void> {
    const i32 = this.#i32;
    let busyRounds = 0;
    while (this.#running) {
      const seq = Atomics.load(i32, X_GP_REQUEST);
      const progressed = this.#pump(seq);
      if (!this.#running) break;
      if (progressed && ++busyRounds < kBusyRoundsPerYield) continue;
      if (progressed) {
        busyRounds = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      busyRounds = 0;
      Atomics.store(i32, X_GP_SLEEPING, 1);
      if (Atomics.load(i32, X_GP_REQUEST) === seq) {
        await this.#sleep(seq);
      }
      Atomics.store(i32, X_GP_SLEEPING, 0);
    }
  }

  /**
   * Sleeps until X_GP_REQUEST moves from `seq` or `#sleepMs` pass. The timeout is an unref'd
   * timer raced against a waitAsync without timeout: waitAsync's own timeout was unreliable on
   * Node 20.20 (after ~10^5 waits the coordinator slept for seconds while being rung, measured
   * with bench/gp.bench.ts). A wait that ended by the timer stays pending, so it is reused while
   * the word still holds the same value; a ring (notify wakes every waiter) settles the rest.
   */
  async #sleep(seq: number): Promise<void> {
    if (this.#pendingWait === undefined || this.#pendingSeq !== seq) {
      const wait = Atomics.waitAsync(this.#i32, X_GP_REQUEST, seq);
      if (!wait.async) return;
      const pending = wait.value.then(() => {
        if (this.#pendingWait === pending) this.#pendingWait = undefined;
        this.#wake?.();
      });
      this.#pendingWait = pending;
      this.#pendingSeq = seq;
    }
    // One reaction per wait, calling whichever sleep is current: no callbacks pile up on a
    // wait that outlives many timer-ended sleeps.
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      timer = setTimeout(resolve, this.#sleepMs);
      timer.unref();
    });
    this.#wake = undefined;
    clearTimeout(timer);
  }

  /** One round: advance what is wanted, finish GPs, serve CPUs. True if an epoch moved. */
  #pump(seq: number): boolean {
    const i32 = this.#i32;
    let progressed = false;
    let waveDone = false;
    const now = performance.now();
    if (now - this.#lastTickMs >= kTickMs) {
      this.#lastTickMs = now;
      this.#tick();
    }
    this.#sleepMs = Math.max(1, Math.ceil(this.#lastTickMs + kTickMs - now));
    for (let f = 0; f < FLAVORS; f++) {
      const want = Atomics.load(i32, gpWord(f, G_WANT));
      if (!isBefore(readEpoch(i32, f), want)) {
        if (Atomics.load(i32, gpWord(f, G_URGENT)) !== 0) Atomics.store(i32, gpWord(f, G_URGENT), 0);
        waveDone = this.#finishWave(f) || waveDone;
        continue;
      }
      if (this.#waves[f] === undefined)
        this.#waves[f] = { target: want, startMs: performance.now(), urgent: false };
      const minMs = i32[H_GP_MIN_MS + f] as number;
      if (minMs > 0) {
        const elapsed = Math.floor(arenaNowMs(this.#birthMs)) - Atomics.load(i32, gpWord(f, G_LAST_ADVANCE));
        if (elapsed < minMs) {
          this.#sleepMs = Math.min(this.#sleepMs, minMs - elapsed);
          continue;
        }
      }
      // Set before the pins are read, cleared once the advance went through (see above).
      Atomics.store(i32, gpWord(f, G_URGENT), 1);
      let result = this.#tryAdvance(f);
      for (let spin = 0; result >= 0 && spin < kReaderSpins; spin++) result = this.#tryAdvance(f);
      if (result === ADVANCED || result === RACED || result === TOO_EARLY) {
        this.#blocked[f] = undefined;
        Atomics.store(i32, gpWord(f, G_URGENT), 0);
        if (result === TOO_EARLY) this.#sleepMs = Math.min(this.#sleepMs, 1);
        else progressed = true;
        this.#readerSleepMs = kReaderSleepMinMs;
        waveDone = this.#finishWave(f) || waveDone;
      } else {
        (this.#waves[f] as Wave).urgent = true;
        this.#noteBlocked(f, result);
        this.#sleepMs = Math.min(this.#sleepMs, this.#readerSleepMs);
        this.#readerSleepMs = Math.min(kReaderSleepMaxMs, this.#readerSleepMs * 2);
      }
    }
    if (waveDone || seq !== this.#lastServicedRequest) {
      this.#lastServicedRequest = seq;
      this.#serviceCpus(waveDone);
    }
    this.#settleWaiters();
    return progressed;
  }

  /**
   * The RCU CPU-stall warning: CPU `cpu` blocks the advance of `flavor`; once it has done so for
   * `afterMs` without a break, report it (once per stall; a worker killed inside a section
   * that nobody watches, or a thread stuck in one, is reported instead of waited for silently).
   */
  #noteBlocked(f: number, cpu: number): void {
    const now = performance.now();
    const blocked = this.#blocked[f];
    if (blocked === undefined || blocked.cpu !== cpu) {
      this.#blocked[f] = { cpu, sinceMs: now, reported: false };
      return;
    }
    if (blocked.reported || this.#stall.afterMs === 0 || now - blocked.sinceMs < this.#stall.afterMs) return;
    blocked.reported = true;
    Atomics.add(this.#i32, X_STALLS, 1);
    const owner = Atomics.load(this.#i32, cpuWord(this.#layout, cpu) + CPU_X_OWNER) - 1;
    this.#stall.report({
      cpu,
      threadId: owner,
      flavor: FLAVOR_NAMES[f] as Flavor,
      ms: Math.round(now - blocked.sinceMs),
    });
  }

  /** Records the current wave of `flavor` if the epoch reached its target; true if it did. */
  #finishWave(f: number): boolean {
    const wave = this.#waves[f];
    if (wave === undefined || isBefore(readEpoch(this.#i32, f), wave.target)) return false;
    this.#waves[f] = undefined;
    this.#completed[f] = (this.#completed[f] as number) + 1;
    if (wave.urgent) this.#urgent[f] = (this.#urgent[f] as number) + 1;
    const ns = Math.max(1, Math.round((performance.now() - wave.startMs) * 1e6));
    (this.#latency[f] as RecordableHistogram).record(ns);
    return true;
  }

  /** tryAdvance, counting the advances it makes (CPUs' advances are the rest of the epoch). */
  #tryAdvance(f: number, ignoreMinimum = false): number {
    const result = tryAdvance(this.#i32, this.#layout, f, this.#birthMs, ignoreMinimum);
    if (result === ADVANCED) this.#advances[f] = (this.#advances[f] as number) + 1;
    return result;
  }

  /** Manual-mode bookkeeping after an advance made by hand. */
  #noteProgress(f: number): void {
    if (!isBefore(readEpoch(this.#i32, f), Atomics.load(this.#i32, gpWord(f, G_WANT)))) {
      this.#completed[f] = (this.#completed[f] as number) + 1;
    }
  }

  /**
   * Rings online CPUs that hold deferred units (only after a GP completed: their batches may be
   * due) and drains parked and offline ones itself.
   */
  #serviceCpus(ringOnline: boolean): void {
    const i32 = this.#i32;
    for (let cpu = 0; cpu < this.#layout.cpus; cpu++) {
      const rec = cpuWord(this.#layout, cpu);
      if (Atomics.load(i32, rec + CPU_X_PENDING) === 0) continue;
      const state = cpuState(Atomics.load(i32, rec + CPU_X_STATE));
      if (state === CPU_ONLINE) {
        if (ringOnline) {
          Atomics.add(i32, rec + CPU_X_DOORBELL, 1);
          Atomics.notify(i32, rec + CPU_X_DOORBELL);
        }
        continue;
      }
      drainIfIdle(i32, this.#layout, cpu, (offline) => this.#lists.of(cpu).pollAll(offline));
    }
  }

  #settleWaiters(): void {
    if (this.#waiters.length === 0) return;
    const epochs = [readEpoch(this.#i32, 0), readEpoch(this.#i32, 1)];
    for (let k = this.#waiters.length - 1; k >= 0; k--) {
      const w = this.#waiters[k] as Waiter;
      if (!isBefore(epochs[w.flavor] as number, w.target)) {
        this.#waiters.splice(k, 1);
        w.resolve();
      }
    }
    this.#updateKeepAlive();
  }

  /** Holds a ref'd timer while somebody awaits `synchronize()`, and none otherwise. */
  #updateKeepAlive(): void {
    if (this.#waiters.length > 0 && this.#keepAlive === undefined) {
      this.#keepAlive = setInterval(() => {}, 1 << 30);
    } else if (this.#waiters.length === 0 && this.#keepAlive !== undefined) {
      clearInterval(this.#keepAlive);
      this.#keepAlive = undefined;
    }
  }

  async #synchronizeByHand(flavor: number, target: number): Promise<void> {
    for (let step = 0; step < kManualSteps && isBefore(readEpoch(this.#i32, flavor), target); step++) {
      const result = this.advance(flavor, true);
      if (result >= 0) {
        throw new ArenaError(
          'EBUSY',
          `synchronize('${FLAVOR_NAMES[flavor]}'): CPU ${result} is inside a read-side section (manual coordinator)`,
        );
      }
    }
  }
}
