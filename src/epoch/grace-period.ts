/**
 * Grace periods: per flavor (`rcu`, `ttrace`) one global epoch word, and per CPU one pin word.
 *
 * Who may call: pins only the CPU's owner (the pin word is written by its owner alone; detach
 * clears it for a CPU that leaves, and recovery for a watched worker that died inside a section,
 * src/arena/recovery.ts; an unwatched one holds GPs back and is reported as stalled);
 * `tryAdvance` any thread: the main thread's coordinator, or a CPU helping when its deferred
 * lists grow (src/cpu/deferred.ts), or `close()`. Shared words: the GP block of each flavor
 * (G_EPOCH, G_WANT, G_URGENT, G_LAST_ADVANCE), the CPUs' pin words,
 * X_GP_REQUEST and X_GP_SLEEPING; all through Atomics. Nothing here is read plainly except the
 * header words written before the arena was shared (H_GP_MIN_MS, H_BIRTH_MS).
 *
 * ## The rule and why a batch sealed at epoch t is past its GP at t + 2
 *
 * A reader pins by loading the epoch `p` and storing `(p << 1) | 1` in its pin word with an
 * Atomics store, then reads shared memory; it unpins by storing 0 with release semantics.
 * Whoever advances loads the epoch `e`, reads every pin,
 * and moves the epoch from `e` to `e + 1` with a compare-and-swap only if no pin holds an epoch
 * other than `e`. A unit is unlinked by its last writer, then freed; the free lands on a deferred
 * list, which is sealed with an epoch `s` loaded after the free. The unit may be reused once the
 * epoch has reached `s + 2`. Every Atomics operation is sequentially consistent: there is one
 * total order of them all. Plain accesses around them need care: a plain store followed by an
 * Atomics load may be reordered (x86's `mov` load passes the store buffer; arm64's `ldar`
 * passes an earlier plain store), so the seal is preceded by a read-modify-write
 * (src/cpu/deferred.ts), and on arm64 the pin store by an acquire load after it (src/cpu/cpu.ts).
 *
 * Claim: if reader R holds unit X in a section that pinned at `p`, X is not reused before R
 * unpins. R found X through shared memory after its pin store P, so X was unlinked after P, and
 * the seal load that read `s` came after the unlink, hence after P. The epoch only grows and was
 * at least `p` when R loaded it, so `s ≥ p`. Reaching `s + 2` needs the advance from `s + 1` to
 * `s + 2`; that advance loaded `s + 1`, which was stored after the seal load, hence after P, and
 * it then read R's pin after P: it saw `(p << 1) | 1` with `p ≤ s < s + 1` unless R had already
 * unpinned. So the advance, and any reuse that observed its result, comes after R's unpin. ∎
 * One advance is not enough: a reader pinned at `s` itself does not stop the advance from `s`
 * to `s + 1`. A reader whose pin store lands after the epoch moved past `p` is covered by the
 * same argument (only `p ≤ s` was used); it blocks the next advance until it unpins, which is
 * the price crossbeam-epoch pays too.
 *
 * The reader's epoch load may be plain: a stale value is an older epoch, and only `p` ≤ the epoch
 * at P was used. The pin store must be an Atomics store (a full barrier on x86-64: `xchg`), so
 * that the section's reads come after it. The unpin only needs release order (the section's
 * reads before it): an Atomics store everywhere, or a plain store on x86, whose TSO never lets a
 * store pass earlier loads (V8 keeps typed-array accesses in program order). This keeps
 * `readLock` + `readUnlock` to one Atomics operation on x86 (bench/gp.bench.ts).
 *
 * Idle, parked, detached and offline CPUs have pin 0 and never hold a GP back. Epochs wrap at
 * 2^32 and pins keep 31 bits of them; all comparisons use the signed distance, so they stay
 * right as long as no CPU stays pinned across 2^30 advances (it cannot: it blocks the second).
 *
 * GP timing emulation: with a minimum of M ms for a flavor, each epoch lasts at least M ms, so a
 * batch waits at least M ms (one whole epoch) and at most about 2M ms, as the kernel's callbacks
 * wait for one to two GPs.
 */
import {
  CPU_X_PIN,
  cpuWord,
  FLAVOR_RCU,
  FLAVOR_TTRACE,
  G_EPOCH,
  G_LAST_ADVANCE,
  G_WANT,
  gpWord,
  H_BIRTH_MS,
  H_GP_MIN_MS,
  type Layout,
  RECORD_WORDS,
  X_GP_REQUEST,
  X_GP_SLEEPING,
} from '../shm/layout.js';

export type Flavor = 'rcu' | 'ttrace';
export const FLAVOR_NAMES: readonly Flavor[] = ['rcu', 'ttrace'];

/** Flavor index of a flavor name; -1 for anything else. */
export function flavorIndex(flavor: unknown): number {
  return flavor === 'rcu' ? FLAVOR_RCU : flavor === 'ttrace' ? FLAVOR_TTRACE : -1;
}

/** The pin word value of a reader that observed `epoch`. */
export function pinValue(epoch: number): number {
  return (epoch << 1) | 1;
}

/**
 * True when a batch sealed at `seal` is past its GP at epoch `epoch` (wrap-safe). `epochs` is 2
 * (the proof above) except under a test's injected fault.
 */
export function isExpired(seal: number, epoch: number, epochs = 2): boolean {
  return ((epoch - seal) | 0) >= epochs;
}

/** True when `epoch` has not reached `target` yet (wrap-safe). */
export function isBefore(epoch: number, target: number): boolean {
  return ((target - epoch) | 0) > 0;
}

/** The current epoch of a flavor. */
export function readEpoch(i32: Int32Array, flavor: number): number {
  return Atomics.load(i32, gpWord(flavor, G_EPOCH));
}

/** Ms since the arena's time origin, on a clock every thread shares. */
export function arenaNowMs(birthMs: number): number {
  return performance.timeOrigin + performance.now() - birthMs;
}

/** The arena's time origin (H_BIRTH_MS, written before the buffer was shared). */
export function readBirthMs(buffer: SharedArrayBuffer): number {
  return new Float64Array(buffer, 0, (H_BIRTH_MS >> 1) + 1)[H_BIRTH_MS >> 1] as number;
}

export function writeBirthMs(buffer: SharedArrayBuffer, ms: number): void {
  new Float64Array(buffer, 0, (H_BIRTH_MS >> 1) + 1)[H_BIRTH_MS >> 1] = ms;
}

/**
 * Raises the epoch somebody waits for to at least `target` (wrap-safe CAS loop) and rings the
 * coordinator if this call raised it and `ring` is set: a coordinator that already knows of a
 * later target is working towards it, or waiting on a reader that will ring it. Without `ring`
 * (CPUs that drive GPs themselves) the coordinator finds the request at its next tick.
 */
export function requestEpoch(i32: Int32Array, flavor: number, target: number, ring = true): void {
  const index = gpWord(flavor, G_WANT);
  let seen = Atomics.load(i32, index);
  while (isBefore(seen, target)) {
    const prev = Atomics.compareExchange(i32, index, seen, target);
    if (prev === seen) {
      if (ring) ringCoordinator(i32);
      return;
    }
    seen = prev;
  }
}

/** Wakes the coordinator if it sleeps (X_GP_SLEEPING); see src/arena/coordinator.ts for the protocol. */
export function ringCoordinator(i32: Int32Array): void {
  Atomics.add(i32, X_GP_REQUEST, 1);
  if (Atomics.load(i32, X_GP_SLEEPING) !== 0) Atomics.notify(i32, X_GP_REQUEST);
}

/** What `tryAdvance` did. A result >= 0 is the CPU whose pin blocked the advance. */
export const ADVANCED = -1;
/** The flavor's minimum epoch duration has not elapsed (GP timing emulation). */
export const TOO_EARLY = -2;
/** Another thread advanced the epoch between our load and our CAS. */
export const RACED = -3;

/**
 * Advances the epoch of `flavor` by one if every pinned CPU has observed the current epoch (the
 * rule proved above). `ignoreMinimum` skips the timing emulation (used by `close()`). Nothing
 * counts the advances: the epoch starts at 0 and only this CAS moves it, so it is their count
 * (the coordinator counts its own; the rest were CPUs helping).
 */
export function tryAdvance(
  i32: Int32Array,
  layout: Layout,
  flavor: number,
  birthMs: number,
  ignoreMinimum = false,
): number {
  const minMs = i32[H_GP_MIN_MS + flavor] as number;
  if (minMs > 0 && !ignoreMinimum) {
    const last = Atomics.load(i32, gpWord(flavor, G_LAST_ADVANCE));
    if (((Math.floor(arenaNowMs(birthMs)) - last) | 0) < minMs) return TOO_EARLY;
  }
  const epochIndex = gpWord(flavor, G_EPOCH);
  const epoch = Atomics.load(i32, epochIndex);
  const pinned = pinValue(epoch);
  for (
    let cpu = 0, pin = cpuWord(layout, 0) + CPU_X_PIN + flavor;
    cpu < layout.cpus;
    cpu++, pin += RECORD_WORDS
  ) {
    const value = Atomics.load(i32, pin);
    if (value !== 0 && value !== pinned) return cpu;
  }
  if (Atomics.compareExchange(i32, epochIndex, epoch, (epoch + 1) | 0) !== epoch) return RACED;
  // Rounded up, so that the next epoch is measured as no longer than it really was.
  if (minMs > 0) Atomics.store(i32, gpWord(flavor, G_LAST_ADVANCE), Math.ceil(arenaNowMs(birthMs)) | 0);
  return ADVANCED;
}
