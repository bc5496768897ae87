/**
 * SharedMap: the service-level map — string or byte keys, values of any size as bytes, strings
 * or JSON — that every worker of a Node service reads from the arena without copying through
 * `postMessage`. Its index is a table of its own (src/structures/shared-table.ts): one slab unit per entry
 * holding the key's own bytes and the value's first bytes, a second unit for the rest of a
 * value that one unit would fit badly, a block of the arena's pack allocator (src/structures/pack.ts) for
 * a value above a unit (4088 bytes) (src/service/shared-value.ts). Read-side sections are taken inside
 * every call, and values are copied out (or viewed inside `read`'s callback only), so a caller
 * can neither forget a section nor hold memory past one.
 *
 * A `set` of a present key puts a new entry in the old one's place with one store: a `get`
 * concurrent with any number of overwrites returns the old or the new value, never undefined
 * (test/shared-map-overwrite.test.ts shows the kernel's link-then-unlink order missing).
 * Replacing or deleting a value frees its old entry and tail with `freeRcu`, and a pack block
 * through retired slots in the map's header page once the rcu epoch has moved two past its
 * retirement (the arena's proof, src/epoch/grace-period.ts), reaped by any handle's next write or
 * `reclaim()` — so a worker that ends leaves none behind. The map needs a policy that reuses
 * memory only after a GP (`arena`, or any preset but the immediate ones): `create` and `open`
 * refuse the others.
 *
 * Who may call: `SharedMap.create` any thread holding the arena; `SharedMap.open(cpu, ref)` the
 * thread owning the CPU, `SharedMap.open(arena, ref)` any thread (a free CPU slot, once per
 * thread: for piscina tasks and plain workers); the handle only from its thread. After the
 * arena's close, or its CPU's detach or park, every method throws `ECLOSED` before it touches
 * anything (docs/lifecycle.md). Shared words: those
 * of the table and the pack allocator, under their own locks; the header's pack ref (CAS from
 * 0, once) and retired slots (each claimed by CAS to BUSY before it is written or freed, so a
 * block is freed once); entry and value bytes are written before the entry is published (the
 * table's Atomics store) and never written again.
 */
import { attachFree } from '../cpu/attach.js';
import { CpuHandle } from '../cpu/cpu.js';
import { arenaNowMs, isExpired, readBirthMs, readEpoch, requestEpoch } from '../epoch/grace-period.js';
import { decodePolicy } from '../epoch/policy.js';
import { PageAllocator } from '../memory/page-allocator.js';
import { MAX_ALLOC_BYTES } from '../memory/size-class.js';
import { type ArenaRef, arenaBuffer, type SharedArena } from '../shm/arena-ref.js';
import { type ArenaError, fail } from '../shm/errors.js';
import { FLAVOR_RCU, H_POLICY, PAGE_BYTES, readLayout } from '../shm/layout.js';
import type { PackRef, Pointer, SharedMapRef } from '../shm/refs.js';
import { checkCpu, checkInteger, checkStructureRef } from '../structures/arguments.js';
import { decodeKey, KeyCodec, round4 } from '../structures/key-codec.js';
import { PackAllocator } from '../structures/pack.js';
import {
  E_EXPIRES,
  E_HEAD_BYTES,
  E_KEY_META,
  E_REFERENCED,
  E_TAIL,
  E_VALUE_META,
  ENTRY_HEADER_BYTES,
  PC_EVICTIONS,
  PC_EXPIRED,
  PC_HITS,
  PC_MISSES,
  PutStatus,
  REF_READ,
  SharedTable,
} from '../structures/shared-table.js';
import { chargedBytes, copyBytes, decodeValue, encodeValue, IN_PACK, planHead } from './shared-value.js';

/** Options of `SharedMap.create`. */
export interface SharedMapOptions {
  /** Most entries, 1..2^24. */
  readonly maxEntries: number;
  /** Longest key in bytes (UTF-8 for strings), 1..509. @defaultValue 64 */
  readonly maxKeyBytes?: number;
  /** Largest value in bytes (UTF-8 or JSON text for strings and objects), 1..2^28. @defaultValue 1 MiB */
  readonly maxValueBytes?: number;
  /**
   * Most bytes the entries may hold (their units and pack blocks, as `stats().bytes` counts
   * them; the table's own pages are apart), 4096..2^34. Writers on several threads may pass it
   * for a moment by one value each. @defaultValue no limit
   */
  readonly maxBytes?: number;
  /**
   * Make room when `maxEntries` or `maxBytes` would be passed by evicting entries that were not
   * read recently (CLOCK: a reference bit per entry, a hand shared by the writers; expired
   * entries go first), instead of `set` returning false. @defaultValue false
   */
  readonly evict?: boolean;
  /** Time to live of every entry in ms, 1..2^30 (`set`'s `ttlMs` overrides it). @defaultValue none */
  readonly ttlMs?: number;
}

/** Counters of one map, summed over its handles (`SharedMap.stats`). */
export interface SharedMapStats {
  readonly entries: number;
  /** Bytes the entries hold: their units, tail units and pack blocks (rounded to chunks). */
  readonly bytes: number;
  /** Bytes of the table itself (header, per-CPU counters, buckets). */
  readonly tableBytes: number;
  /** Lookups (`get`, `getInto`, `read`) that found their key, and that did not (or found it expired). */
  readonly hits: number;
  readonly misses: number;
  /** Entries removed to make room (`evict`), and entries removed because their TTL had passed. */
  readonly evictions: number;
  readonly expired: number;
}

/** Options of one `set`. */
export interface SharedMapSetOptions {
  /** Time to live of this entry in ms, 1..2^30, or 0 for none (overrides the map's `ttlMs`). */
  readonly ttlMs?: number;
}

/** A key: a string (UTF-8) or bytes; `'a'` and `Uint8Array.of(0x61)` are different keys. */
export type SharedMapKey = string | Uint8Array;
/** A value: bytes, a string, or anything `JSON.stringify` takes (returned parsed). */
export type SharedMapValue = Uint8Array | string | number | boolean | null | object;

const S_MAGIC = 0;
/** The table (src/structures/shared-table.ts). */
const S_MAP = 1;
/** The pack allocator for large values, created by the first large `set` (0 until then). */
const S_PACK = 2;
const S_MAX_KEY = 3;
const S_MAX_VALUE = 4;
/** Retired slots in use (a hint: reapers skip the scan at 0). */
const S_RETIRED_COUNT = 5;
/** maxBytes / 8 (0: no limit), evict (0 / 1), default TTL in ms (0: none). */
const S_MAX_BYTES = 6;
const S_EVICT = 7;
const S_TTL = 8;
/** Retired pack blocks waiting for their GP, shared by every handle: (block, epoch) pairs. */
const S_RETIRED = 16;
const RETIRED_SLOTS = (PAGE_BYTES / 4 - S_RETIRED) / 2;
/** A retired slot being filled or emptied. */
const SLOT_BUSY = -1;
const MAP_MAGIC = 0x534d4150; // "SMAP"

const MAX_KEY = 509;
const MAX_VALUE = 1 << 28;
const MAX_TTL = 2 ** 30;
/** Tries of a `set` that evicts to make room before it gives up (other writers fill it too). */
const kEvictTries = 64;

function checkPolicy(i32: Int32Array): void {
  if (decodePolicy(Atomics.load(i32, H_POLICY)).reuse === 'immediate') {
    fail(
      'EINVAL',
      "SharedMap needs a policy that reuses memory only after a grace period: create the arena with policy: 'arena'",
    );
  }
}

/**
 * One CPU per thread and arena for `open(arena, ref)` (a piscina worker runs many tasks). Keyed by the
 * arena's time origin: every task brings its own SharedArrayBuffer object for the same memory.
 */
const threadCpus = new Map<number, CpuHandle>();
/** The handles `open(arena, ref)` gave out on this thread, by arena and map. */
const threadMaps = new Map<string, SharedMap>();

export class SharedMap {
  /** Byte offset of the map in its arena: what `open` takes. */
  readonly ref: SharedMapRef;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  /** Most bytes the entries may hold (Infinity: no limit), whether `set` evicts, the default TTL. */
  readonly maxBytes: number;
  readonly evicts: boolean;
  readonly ttlMs: number;
  readonly cpu: CpuHandle;
  /**
   * The clock TTLs are measured with, in ms (the arena's time: any thread reads the same).
   * Tests replace it to move time.
   */
  clock: () => number;
  readonly #table: SharedTable;
  #pack: PackAllocator | undefined;
  readonly #header: number;
  readonly #i32: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #key: KeyCodec;
  #destroyed = false;
  /** Where `read` puts together a value stored in two pieces (grown on demand). */
  #assembly = new Uint8Array(0);
  /** Pack blocks waiting for their GP that found every shared slot taken: block, epoch, … */
  readonly #overflow: number[] = [];

  private constructor(cpu: CpuHandle, ref: SharedMapRef) {
    const i32 = cpu.i32;
    const s = ref >> 2;
    this.ref = ref;
    this.cpu = cpu;
    this.#i32 = i32;
    this.#bytes = cpu.bytes;
    this.maxKeyBytes = i32[s + S_MAX_KEY] as number;
    this.maxValueBytes = i32[s + S_MAX_VALUE] as number;
    const maxBytes = i32[s + S_MAX_BYTES] as number;
    this.maxBytes = maxBytes === 0 ? Number.POSITIVE_INFINITY : (maxBytes >>> 0) * 8;
    this.evicts = i32[s + S_EVICT] === 1;
    this.ttlMs = i32[s + S_TTL] as number;
    const birth = readBirthMs(i32.buffer as SharedArrayBuffer);
    this.clock = () => arenaNowMs(birth);
    this.#header = s;
    this.#table = SharedTable.open(cpu, i32[s + S_MAP] as number);
    this.#key = new KeyCodec(this.maxKeyBytes, this.#table.seed);
  }

  /**
   * Creates a map (a header page and its table; the pack allocator for large values comes
   * with the first one) and returns its `ref`. Throws `EINVAL` for bad options or an
   * immediate-reuse policy, `ENOMEM` without room (nothing is left allocated then).
   */
  static create(arena: ArenaRef, options: SharedMapOptions): SharedMapRef {
    const buffer = arenaBuffer(arena, 'SharedMap');
    const shared: SharedArena = (arena as { shared?: SharedArena }).shared ?? (arena as SharedArena);
    if (options === null || typeof options !== 'object') fail('EINVAL', 'SharedMap.create needs options');
    const maxEntries = checkInteger('SharedMap', 'maxEntries', options.maxEntries, 1, 1 << 24);
    const maxKey = checkInteger('SharedMap', 'maxKeyBytes', options.maxKeyBytes ?? 64, 1, MAX_KEY);
    const maxValue = checkInteger(
      'SharedMap',
      'maxValueBytes',
      options.maxValueBytes ?? 1 << 20,
      1,
      MAX_VALUE,
    );
    const maxBytes =
      options.maxBytes === undefined
        ? 0
        : checkInteger('SharedMap', 'maxBytes', options.maxBytes, 4096, 2 ** 34);
    const evict = options.evict ?? false;
    if (typeof evict !== 'boolean') fail('EINVAL', 'SharedMap: evict must be a boolean');
    const ttl =
      options.ttlMs === undefined ? 0 : checkInteger('SharedMap', 'ttlMs', options.ttlMs, 1, MAX_TTL);
    const i32 = new Int32Array(buffer);
    checkPolicy(i32);
    const pages = new PageAllocator(i32, readLayout(i32), buffer);
    const header = pages.allocSpan(1);
    if (header === 0) fail('ENOMEM', 'SharedMap.create: no room in the arena');
    let table: number;
    try {
      table = SharedTable.create({ buffer } as SharedArena, {
        maxEntries,
        linkThenUnlink: shared.faults?.linkThenUnlink === true,
      });
    } catch (error) {
      pages.lock(false);
      pages.freeSpanLocked(header, 1);
      pages.unlock();
      throw error;
    }
    const s = header >> 2;
    i32.fill(0, s, s + PAGE_BYTES / 4);
    i32[s + S_MAP] = table;
    i32[s + S_MAX_KEY] = maxKey;
    i32[s + S_MAX_VALUE] = maxValue;
    i32[s + S_MAX_BYTES] = Math.ceil(maxBytes / 8) | 0;
    i32[s + S_EVICT] = evict ? 1 : 0;
    i32[s + S_TTL] = ttl;
    Atomics.store(i32, s + S_MAGIC, MAP_MAGIC);
    return header as SharedMapRef;
  }

  /**
   * Opens map `ref` for `cpu`, on the thread that owns it; or, given the arena (`arena.shared`),
   * on this thread's CPU: a free slot attached the first time (`attachFree`), the same CPU on
   * later calls. For piscina tasks and plain workers: watch the pool (`watchPool`) or the worker
   * (`arena.watch`) on the main thread, and a worker that ends, or dies, gives its slot back.
   * Throws `EINVAL` for a bad ref (before any slot is claimed).
   */
  static open(from: CpuHandle | ArenaRef, ref: SharedMapRef): SharedMap {
    if (!(from instanceof CpuHandle)) return SharedMap.#onThisThread(from, ref);
    const cpu = checkCpu(from, 'SharedMap.open');
    checkStructureRef(cpu.i32, ref, MAP_MAGIC, 'SharedMap.open', 'map');
    checkPolicy(cpu.i32);
    return new SharedMap(cpu, ref);
  }

  /** The map on this thread's CPU (see `open`). */
  static #onThisThread(arena: ArenaRef, ref: SharedMapRef): SharedMap {
    const buffer = arenaBuffer(arena, 'SharedMap.open');
    const shared: SharedArena = (arena as { shared?: SharedArena }).shared ?? (arena as SharedArena);
    // Everything is checked before a CPU slot is claimed (a bad ref must not take one).
    const i32 = new Int32Array(buffer);
    readLayout(i32);
    checkStructureRef(i32, ref, MAP_MAGIC, 'SharedMap.open', 'map');
    checkPolicy(i32);
    const arenaId = readBirthMs(buffer);
    let cpu = threadCpus.get(arenaId);
    if (cpu === undefined || !cpu.attached) {
      cpu = attachFree(shared);
      threadCpus.set(arenaId, cpu);
    }
    const key = `${arenaId}/${ref}`;
    let map = threadMaps.get(key);
    if (map === undefined || map.cpu !== cpu) {
      map = SharedMap.open(cpu, ref);
      threadMaps.set(key, map);
    }
    return map;
  }

  /** Entries now (exact when no write runs). */
  get size(): number {
    this.#checkUsable('SharedMap.size');
    return this.#table.size;
  }

  /** The value of `key` (a copy: bytes, a string, or the parsed JSON), or undefined. */
  get(key: SharedMapKey): SharedMapValue | undefined {
    this.#checkUsable('SharedMap.get');
    this.#key.load(key);
    const cpu = this.cpu;
    let kind: number;
    let copy: Uint8Array;
    cpu.readLock();
    try {
      const e = this.#lookup();
      if (e === 0) return undefined;
      const meta = this.#i32[(e >> 2) + E_VALUE_META] as number;
      kind = (meta >>> 1) & 3;
      copy = this.#sliceValue(e, meta);
    } finally {
      cpu.readUnlock();
    }
    return decodeValue(copy, kind) as SharedMapValue;
  }

  /**
   * Copies the value of `key` (its bytes: UTF-8 for strings and JSON) into `target` from
   * offset 0 and returns its length; when `target` is too short nothing is copied and the length
   * says how much is needed. -1 when the key is absent. No allocation.
   */
  getInto(key: SharedMapKey, target: Uint8Array): number {
    this.#checkUsable('SharedMap.getInto');
    if (!(target instanceof Uint8Array)) fail('EINVAL', 'SharedMap.getInto: the target must be a Uint8Array');
    this.#key.load(key);
    const cpu = this.cpu;
    cpu.readLock();
    try {
      const e = this.#lookup();
      if (e === 0) return -1;
      const meta = this.#i32[(e >> 2) + E_VALUE_META] as number;
      const n = meta >>> 3;
      if (n <= target.length) this.#copyValue(e, meta, target);
      return n;
    } finally {
      cpu.readUnlock();
    }
  }

  /**
   * Calls `reader` with the bytes of `key`'s value and returns what it returns (undefined, without
   * a call, when the key is absent). The view is valid only inside the call: it is the arena's
   * memory, read inside a section, and may be reused once the call returns — copy what you keep.
   * A value stored in two pieces is put together in a buffer this handle reuses. After the call
   * the entry's unit generation is checked: a unit reused inside the section (a policy that
   * reuses at once, or a section left inside the callback) throws `ESTALE`.
   */
  read<R>(key: SharedMapKey, reader: (bytes: Uint8Array) => R): R | undefined {
    this.#checkUsable('SharedMap.read');
    if (typeof reader !== 'function') fail('EINVAL', 'SharedMap.read: the reader must be a function');
    this.#key.load(key);
    const cpu = this.cpu;
    const i32 = this.#i32;
    cpu.readLock();
    try {
      const e = this.#lookup();
      if (e === 0) return undefined;
      const w = e >> 2;
      const generation = (i32[w - 1] as number) >>> 2;
      const meta = i32[w + E_VALUE_META] as number;
      const n = meta >>> 3;
      const head = i32[w + E_HEAD_BYTES] as number;
      let view: Uint8Array;
      if ((meta & IN_PACK) !== 0) {
        const at = i32[w + E_TAIL] as number;
        view = this.#bytes.subarray(at, at + n);
      } else if (head === n) {
        const at = e + ENTRY_HEADER_BYTES + round4((i32[w + E_KEY_META] as number) & 0xffff);
        view = this.#bytes.subarray(at, at + n);
      } else {
        if (this.#assembly.length < n)
          this.#assembly = new Uint8Array(Math.max(n, 2 * this.#assembly.length));
        this.#copyValue(e, meta, this.#assembly);
        view = this.#assembly.subarray(0, n);
      }
      const result = reader(view);
      if ((i32[w - 1] as number) >>> 2 !== generation) {
        fail(
          'ESTALE',
          'SharedMap.read: the entry was reused while it was being read (a section was left inside the reader?)',
        );
      }
      return result;
    } finally {
      cpu.readUnlock();
    }
  }

  /** The map's counters now (entries, bytes, hits, misses, evictions, expired), summed over every handle. */
  stats(): SharedMapStats {
    this.#checkUsable('SharedMap.stats');
    const table = this.#table;
    return {
      entries: table.size,
      bytes: table.bytes,
      tableBytes: table.pages * PAGE_BYTES,
      hits: table.counter(PC_HITS),
      misses: table.counter(PC_MISSES),
      evictions: table.counter(PC_EVICTIONS),
      expired: table.counter(PC_EXPIRED),
    };
  }

  has(key: SharedMapKey): boolean {
    this.#checkUsable('SharedMap.has');
    this.#key.load(key);
    const cpu = this.cpu;
    cpu.readLock();
    try {
      const e = this.#table.find(this.#key);
      return e !== 0 && !this.#expired(e);
    } finally {
      cpu.readUnlock();
    }
  }

  /**
   * Sets `key` to `value`. Returns false, changing nothing, when the map is full or memory is
   * out. Throws `EINVAL` for a key or value that is not accepted (too long, not encodable).
   */
  set(key: SharedMapKey, value: SharedMapValue, options?: SharedMapSetOptions): boolean {
    this.#checkUsable('SharedMap.set');
    const codec = this.#key;
    codec.load(key);
    const [bytes, kind] = encodeValue(value, this.maxValueBytes);
    const ttl = options?.ttlMs ?? this.ttlMs;
    if (ttl !== 0) checkInteger('SharedMap.set', 'ttlMs', ttl, 0, MAX_TTL);
    this.#reap();
    const n = bytes.length;
    const base = ENTRY_HEADER_BYTES + round4(codec.length);
    const large = n > MAX_ALLOC_BYTES;
    const head = large ? 0 : planHead(base, n);
    const charge = chargedBytes(base, head, n, large);
    let tries = 0;
    if (charge > this.maxBytes) return false;
    while (this.#table.bytes + charge > this.maxBytes) {
      if (!this.evicts || tries++ >= kEvictTries || !this.#evictOne()) return false;
    }
    const pack = large ? this.#packs() : undefined;
    if (large && pack === undefined) return false;
    const cpu = this.cpu;
    const entry = cpu.alloc(base + head);
    if (entry === 0) return false;
    let tail = 0;
    if (head < n) {
      tail = pack ? pack.alloc(n) : cpu.alloc(n - head);
      if (tail === 0) {
        cpu.free(entry);
        return false;
      }
    }
    const i32 = this.#i32;
    const w = entry >> 2;
    i32.fill(0, w, w + (ENTRY_HEADER_BYTES >> 2));
    i32[w + E_VALUE_META] = (n << 3) | (kind << 1) | (large ? IN_PACK : 0);
    i32[w + E_TAIL] = tail;
    i32[w + E_HEAD_BYTES] = head;
    // New entries start referenced: the hand passes them once before they may go.
    i32[w + E_REFERENCED] = REF_READ;
    if (ttl > 0) i32[w + E_EXPIRES] = (this.#now() + ttl) | 0 || 1;
    this.#table.writeKey(codec, entry);
    const mem = this.#bytes;
    copyBytes(bytes, 0, head, mem, entry + base);
    if (tail !== 0) copyBytes(bytes, head, n - head, mem, tail);
    let status = this.#table.put(codec, entry);
    while (status === PutStatus.FULL && this.evicts && tries++ < kEvictTries && this.#evictOne()) {
      status = this.#table.put(codec, entry);
    }
    if (status === PutStatus.FULL) {
      cpu.free(entry);
      if (tail !== 0) {
        if (pack) pack.free(tail);
        else cpu.free(tail as Pointer);
      }
      return false;
    }
    this.#table.chargeBytes(charge);
    if (status === PutStatus.REPLACED) this.#release(this.#table.old);
    return true;
  }

  /** Removes `key`; false if it was absent (or expired). Throws `EINVAL` for a bad key. */
  delete(key: SharedMapKey): boolean {
    this.#checkUsable('SharedMap.delete');
    this.#key.load(key);
    this.#reap();
    if (!this.#table.remove(this.#key)) return false;
    const old = this.#table.old;
    // An expired entry is gone as far as callers can tell: removed, but not "deleted".
    const wasLive = !this.#expired(old);
    if (!wasLive) this.#table.count(PC_EXPIRED);
    this.#release(old);
    return wasLive;
  }

  /** Every key (strings and bytes as they were set), read inside one read-side section. */
  keys(): SharedMapKey[] {
    this.#checkUsable('SharedMap.keys');
    const keys: SharedMapKey[] = [];
    const table = this.#table;
    const i32 = this.#i32;
    const bytes = this.#bytes;
    this.cpu.readLock();
    try {
      for (let b = 0; b < table.buckets; b++) {
        table.forEachInBucket(b, (e) => {
          if (!this.#expired(e))
            keys.push(decodeKey(bytes, e + ENTRY_HEADER_BYTES, i32[(e >> 2) + E_KEY_META] as number));
        });
      }
    } finally {
      this.cpu.readUnlock();
    }
    return keys;
  }

  /** Entries, each value read when it is reached (not a snapshot of the whole map). */
  *entries(): IterableIterator<[SharedMapKey, SharedMapValue]> {
    for (const key of this.keys()) {
      const value = this.get(key);
      if (value !== undefined) yield [key, value];
    }
  }

  [Symbol.iterator](): IterableIterator<[SharedMapKey, SharedMapValue]> {
    return this.entries();
  }

  /** Values, each read when it is reached. */
  *values(): IterableIterator<SharedMapValue> {
    for (const [, value] of this.entries()) yield value;
  }

  /** Calls `callback(value, key, map)` for every entry, as `Map.prototype.forEach` does. */
  forEach(
    callback: (value: SharedMapValue, key: SharedMapKey, map: SharedMap) => void,
    thisArg?: unknown,
  ): void {
    this.#checkUsable('SharedMap.forEach');
    if (typeof callback !== 'function') fail('EINVAL', 'SharedMap.forEach: the callback must be a function');
    for (const [key, value] of this.entries()) callback.call(thisArg, value, key, this);
  }

  /** Removes every entry (their memory goes after a grace period); returns how many. */
  clear(): number {
    this.#checkUsable('SharedMap.clear');
    this.#reap();
    return this.#table.clear((e) => this.#release(e));
  }

  /**
   * Frees the map's memory: every entry, every large value (at once: call it only when no other
   * thread uses the map, and use none of their handles afterwards), the table's pages and the
   * header page; `open` then refuses the ref. What stays: the table's first page (crash
   * recovery's chain of tables passes through it) and the pack allocator's tables, if a large
   * value ever created it (its packs go back as they empty). This handle throws `ECLOSED` after.
   */
  destroy(): void {
    this.#checkUsable('SharedMap.destroy');
    const pack = Atomics.load(this.#i32, this.#header + S_PACK) === 0 ? undefined : this.#packs();
    this.#table.clear((e) => this.#release(e, pack));
    if (pack) {
      for (let slot = 0; slot < RETIRED_SLOTS; slot++) {
        const block = Atomics.exchange(this.#i32, this.#header + S_RETIRED + 2 * slot, 0);
        if (block > 0) pack.free(block);
      }
      for (let i = 0; i < this.#overflow.length; i += 2) pack.free(this.#overflow[i] as number);
      this.#overflow.length = 0;
    }
    this.#destroyed = true;
    const i32 = this.#i32;
    const pages = new PageAllocator(i32, readLayout(i32), i32.buffer as SharedArrayBuffer);
    Atomics.store(i32, this.#header + S_MAGIC, 0);
    this.#table.retire();
    pages.lock(false);
    try {
      if (this.#table.pages > 1) pages.freeSpanLocked(this.#table.ref + PAGE_BYTES, this.#table.pages - 1);
      pages.freeSpanLocked(this.ref, 1);
    } finally {
      pages.unlock();
    }
  }

  /**
   * Frees the large values replaced or deleted (by any handle) whose grace period has passed;
   * returns how many still wait (any handle's next write or `reclaim` frees them).
   */
  reclaim(): number {
    this.#checkUsable('SharedMap.reclaim');
    this.#reap();
    // A reap's decrement may land before a retire's increment: never below 0.
    return Math.max(0, Atomics.load(this.#i32, this.#header + S_RETIRED_COUNT)) + this.#overflow.length / 2;
  }

  /** ECLOSED, naming `call`, once the map is destroyed or its CPU (or arena) is not usable. */
  #checkUsable(call: string): void {
    if (this.#destroyed) fail('ECLOSED', `${call}: the map was destroyed`);
    this.cpu.ensureUsable(call);
  }

  /** Milliseconds now on the map's clock, as an int32 (deadlines wrap: compared by distance). */
  #now(): number {
    return Math.floor(this.clock()) | 0;
  }

  #expired(e: number): boolean {
    const at = this.#i32[(e >> 2) + E_EXPIRES] as number;
    return at !== 0 && ((this.#now() - at) | 0) >= 0;
  }

  /**
   * The live entry of the current key, inside a section: counted as a hit (and marked
   * referenced for the CLOCK hand) or a miss; an expired entry is a miss.
   */
  #lookup(): number {
    const table = this.#table;
    const e = table.find(this.#key);
    if (e === 0 || this.#expired(e)) {
      table.count(PC_MISSES);
      return 0;
    }
    table.count(PC_HITS);
    // Read since the hand passed (a store only when the word is not already REF_READ).
    const ref = (e >> 2) + E_REFERENCED;
    if (this.#i32[ref] !== REF_READ) this.#i32[ref] = REF_READ;
    return e;
  }

  /** Evicts one entry (an expired one, or one not read lately); false if none could go. */
  #evictOne(): boolean {
    const table = this.#table;
    const victim = table.evict((e) => this.#expired(e));
    if (victim === 0) return false;
    table.count(table.expiredVictim ? PC_EXPIRED : PC_EVICTIONS);
    this.#release(victim);
    return true;
  }

  /** A copy of the value of entry `e` (value meta `meta`): one `slice` when it is in one piece. */
  #sliceValue(e: number, meta: number): Uint8Array {
    const w = e >> 2;
    const n = meta >>> 3;
    const i32 = this.#i32;
    if ((meta & IN_PACK) !== 0) {
      const at = i32[w + E_TAIL] as number;
      return this.#bytes.slice(at, at + n);
    }
    if ((i32[w + E_HEAD_BYTES] as number) === n) {
      const at = e + ENTRY_HEADER_BYTES + round4((i32[w + E_KEY_META] as number) & 0xffff);
      return this.#bytes.slice(at, at + n);
    }
    const copy = new Uint8Array(n);
    this.#copyValue(e, meta, copy);
    return copy;
  }

  /** Copies the value of entry `e` (value meta `meta`) into `target` from offset 0. */
  #copyValue(e: number, meta: number, target: Uint8Array): void {
    const i32 = this.#i32;
    const w = e >> 2;
    const n = meta >>> 3;
    const tail = i32[w + E_TAIL] as number;
    const mem = this.#bytes;
    if ((meta & IN_PACK) !== 0) {
      copyBytes(mem, tail, n, target, 0);
      return;
    }
    const head = i32[w + E_HEAD_BYTES] as number;
    const at = e + ENTRY_HEADER_BYTES + round4((i32[w + E_KEY_META] as number) & 0xffff);
    copyBytes(mem, at, head, target, 0);
    if (head < n) copyBytes(mem, tail, n - head, target, head);
  }

  /**
   * An entry replaced or removed: its units go after a GP, its pack block is retired (or, from
   * `destroy`, freed at once into `freeNow`).
   */
  #release(e: number, freeNow?: PackAllocator): void {
    const i32 = this.#i32;
    const w = e >> 2;
    const meta = i32[w + E_VALUE_META] as number;
    const n = meta >>> 3;
    const head = i32[w + E_HEAD_BYTES] as number;
    const tail = i32[w + E_TAIL] as number;
    const inPack = (meta & IN_PACK) !== 0;
    const base = ENTRY_HEADER_BYTES + round4((i32[w + E_KEY_META] as number) & 0xffff);
    this.#table.chargeBytes(-chargedBytes(base, head, n, inPack));
    this.cpu.freeRcu(e as Pointer);
    if (tail === 0) return;
    if (!inPack) this.cpu.freeRcu(tail as Pointer);
    else if (freeNow) freeNow.free(tail);
    else this.#retire(tail);
  }

  /** The map's pack allocator, created by the first large value; undefined without room. */
  #packs(): PackAllocator | undefined {
    if (this.#pack !== undefined) return this.#pack;
    const i32 = this.#i32;
    const shared = { buffer: i32.buffer as SharedArrayBuffer } as SharedArena;
    let ref = Atomics.load(i32, this.#header + S_PACK) as PackRef;
    if (ref === 0) {
      let mine: PackRef;
      try {
        mine = PackAllocator.create(shared, { maxPacks: 256 });
      } catch (error) {
        if ((error as ArenaError).code === 'ENOMEM') return undefined;
        throw error;
      }
      // Two first large values at once: one allocator wins, the other's tables stay unused.
      const seen = Atomics.compareExchange(i32, this.#header + S_PACK, 0, mine);
      ref = (seen === 0 ? mine : seen) as PackRef;
    }
    this.#pack = PackAllocator.open(shared, ref);
    return this.#pack;
  }

  /**
   * A replaced or deleted pack block goes after a GP through the shared retired slots (claimed
   * by CAS: 0 → BUSY, epoch, then the block), so that any handle frees it once the epoch has
   * moved two past, even after this thread is gone. With every slot taken, this handle keeps it.
   */
  #retire(blob: number): void {
    const i32 = this.#i32;
    const epoch = readEpoch(i32, FLAVOR_RCU);
    requestEpoch(i32, FLAVOR_RCU, (epoch + 2) | 0);
    for (let slot = 0; slot < RETIRED_SLOTS; slot++) {
      const w = this.#header + S_RETIRED + 2 * slot;
      if (Atomics.compareExchange(i32, w, 0, SLOT_BUSY) !== 0) continue;
      Atomics.store(i32, w + 1, epoch);
      Atomics.store(i32, w, blob);
      Atomics.add(i32, this.#header + S_RETIRED_COUNT, 1);
      return;
    }
    this.#overflow.push(blob, epoch);
  }

  /** Frees every retired pack block whose GP has passed (claimed by CAS, so once). */
  #reap(): void {
    const i32 = this.#i32;
    const overflow = this.#overflow;
    if (Atomics.load(i32, this.#header + S_RETIRED_COUNT) === 0 && overflow.length === 0) return;
    const pack = this.#packs();
    if (pack === undefined) return;
    const now = readEpoch(i32, FLAVOR_RCU);
    for (let slot = 0; slot < RETIRED_SLOTS; slot++) {
      const w = this.#header + S_RETIRED + 2 * slot;
      const blob = Atomics.load(i32, w);
      if (blob <= 0 || !isExpired(Atomics.load(i32, w + 1), now)) continue;
      if (Atomics.compareExchange(i32, w, blob, SLOT_BUSY) !== blob) continue;
      // The slot may have been reaped and filled again with the same block (first fit hands it
      // out again) between the check and the claim: check its epoch again now that it is ours.
      if (!isExpired(Atomics.load(i32, w + 1), now)) {
        Atomics.store(i32, w, blob);
        continue;
      }
      pack.free(blob);
      Atomics.store(i32, w, 0);
      Atomics.sub(i32, this.#header + S_RETIRED_COUNT, 1);
    }
    let kept = 0;
    for (let i = 0; i < overflow.length; i += 2) {
      if (isExpired(overflow[i + 1] as number, now)) {
        pack.free(overflow[i] as number);
      } else {
        overflow[kept++] = overflow[i] as number;
        overflow[kept++] = overflow[i + 1] as number;
      }
    }
    overflow.length = kept;
  }
}
