/**
 * The shared map's index: a chained hash table in pages of its own whose entries are slab units
 * holding a variable-length key and the first bytes of the value (src/shared-map.ts lays out
 * the value). A published entry never changes except its `next` and reference words; a `set` of
 * an existing key builds a new entry and puts it **in the old one's place with one store** (the
 * word that pointed to the old entry now points to the new one, whose `next` is the old one's),
 * so a lookup walking the chain meets exactly one of them — the old or the new value, never a
 * miss. The kernel's hash map (src/hash-map.ts, `htab_map_update_elem`) links the new element at
 * the head and then unlinks the old one, and a lookup already past the head then finds neither;
 * BPF programs accept that, a cache user cannot. That order is kept here behind
 * `faults.linkThenUnlink` only to prove the miss test detects it (test/shared-map-overwrite.test.ts).
 *
 * ```
 * region: | header (64 words) | per-CPU counters [cpus] (16 words each) | buckets [n]: head, lock |
 * entry:  | next | hash | key meta | value meta | tail | head bytes | expires | referenced | key (padded to 4) | value head … |
 * ```
 *
 * Who may call: `SharedTable.create` any thread holding the arena; a `SharedTable` view only the
 * thread owning its CPU. `find` only inside the CPU's `readLock()`; `put` and `remove` in or out
 * of a section.
 *
 * Shared words and who owns them:
 * - header words: written once by `create` before the magic, then read-only; the entry count
 *   and bytes (Atomics.add by writers, after their store: a reader of `size` sees a recent value).
 * - per-CPU counters (hits, misses, evictions, expired): written plainly by their CPU's owner
 *   only, read by anyone (aligned 32-bit words cannot tear: a recent value).
 * - bucket lock: a robust mutex (src/sync.ts), so crash recovery releases it
 *   (`recoverTableLocks`); it guards every write to the bucket's chain words.
 * - chain words: written with one Atomics store each under the lock — insert (head), replace
 *   (the link to the old entry), delete (the link to the removed entry) — after the new entry's
 *   fields are written, so the store publishes them; every state between two stores is a sound
 *   chain, so a thread killed under the lock leaves nothing to repair. Readers load chain words
 *   with Atomics (a JIT must not keep a stale head across a restart) and an entry's other words
 *   plainly: a pointer load then loads through it are ordered on x86 (TSO) and by the address
 *   dependency on arm64 (the kernel's rcu_dereference argument).
 * - an entry replaced or removed is freed by its writer with `freeRcu` (src/shared-map.ts): a
 *   reader inside its section that still stands on it keeps reading valid, unchanged bytes, and
 *   its `next` still leads into the chain (it may lead to entries removed since, equally kept).
 *   So no nulls markers are needed: a chain ends with 0, and a walk never meets a reused unit.
 * - the referenced word (CLOCK bit) is set plainly by readers and changed by the evicting hand
 *   under the bucket's lock; a lost update only changes which entry is evicted.
 */
import type { CpuHandle } from '../cpu/cpu.js';
import { PageAllocator } from '../memory/page-allocator.js';
import { type ArenaRef, arenaBuffer } from '../shm/arena-ref.js';
import { fail } from '../shm/errors.js';
import { readLayout } from '../shm/layout.js';
import {
  joinStructureChain,
  type StructureRecoverer,
  type StructureRecovery,
} from '../shm/structure-chain.js';
import { mutexRecover, robustHolder, robustLock, robustUnlock } from '../shm/sync.js';
import { checkInteger } from './arguments.js';
import type { KeyCodec } from './key-codec.js';

/** Entry words (word offsets from the entry's pointer). */
export const E_NEXT = 0;
export const E_HASH = 1;
/** key length | kind << 16 (src/key-codec.ts). */
export const E_KEY_META = 2;
/** value length << 3 | value kind << 1 | in a pack block. */
export const E_VALUE_META = 3;
/** The unit holding the rest of the value, or the pack block holding all of it; 0 for none. */
export const E_TAIL = 4;
/** Value bytes stored in the entry itself. */
export const E_HEAD_BYTES = 5;
/** Expiry time in ms since the map's time base (wrapping compare), 0 for none. */
export const E_EXPIRES = 6;
/**
 * CLOCK reference word: 1 when read since the hand last passed (REF_READ), 0 when not, 2 while
 * the hand, staying in the bucket to take several entries, has spared it in this visit
 * (REF_SPARED: it becomes 0 when the hand leaves the bucket).
 */
export const E_REFERENCED = 7;
export const REF_READ = 1;
const REF_SPARED = 2;
/** Bytes of the entry header; the key starts there. */
export const ENTRY_HEADER_BYTES = 32;

const T_MAGIC = 0;
const T_BUCKET_BITS = 1;
const T_SEED = 2;
const T_MAX_ENTRIES = 3;
const T_FLAGS = 4;
const T_BUCKETS = 5;
const T_CPUS = 6;
/** The structure created before this one (the structure chain, src/shm/structure-chain.ts). */
const T_NEXT = 7;
const T_PAGES = 8;
/** Entries now, on a line of their own. */
const T_COUNT = 16;
/**
 * Bytes of units the entries hold (entry + tail units, pack blocks), in 8-byte units so that an
 * int32 counts up to 16 GiB, on a line of their own.
 */
const T_BYTES = 32;
/** The CLOCK hand: the next bucket to look at (Atomics.add by every evicting writer). */
const T_HAND = 48;
const T_PERCPU = 64;
const PC_WORDS = 16;
export const PC_HITS = 0;
export const PC_MISSES = 1;
export const PC_EVICTIONS = 2;
export const PC_EXPIRED = 3;

const TABLE_MAGIC = 0x53544142; // "STAB"
/** A destroyed table's first page, still linked on the structure chain. */
const RETIRED_TABLE_MAGIC = 0x53544158; // "STAX"
const FLAG_LINK_THEN_UNLINK = 1;
const PAGE = 4096;

/** Results of `put`. */
export const PutStatus = Object.freeze({ INSERTED: 1, REPLACED: 2, FULL: -7 } as const);

export interface TableOptions {
  readonly maxEntries: number;
  /**
   * The fault `linkThenUnlink` (percpu-arena/testing): replace as the kernel's hash map does
   * (new entry at the head, then the old one unlinked), the order under which a lookup can miss
   * a present key.
   */
  readonly linkThenUnlink?: boolean;
}

export class SharedTable {
  readonly ref: number;
  readonly maxEntries: number;
  readonly seed: number;
  readonly #i32: Int32Array;
  readonly #cpus: number;
  readonly #mask: number;
  readonly #buckets: number;
  readonly #linkThenUnlink: boolean;
  /** Word of this CPU's counter block. */
  readonly #mine: number;
  /** Set by `put` and `remove`: the entry replaced or removed (0 for none). */
  old = 0;

  private constructor(cpu: CpuHandle, ref: number) {
    const i32 = cpu.i32;
    const t = ref >> 2;
    this.ref = ref;
    this.#i32 = i32;
    this.maxEntries = i32[t + T_MAX_ENTRIES] as number;
    this.seed = i32[t + T_SEED] as number;
    this.#cpus = i32[t + T_CPUS] as number;
    this.#mask = (1 << (i32[t + T_BUCKET_BITS] as number)) - 1;
    this.#buckets = (i32[t + T_BUCKETS] as number) >> 2;
    this.#linkThenUnlink = ((i32[t + T_FLAGS] as number) & FLAG_LINK_THEN_UNLINK) !== 0;
    this.#mine = t + T_PERCPU + cpu.cpu * PC_WORDS;
  }

  /** Lays out a table in pages of its own; throws `EINVAL` / `ENOMEM` with nothing allocated. */
  static create(arena: ArenaRef, options: TableOptions): number {
    const buffer = arenaBuffer(arena, 'SharedMap');
    const maxEntries = checkInteger('SharedMap', 'maxEntries', options.maxEntries, 1, 1 << 24);
    const i32 = new Int32Array(buffer);
    const layout = readLayout(i32);
    const bucketBits = Math.max(1, Math.ceil(Math.log2(maxEntries)));
    const cpus = layout.cpus;
    const bucketsAt = (T_PERCPU + cpus * PC_WORDS) * 4;
    const pages = Math.ceil((bucketsAt + (8 << bucketBits)) / PAGE);
    const region = new PageAllocator(i32, layout, buffer).allocSpan(pages);
    if (region === 0) fail('ENOMEM', `SharedMap: no room in the arena for the table's ${pages} pages`);
    const t = region >> 2;
    // A span may hold a freed structure's words: every word the table reads is set here.
    i32.fill(0, t, t + ((bucketsAt + (8 << bucketBits)) >> 2));
    i32[t + T_BUCKET_BITS] = bucketBits;
    i32[t + T_SEED] = (Math.random() * 0x1_0000_0000) | 0;
    i32[t + T_MAX_ENTRIES] = maxEntries;
    i32[t + T_FLAGS] = options.linkThenUnlink === true ? FLAG_LINK_THEN_UNLINK : 0;
    i32[t + T_BUCKETS] = region + bucketsAt;
    i32[t + T_CPUS] = cpus;
    i32[t + T_PAGES] = pages;
    Atomics.store(i32, t + T_MAGIC, TABLE_MAGIC);
    joinStructureChain(i32, region, T_NEXT);
    return region;
  }

  static open(cpu: CpuHandle, ref: number): SharedTable {
    if (Atomics.load(cpu.i32, ref >> 2) !== TABLE_MAGIC) fail('EBADARENA', 'SharedMap: its table is gone');
    return new SharedTable(cpu, ref);
  }

  /** Entries now (exact when no write runs). */
  get size(): number {
    return Atomics.load(this.#i32, (this.ref >> 2) + T_COUNT);
  }

  /** Bytes of the units and blocks the entries hold now. */
  get bytes(): number {
    return Atomics.load(this.#i32, (this.ref >> 2) + T_BYTES) * 8;
  }

  /** Buckets of the table (a power of two). */
  get buckets(): number {
    return this.#mask + 1;
  }

  /** Pages of the table's region (with its header). */
  get pages(): number {
    return this.#i32[(this.ref >> 2) + T_PAGES] as number;
  }

  /** Adds `delta` (a multiple of 8) to the bytes the entries hold (the writer that linked or freed them). */
  chargeBytes(delta: number): void {
    Atomics.add(this.#i32, (this.ref >> 2) + T_BYTES, delta >> 3);
  }

  /** Adds one to this CPU's counter `which` (PC_HITS, …): a plain store, owner only. */
  count(which: number): void {
    const w = this.#mine + which;
    this.#i32[w] = ((this.#i32[w] as number) + 1) | 0;
  }

  /** Counter `which` summed over the CPUs. */
  counter(which: number): number {
    let n = 0;
    const base = (this.ref >> 2) + T_PERCPU + which;
    for (let c = 0; c < this.#cpus; c++) n += (this.#i32[base + c * PC_WORDS] as number) >>> 0;
    return n;
  }

  /** The entry holding the codec's current key, or 0. Call inside `readLock()`. */
  find(key: KeyCodec): number {
    const i32 = this.#i32;
    const hash = key.hash;
    const meta = key.meta;
    let e = Atomics.load(i32, this.#buckets + ((hash & this.#mask) << 1));
    while (e !== 0) {
      const w = e >> 2;
      if (
        i32[w + E_HASH] === hash &&
        i32[w + E_KEY_META] === meta &&
        key.keyEquals(i32, e + ENTRY_HEADER_BYTES)
      ) {
        return e;
      }
      e = Atomics.load(i32, w);
    }
    return 0;
  }

  /**
   * Publishes `entry` (its hash, key meta and key already written: `writeKey`) for the codec's
   * key: in the place of the entry it replaces (`old` is then that entry, for the caller to
   * free after a grace period), or at the head of its bucket when the key is new and the table
   * has room. `FULL` changes nothing.
   */
  put(key: KeyCodec, entry: number): number {
    const i32 = this.#i32;
    const head = this.#buckets + ((key.hash & this.#mask) << 1);
    this.old = 0;
    robustLock(i32, head + 1);
    let link = head;
    let e = i32[head] as number;
    while (e !== 0 && !this.#holds(e, key)) {
      link = e >> 2;
      e = i32[link] as number;
    }
    if (e !== 0) {
      if (this.#linkThenUnlink) {
        // The kernel's order (the fault): a lookup past the head while both stores land misses.
        i32[entry >> 2] = i32[head] as number;
        Atomics.store(i32, head, entry);
        Atomics.store(i32, link === head ? entry >> 2 : link, i32[e >> 2] as number);
      } else {
        i32[entry >> 2] = i32[e >> 2] as number;
        Atomics.store(i32, link, entry);
      }
      robustUnlock(i32, head + 1);
      this.old = e;
      return PutStatus.REPLACED;
    }
    const count = (this.ref >> 2) + T_COUNT;
    if (Atomics.add(i32, count, 1) >= this.maxEntries) {
      Atomics.sub(i32, count, 1);
      robustUnlock(i32, head + 1);
      return PutStatus.FULL;
    }
    i32[entry >> 2] = i32[head] as number;
    Atomics.store(i32, head, entry);
    robustUnlock(i32, head + 1);
    return PutStatus.INSERTED;
  }

  /** Unlinks the codec's key; true if it was there (`old` is then its entry, for the caller to free). */
  remove(key: KeyCodec): boolean {
    const i32 = this.#i32;
    const head = this.#buckets + ((key.hash & this.#mask) << 1);
    this.old = 0;
    robustLock(i32, head + 1);
    let link = head;
    let e = i32[head] as number;
    while (e !== 0 && !this.#holds(e, key)) {
      link = e >> 2;
      e = i32[link] as number;
    }
    if (e === 0) {
      robustUnlock(i32, head + 1);
      return false;
    }
    Atomics.store(i32, link, i32[e >> 2] as number);
    robustUnlock(i32, head + 1);
    Atomics.sub(i32, (this.ref >> 2) + T_COUNT, 1);
    this.old = e;
    return true;
  }

  /**
   * CLOCK: moves the shared hand bucket by bucket (one Atomics.add each, so writers on several
   * threads sweep different buckets without a global lock) and unlinks the first entry that has
   * expired (`expired(entry)`) or was not read since the hand last passed it, sparing those read
   * since (their second chance). The hand stays in a bucket while it has entries left to look at,
   * so a bucket's unread entries go one per call; the entries it spared meanwhile are marked
   * REF_SPARED, passed over on the following visits, and cleared to 0 when the hand leaves the
   * bucket: a read entry survives the hand's pass and goes only if it is still unread at the next
   * one. Returns the entry unlinked (for the caller to free after a grace period;
   * `expiredVictim` says which kind) or 0 when two sweeps found none.
   */
  evict(expired: (entry: number) => boolean): number {
    const i32 = this.#i32;
    const hand = (this.ref >> 2) + T_HAND;
    const limit = 2 * (this.#mask + 1) + 1;
    this.expiredVictim = false;
    for (let step = 0; step < limit; step++) {
      const at = Atomics.add(i32, hand, 1);
      const head = this.#buckets + ((at & this.#mask) << 1);
      if (Atomics.load(i32, head) === 0) continue;
      robustLock(i32, head + 1);
      // An expired entry anywhere in the bucket first, then CLOCK over the chain.
      let link = head;
      let e = i32[head] as number;
      while (e !== 0 && !expired(e)) {
        link = e >> 2;
        e = i32[link] as number;
      }
      if (e !== 0) {
        this.expiredVictim = true;
      } else {
        link = head;
        e = i32[head] as number;
        for (; e !== 0; link = e >> 2, e = i32[link] as number) {
          const ref = (e >> 2) + E_REFERENCED;
          if (i32[ref] === 0) break;
          if (i32[ref] === REF_READ) i32[ref] = REF_SPARED;
        }
      }
      if (e !== 0) {
        const next = i32[e >> 2] as number;
        Atomics.store(i32, link, next);
        Atomics.sub(i32, (this.ref >> 2) + T_COUNT, 1);
        // Entries after this one: the next eviction looks here again (unless another writer's
        // hand moved on meanwhile, which leaves the spared marks for the hand's next visit).
        const stay = next !== 0 && Atomics.compareExchange(i32, hand, (at + 1) | 0, at) === ((at + 1) | 0);
        if (!stay) this.#endVisit(head);
        robustUnlock(i32, head + 1);
        return e;
      }
      // Every entry read since the hand's last pass: spared, and the hand moves on.
      this.#endVisit(head);
      robustUnlock(i32, head + 1);
    }
    return 0;
  }

  /** The hand leaves bucket `head` (its lock held): what it spared is unread from now on. */
  #endVisit(head: number): void {
    const i32 = this.#i32;
    for (let e = i32[head] as number; e !== 0; e = i32[e >> 2] as number) {
      const ref = (e >> 2) + E_REFERENCED;
      if (i32[ref] !== 0) i32[ref] = 0;
    }
  }

  /** Whether the last `evict` took an expired entry (else one not recently read). */
  expiredVictim = false;

  /**
   * Unlinks every entry, bucket by bucket (each chain cut off whole under its lock: a reader
   * walking it goes on over entries freed only after a grace period), and calls `release` with
   * each. Returns how many.
   */
  clear(release: (entry: number) => void): number {
    const i32 = this.#i32;
    let n = 0;
    for (let b = 0; b <= this.#mask; b++) {
      const head = this.#buckets + (b << 1);
      if (Atomics.load(i32, head) === 0) continue;
      robustLock(i32, head + 1);
      let e = i32[head] as number;
      Atomics.store(i32, head, 0);
      robustUnlock(i32, head + 1);
      let cut = 0;
      while (e !== 0) {
        const next = i32[e >> 2] as number;
        release(e);
        cut++;
        e = next;
      }
      Atomics.sub(i32, (this.ref >> 2) + T_COUNT, cut);
      n += cut;
    }
    return n;
  }

  /**
   * Marks the table gone (its pages but the first are about to be freed): the first page stays
   * on the structure chain under RETIRED_TABLE_MAGIC, which crash recovery passes over.
   */
  retire(): void {
    Atomics.store(this.#i32, this.ref >> 2, RETIRED_TABLE_MAGIC);
  }

  /** Writes the codec's key, its hash and meta into a new entry (before `put`). */
  writeKey(key: KeyCodec, entry: number): void {
    const i32 = this.#i32;
    const w = entry >> 2;
    i32[w + E_HASH] = key.hash;
    i32[w + E_KEY_META] = key.meta;
    key.storeKey(i32, entry + ENTRY_HEADER_BYTES);
  }

  /** Calls `visit` with every entry of bucket `b`. Call inside `readLock()`. */
  forEachInBucket(b: number, visit: (entry: number) => void): void {
    const i32 = this.#i32;
    for (let e = Atomics.load(i32, this.#buckets + (b << 1)); e !== 0; e = Atomics.load(i32, e >> 2))
      visit(e);
  }

  #holds(e: number, key: KeyCodec): boolean {
    const i32 = this.#i32;
    const w = e >> 2;
    return (
      i32[w + E_HASH] === key.hash &&
      i32[w + E_KEY_META] === key.meta &&
      key.keyEquals(i32, e + ENTRY_HEADER_BYTES)
    );
  }
}

/**
 * Crash recovery (src/arena/recovery.ts, through `tableRecoverer`): releases every bucket lock of
 * table `ref` that the dead thread held. Each chain store leaves a sound chain, so there is
 * nothing to repair; an entry the thread had replaced or removed but not yet freed leaks
 * (reported by the arena's leak check), and the count may be one off for a write cut between
 * its store and its count.
 */
export function recoverTableLocks(i32: Int32Array, ref: number, deadThreadId: number): StructureRecovery {
  let released = 0;
  const t = ref >> 2;
  const buckets = (i32[t + T_BUCKETS] as number) >> 2;
  const n = 1 << (i32[t + T_BUCKET_BITS] as number);
  for (let b = 0; b < n; b++) {
    const lock = buckets + 2 * b + 1;
    if (robustHolder(i32, lock) === deadThreadId && mutexRecover(i32, lock, deadThreadId, () => {}))
      released++;
  }
  return { released, unlinked: 0 };
}

/** The shared maps' tables on the structure chain (src/structures/recoverers.ts). */
export const tableRecoverer: StructureRecoverer = {
  magic: TABLE_MAGIC,
  name: 'shared-map table',
  nextWord: T_NEXT,
  recover: recoverTableLocks,
};

/** A destroyed table: only its link is left, nothing to recover. */
export const retiredTableRecoverer: StructureRecoverer = {
  magic: RETIRED_TABLE_MAGIC,
  name: 'destroyed shared-map table',
  nextWord: T_NEXT,
  recover: () => ({ released: 0, unlinked: 0 }),
};
