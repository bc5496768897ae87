/**
 * Named wrappers for the shared-word accesses whose meaning the name says better than the
 * Atomics call: `publish` (a release store), `claim` (a CAS that moves a state), `raiseShared`
 * (a monotonic maximum), `readShared`, `addShared`. They are a convenience, not a gate: most
 * modules call `Atomics.*` directly. What makes a word shared is its marking in the memory map
 * (src/shm/layout.ts: `shared` in its record's field list, `X_` in its name), and the rule is that
 * every access to a shared word, wrapped or not, is an Atomics operation.
 *
 * Who may call: any thread, on words the layout marks shared. V8 inlines these; each costs one
 * Atomics operation (a call into the runtime on Node 20, ~10–18 ns).
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
