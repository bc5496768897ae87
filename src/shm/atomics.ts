/**
 * The only path to shared words (`X_*` in src/shm/layout.ts) outside the lock primitives of
 * src/shm/sync.ts: small wrappers named for what the access means, so a reader can tell at the call
 * site that a word is shared and why. V8 inlines them; each costs one Atomics operation.
 *
 * Who may call: any thread, on words the layout marks as shared.
 */

/** Reads a shared word (sequentially consistent). */
export function readShared(i32: Int32Array, index: number): number {
  return Atomics.load(i32, index);
}

/** Publishes a value: every plain write made before this call is visible to a thread that reads it. */
export function publish(i32: Int32Array, index: number, value: number): void {
  Atomics.store(i32, index, value);
}

/** Moves a shared word from `expected` to `next`; true if this call made the move. */
export function claim(i32: Int32Array, index: number, expected: number, next: number): boolean {
  return Atomics.compareExchange(i32, index, expected, next) === expected;
}

/** Adds to a shared counter and returns the new value. */
export function addShared(i32: Int32Array, index: number, delta: number): number {
  return Atomics.add(i32, index, delta) + delta;
}

/** Raises a shared maximum to at least `value` (CAS loop; monotonic). */
export function raiseShared(i32: Int32Array, index: number, value: number): void {
  let seen = Atomics.load(i32, index);
  while (value > seen) {
    const prev = Atomics.compareExchange(i32, index, seen, value);
    if (prev === seen) return;
    seen = prev;
  }
}
