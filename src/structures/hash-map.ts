/**
 * The BPF hash map (kernel/bpf/hashtab.c, non-LRU, non-percpu) in the arena: fixed key and value
 * sizes, `roundup_pow_of_two(maxEntries)` buckets, each a chain head and a lock, chains
 * ended by a "nulls" marker that names their bucket, so that a lock-free lookup which followed
 * a freed and reused element into another chain notices and restarts
 * (hlist_nulls, Documentation/RCU/rculist_nulls.rst).
 *
 * ```
 * region (pages of its own): | header | per-CPU [cpu] | buckets [n]: head, lock | pool (prealloc) |
 * element at ptr:            | next | hash | key (rounded to 8) | value (rounded to 8) |
 * ```
 *
 * Elements come from the map's pre-allocated pool (`prealloc: true`, the kernel's default
 * without BPF_F_NO_PREALLOC: a pcpu_freelist plus one spare "extra" element per CPU for
 * overwrites) or from the arena's allocator, where an updated or deleted element is freed with
 * `cpu.free` exactly as htab_elem_free calls bpf_mem_cache_free: the arena's policy decides when
 * it is reused. Give the map its own fixed-size cache (`fixedCache`, the kernel's per-map
 * `htab->ma`) to reproduce the kernel's type-stable reuse.
 *
 * Who may call: `HashMap.create` any thread holding the arena; `HashMap.open(cpu, ref)` the
 * thread owning `cpu`, and the view only from that thread. `lookup` only inside the CPU's
 * `readLock()` (or `readLockTrace()`); `update` and `delete` in or out of a section, while the
 * handle is attached (they throw `ECLOSED` on a parked or detached one, before taking a lock).
 *
 * Shared words and who owns them:
 * - header words: written once by `create` before the magic is published, then read-only.
 * - bucket lock: a robust mutex of src/shm/sync.ts (its word names the holder, so crash recovery
 *   releases it: `recoverMapLocks`); it guards every write to the bucket's
 *   chain (head word and the `next` words of the elements on it) and the elements' contents
 *   while they are being initialised.
 * - chain words are written with Atomics stores under the lock (a new element is linked at the
 *   head after its fields are written: the store publishes them); readers load them plainly. A
 *   plain load of a pointer and then of the fields it points to is ordered on x86 (TSO) and by
 *   the address dependency on arm64, the same argument as the kernel's rcu_dereference().
 * - per-CPU count delta (percpu_counter): written by its CPU, read by anyone with Atomics; the
 *   global count with Atomics.add.
 * - pool free lists: each CPU's list under its own robust mutex; its head is peeked without the lock
 *   as a hint only (the kernel's READ_ONCE(head->first) in pcpu_freelist_pop).
 *
 * A lookup concurrent with an update of the same key may miss it (return 0 for a present key):
 * the new element is linked at the head before the old one is unlinked, and a walk that was
 * already past the head when the new one landed finds the old one gone (kernel/bpf/hashtab.c
 * has the same window; BPF programs accept it). SharedMap needs old-or-new and has a table of
 * its own (src/shared-table.ts) that replaces in place.
 *
 * What a lookup may see: an element unlinked but not yet reused (it still points into the chain
 * it left: the walk goes on, as in the kernel), or, when the policy reuses at once, an element
 * that became something else: then its `next` leads to another bucket's nulls, or out of range,
 * or around a cycle; each ends the walk and restarts it (counted in `restarts`). The value bytes
 * read through a pointer returned by `lookup` may change under immediate reuse: that is the
 * kernel's documented behaviour and what the use-after-free lab measures.
 */
import type { CpuHandle } from '../cpu/cpu.js';
import { PageAllocator } from '../memory/page-allocator.js';
import { GENERAL_CLASS_COUNT } from '../memory/size-class.js';
import { type ArenaRef, arenaBuffer } from '../shm/arena-ref.js';
import { fail, show } from '../shm/errors.js';
import { CLS_OBJECT_SIZE, classWord, readLayout } from '../shm/layout.js';
import type { HashMapRef, Pointer } from '../shm/refs.js';
import {
  joinStructureChain,
  type StructureRecoverer,
  type StructureRecovery,
} from '../shm/structure-chain.js';
import { mutexRecover, robustHolder, robustLock, robustUnlock } from '../shm/sync.js';
import { checkCpu, checkStructureRef } from './arguments.js';

/** `update` flags (BPF_ANY, BPF_NOEXIST, BPF_EXIST). */
export const UpdateFlag = Object.freeze({ ANY: 0, NOEXIST: 1, EXIST: 2 } as const);
export type UpdateFlag = (typeof UpdateFlag)[keyof typeof UpdateFlag];

/** Results of `update` and `delete`: 0 or the kernel's negative errno. */
export const MapStatus = Object.freeze({
  OK: 0,
  /** EXIST flag and no such key, or delete of a missing key (-ENOENT). */
  NOT_FOUND: -2,
  /** maxEntries reached (-E2BIG). */
  FULL: -7,
  /** The allocator returned 0 (-ENOMEM). */
  NO_MEMORY: -12,
  /** NOEXIST flag and the key exists (-EEXIST). */
  EXISTS: -17,
} as const);
export type MapStatus = (typeof MapStatus)[keyof typeof MapStatus];

/** Options of `HashMap.create`. */
export interface HashMapOptions {
  /** Key bytes, 1..512 (the kernel allows up to MAX_BPF_STACK). */
  readonly keySize: number;
  /** Value bytes, 1..4096 as in the htab-mem bench (the element must fit a slab unit). */
  readonly valueSize: number;
  /** Most entries, 1..2^24; the map has roundup_pow_of_two(maxEntries) buckets. */
  readonly maxEntries: number;
  /**
   * Pre-allocate every element in the map's own region (maxEntries + one extra per CPU) and
   * recycle them through per-CPU free lists, as the kernel does without BPF_F_NO_PREALLOC.
   * @defaultValue false
   */
  readonly prealloc?: boolean;
  /**
   * Allocate elements from the arena's fixed-size cache with this id (`ArenaOptions.fixedSizes`
   * index; its size must be at least `HashMap.elementBytes(keySize, valueSize)`) instead of the
   * general classes: the map's own cache, as the kernel's `htab->ma`.
   */
  readonly fixedCache?: number;
  /** Hash seed (the kernel's random hashrnd). @defaultValue random */
  readonly seed?: number;
}

/** Header words of the map region. */
const M_MAGIC = 0;
const M_KEY_SIZE = 1;
const M_VALUE_SIZE = 2;
const M_MAX_ENTRIES = 3;
const M_BUCKET_BITS = 4;
const M_FLAGS = 5;
/** Fixed cache class + 1, or 0 for the general classes. */
const M_CLASS = 6;
const M_SEED = 7;
const M_NULLS_TAG = 8;
/** Byte offset of the bucket array. */
const M_BUCKETS = 9;
const M_CPUS = 10;
/** The map created before this one (the structure chain, X_STRUCT_CHAIN), 0 for the first. */
const M_NEXT = 11;
/** The global part of the element count, on a line of its own. */
const M_COUNT = 16;
const M_PERCPU = 32;
const HEADER_WORDS = M_PERCPU;
/** Per-CPU block (one cache line): count delta, extra element, pool free list head and its lock. */
const PC_WORDS = 16;
const PC_COUNT = 0;
const PC_EXTRA = 1;
const PC_FREE_HEAD = 2;
const PC_FREE_LOCK = 3;

const MAP_MAGIC = 0x48544142; // "HTAB"
const FLAG_PREALLOC = 1;
/** percpu_counter batch (PERCPU_COUNTER_BATCH in the kernel's htab). */
const COUNT_BATCH = 32;
/** Element header: next, hash. Pool elements have an 8-byte link in front (like a unit header). */
const ELEM_HEADER = 8;
const POOL_LINK = 8;
const MAX_KEY = 512;
const MAX_VALUE = 4096;
const MAX_ENTRIES = 1 << 24;

/** Restarts of one lookup before its chain is declared corrupt. */
const kMaxRestarts = 100_000;

const round8 = (n: number): number => (n + 7) & ~7;

/** murmur3 (32-bit) over the key's words; keys are zero-padded to whole words. */
function hashWords(words: Int32Array, n: number, seed: number): number {
  let h = seed | 0;
  for (let i = 0; i < n; i++) {
    let k = Math.imul(words[i] as number, 0xcc9e2d51);
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
    h ^= k;
    h = (Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) | 0;
  }
  h ^= n << 2;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function checkSize(value: unknown, name: string, max: number): number {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > max) {
    fail('EINVAL', `HashMap: ${name} must be an integer from 1 to ${max}, got ${show(value)}`);
  }
  return value as number;
}

export class HashMap {
  /** Byte offset of the map in its arena: what `open` takes on another thread. */
  readonly ref: HashMapRef;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly prealloc: boolean;
  /** Lookups that walked into another chain (a reused element) and started again. */
  restarts = 0;
  /** Called after every restart of a lookup (tests, and labs that watch reuse). */
  onRestart: (() => void) | undefined;
  /** Whether the last `update` replaced an existing entry (and filled its `previous`). */
  replaced = false;
  /** Whether the last `update` linked its new element (true even if it then threw). */
  published = false;
  readonly #cpu: CpuHandle;
  readonly #i32: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #cpus: number;
  readonly #mask: number;
  readonly #seed: number;
  readonly #tag: number;
  readonly #buckets: number;
  readonly #keyWords: number;
  readonly #valueOffset: number;
  readonly #elemBytes: number;
  /** Fixed cache id, negative for the general classes. */
  readonly #fixedId: number;
  readonly #lo: number;
  readonly #hi: number;
  /** Longest chain a walk follows before it calls the chain corrupt and restarts. */
  readonly #maxSteps: number;
  readonly #count: number;
  /** Word of CPU 0's block in the map header, and of this handle's CPU's. */
  readonly #blocks: number;
  readonly #myBlock: number;
  /** The key of the current call, zero-padded to words. */
  readonly #key: Int32Array;
  readonly #keyBytes: Uint8Array;
  /** Set by #findLocked: the word that points to the element it returned. */
  #link = 0;

  private constructor(cpu: CpuHandle, ref: HashMapRef) {
    const i32 = cpu.i32;
    const m = ref >> 2;
    this.ref = ref;
    this.#cpu = cpu;
    this.#i32 = i32;
    this.#bytes = cpu.bytes;
    this.keySize = i32[m + M_KEY_SIZE] as number;
    this.valueSize = i32[m + M_VALUE_SIZE] as number;
    this.maxEntries = i32[m + M_MAX_ENTRIES] as number;
    this.prealloc = ((i32[m + M_FLAGS] as number) & FLAG_PREALLOC) !== 0;
    this.#cpus = i32[m + M_CPUS] as number;
    this.#mask = (1 << (i32[m + M_BUCKET_BITS] as number)) - 1;
    this.#seed = i32[m + M_SEED] as number;
    this.#tag = i32[m + M_NULLS_TAG] as number;
    this.#buckets = (i32[m + M_BUCKETS] as number) >> 2;
    this.#keyWords = round8(this.keySize) >> 2;
    this.#valueOffset = ELEM_HEADER + round8(this.keySize);
    this.#elemBytes = this.#valueOffset + round8(this.valueSize);
    this.#fixedId = (i32[m + M_CLASS] as number) - 1 - GENERAL_CLASS_COUNT;
    const layout = readLayout(i32);
    this.#lo = layout.pagesBase;
    // The arena's full length, not the buffer's current one: a growable buffer grows under us.
    this.#hi = layout.totalBytes - this.#elemBytes;
    // The count may overshoot maxEntries by one entry per CPU (see #reserveEntry).
    this.#maxSteps = this.maxEntries + this.#cpus + 1;
    this.#count = m + M_COUNT;
    this.#blocks = m + M_PERCPU;
    this.#myBlock = this.#blocks + cpu.cpu * PC_WORDS;
    this.#key = new Int32Array(this.#keyWords);
    this.#keyBytes = new Uint8Array(this.#key.buffer);
  }

  /** Bytes of one element (next, hash, key and value rounded to 8): the size a fixed cache needs. */
  static elementBytes(keySize: number, valueSize: number): number {
    return (
      ELEM_HEADER +
      round8(checkSize(keySize, 'keySize', MAX_KEY)) +
      round8(checkSize(valueSize, 'valueSize', MAX_VALUE))
    );
  }

  /**
   * Lays out a new map in pages of its own (counted in the arena's memory in use) and returns
   * its `ref`. Throws `EINVAL` for bad options and `ENOMEM` when the arena's limit leaves no
   * room for the region; nothing is allocated then (the page allocator counts the limit hit).
   */
  static create(arena: ArenaRef, options: HashMapOptions): HashMapRef {
    const buffer = arenaBuffer(arena, 'HashMap.create');
    if (options === null || typeof options !== 'object') fail('EINVAL', 'HashMap.create needs options');
    const i32 = new Int32Array(buffer);
    const layout = readLayout(i32);
    const elemBytes = HashMap.elementBytes(options.keySize, options.valueSize);
    const maxEntries = checkSize(options.maxEntries, 'maxEntries', MAX_ENTRIES);
    const prealloc = options.prealloc ?? false;
    if (typeof prealloc !== 'boolean') fail('EINVAL', 'HashMap: prealloc must be a boolean');
    let cls = 0;
    if (options.fixedCache !== undefined) {
      const id = options.fixedCache;
      cls = GENERAL_CLASS_COUNT + id;
      if (!Number.isInteger(id) || id < 0 || cls >= layout.classes) {
        fail('EINVAL', `HashMap: fixedCache ${show(id)} is not a fixed-size cache of this arena`);
      }
      const objectSize = i32[classWord(layout, cls) + CLS_OBJECT_SIZE] as number;
      if (objectSize < elemBytes) {
        fail('EINVAL', `HashMap: fixed cache ${id} holds ${objectSize} bytes; an element needs ${elemBytes}`);
      }
    } else if (elemBytes > 4088) {
      fail('EINVAL', `HashMap: an element of ${elemBytes} bytes does not fit a slab unit (4088)`);
    }
    const seed = options.seed ?? (Math.random() * 0x1_0000_0000) | 0;
    if (!Number.isInteger(seed)) fail('EINVAL', 'HashMap: seed must be an integer');

    const bucketBits = Math.ceil(Math.log2(maxEntries));
    const buckets = 1 << bucketBits;
    const cpus = layout.cpus;
    const bucketsAt = (HEADER_WORDS + cpus * PC_WORDS) * 4;
    const poolAt = bucketsAt + buckets * 8;
    const poolElems = prealloc ? maxEntries + cpus : 0;
    const stride = POOL_LINK + elemBytes;
    const bytes = poolAt + poolElems * stride;
    const pages = new PageAllocator(i32, layout, buffer);
    const region = pages.allocSpan(Math.ceil(bytes / 4096));
    if (region === 0) fail('ENOMEM', `HashMap: no room in the arena for the map's ${bytes} bytes`);

    const m = region >> 2;
    i32.fill(0, m, m + HEADER_WORDS + cpus * PC_WORDS);
    i32[m + M_KEY_SIZE] = options.keySize;
    i32[m + M_VALUE_SIZE] = options.valueSize;
    i32[m + M_MAX_ENTRIES] = maxEntries;
    i32[m + M_BUCKET_BITS] = bucketBits;
    i32[m + M_FLAGS] = prealloc ? FLAG_PREALLOC : 0;
    i32[m + M_CLASS] = cls === 0 ? 0 : cls + 1;
    i32[m + M_SEED] = seed;
    // A per-map tag in the nulls markers: a lookup that wandered into another map's chain
    // restarts too (the kernel needs no tag: its elements never leave their map's cache).
    const tag = (Math.random() * 0x4000_0000) | 0;
    i32[m + M_NULLS_TAG] = tag;
    i32[m + M_BUCKETS] = region + bucketsAt;
    i32[m + M_CPUS] = cpus;
    const b0 = (region + bucketsAt) >> 2;
    for (let b = 0; b < buckets; b++) {
      i32[b0 + 2 * b] = nulls(tag, b);
      i32[b0 + 2 * b + 1] = 0;
    }
    if (prealloc) {
      // pcpu_freelist_populate: spread the elements over the CPUs' lists, then give every CPU
      // one extra element for overwrites (alloc_extra_elems).
      const first = region + poolAt + POOL_LINK;
      for (let i = 0; i < poolElems; i++) {
        const ptr = first + i * stride;
        const cpu = i < cpus ? i : i % cpus;
        const pc = m + M_PERCPU + cpu * PC_WORDS;
        if (i < cpus) {
          i32[pc + PC_EXTRA] = ptr;
        } else {
          i32[(ptr - POOL_LINK) >> 2] = i32[pc + PC_FREE_HEAD] as number;
          i32[pc + PC_FREE_HEAD] = ptr;
        }
      }
    }
    Atomics.store(i32, m + M_MAGIC, MAP_MAGIC);
    joinStructureChain(i32, region, M_NEXT);
    return region as HashMapRef;
  }

  /** Opens the map `ref` for `cpu` (on the thread that owns it). Throws `EINVAL` for a bad ref. */
  static open(cpu: CpuHandle, ref: HashMapRef): HashMap {
    checkCpu(cpu, 'HashMap.open');
    checkStructureRef(cpu.i32, ref, MAP_MAGIC, 'HashMap.open', 'map');
    return new HashMap(cpu, ref);
  }

  /**
   * Finds `key` and returns the byte offset of its value in `cpu.bytes`, or 0. Call it inside
   * `readLock()`: the value stays readable until `readUnlock()` under a policy that reuses after
   * a grace period; under immediate reuse it may change under you (the kernel's contract).
   */
  lookup(key: Uint8Array): number {
    this.#cpu.ensureUsable('HashMap.lookup');
    if (!this.#cpu.inReadSection) fail('EINVAL', 'HashMap.lookup: call it inside readLock()');
    const hash = this.#loadKey(key);
    const elem = this.#walk(hash);
    return elem === 0 ? 0 : elem + this.#valueOffset;
  }

  /** Copies the value of `key` into `out` (or a new array) inside its own read-side section. */
  get(key: Uint8Array, out?: Uint8Array): Uint8Array | undefined {
    const cpu = this.#cpu;
    cpu.ensureUsable('HashMap.get');
    this.#checkKey(key);
    if (out !== undefined) this.#checkValueBuffer(out, 'HashMap.get', 'out');
    cpu.readLock();
    try {
      const value = this.lookup(key);
      if (value === 0) return undefined;
      const target = out ?? new Uint8Array(this.valueSize);
      target.set(this.#bytes.subarray(value, value + this.valueSize));
      return target;
    } finally {
      cpu.readUnlock();
    }
  }

  /**
   * Inserts or replaces `key` (htab_map_update_elem): the new element is linked at the head of
   * its chain before the old one is unlinked, so a concurrent lookup finds one of them, and the
   * old one is then freed. Returns a `MapStatus`: `EXISTS` (NOEXIST), `NOT_FOUND` (EXIST),
   * `FULL`, `NO_MEMORY`. With `previous`, the value it replaced is copied into it under the
   * bucket lock (`replaced` says whether there was one): what a caller needs to free what the
   * value pointed to exactly once. Throws `EINVAL` for a key or value of the wrong length, a bad
   * flag or a `previous` shorter than a value, and `ECLOSED` on a handle that cannot write,
   * before anything changes.
   */
  update(
    key: Uint8Array,
    value: Uint8Array,
    flags: UpdateFlag = UpdateFlag.ANY,
    previous?: Uint8Array,
  ): MapStatus {
    if (flags !== 0 && flags !== 1 && flags !== 2) fail('EINVAL', `HashMap.update: bad flags ${show(flags)}`);
    if (!(value instanceof Uint8Array) || value.length !== this.valueSize) {
      fail('EINVAL', `HashMap.update: the value must be a Uint8Array of ${this.valueSize} bytes`);
    }
    if (previous !== undefined) this.#checkValueBuffer(previous, 'HashMap.update', 'previous');
    const hash = this.#loadKey(key);
    this.#cpu.ensureUsable('HashMap.update');
    const i32 = this.#i32;
    const head = this.#buckets + ((hash & this.#mask) << 1);
    robustLock(i32, head + 1);
    const old = this.#findLocked(head, hash);
    const link = this.#link;
    const found = (old & 1) === 0;
    this.replaced = false;
    this.published = false;
    if (found ? flags === UpdateFlag.NOEXIST : flags === UpdateFlag.EXIST) {
      robustUnlock(i32, head + 1);
      return found ? MapStatus.EXISTS : MapStatus.NOT_FOUND;
    }
    let elem: number;
    try {
      elem = found ? this.#allocReplacing() : this.#allocNew();
    } catch (error) {
      // A refill that found the arena closed: leave the bucket as it was.
      robustUnlock(i32, head + 1);
      throw error;
    }
    if (elem <= 0) {
      robustUnlock(i32, head + 1);
      return elem === 0 ? MapStatus.NO_MEMORY : MapStatus.FULL;
    }
    const e = elem >> 2;
    i32[e + 1] = hash;
    const key32 = this.#key;
    for (let i = 0; i < this.#keyWords; i++) i32[e + 2 + i] = key32[i] as number;
    this.#writeValue(elem + this.#valueOffset, value);
    i32[e] = i32[head] as number;
    Atomics.store(i32, head, elem);
    this.published = true;
    if (found) {
      // The value it replaces, read under the lock: no other update can free it meanwhile.
      if (previous) this.#readValue(old, previous);
      this.replaced = true;
      // hlist_nulls_del_rcu: the old element keeps its `next`, so a lookup standing on it walks on.
      Atomics.store(i32, link === head ? e : link, i32[old >> 2] as number);
      // alloc_htab_elem's swap, done last: the old element becomes this CPU's extra only once it
      // is off the chain (crash recovery mends a swap cut before this store).
      if (this.prealloc) i32[this.#myBlock + PC_EXTRA] = old;
    }
    robustUnlock(i32, head + 1);
    if (found && !this.prealloc) this.#cpu.free(old as Pointer);
    return MapStatus.OK;
  }

  /**
   * Removes `key` and frees its element; `NOT_FOUND` if absent. With `previous`, the removed
   * value is copied into it first (under the bucket lock). Throws `EINVAL` for a bad key or a
   * `previous` shorter than a value, `ECLOSED` on a handle that cannot write.
   */
  delete(key: Uint8Array, previous?: Uint8Array): MapStatus {
    if (previous !== undefined) this.#checkValueBuffer(previous, 'HashMap.delete', 'previous');
    const hash = this.#loadKey(key);
    this.#cpu.ensureUsable('HashMap.delete');
    const i32 = this.#i32;
    const head = this.#buckets + ((hash & this.#mask) << 1);
    robustLock(i32, head + 1);
    const elem = this.#findLocked(head, hash);
    if ((elem & 1) !== 0) {
      robustUnlock(i32, head + 1);
      return MapStatus.NOT_FOUND;
    }
    if (previous) this.#readValue(elem, previous);
    Atomics.store(i32, this.#link, i32[elem >> 2] as number);
    robustUnlock(i32, head + 1);
    this.#bumpCount(-1);
    if (this.prealloc) this.#poolPush(elem);
    else this.#cpu.free(elem as Pointer);
    return MapStatus.OK;
  }

  /** Entries now (exact when no update or delete runs; the kernel's count is as approximate). */
  get size(): number {
    this.#cpu.ensureUsable('HashMap.size');
    const i32 = this.#i32;
    let n = Atomics.load(i32, this.#count);
    for (let c = 0; c < this.#cpus; c++) n += Atomics.load(i32, this.#blocks + c * PC_WORDS + PC_COUNT);
    return n;
  }

  /** A copy of every key, read inside one read-side section (a snapshot only if nothing changes). */
  keys(): Uint8Array[] {
    const keys: Uint8Array[] = [];
    const i32 = this.#i32;
    const cpu = this.#cpu;
    cpu.ensureUsable('HashMap.keys');
    cpu.readLock();
    try {
      for (let b = 0; b <= this.#mask; b++) {
        let elem = i32[this.#buckets + (b << 1)] as number;
        let steps = 0;
        while ((elem & 1) === 0 && this.#inRange(elem) && steps++ < this.#maxSteps) {
          const at = elem + ELEM_HEADER;
          keys.push(this.#bytes.slice(at, at + this.keySize));
          elem = i32[elem >> 2] as number;
        }
      }
    } finally {
      cpu.readUnlock();
    }
    return keys;
  }

  /** EINVAL unless `buffer` is a Uint8Array that holds a whole value. */
  #checkValueBuffer(buffer: unknown, call: string, name: string): void {
    if (!(buffer instanceof Uint8Array) || buffer.length < this.valueSize) {
      fail('EINVAL', `${call}: ${name} must be a Uint8Array of at least ${this.valueSize} bytes`);
    }
  }

  /** EINVAL unless `key` is a Uint8Array of the map's key size. */
  #checkKey(key: unknown): void {
    if (!(key instanceof Uint8Array) || key.length !== this.keySize) {
      fail('EINVAL', `HashMap: the key must be a Uint8Array of ${this.keySize} bytes`);
    }
  }

  /** Copies `key` into the scratch words and returns its hash. */
  #loadKey(key: Uint8Array): number {
    this.#checkKey(key);
    // The padding bytes after the key are never written, so they stay zero. Short keys are
    // copied by a loop: a native set() call cost more than the rest of the hash (measured).
    const scratch = this.#keyBytes;
    const n = key.length;
    if (n <= 32) {
      for (let i = 0; i < n; i++) scratch[i] = key[i] as number;
    } else {
      scratch.set(key);
    }
    return hashWords(this.#key, this.#keyWords, this.#seed);
  }

  /**
   * The walk of an updater holding bucket `head`'s lock: the element with the current key, or
   * the chain's nulls marker; `#link` is then the word that points to it. A chain longer than
   * the map can be is corrupt (a unit handed out twice): the lock is released and EBADARENA
   * thrown rather than looping.
   */
  #findLocked(head: number, hash: number): number {
    const i32 = this.#i32;
    let link = head;
    let elem = i32[head] as number;
    let steps = 0;
    while ((elem & 1) === 0 && !this.#matches(elem, hash)) {
      if (++steps > this.#maxSteps || !this.#inRange(elem)) {
        robustUnlock(i32, head + 1);
        fail('EBADARENA', 'HashMap: a bucket chain is corrupt (was an element handed out twice?)');
      }
      link = elem >> 2;
      elem = i32[link] as number;
    }
    this.#link = link;
    return elem;
  }

  #matches(elem: number, hash: number): boolean {
    const i32 = this.#i32;
    const e = elem >> 2;
    if (i32[e + 1] !== hash) return false;
    const key32 = this.#key;
    for (let i = 0; i < this.#keyWords; i++) if (i32[e + 2 + i] !== key32[i]) return false;
    return true;
  }

  #inRange(elem: number): boolean {
    return (elem & 7) === 0 && elem >= this.#lo && elem <= this.#hi;
  }

  /** The lock-free walk of __htab_map_lookup_elem with its nulls check; the element or 0. */
  #walk(hash: number): number {
    const i32 = this.#i32;
    const bucket = hash & this.#mask;
    const head = this.#buckets + (bucket << 1);
    const end = nulls(this.#tag, bucket);
    for (let attempt = 0; ; attempt++) {
      // Atomics loads (READ_ONCE): the JIT may keep plain loads of the same words across a
      // restart, which would then walk what the first attempt saw (the qp-trie's torture run
      // found lookups restarting on stale pointers that way). On x86 they are plain moves.
      let elem = Atomics.load(i32, head);
      let steps = 0;
      while ((elem & 1) === 0) {
        if (!this.#inRange(elem) || ++steps > this.#maxSteps) break;
        if (this.#matches(elem, hash)) return elem;
        elem = Atomics.load(i32, elem >> 2);
      }
      if (elem === end) return 0;
      this.restarts++;
      this.onRestart?.();
      // Reuse under a reader ends with the writer's next store; a walk that never ends is a
      // corrupt chain (a cycle), not a race.
      if (attempt >= kMaxRestarts) fail('EBADARENA', 'HashMap: a bucket chain is corrupt (it never ends)');
    }
  }

  #readValue(elem: number, into: Uint8Array): void {
    const at = elem + this.#valueOffset;
    into.set(this.#bytes.subarray(at, at + Math.min(this.valueSize, into.length)));
  }

  #writeValue(at: number, value: Uint8Array): void {
    const n = value.length;
    if (n <= 32) {
      const bytes = this.#bytes;
      for (let i = 0; i < n; i++) bytes[at + i] = value[i] as number;
    } else {
      this.#bytes.set(value, at);
    }
  }

  /** An element for a new key: -1 when the map is full, 0 when memory is out. */
  #allocNew(): number {
    if (this.prealloc) {
      const elem = this.#poolPop();
      if (elem === 0) return -1;
      this.#bumpCount(1);
      return elem;
    }
    if (!this.#reserveEntry()) return -1;
    let elem = 0;
    try {
      elem = this.#allocElement();
    } finally {
      if (elem === 0) this.#bumpCount(-1);
    }
    return elem;
  }

  /** One element from the map's fixed-size cache, or from the general classes; 0 if none. */
  #allocElement(): number {
    return this.#fixedId >= 0 ? this.#cpu.allocFixed(this.#fixedId) : this.#cpu.alloc(this.#elemBytes);
  }

  /**
   * An element to replace an entry: from the allocator, or under prealloc this CPU's extra
   * element, which the replaced one becomes once it is unlinked (alloc_htab_elem's swap: it is
   * reused by this CPU's next overwrite).
   */
  #allocReplacing(): number {
    if (!this.prealloc) {
      return this.#allocElement();
    }
    const extra = this.#i32[this.#myBlock + PC_EXTRA] as number;
    // No extra (crash recovery took back one that was linked): a free element, or full.
    if (extra === 0) return this.#poolPop() || -1;
    return extra;
  }

  /** inc_elem_count: one more entry unless that passes maxEntries; false when full. */
  #reserveEntry(): boolean {
    const estimate = Atomics.load(this.#i32, this.#count) + (this.#i32[this.#myBlock + PC_COUNT] as number);
    // Sum every CPU's delta only when the cheap estimate is within their slack of the limit.
    if (estimate >= this.maxEntries - COUNT_BATCH * this.#cpus && this.size >= this.maxEntries) return false;
    this.#bumpCount(1);
    return true;
  }

  /** percpu_counter_add_batch: a CPU-local delta, folded into the global word every 32. */
  #bumpCount(delta: number): void {
    const i32 = this.#i32;
    const mine = this.#myBlock + PC_COUNT;
    const local = (i32[mine] as number) + delta;
    if (local >= COUNT_BATCH || local <= -COUNT_BATCH) {
      // Clear the local part first: a concurrent `size` then undercounts for a moment, which
      // the slack of #reserveEntry covers, rather than counting the batch twice.
      Atomics.store(i32, mine, 0);
      Atomics.add(i32, this.#count, local);
    } else {
      Atomics.store(i32, mine, local);
    }
  }

  /** pcpu_freelist_pop: this CPU's list first, then the others in turn. */
  #poolPop(): number {
    const i32 = this.#i32;
    const me = this.#cpu.cpu;
    for (let i = 0; i < this.#cpus; i++) {
      const pc = this.#blocks + ((me + i) % this.#cpus) * PC_WORDS;
      if (i32[pc + PC_FREE_HEAD] === 0) continue;
      robustLock(i32, pc + PC_FREE_LOCK);
      const elem = i32[pc + PC_FREE_HEAD] as number;
      if (elem !== 0) i32[pc + PC_FREE_HEAD] = i32[(elem - POOL_LINK) >> 2] as number;
      robustUnlock(i32, pc + PC_FREE_LOCK);
      if (elem !== 0) return elem;
    }
    return 0;
  }

  /** pcpu_freelist_push onto this CPU's list. */
  #poolPush(elem: number): void {
    const i32 = this.#i32;
    const pc = this.#myBlock;
    robustLock(i32, pc + PC_FREE_LOCK);
    i32[(elem - POOL_LINK) >> 2] = i32[pc + PC_FREE_HEAD] as number;
    i32[pc + PC_FREE_HEAD] = elem;
    robustUnlock(i32, pc + PC_FREE_LOCK);
  }
}

/**
 * Crash recovery (src/arena/recovery.ts, through `mapRecoverer`): releases every bucket and pool
 * lock of map `ref` whose word names the dead thread. A thread killed inside `update` may have linked the new element at the
 * head and not yet unlinked the old one: the bucket's chain is walked first and a second element
 * with a key already seen is unlinked (it leaks: no CPU is there to free it; counted in the
 * return value's `unlinked`). A pool list cut inside a push loses the element pushed (a leak of
 * one element). In a pre-allocated map, an overwrite cut before its swap leaves the CPU's extra
 * element linked: the copy it replaced becomes the extra instead (or none: the CPU's next
 * overwrite then takes a free element). Returns the locks released and the elements unlinked.
 */
export function recoverMapLocks(i32: Int32Array, ref: number, deadThreadId: number): StructureRecovery {
  let released = 0;
  let unlinked = 0;
  const m = ref >> 2;
  const keyWords = round8(i32[m + M_KEY_SIZE] as number) >> 2;
  const buckets = (i32[m + M_BUCKETS] as number) >> 2;
  const count = 1 << (i32[m + M_BUCKET_BITS] as number);
  const maxSteps = (i32[m + M_MAX_ENTRIES] as number) + (i32[m + M_CPUS] as number) + 1;
  const sameKey = (a: number, b: number): boolean => {
    // Words 1.. : the hash, then the key.
    for (let w = 1; w <= keyWords + 1; w++) if (i32[(a >> 2) + w] !== i32[(b >> 2) + w]) return false;
    return true;
  };
  for (let b = 0; b < count; b++) {
    const head = buckets + 2 * b;
    // Most buckets are not held: test the word before building a repair (maps have millions).
    if (robustHolder(i32, head + 1) !== deadThreadId) continue;
    const repair = (): void => {
      const seen: number[] = [];
      const dropped: number[] = [];
      let link = head;
      for (let elem = i32[head] as number, steps = 0; (elem & 1) === 0 && steps < maxSteps; steps++) {
        const next = i32[elem >> 2] as number;
        if (seen.some((other) => sameKey(other, elem))) {
          Atomics.store(i32, link, next);
          dropped.push(elem);
        } else {
          seen.push(elem);
          link = elem >> 2;
        }
        elem = next;
      }
      if (((i32[m + M_FLAGS] as number) & FLAG_PREALLOC) !== 0) {
        // An overwrite cut before its swap: the CPU's extra is the element it linked. The copy
        // it replaced (unlinked above) becomes the extra; without one, the CPU has none and its
        // next overwrite takes a free element.
        for (let c = 0; c < (i32[m + M_CPUS] as number); c++) {
          const extra = m + M_PERCPU + c * PC_WORDS + PC_EXTRA;
          if (seen.includes(i32[extra] as number)) i32[extra] = dropped.pop() ?? 0;
        }
      }
      unlinked += dropped.length;
    };
    if (mutexRecover(i32, head + 1, deadThreadId, repair)) released++;
  }
  for (let c = 0; c < (i32[m + M_CPUS] as number); c++) {
    if (mutexRecover(i32, m + M_PERCPU + c * PC_WORDS + PC_FREE_LOCK, deadThreadId, () => {})) released++;
  }
  return { released, unlinked };
}

/** The structure chain's entry for hash maps (src/shm/structure-chain.ts). */
export const mapRecoverer: StructureRecoverer = {
  magic: MAP_MAGIC,
  name: 'hash map',
  nextWord: M_NEXT,
  recover: recoverMapLocks,
};

/** The nulls marker that ends bucket `b`'s chain: odd, so never an element. */
function nulls(tag: number, bucket: number): number {
  return (((tag + bucket) & 0x3fff_ffff) << 1) | 1;
}
