/**
 * The lock-free chain lists the arena shares between threads (the kernel's llist): the CPUs'
 * ttrace and owner-return inboxes (src/cpu/deferred.ts) and the slabs' return stacks (src/memory/slab.ts).
 * A pusher adds a whole chain with a CAS on the head; the taker takes everything with an
 * exchange (llist_del_all) and walks to the end. Nobody pops one unit, so there is no ABA. Each
 * list has a count word that pushers raise *before* they publish, so the taker never subtracts
 * first and a taken chain is never longer than the count: a longer one is a cycle (a unit freed
 * twice at once on two CPUs), which must throw rather than hang the taker.
 *
 * Who may call: any thread (push); the list's one taker (walk). Shared words: the list's head
 * and count words, through Atomics; the links of a pushed chain were written by the pusher
 * before the CAS that publishes them.
 */
import { fail } from './errors.js';

/** llist_add of a chain of `n` units (head … tail) to the list at `headWord` / `countWord`. */
export function llistAdd(
  i32: Int32Array,
  headWord: number,
  countWord: number,
  head: number,
  tail: number,
  n: number,
): void {
  Atomics.add(i32, countWord, n);
  let seen = Atomics.load(i32, headWord);
  for (;;) {
    i32[tail >> 2] = seen;
    const prev = Atomics.compareExchange(i32, headWord, seen, head);
    if (prev === seen) return;
    seen = prev;
  }
}

/**
 * A chain of `count` units linked through header word 0, from `head` to `tail`; head 0 is the
 * empty chain. A function that takes a chain off a list fills one its caller owns (one object
 * per caller, reused: no allocation per call, and no result left in the callee's fields).
 */
export interface Chain {
  head: number;
  tail: number;
  count: number;
}

/** A new empty chain, for a caller to own. */
export function emptyChain(): Chain {
  return { head: 0, tail: 0, count: 0 };
}

/**
 * Walks a chain taken from a list (0-terminated, from `head` ≠ 0) to its end, at most `bound`
 * units (the list's count when it was taken); `end` gets the whole chain. Throws `EBADARENA`
 * naming `what` when the chain is longer.
 */
export function walkTaken(i32: Int32Array, head: number, bound: number, what: string, end: Chain): void {
  let tail = head;
  let n = 1;
  for (let next = i32[head >> 2] as number; next !== 0; next = i32[next >> 2] as number) {
    if (n >= bound) fail('EBADARENA', `${what} is corrupt (a unit freed twice at once?)`);
    tail = next;
    n++;
  }
  end.head = head;
  end.tail = tail;
  end.count = n;
}
