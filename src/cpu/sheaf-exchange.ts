import type { Slab } from '../memory/slab.js';
import {
  C_ALLOC_SLOWPATH,
  C_ALLOCS,
  C_BARN_PUT,
  C_BARN_PUT_FAIL,
  C_SHEAF_FLUSH,
  C_SHEAF_MAIN,
  C_SHEAF_SPARE,
  SHEAF_OBJECTS,
  SHEAF_SIZE,
  UNIT_ALLOCATED,
  UNIT_GENERATION_STEP,
  UNIT_STATE_MASK,
} from '../shm/layout.js';
import type { Chain } from '../shm/llist.js';
import { BARN_E2BIG, BARN_NO_EMPTY, type Barn } from './barn.js';
import { flushSheafToSlab } from './sheaf-offline.js';

export class SheafExchange {
  readonly #i32: Int32Array;
  readonly #barn: Barn;
  readonly #slab: Slab;
  /** Sheaf capacity per class. */
  readonly #capacity: Int32Array;
  /** Scratch chains of refill and slabOne. */
  readonly #chain: Chain = { head: 0, tail: 0, count: 0 };
  readonly #one: Chain = { head: 0, tail: 0, count: 0 };

  constructor(i32: Int32Array, barn: Barn, slab: Slab, capacity: Int32Array) {
    this.#i32 = i32;
    this.#barn = barn;
    this.#slab = slab;
    this.#capacity = capacity;
  }

  /** refill_sheaf: fills the empty sheaf `sheaf` from the slab; returns the objects it got. */
  refill(cls: number, sheaf: number): number {
    const i32 = this.#i32;
    const want = this.#capacity[cls] as number;
    const chain = this.#chain;
    this.#slab.takeBatch(cls, want, chain);
    let n = 0;
    for (let unit = chain.head; n < chain.count; n++) {
      i32[sheaf + SHEAF_OBJECTS + n] = unit;
      unit = i32[unit >> 2] as number;
    }
    i32[sheaf + SHEAF_SIZE] = n;
    return n;
  }

  /** __pcs_replace_full_main: returns a main sheaf with room for one more object. */
  replaceFullMain(cls: number, c: number): number {
    const i32 = this.#i32;
    const barn = this.#barn;
    const main = i32[c + C_SHEAF_MAIN] as number;
    const spare = i32[c + C_SHEAF_SPARE] as number;
    const cap = this.#capacity[cls] as number;
    if (spare === 0) {
      const empty = barn.getEmpty(cls) || barn.takeUnused(cls);
      if (empty !== 0) {
        i32[c + C_SHEAF_SPARE] = main;
        i32[c + C_SHEAF_MAIN] = empty;
        return empty;
      }
      this.flushMain(cls, c, main);
      return main;
    }
    if ((i32[spare + SHEAF_SIZE] as number) < cap) {
      i32[c + C_SHEAF_MAIN] = spare;
      i32[c + C_SHEAF_SPARE] = main;
      return spare;
    }
    // Let go of main before the barn may take it: a thread killed inside the exchange (V8
    // stops a terminated thread at a function entry, such as the lock's) must not leave its
    // cache word naming a sheaf the barn holds, which recovery would flush while the barn
    // hands it out again (seen in the crash test: a unit handed out twice). Killed there, the
    // CPU loses the sheaf it was given instead: a leak, which recovery tolerates.
    i32[c + C_SHEAF_MAIN] = 0;
    const result = barn.replaceFull(cls, main);
    if (result > 0) {
      i32[c + C_BARN_PUT] = (i32[c + C_BARN_PUT] as number) + 1;
      i32[c + C_SHEAF_MAIN] = result;
      return result;
    }
    i32[c + C_SHEAF_MAIN] = main;
    if (result === BARN_E2BIG) {
      // The barn is full of full sheaves: flush the spare to the slab and use it as main.
      i32[c + C_BARN_PUT_FAIL] = (i32[c + C_BARN_PUT_FAIL] as number) + 1;
      i32[c + C_SHEAF_FLUSH] = (i32[c + C_SHEAF_FLUSH] as number) + cap;
      this.flushToSlab(cls, spare);
      i32[c + C_SHEAF_MAIN] = spare;
      i32[c + C_SHEAF_SPARE] = main;
      return spare;
    }
    // BARN_NO_EMPTY: allocate an empty sheaf and put the full main in the barn.
    const empty = result === BARN_NO_EMPTY ? barn.takeUnused(cls) : 0;
    if (empty !== 0) {
      i32[c + C_SHEAF_MAIN] = 0; // as above
      if (barn.putFull(cls, main)) {
        i32[c + C_BARN_PUT] = (i32[c + C_BARN_PUT] as number) + 1;
        i32[c + C_SHEAF_MAIN] = empty;
        return empty;
      }
      i32[c + C_SHEAF_MAIN] = main;
      barn.putUnused(cls, empty);
    }
    this.flushMain(cls, c, main);
    return main;
  }

  /** One unit of `cls` from the slab without waiting for its row (0 if busy or at the limit), handed out. */
  slabOne(cls: number, c: number, hintBase: number): number {
    const i32 = this.#i32;
    const chain = this.#one;
    this.#slab.takeBatch(cls, 1, chain, false);
    if (chain.count === 0) return 0;
    const h = chain.head >> 2;
    i32[h] = hintBase | cls;
    i32[h + 1] = (((i32[h + 1] as number) + UNIT_GENERATION_STEP) & ~UNIT_STATE_MASK) | UNIT_ALLOCATED;
    i32[c + C_ALLOCS] = (i32[c + C_ALLOCS] as number) + 1;
    i32[c + C_ALLOC_SLOWPATH] = (i32[c + C_ALLOC_SLOWPATH] as number) + 1;
    return chain.head + 8;
  }

  /**
   * __pcs_replace_full_main with allow_spin false (kfree_nolock): swap in a spare with room,
   * or a barn empty sheaf (spare = main), or exchange main for a barn empty sheaf, each under
   * a trylock of the barn. It never flushes a sheaf or allocates one ("sheaf_flush_unused()
   * doesn't support !allow_spin"): 0 then, and the free is deferred.
   */
  replaceFullMainNolock(cls: number, c: number): number {
    const i32 = this.#i32;
    const main = i32[c + C_SHEAF_MAIN] as number;
    const spare = i32[c + C_SHEAF_SPARE] as number;
    if (spare === 0) {
      const empty = this.#barn.getEmpty(cls, false);
      if (empty === 0) return 0;
      i32[c + C_SHEAF_SPARE] = main;
      i32[c + C_SHEAF_MAIN] = empty;
      return empty;
    }
    if ((i32[spare + SHEAF_SIZE] as number) < (this.#capacity[cls] as number)) {
      i32[c + C_SHEAF_MAIN] = spare;
      i32[c + C_SHEAF_SPARE] = main;
      return spare;
    }
    i32[c + C_SHEAF_MAIN] = 0; // as in replaceFullMain
    const result = this.#barn.replaceFull(cls, main, false);
    if (result > 0) {
      i32[c + C_BARN_PUT] = (i32[c + C_BARN_PUT] as number) + 1;
      i32[c + C_SHEAF_MAIN] = result;
      return result;
    }
    i32[c + C_SHEAF_MAIN] = main;
    return 0;
  }

  /** sheaf_flush_main: the whole main sheaf to the slab (counted as SHEAF_FLUSH). */
  flushMain(cls: number, c: number, main: number): void {
    const i32 = this.#i32;
    i32[c + C_SHEAF_FLUSH] = (i32[c + C_SHEAF_FLUSH] as number) + (i32[main + SHEAF_SIZE] as number);
    this.flushToSlab(cls, main);
  }

  flushToSlab(cls: number, sheaf: number): void {
    flushSheafToSlab(this.#i32, this.#slab, cls, sheaf);
  }
}
