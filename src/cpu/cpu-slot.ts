/**
 * The state-word protocol of one CPU slot (CPU_X_STATE) and its doorbell, for the handle that
 * owns the slot:
 *
 * ```
 *  OFFLINE ──attach──► ONLINE ──park──► IDLE ──unpark──► ONLINE ──detach──► OFFLINE
 *     └──► DRAINING_OFFLINE ──┘            └──► DRAINING_IDLE ──┘      (a drainer: src/arena/coordinator.ts)
 * ```
 * The owner moves the word between OFFLINE, ONLINE and IDLE; anybody may claim IDLE or OFFLINE
 * for a drain by CAS and must put back what it found. The word also names the thread holding the
 * slot (the owner, or the drainer; src/shm/layout.ts), so that a thread killed at any moment is found. Attach and unpark wait (briefly, with
 * Atomics.wait) while a drain holds the slot.
 *
 * Who may call: the thread of the handle that owns (or is about to own) the slot. Shared words:
 * the slot's CPU_X_STATE, CPU_X_OWNER, pin words (cleared on release) and CPU_X_DOORBELL, all
 * through Atomics; a release store publishes every plain write the owner made to its caches.
 */
import { threadId } from 'node:worker_threads';
import { ringCoordinator } from '../epoch/grace-period.js';
import { claim, publish, readShared } from '../shm/atomics.js';
import { fail } from '../shm/errors.js';
import {
  CPU_DRAINING_IDLE,
  CPU_DRAINING_OFFLINE,
  CPU_IDLE,
  CPU_OFFLINE,
  CPU_ONLINE,
  CPU_X_DOORBELL,
  CPU_X_OWNER,
  CPU_X_PIN,
  CPU_X_STATE,
  cpuState,
  cpuStateWord,
  cpuThread,
  cpuWord,
  FLAVORS,
  type Layout,
} from '../shm/layout.js';

/** How long attach and unpark wait for a drainer to hand a CPU back. */
const kDrainWaitMs = 5000;

export class CpuSlot {
  readonly #i32: Int32Array;
  readonly #cpu: number;
  readonly #record: number;
  readonly #state: number;
  readonly #doorbell: number;

  constructor(i32: Int32Array, layout: Layout, cpu: number) {
    this.#i32 = i32;
    this.#cpu = cpu;
    this.#record = cpuWord(layout, cpu);
    this.#state = this.#record + CPU_X_STATE;
    this.#doorbell = this.#record + CPU_X_DOORBELL;
  }

  /** OFFLINE → ONLINE for this thread; throws EBUSY if another handle owns the slot. */
  claimOnline(): void {
    if (!this.#claimFrom(CPU_OFFLINE, CPU_DRAINING_OFFLINE)) {
      const owner = cpuThread(readShared(this.#i32, this.#state));
      fail('EBUSY', `CPU ${this.#cpu} is already attached (by thread ${owner})`);
    }
    publish(this.#i32, this.#record + CPU_X_OWNER, threadId + 1);
  }

  /** ONLINE → IDLE: from now on a drainer may work on the CPU's lists. */
  park(): void {
    publish(this.#i32, this.#state, cpuStateWord(CPU_IDLE, threadId));
    ringCoordinator(this.#i32);
  }

  /** IDLE → ONLINE, waiting while a drain holds the slot; throws ETIMEDOUT if it never ends. */
  unpark(): void {
    if (!this.#claimFrom(cpuStateWord(CPU_IDLE, threadId), CPU_DRAINING_IDLE)) {
      const word = readShared(this.#i32, this.#state);
      fail(
        'ETIMEDOUT',
        `CPU ${this.#cpu}: a drainer (thread ${cpuThread(word)}, state ${cpuState(word)}) did not hand the CPU back in ${kDrainWaitMs} ms`,
      );
    }
  }

  /**
   * ONLINE → OFFLINE: clears the pins (a CPU that leaves inside a read section lets go of its
   * GPs), the owner, rings the coordinator (it finishes the deferred lists) and the doorbell
   * (so this handle's listener sees the detach and stops).
   */
  release(): void {
    const i32 = this.#i32;
    for (let f = 0; f < FLAVORS; f++) publish(i32, this.#record + CPU_X_PIN + f, 0);
    publish(i32, this.#state, CPU_OFFLINE);
    // Only if still ours: a thread may have attached the slot since the store above.
    Atomics.compareExchange(i32, this.#record + CPU_X_OWNER, threadId + 1, 0);
    Atomics.notify(i32, this.#state);
    ringCoordinator(i32);
    Atomics.add(i32, this.#doorbell, 1);
    Atomics.notify(i32, this.#doorbell);
  }

  /**
   * Calls `onRing` whenever the coordinator rings the doorbell, while `onRing` returns true.
   * Listens with `Atomics.waitAsync` (which does not keep the event loop alive), so rings are
   * served whenever this thread's event loop is free (the kernel's irq_work).
   */
  listen(onRing: () => boolean): void {
    const arm = (): void => {
      const result = Atomics.waitAsync(this.#i32, this.#doorbell, Atomics.load(this.#i32, this.#doorbell));
      const next = (): void => {
        if (onRing()) arm();
      };
      if (result.async) void result.value.then(next);
      else queueMicrotask(next);
    };
    arm();
  }

  /**
   * Moves the state word from `from` to ONLINE for this thread, waiting while a drainer holds it
   * in state `draining`; false if the word holds anything else (another owner) or the wait times
   * out.
   */
  #claimFrom(from: number, draining: number): boolean {
    const deadline = Date.now() + kDrainWaitMs;
    const online = cpuStateWord(CPU_ONLINE, threadId);
    for (;;) {
      if (claim(this.#i32, this.#state, from, online)) return true;
      const word = readShared(this.#i32, this.#state);
      // The drainer may have handed it back between the CAS and this load: try again.
      if (word === from) continue;
      if (cpuState(word) !== draining || Date.now() > deadline) return false;
      Atomics.wait(this.#i32, this.#state, word, 1);
    }
  }
}

/**
 * Works on CPU `cpu` if nobody runs it: claims its state word IDLE or OFFLINE → DRAINING by
 * CAS, calls `work(offline)`, puts the state back and wakes an `unpark` or `attach` waiting for
 * it. False (nothing done) if the CPU is online or another thread is draining it.
 */
export function drainIfIdle(
  i32: Int32Array,
  layout: Layout,
  cpu: number,
  work: (offline: boolean) => void,
): boolean {
  const state = cpuWord(layout, cpu) + CPU_X_STATE;
  const was = Atomics.load(i32, state);
  const s = cpuState(was);
  const draining = s === CPU_IDLE ? CPU_DRAINING_IDLE : s === CPU_OFFLINE ? CPU_DRAINING_OFFLINE : -1;
  if (draining < 0 || !claim(i32, state, was, cpuStateWord(draining, threadId))) return false;
  try {
    work(s === CPU_OFFLINE);
  } finally {
    publish(i32, state, was);
    Atomics.notify(i32, state);
  }
  return true;
}
