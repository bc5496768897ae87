/**
 * SharedMap: the service-level map — string or byte keys, values of any size as bytes, strings
 * or JSON — that every worker of a Node service reads from the arena without copying through
 * `postMessage`. It is the BPF hash map (src/structures/hash-map.ts) holding, per key, a pointer and a
 * length: small values live in a slab unit, values above a unit (4088 bytes) in a block of the
 * arena's pack allocator (src/structures/pack.ts). Read-side sections are taken inside every call, and
 * values are copied out, so a caller can neither forget a section nor hold memory past one.
 *
 * ```
 * key in the hash map:   | kind (1 string, 2 bytes) | length (2 bytes, LE) | key bytes, zero-padded to maxKeyBytes |
 * value in the hash map: | blob pointer | length << 3 | kind << 1 | in a pack |
 * ```
 *
 * Replacing or deleting a value frees its old blob after a grace period: a slab blob with
 * `freeRcu`, a pack block through retired slots in the map's header page once the rcu epoch has
 * moved two past its retirement (the arena's proof, src/epoch/grace-period.ts), reaped by any handle's
 * next write or `reclaim()` — so a worker that ends leaves none behind. The map needs a policy that reuses hash-map elements only after a
 * GP (`arena`, or any preset but the immediate ones): `create` and `open` refuse
 * the others, under which a reader could copy a reused element's pointer.
 *
 * Who may call: `SharedMap.create` any thread holding the arena; `SharedMap.open(cpu, ref)` or
 * `SharedMap.open(arena.shared, ref)` (a free CPU slot, once per thread: for piscina tasks and
 * plain workers) the thread owning the CPU, and the handle only from that thread. Shared words: those
 * of the hash map and the pack allocator, under their own locks; the header's pack ref (CAS from
 * 0, once) and retired slots (each claimed by CAS to BUSY before it is written or freed, so a
 * block is freed once); blob bytes are written before
 * the element that points to them is published (the bucket lock's release orders them) and
 * never written again.
 */
import { attachFree } from '../cpu/attach.js';
import { CpuHandle } from '../cpu/cpu.js';
import { isExpired, readBirthMs, readEpoch, requestEpoch } from '../epoch/grace-period.js';
import { decodePolicy } from '../epoch/policy.js';
import { PageAllocator } from '../memory/page-allocator.js';
import { MAX_ALLOC_BYTES } from '../memory/size-class.js';
import { type ArenaRef, arenaBuffer, type SharedArena } from '../shm/arena-ref.js';
import { type ArenaError, fail } from '../shm/errors.js';
import { FLAVOR_RCU, H_POLICY, PAGE_BYTES, readLayout } from '../shm/layout.js';
import type { HashMapRef, PackRef, Pointer, SharedMapRef } from '../shm/refs.js';
import { checkCpu, checkInteger, checkStructureRef, checkWellFormed } from '../structures/arguments.js';
import { HashMap, MapStatus } from '../structures/hash-map.js';
import { PackAllocator } from '../structures/pack.js';

/** Options of `SharedMap.create`. */
export interface SharedMapOptions {
  /** Most entries, 1..2^24. */
  readonly maxEntries: number;
  /** Longest key in bytes (UTF-8 for strings), 1..509. @defaultValue 64 */
  readonly maxKeyBytes?: number;
  /** Largest value in bytes (UTF-8 or JSON text for strings and objects), 1..2^28. @defaultValue 1 MiB */
  readonly maxValueBytes?: number;
}

/** A key: a string (UTF-8) or bytes; `'a'` and `Uint8Array.of(0x61)` are different keys. */
export type SharedMapKey = string | Uint8Array;
/** A value: bytes, a string, or anything `JSON.stringify` takes (returned parsed). */
export type SharedMapValue = Uint8Array | string | number | boolean | null | object;

const S_MAGIC = 0;
const S_MAP = 1;
/** The pack allocator for large values, created by the first large `set` (0 until then). */
const S_PACK = 2;
const S_MAX_KEY = 3;
const S_MAX_VALUE = 4;
/** Retired slots in use (a hint: reapers skip the scan at 0). */
const S_RETIRED_COUNT = 5;
/** Retired pack blocks waiting for their GP, shared by every handle: (block, epoch) pairs. */
const S_RETIRED = 16;
const RETIRED_SLOTS = (PAGE_BYTES / 4 - S_RETIRED) / 2;
/** A retired slot being filled or emptied. */
const SLOT_BUSY = -1;
const MAP_MAGIC = 0x534d4150; // "SMAP"

const KEY_PREFIX = 3;
const KIND_STRING = 1;
const KIND_BYTES = 2;
const VALUE_BYTES = 0;
const VALUE_STRING = 1;
const VALUE_JSON = 2;
const IN_PACK = 1;
const MAX_KEY = 512 - KEY_PREFIX;
const MAX_VALUE = 1 << 28;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function checkPolicy(i32: Int32Array): void {
  if (decodePolicy(Atomics.load(i32, H_POLICY)).reuse === 'immediate') {
    fail(
      'EINVAL',
      "SharedMap needs a policy that reuses memory only after a grace period: create the arena with policy: 'arena'",
    );
  }
}

/**
 * One CPU per thread and arena for `attach` (a piscina worker runs many tasks). Keyed by the
 * arena's time origin: every task brings its own SharedArrayBuffer object for the same memory.
 */
const threadCpus = new Map<number, CpuHandle>();
/** The handles `attach` gave out on this thread, by arena and map. */
const threadMaps = new Map<string, SharedMap>();

export class SharedMap {
  /** Byte offset of the map in its arena: what `open` and `attach` take. */
  readonly ref: SharedMapRef;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  readonly cpu: CpuHandle;
  readonly #map: HashMap;
  #pack: PackAllocator | undefined;
  readonly #header: number;
  readonly #i32: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #key: Uint8Array;
  readonly #element = new Uint8Array(8);
  readonly #elementWords = new Int32Array(this.#element.buffer);
  readonly #previous = new Uint8Array(8);
  readonly #previousWords = new Int32Array(this.#previous.buffer);
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
    this.#header = s;
    this.#map = HashMap.open(cpu, i32[s + S_MAP] as HashMapRef);
    this.#key = new Uint8Array(KEY_PREFIX + this.maxKeyBytes);
  }

  /**
   * Creates a map (a header page and its hash map; the pack allocator for large values comes
   * with the first one) and returns its `ref`. Throws `EINVAL` for bad options or an
   * immediate-reuse policy, `ENOMEM` without room (nothing is left allocated then).
   */
  static create(arena: ArenaRef, options: SharedMapOptions): SharedMapRef {
    const buffer = arenaBuffer(arena, 'SharedMap');
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
    const i32 = new Int32Array(buffer);
    checkPolicy(i32);
    const pages = new PageAllocator(i32, readLayout(i32), buffer);
    const header = pages.allocSpan(1);
    if (header === 0) fail('ENOMEM', 'SharedMap.create: no room in the arena');
    let map: number;
    try {
      map = HashMap.create({ buffer } as SharedArena, {
        keySize: KEY_PREFIX + maxKey,
        valueSize: 8,
        maxEntries,
      });
    } catch (error) {
      pages.lock(false);
      pages.freeSpanLocked(header, 1);
      pages.unlock();
      throw error;
    }
    const s = header >> 2;
    i32.fill(0, s, s + PAGE_BYTES / 4);
    i32[s + S_MAP] = map;
    i32[s + S_MAX_KEY] = maxKey;
    i32[s + S_MAX_VALUE] = maxValue;
    Atomics.store(i32, s + S_MAGIC, MAP_MAGIC);
    return header as SharedMapRef;
  }

  /**
   * Opens map `ref` for `cpu`, on the thread that owns it; or, given the arena (`arena.shared`),
   * on this thread's CPU: a free slot attached the first time (`attachFree`), the same CPU on
   * later calls. For piscina tasks and plain workers: watch the pool (`watchPool`) or the worker
   * (`arena.watch`) on the main thread, and a worker that ends, or dies, gives its slot back.
   * Throws `EINVAL` for a bad ref.
   */
  static open(from: CpuHandle | ArenaRef, ref: SharedMapRef): SharedMap {
    if (!(from instanceof CpuHandle)) return SharedMap.#onThisThread(from, ref);
    const cpu = from;
    checkCpu(cpu, 'SharedMap.open');
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
    this.cpu.ensureUsable('SharedMap.size');
    return this.#map.size;
  }

  /** The value of `key` (a copy: bytes, a string, or the parsed JSON), or undefined. */
  get(key: SharedMapKey): SharedMapValue | undefined {
    this.cpu.ensureUsable('SharedMap.get');
    const keyBytes = this.#encodeKey(key);
    const cpu = this.cpu;
    let kind: number;
    let copy: Uint8Array;
    cpu.readLock();
    try {
      const at = this.#map.lookup(keyBytes);
      if (at === 0) return undefined;
      const ptr = this.#i32[at >> 2] as number;
      const meta = this.#i32[(at >> 2) + 1] as number;
      kind = (meta >>> 1) & 3;
      const length = meta >>> 3;
      copy = ptr === 0 ? new Uint8Array(0) : this.#bytes.slice(ptr, ptr + length);
    } finally {
      cpu.readUnlock();
    }
    if (kind === VALUE_BYTES) return copy;
    const text = decoder.decode(copy);
    return kind === VALUE_STRING ? text : (JSON.parse(text) as SharedMapValue);
  }

  has(key: SharedMapKey): boolean {
    this.cpu.ensureUsable('SharedMap.has');
    const keyBytes = this.#encodeKey(key);
    const cpu = this.cpu;
    cpu.readLock();
    try {
      return this.#map.lookup(keyBytes) !== 0;
    } finally {
      cpu.readUnlock();
    }
  }

  /**
   * Sets `key` to `value`. Returns false, changing nothing, when the map is full or memory is
   * out. Throws `EINVAL` for a key or value that is not accepted (too long, not encodable).
   */
  set(key: SharedMapKey, value: SharedMapValue): boolean {
    const keyBytes = this.#encodeKey(key);
    const [bytes, kind] = this.#encodeValue(value);
    this.cpu.ensureUsable('SharedMap.set');
    this.#reap();
    const large = bytes.length > MAX_ALLOC_BYTES;
    const pack = large ? this.#packs() : undefined;
    if (large && pack === undefined) return false;
    let blob = 0;
    if (bytes.length > 0) {
      blob = pack ? pack.alloc(bytes.length) : this.cpu.alloc(bytes.length);
      if (blob === 0) return false;
      this.#bytes.set(bytes, blob);
    }
    this.#elementWords[0] = blob;
    this.#elementWords[1] = (bytes.length << 3) | (kind << 1) | (large ? IN_PACK : 0);
    let status: MapStatus;
    try {
      status = this.#map.update(keyBytes, this.#element, 0, this.#previous);
    } catch (error) {
      // Thrown after the new element was linked (its old element's free found the arena
      // closed): the blob is published, the old one still has to go.
      if (this.#map.published) {
        if (this.#map.replaced) this.#retire();
      } else {
        this.#discard(blob, pack);
      }
      throw error;
    }
    if (status !== MapStatus.OK) {
      this.#discard(blob, pack);
      return false;
    }
    if (this.#map.replaced) this.#retire();
    return true;
  }

  /** Removes `key`; false if it was absent. Throws `EINVAL` for a bad key. */
  delete(key: SharedMapKey): boolean {
    const keyBytes = this.#encodeKey(key);
    this.cpu.ensureUsable('SharedMap.delete');
    this.#reap();
    if (this.#map.delete(keyBytes, this.#previous) !== MapStatus.OK) return false;
    this.#retire();
    return true;
  }

  /** Every key (strings and bytes as they were set), read inside one read-side section. */
  keys(): SharedMapKey[] {
    this.cpu.ensureUsable('SharedMap.keys');
    return this.#map.keys().map((k) => {
      const length = (k[1] as number) | ((k[2] as number) << 8);
      const bytes = k.slice(KEY_PREFIX, KEY_PREFIX + length);
      return k[0] === KIND_STRING ? decoder.decode(bytes) : bytes;
    });
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

  /**
   * Frees the large values replaced or deleted (by any handle) whose grace period has passed;
   * returns how many still wait (any handle's next write or `reclaim` frees them).
   */
  reclaim(): number {
    this.cpu.ensureUsable('SharedMap.reclaim');
    this.#reap();
    // A reap's decrement may land before a retire's increment: never below 0.
    return Math.max(0, Atomics.load(this.#i32, this.#header + S_RETIRED_COUNT)) + this.#overflow.length / 2;
  }

  /** The map's pack allocator, created by the first large value; undefined without room. */
  #packs(): PackAllocator | undefined {
    if (this.#pack !== undefined) return this.#pack;
    const i32 = this.#i32;
    const shared = { buffer: i32.buffer as SharedArrayBuffer } as SharedArena;
    let ref = Atomics.load(i32, this.#header + S_PACK);
    if (ref === 0) {
      let mine: number;
      try {
        mine = PackAllocator.create(shared, { maxPacks: 256 });
      } catch (error) {
        if ((error as ArenaError).code === 'ENOMEM') return undefined;
        throw error;
      }
      // Two first large values at once: one allocator wins, the other's tables stay unused.
      const seen = Atomics.compareExchange(i32, this.#header + S_PACK, 0, mine);
      ref = seen === 0 ? mine : seen;
    }
    this.#pack = PackAllocator.open(shared, ref as PackRef);
    return this.#pack;
  }

  /** A blob allocated for a value that was never published: nobody can hold it. */
  #discard(blob: number, pack: PackAllocator | undefined): void {
    if (blob === 0) return;
    if (pack) pack.free(blob);
    else this.cpu.free(blob as Pointer);
  }

  #encodeKey(key: SharedMapKey): Uint8Array {
    const out = this.#key;
    let bytes: Uint8Array;
    if (typeof key === 'string') {
      checkWellFormed(key, 'SharedMap', 'key');
      bytes = encoder.encode(key);
      out[0] = KIND_STRING;
    } else if (key instanceof Uint8Array) {
      bytes = key;
      out[0] = KIND_BYTES;
    } else {
      fail('EINVAL', `SharedMap: a key must be a string or a Uint8Array, got ${typeof key}`);
    }
    if (bytes.length < 1 || bytes.length > this.maxKeyBytes) {
      fail(
        'EINVAL',
        `SharedMap: a key must take 1 to ${this.maxKeyBytes} bytes, this one takes ${bytes.length}`,
      );
    }
    out[1] = bytes.length & 0xff;
    out[2] = bytes.length >>> 8;
    out.fill(0, KEY_PREFIX);
    out.set(bytes, KEY_PREFIX);
    return out;
  }

  #encodeValue(value: SharedMapValue): [Uint8Array, number] {
    let bytes: Uint8Array;
    let kind: number;
    if (value instanceof Uint8Array) {
      bytes = value;
      kind = VALUE_BYTES;
    } else if (typeof value === 'string') {
      checkWellFormed(value, 'SharedMap.set', 'value');
      bytes = encoder.encode(value);
      kind = VALUE_STRING;
    } else {
      let text: string | undefined;
      try {
        text = JSON.stringify(value);
      } catch (error) {
        fail('EINVAL', `SharedMap: the value cannot be encoded as JSON (${(error as Error).message})`);
      }
      if (text === undefined) fail('EINVAL', `SharedMap: a value of type ${typeof value} cannot be stored`);
      bytes = encoder.encode(text);
      kind = VALUE_JSON;
    }
    if (bytes.length > this.maxValueBytes) {
      fail(
        'EINVAL',
        `SharedMap: the value takes ${bytes.length} bytes, more than maxValueBytes (${this.maxValueBytes})`,
      );
    }
    return [bytes, kind];
  }

  /**
   * The replaced or deleted value in #previous: its blob goes after a GP — a slab unit by
   * `freeRcu`, a pack block through the shared retired slots (claimed by CAS: 0 → BUSY, epoch,
   * then the block), so that any handle frees it once the epoch has moved two past, even after
   * this thread is gone. With every slot taken, this handle keeps it.
   */
  #retire(): void {
    const blob = this.#previousWords[0] as number;
    if (blob === 0) return;
    if (((this.#previousWords[1] as number) & IN_PACK) === 0) {
      this.cpu.freeRcu(blob as Pointer);
      return;
    }
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
