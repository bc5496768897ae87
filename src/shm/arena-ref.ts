/**
 * The arena as every layer names it: `SharedArena`, the structured-cloneable object a thread
 * passes to another so that it can attach (`arena.shared`), and `ArenaRef`, what a structure's
 * `create`/`open` accepts: that object or anything that carries it (the `Arena` façade). Both are
 * structural, so the layers below the façade (CPU handles, structures) name an arena without
 * importing it.
 *
 * Who may call: anyone; types and one pure check.
 */
import { fail } from './errors.js';
import { X_CLOSED } from './layout.js';

/**
 * Faults a test may inject to prove that its oracle detects them; never set in normal use. Set
 * them with `createArenaWithFaults` from `percpu-arena/testing`; they travel in `arena.shared`
 * to every thread.
 */
export interface ArenaFaults {
  /**
   * A slow-path allocation returns the unit the previous slow-path allocation of that class
   * returned, if it is still allocated: a second holder for a live unit, the use-after-free an
   * allocator bug would cause, without corrupting the arena's own lists.
   */
  readonly handOutTwice?: boolean;
  /**
   * A deferred batch counts as past its GP one epoch after its seal instead of two: the
   * off-by-one the proof in src/epoch/grace-period.ts rules out, which lets a reader pinned at
   * the seal's epoch see the unit reused.
   */
  readonly oneEpochGp?: boolean;
  /**
   * Shared maps created in the arena overwrite in the kernel hash map's order (the new entry
   * linked at the bucket's head, then the old one unlinked), under which a concurrent `get` can
   * miss a present key: what the overwrite test must catch (src/structures/shared-table.ts).
   */
  readonly linkThenUnlink?: boolean;
  /**
   * A CPU moving a chain to the slab stops forever (`Atomics.wait`) with the chain in transit,
   * in no list (src/cpu/transit.ts): where a test terminates the thread to check that recovery
   * finishes the move.
   */
  readonly stallInTransit?: boolean;
}

/** The names of `ArenaFaults`, for the check of `createArenaWithFaults`. */
export const FAULT_NAMES = [
  'handOutTwice',
  'oneEpochGp',
  'linkThenUnlink',
  'stallInTransit',
] as const satisfies readonly (keyof ArenaFaults)[];

/** What `arena.shared` holds: everything another thread needs to attach. Structured-cloneable. */
export interface SharedArena {
  readonly buffer: SharedArrayBuffer;
  /** Test-only fault injection, carried to every thread (see `ArenaFaults`). */
  readonly faults?: ArenaFaults;
}

/** An arena as a structure's `create`/`open` takes it: `arena.shared`, or the `Arena` itself. */
export type ArenaRef = SharedArena | { readonly shared: SharedArena };

/**
 * The SharedArrayBuffer of an open `ArenaRef`; EINVAL naming `owner` for anything else, ECLOSED
 * once the arena is closed (nothing may be created in it then).
 */
export function arenaBuffer(arena: ArenaRef, owner: string): SharedArrayBuffer {
  const buffer = (arena as { shared?: SharedArena })?.shared?.buffer ?? (arena as SharedArena)?.buffer;
  if (!(buffer instanceof SharedArrayBuffer)) fail('EINVAL', `${owner} needs an arena (or arena.shared)`);
  if (buffer.byteLength >= 4 * (X_CLOSED + 1)) checkArenaOpen(new Int32Array(buffer), owner);
  return buffer;
}

/** Throws ECLOSED, naming `call`, once the arena of `i32` is closed. */
export function checkArenaOpen(i32: Int32Array, call: string): void {
  // A plain read: X_CLOSED is written once, by close(); a stale 0 is a call that ran before it.
  if ((i32[X_CLOSED] as number) !== 0) fail('ECLOSED', `${call}: the arena is closed`);
}
