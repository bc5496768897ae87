/**
 * Errors of percpu-arena.
 *
 * Misuse (a pointer that is not an allocated unit, a double free, a CPU slot that is already
 * owned, a handle used after `detach()` or `close()`, bad options) throws an {@link ArenaError}
 * whose `code` says which. Running out of memory is not misuse: the allocation hot path returns
 * 0 instead of throwing, as the kernel's allocator returns NULL.
 */

/** The machine-readable codes an {@link ArenaError} carries. */
export type ArenaErrorCode =
  /** An argument is not what the call accepts (bad pointer, double free, bad option value). */
  | 'EINVAL'
  /** The CPU slot is owned by another handle or thread. */
  | 'EBUSY'
  /** The handle was detached, or its arena was closed. */
  | 'ECLOSED'
  /** The shared memory is not an arena of this version. */
  | 'EBADARENA'
  /** The arena's memory limit leaves no room for a structure being created (not the alloc path). */
  | 'ENOMEM'
  /** A wait (barrier, pool start) did not complete in time. */
  | 'ETIMEDOUT'
  /** A generation reference names a unit that was freed since (src/structures/unit-ref.ts). */
  | 'ESTALE'
  /** A write to a sealed block through the normal API (src/structures/pack.ts: use `copyIn`). */
  | 'EPERM';

/** The one error type percpu-arena throws for misuse; `code` is stable, `message` is for people. */
export class ArenaError extends Error {
  readonly code: ArenaErrorCode;

  constructor(code: ArenaErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.name = 'ArenaError';
    this.code = code;
  }
}

/** Throws an {@link ArenaError}; typed `never` so callers read as guards. */
export function fail(code: ArenaErrorCode, message: string): never {
  throw new ArenaError(code, message);
}

/**
 * A caller's value for an error message; never throws (a `String(x)` of an object without a
 * prototype or of a revoked proxy would, and turn a clear EINVAL into a TypeError).
 */
export function show(value: unknown): string {
  try {
    return typeof value === 'string' ? `'${value}'` : String(value);
  } catch {
    return `a value of type ${typeof value}`;
  }
}
