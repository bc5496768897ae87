/**
 * Blocking primitives on (Int32Array, index) inside the arena:
 * - the **robust mutex** (`robustLock` / `robustUnlock` / `mutexRecover`), the one production
 *   code takes — slab rows, the page lock, the structures' locks: its word names its holder, so
 *   crash recovery (src/arena/recovery.ts) can release the lock of a thread that died holding it;
 * - the plain 3-state futex mutex (`mutexLock`, Drepper's mutex3), kept for the fast-path
 *   benchmark's global-mutex variant (bench/fastpath-task.ts) and its tests;
 * - a reusable barrier (the CPU pool's start barrier).
 * `atomics-sync` is not in the registry; this replaces it and avoids the bugs found in it
 * (https://github.com/slavamuravey/atomics-sync): a mutex notifies only when a waiter may exist,
 * the barrier waits on a generation counter so a release between "arrive" and `Atomics.wait` is
 * never lost, and every primitive lives at an offset of the one arena buffer.
 *
 * Who may call: any thread. `Atomics.wait` blocks the calling thread; Node allows it on the main
 * thread too, so the main thread may take these locks in the deterministic mode (keep critical
 * sections short: the coordinator runs there; the arena's creating thread never waits on a slab
 * row, src/memory/slab.ts).
 * Shared words: each primitive owns the words at its index; all of them are read and written
 * with Atomics only. A release is a sequentially consistent Atomics operation, so plain writes
 * made inside the critical section are visible to the next holder.
 */
import { threadId } from 'node:worker_threads';
import { ArenaError } from './errors.js';

const UNLOCKED = 0;
const LOCKED = 1;
/** Locked, and at least one thread may be sleeping in `Atomics.wait` on the word. */
const CONTENDED = 2;

/** Tries to take the mutex without waiting; true on success. */
export function mutexTryLock(i32: Int32Array, index: number): boolean {
  return Atomics.compareExchange(i32, index, UNLOCKED, LOCKED) === UNLOCKED;
}

/** Spins this many reads of the word before sleeping: a slab critical section is ~100 ns. */
const kMutexSpins = 100;

/**
 * Takes the mutex (Drepper, "Futexes Are Tricky", mutex3): one CAS when free; otherwise spin
 * briefly, then mark it contended and sleep until an unlock wakes us.
 */
export function mutexLock(i32: Int32Array, index: number): void {
  let state = Atomics.compareExchange(i32, index, UNLOCKED, LOCKED);
  if (state === UNLOCKED) return;
  for (let spin = 0; spin < kMutexSpins; spin++) {
    if (Atomics.load(i32, index) === UNLOCKED) {
      state = Atomics.compareExchange(i32, index, UNLOCKED, LOCKED);
      if (state === UNLOCKED) return;
    }
  }
  // From here on we may sleep, so whoever unlocks must notify: take it as CONTENDED.
  if (state !== CONTENDED) state = Atomics.exchange(i32, index, CONTENDED);
  while (state !== UNLOCKED) {
    Atomics.wait(i32, index, CONTENDED);
    state = Atomics.exchange(i32, index, CONTENDED);
  }
}

/** Releases the mutex; wakes one sleeper only if the lock was marked contended. */
export function mutexUnlock(i32: Int32Array, index: number): void {
  if (Atomics.sub(i32, index, 1) !== LOCKED) {
    Atomics.store(i32, index, UNLOCKED);
    Atomics.notify(i32, index, 1);
  }
}

/**
 * A robust mutex: the lock word holds its holder, `(threadId + 1) << 2 | state` (state 1
 * locked, 2 locked and a waiter may sleep), so that one CAS both takes the lock and names the
 * holder, and one exchange both releases it and clears the name: a thread killed at any point
 * leaves either a free word or a word naming it, which `mutexRecover` can release. Waiters mark
 * the word contended by CAS (keeping the holder) and sleep on that value; a thread that takes the
 * lock after sleeping takes it contended, so its unlock wakes the next one.
 */
export function robustLock(i32: Int32Array, index: number): void {
  const me = (threadId + 1) << 2;
  if (Atomics.compareExchange(i32, index, UNLOCKED, me | LOCKED) === UNLOCKED) return;
  for (let spin = 0; spin < kMutexSpins; spin++) {
    if (
      Atomics.load(i32, index) === UNLOCKED &&
      Atomics.compareExchange(i32, index, UNLOCKED, me | LOCKED) === UNLOCKED
    ) {
      return;
    }
  }
  for (;;) {
    const word = Atomics.load(i32, index);
    if (word === UNLOCKED) {
      if (Atomics.compareExchange(i32, index, UNLOCKED, me | CONTENDED) === UNLOCKED) return;
      continue;
    }
    if ((word & CONTENDED) === 0 && Atomics.compareExchange(i32, index, word, word | CONTENDED) !== word)
      continue;
    Atomics.wait(i32, index, word | CONTENDED);
  }
}

/** Tries to take the robust mutex without waiting; true on success. */
export function robustTryLock(i32: Int32Array, index: number): boolean {
  return Atomics.compareExchange(i32, index, UNLOCKED, ((threadId + 1) << 2) | LOCKED) === UNLOCKED;
}

/** Releases the robust mutex; wakes one sleeper if the word says one may sleep. */
export function robustUnlock(i32: Int32Array, index: number): void {
  if ((Atomics.exchange(i32, index, UNLOCKED) & CONTENDED) !== 0) Atomics.notify(i32, index, 1);
}

/** threadId of the holder of the robust mutex at `index`, or -1 when it is free. */
export function robustHolder(i32: Int32Array, index: number): number {
  return (Atomics.load(i32, index) >>> 2) - 1;
}

/**
 * Releases the robust mutex at `index` if its word names thread `deadThreadId`, which has
 * exited (the caller knows: a Worker's 'exit' event); wakes every sleeper. True if it did:
 * the words it guards may be half-updated and `repair` fixes them first (it runs with the lock
 * still held, so nobody else sees them in between).
 */
export function mutexRecover(
  i32: Int32Array,
  index: number,
  deadThreadId: number,
  repair: () => void,
): boolean {
  if (robustHolder(i32, index) !== deadThreadId) return false;
  repair();
  Atomics.store(i32, index, UNLOCKED);
  Atomics.notify(i32, index);
  return true;
}

/** Barrier words, relative to its index: parties, arrived, generation, broken. */
const B_PARTIES = 0;
const B_ARRIVED = 1;
const B_GENERATION = 2;
/** Set when a party timed out: the round can never complete, so every party fails. */
const B_BROKEN = 3;
/** Words one barrier occupies. */
export const BARRIER_WORDS = 4;

/** Prepares a barrier for `parties` threads; no thread may be waiting on it. */
export function barrierInit(i32: Int32Array, index: number, parties: number): void {
  if (!Number.isInteger(parties) || parties < 1) {
    throw new ArenaError('EINVAL', `a barrier needs at least one party, got ${parties}`);
  }
  Atomics.store(i32, index + B_ARRIVED, 0);
  Atomics.store(i32, index + B_BROKEN, 0);
  Atomics.store(i32, index + B_PARTIES, parties);
}

/**
 * Waits until `parties` threads have arrived; the barrier then resets for its next use. Returns
 * true in exactly one thread per round (the last to arrive). A party that waits longer than
 * `timeoutMs` breaks the barrier: it and every other party, waiting or arriving later, throw
 * `ETIMEDOUT` until `barrierInit` resets it, so a missing party fails a run instead of hanging it
 * or letting a later round pass one party short.
 */
export function barrierWait(i32: Int32Array, index: number, timeoutMs = Infinity): boolean {
  const generation = Atomics.load(i32, index + B_GENERATION);
  if (Atomics.load(i32, index + B_BROKEN) !== 0) brokenBarrier();
  const parties = Atomics.load(i32, index + B_PARTIES);
  if (Atomics.add(i32, index + B_ARRIVED, 1) + 1 === parties) {
    Atomics.store(i32, index + B_ARRIVED, 0);
    Atomics.add(i32, index + B_GENERATION, 1);
    Atomics.notify(i32, index + B_GENERATION);
    return true;
  }
  const deadline = Date.now() + timeoutMs;
  while (Atomics.load(i32, index + B_GENERATION) === generation) {
    const left = deadline - Date.now();
    if (left <= 0) {
      Atomics.store(i32, index + B_BROKEN, 1);
      Atomics.add(i32, index + B_GENERATION, 1);
      Atomics.notify(i32, index + B_GENERATION);
      throw new ArenaError(
        'ETIMEDOUT',
        `barrier: only some of ${parties} parties arrived in ${timeoutMs} ms`,
      );
    }
    Atomics.wait(i32, index + B_GENERATION, generation, left);
  }
  if (Atomics.load(i32, index + B_BROKEN) !== 0) brokenBarrier();
  return false;
}

function brokenBarrier(): never {
  throw new ArenaError('ETIMEDOUT', 'barrier: broken by a party that timed out');
}
