/**
 * The structure chain: every data structure created in an arena (a hash map, a qp-trie, a pack
 * allocator) is a region whose word 0 is its magic, and joins one chain whose head is header word
 * X_STRUCT_CHAIN, each region linking the one created before it. Crash recovery walks the chain
 * and hands each region to the recoverer registered for its magic: the memory map and the
 * recovery code name no data structure, and a chain that holds a magic nobody registered is an
 * error, not a silent skip.
 *
 * Who may call: a structure's `create` (joinStructureChain, once its region is initialised); the
 * arena's recovery (recoverStructures, on the creating thread). Shared words: X_STRUCT_CHAIN
 * (CAS push, Atomics load); a region's link word is written before the CAS publishes the region
 * and never again, so walkers read it plainly after the Atomics load of the head.
 */
import { X_STRUCT_CHAIN } from './layout.js';

/** What a dead thread's recovery found in one structure. */
export interface StructureRecovery {
  /** Robust mutexes of the structure the dead thread held, repaired and released. */
  readonly released: number;
  /** Elements unlinked while repairing (they leak). */
  readonly unlinked: number;
}

/** How recovery repairs one kind of structure. */
export interface StructureRecoverer {
  /** Word 0 of every region of this kind. */
  readonly magic: number;
  /** For messages: "hash map", "qp-trie", ... */
  readonly name: string;
  /** Word index, inside the region, of the link to the region created before it. */
  readonly nextWord: number;
  /** Releases the locks of region `ref` that thread `deadThreadId` held, after repairing them. */
  recover(i32: Int32Array, ref: number, deadThreadId: number): StructureRecovery;
}

/** Recoverers by magic; throws if two share a magic. */
export function recovererTable(
  recoverers: readonly StructureRecoverer[],
): ReadonlyMap<number, StructureRecoverer> {
  const table = new Map<number, StructureRecoverer>();
  for (const r of recoverers) {
    const other = table.get(r.magic);
    if (other)
      throw new Error(`percpu-arena: ${r.name} and ${other.name} share magic 0x${r.magic.toString(16)}`);
    table.set(r.magic, r);
  }
  return table;
}

/**
 * Pushes structure `region` onto the chain, linking the previous head in its word `nextWord`: a
 * CAS push, since structures may be created on any thread. Call it once the structure is fully
 * initialised: it is never unlinked.
 */
export function joinStructureChain(i32: Int32Array, region: number, nextWord: number): void {
  for (let head = Atomics.load(i32, X_STRUCT_CHAIN); ; ) {
    i32[(region >> 2) + nextWord] = head;
    const seen = Atomics.compareExchange(i32, X_STRUCT_CHAIN, head, region);
    if (seen === head) return;
    head = seen;
  }
}

/**
 * Runs each chained region's recoverer for thread `deadThreadId` and sums what they found.
 * Throws when a region's magic has no recoverer in `table`.
 */
export function recoverStructures(
  i32: Int32Array,
  table: ReadonlyMap<number, StructureRecoverer>,
  deadThreadId: number,
): StructureRecovery {
  let released = 0;
  let unlinked = 0;
  for (let ref = Atomics.load(i32, X_STRUCT_CHAIN); ref !== 0; ) {
    const magic = i32[ref >> 2] as number;
    const recoverer = table.get(magic);
    if (recoverer === undefined) {
      throw new Error(
        `percpu-arena recovery: the structure chain holds a region at ${ref} with magic 0x${(magic >>> 0).toString(16)} that no recoverer registered`,
      );
    }
    const found = recoverer.recover(i32, ref, deadThreadId);
    released += found.released;
    unlinked += found.unlinked;
    ref = i32[(ref >> 2) + recoverer.nextWord] as number;
  }
  return { released, unlinked };
}
