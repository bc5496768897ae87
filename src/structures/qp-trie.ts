/**
 * A qp-trie map in the arena, the shape of Hou Tao's proposed BPF qp-trie ("[PATCH bpf-next v2
 * 00/13] Add support for qp-trie with dynptr key", 24 Sep 2022,
 * https://lore.kernel.org/bpf/?q=%22qp-trie+with+dynptr+key%22): variable-length byte keys, branch
 * nodes that test one nibble of the key and hold only
 * the children present (a 17-bit bitmap: "the key ends here" and 16 nibble values), leaves that
 * hold a key and its value. Updates are copy-on-write and serialised by one lock per trie: a new
 * node is built, published with one pointer store into its parent's entry, and the node it
 * replaced is freed through the allocator, whose policy decides when it is reused. Lookups are
 * lock-free inside a read-side section.
 *
 * ```
 * region (a page of its own): | magic | max key | max value | flags | lock | count | next trie | - | root ptr | root version |
 * (the version of a node: its first word under 'per-node', the unit header's word under 'generation')
 * nodes: src/structures/qp-trie-nodes.ts
 * ```
 *
 * Version validation, the seed's proposal (Alexei, Sep 2022: "add a sequence number to
 * qp_trie_branch ... read it before and after. Every reuse would inc the seq"): every node's
 * first word is a version, written before the node's new contents; the entry that points to a
 * node carries the version the node had when it was linked. A lookup compares the node's version
 * with its entry's before it reads the node and again after it has read what it needs (the child
 * entry, or the key and the value it copies); a mismatch restarts the lookup from the root.
 * `versions: 'per-node'` increments the unit's previous version (the proposal); `'generation'`
 * uses the allocator's own header word of the unit (generation << 2 | state), which every free
 * and every allocation of the unit changes, whoever its user, and reads and writes each entry
 * as one 64-bit word. The per-node form is defeated by a torn (old pointer, new version) entry
 * read when two units' counters meet (docs/lab.md, replayed in test/qp-trie.test.ts); any
 * per-unit counter read in two halves would be, and a counter of the trie's own would be
 * defeated by a unit another trie or another user of the arena wrote the same number into. Without versions, a lookup that stands on a node freed and
 * reused under it follows whatever the new contents say. No validation covers the value of
 * `lookup` (a pointer, as a BPF program gets): it is read after the lookup's last check.
 *
 * Who may call: `QpTrie.create` any thread holding the arena; `QpTrie.open(cpu, ref)` the thread
 * owning `cpu`, and the handle only from that thread. `lookup` only inside `readLock()`;
 * `get`, `has` and `keys` take their own section; `update` and `delete` in or out of a section
 * while the handle is attached (`ECLOSED` otherwise, before the lock is taken).
 *
 * Shared words: the header is written once before the magic is published. The lock word (a
 * robust mutex of src/shm/sync.ts, released by crash recovery: `recoverTrieLocks`) guards every write
 * to the trie: the root entry, the entries of published
 * branches and the count. Nodes are written only before they are published (by the lock holder,
 * which allocated them); an entry is published with Atomics stores, version first, then pointer,
 * so a reader that loads the new pointer sees the new version (x86 TSO; arm64 by the address
 * dependency, as rcu_dereference). Readers load entries and versions with Atomics.load and the
 * rest of a node plainly: under immediate reuse they can read anything, so every pointer is
 * range-checked and every walk bounded before use.
 */
import type { CpuHandle } from '../cpu/cpu.js';
import { PageAllocator } from '../memory/page-allocator.js';
import { type ArenaRef, arenaBuffer } from '../shm/arena-ref.js';
import { fail, show } from '../shm/errors.js';
import { readLayout } from '../shm/layout.js';
import type { Pointer, QpTrieRef } from '../shm/refs.js';
import {
  joinStructureChain,
  type StructureRecoverer,
  type StructureRecovery,
} from '../shm/structure-chain.js';
import { mutexRecover, robustLock, robustUnlock } from '../shm/sync.js';
import { checkCpu, checkInteger, checkStructureRef } from './arguments.js';
import {
  BRANCH,
  branchWith,
  branchWithout,
  GENERATION_WORD,
  N_BITMAP,
  N_ENTRIES,
  N_INDEX,
  N_VALUE_LENGTH,
  N_VERSION,
  NIBBLES,
  NODE_HEADER,
  type NodeBuilder,
  nibbleOf,
  popcount,
  twoWayBranch,
} from './qp-trie-nodes.js';

/** Options of `QpTrie.create`. */
export interface QpTrieOptions {
  /** Longest key in bytes, 1..255 (the proposal's dynptr keys are bounded the same way). */
  readonly maxKeyBytes: number;
  /** Largest value in bytes, 1..(4072 - maxKeyBytes rounded to 8): a leaf is one slab unit. */
  readonly maxValueBytes: number;
  /**
   * Version validation of every node a lookup stands on: `'per-node'` is the seed's proposal
   * (each unit's version incremented when it is handed out again), `'generation'` takes the
   * node's version from one counter of the trie, so that no two nodes ever share one (the fix
   * of the hole the lab found in the seed's; docs/lab.md). @defaultValue 'none'
   */
  readonly versions?: TrieVersions;
}

export type TrieVersions = 'none' | 'per-node' | 'generation';
const VERSION_MODES: readonly TrieVersions[] = ['none', 'per-node', 'generation'];

/** Where a lookup calls `onStep`: after loading an entry's pointer, and on a node it stands on. */
export type TrieStep = 'entry' | 'node';

/** Results of `update` and `delete` (the kernel's negative errno, as `MapStatus`). */
export const TrieStatus = Object.freeze({ OK: 0, NOT_FOUND: -2, NO_MEMORY: -12 } as const);
export type TrieStatus = (typeof TrieStatus)[keyof typeof TrieStatus];

const T_MAGIC = 0;
const T_MAX_KEY = 1;
const T_MAX_VALUE = 2;
const T_FLAGS = 3;
const T_LOCK = 4;
const T_COUNT = 5;
/** The trie created before this one (the structure chain, X_STRUCT_CHAIN), 0 for the first. */
const T_NEXT = 6;
/** The root entry: pointer and version, like a branch's entries. */
const T_ROOT = 8;
const TRIE_MAGIC = 0x51505452; // "QPTR"

const MAX_KEY = 255;
const MAX_UNIT = 4088;
const MAX_BRANCH_BYTES = NODE_HEADER + 8 * NIBBLES;

/** Restarts of one lookup before the trie is declared corrupt. */
const kMaxRestarts = 100_000;

const round8 = (n: number): number => (n + 7) & ~7;

export class QpTrie {
  /** Byte offset of the trie in its arena: what `open` takes on another thread. */
  readonly ref: QpTrieRef;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  readonly versions: TrieVersions;
  /** Lookups that found a version mismatch and started again from the root. */
  restarts = 0;
  /** Nodes this handle allocated whose unit had been handed out before (memory went round). */
  reusedNodes = 0;
  /**
   * Called by a lookup after it loads an entry's pointer (before its version) and on every node
   * it stands on (after the first version check, before it reads the node): the points where a
   * deterministic test interleaves a writer.
   */
  onStep: ((step: TrieStep, word: number) => void) | undefined;
  readonly #cpu: CpuHandle;
  readonly #i32: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #root: number;
  readonly #lock: number;
  readonly #checks: boolean;
  /** Where a node's version is, from its pointer's word: its first word, or the unit header's. */
  readonly #versionAt: number;
  /**
   * Under 'generation', the arena as 64-bit words: an entry (pointer, version) is read and
   * written as one, so a reader can never pair one node's pointer with another's version.
   */
  readonly #pairs: BigInt64Array | undefined;
  readonly #builder: NodeBuilder;
  readonly #count: number;
  readonly #lo: number;
  /** Highest pointer whose largest possible node (a full branch) still lies in the arena. */
  readonly #hi: number;
  /** Longest walk: one branch per nibble of the longest key and its end. */
  readonly #maxDepth: number;
  /** The key of the current call. */
  readonly #key: Uint8Array;
  #keyLength = 0;
  /** Set by #walk: the version of the leaf it returned. */
  #leafVersion = 0;

  private constructor(cpu: CpuHandle, ref: QpTrieRef) {
    const i32 = cpu.i32;
    const t = ref >> 2;
    this.ref = ref;
    this.#cpu = cpu;
    this.#i32 = i32;
    this.#bytes = cpu.bytes;
    this.maxKeyBytes = i32[t + T_MAX_KEY] as number;
    this.maxValueBytes = i32[t + T_MAX_VALUE] as number;
    this.versions = VERSION_MODES[i32[t + T_FLAGS] as number] ?? 'none';
    this.#checks = this.versions !== 'none';
    this.#versionAt = this.versions === 'generation' ? GENERATION_WORD : N_VERSION;
    this.#pairs = this.versions === 'generation' ? new BigInt64Array(i32.buffer) : undefined;
    this.#builder = { i32, alloc: (bytes) => this.#allocNode(bytes), versionAt: this.#versionAt };
    this.#root = t + T_ROOT;
    this.#lock = t + T_LOCK;
    this.#count = t + T_COUNT;
    const layout = readLayout(i32);
    this.#lo = layout.pagesBase;
    const leafBytes = NODE_HEADER + round8(this.maxKeyBytes) + this.maxValueBytes;
    this.#hi = layout.totalBytes - Math.max(MAX_BRANCH_BYTES, leafBytes);
    this.#maxDepth = 2 * this.maxKeyBytes + 2;
    this.#key = new Uint8Array(this.maxKeyBytes);
  }

  /**
   * Lays out a new, empty trie in a page of its own and returns its `ref`. Throws `EINVAL` for
   * bad options and `ENOMEM` when the arena has no page left; nothing is allocated then.
   */
  static create(arena: ArenaRef, options: QpTrieOptions): QpTrieRef {
    const buffer = arenaBuffer(arena, 'QpTrie.create');
    if (options === null || typeof options !== 'object') fail('EINVAL', 'QpTrie.create needs options');
    const maxKey = checkInteger('QpTrie', 'maxKeyBytes', options.maxKeyBytes, 1, MAX_KEY);
    const maxValue = checkInteger(
      'QpTrie',
      'maxValueBytes',
      options.maxValueBytes,
      1,
      MAX_UNIT - NODE_HEADER - round8(maxKey),
    );
    const versions = options.versions ?? 'none';
    if (!VERSION_MODES.includes(versions)) {
      fail('EINVAL', `QpTrie: versions must be one of ${VERSION_MODES.join(', ')}, got ${show(versions)}`);
    }
    const i32 = new Int32Array(buffer);
    const layout = readLayout(i32);
    const region = new PageAllocator(i32, layout, buffer).allocSpan(1);
    if (region === 0) fail('ENOMEM', 'QpTrie: no page left in the arena for the trie');
    const t = region >> 2;
    i32.fill(0, t, t + 1024);
    i32[t + T_MAX_KEY] = maxKey;
    i32[t + T_MAX_VALUE] = maxValue;
    i32[t + T_FLAGS] = VERSION_MODES.indexOf(versions);
    Atomics.store(i32, t + T_MAGIC, TRIE_MAGIC);
    joinStructureChain(i32, region, T_NEXT);
    return region as QpTrieRef;
  }

  /** Opens trie `ref` for `cpu` (on the thread that owns it). Throws `EINVAL` for a bad ref. */
  static open(cpu: CpuHandle, ref: QpTrieRef): QpTrie {
    checkCpu(cpu, 'QpTrie.open');
    checkStructureRef(cpu.i32, ref, TRIE_MAGIC, 'QpTrie.open', 'trie');
    return new QpTrie(cpu, ref);
  }

  /** Entries now (exact between updates). */
  get size(): number {
    this.#cpu.ensureUsable('QpTrie.size');
    return Atomics.load(this.#i32, this.#count);
  }

  /**
   * Finds `key` and returns the byte offset of its value in `cpu.bytes`, or 0 — what a BPF
   * program gets from a map lookup. Call it inside `readLock()`. The value is read after the
   * lookup's last version check: under immediate reuse it may belong to another key by then.
   */
  lookup(key: Uint8Array): number {
    this.#cpu.ensureUsable('QpTrie.lookup');
    if (!this.#cpu.inReadSection) fail('EINVAL', 'QpTrie.lookup: call it inside readLock()');
    this.#loadKey(key);
    const leaf = this.#walk();
    return leaf === 0 ? 0 : leaf + NODE_HEADER + round8(this.#keyLength);
  }

  /**
   * Copies the value of `key` into `out` inside its own read-side section and returns its
   * length, or -1 if the key is absent. With versions, the copy is checked against the leaf's
   * version afterwards (and the lookup restarted on a mismatch). Throws `EINVAL` for a bad key
   * or an `out` shorter than `maxValueBytes`.
   */
  read(key: Uint8Array, out: Uint8Array): number {
    this.#cpu.ensureUsable('QpTrie.read');
    if (!(out instanceof Uint8Array) || out.length < this.maxValueBytes) {
      fail('EINVAL', `QpTrie.read: out must be a Uint8Array of at least ${this.maxValueBytes} bytes`);
    }
    this.#loadKey(key);
    const cpu = this.#cpu;
    const i32 = this.#i32;
    cpu.readLock();
    try {
      for (let attempt = 0; ; attempt++) {
        const leaf = this.#walk();
        if (leaf === 0) return -1;
        const length = i32[(leaf >> 2) + N_VALUE_LENGTH] as number;
        if (length < 0 || length > this.maxValueBytes) {
          if (!this.#retry(attempt)) return -1;
          continue;
        }
        const at = leaf + NODE_HEADER + round8(this.#keyLength);
        out.set(this.#bytes.subarray(at, at + length));
        if (!this.#checks || Atomics.load(i32, (leaf >> 2) + this.#versionAt) === this.#leafVersion)
          return length;
        this.#retry(attempt);
      }
    } finally {
      cpu.readUnlock();
    }
  }

  /** The value of `key` (a copy), or undefined. */
  get(key: Uint8Array): Uint8Array | undefined {
    const out = new Uint8Array(this.maxValueBytes);
    const length = this.read(key, out);
    return length < 0 ? undefined : out.slice(0, length);
  }

  has(key: Uint8Array): boolean {
    this.#cpu.ensureUsable('QpTrie.has');
    this.#loadKey(key);
    const cpu = this.#cpu;
    cpu.readLock();
    try {
      return this.#walk() !== 0;
    } finally {
      cpu.readUnlock();
    }
  }

  /**
   * Inserts or replaces `key` with `value` (copy-on-write: the changed branch or leaf is built
   * anew and published with one store; the node it replaces is then freed). Returns `OK` or
   * `NO_MEMORY` (nothing changed then). Throws `EINVAL` for a bad key or value.
   */
  update(key: Uint8Array, value: Uint8Array): TrieStatus {
    this.#loadKey(key);
    if (!(value instanceof Uint8Array) || value.length < 1 || value.length > this.maxValueBytes) {
      fail('EINVAL', `QpTrie.update: the value must be a Uint8Array of 1 to ${this.maxValueBytes} bytes`);
    }
    this.#cpu.ensureUsable('QpTrie.update');
    const i32 = this.#i32;
    robustLock(i32, this.#lock);
    let freeLeaf = 0;
    let freeNode = 0;
    try {
      const leaf = this.#newLeaf(value);
      if (leaf === 0) return TrieStatus.NO_MEMORY;
      const closest = this.#closestLeaf();
      if (closest === 0) {
        this.#publish(this.#root, leaf);
        Atomics.add(i32, this.#count, 1);
        return TrieStatus.OK;
      }
      const differ = this.#firstDifference(closest);
      if (differ < 0) {
        // Same key: the new leaf replaces the old one in its entry.
        this.#publish(this.#entryOfLeaf(), leaf);
        freeLeaf = closest;
        return TrieStatus.OK;
      }
      // Down to the entry where the keys part: a branch testing that nibble, or the first node
      // past it, which a new two-way branch then takes over.
      let entry = this.#root;
      let node = i32[entry] as number;
      while (this.#isBranch(node) && (i32[(node >> 2) + N_INDEX] as number) < differ) {
        entry = this.#entryFor(
          node,
          nibbleOf(this.#key, this.#keyLength, i32[(node >> 2) + N_INDEX] as number),
        );
        node = i32[entry] as number;
      }
      const nib = nibbleOf(this.#key, this.#keyLength, differ);
      const extend = this.#isBranch(node) && i32[(node >> 2) + N_INDEX] === differ;
      const branch = extend
        ? branchWith(this.#builder, node, nib, leaf)
        : twoWayBranch(this.#builder, entry, differ, nib, leaf, this.#nibbleOfLeaf(closest, differ));
      if (branch === 0) {
        freeLeaf = leaf; // never published
        return TrieStatus.NO_MEMORY;
      }
      this.#publish(entry, branch);
      if (extend) freeNode = node;
      Atomics.add(i32, this.#count, 1);
      return TrieStatus.OK;
    } finally {
      robustUnlock(i32, this.#lock);
      if (freeLeaf !== 0) this.#cpu.free(freeLeaf as Pointer);
      if (freeNode !== 0) this.#cpu.free(freeNode as Pointer);
    }
  }

  /**
   * Removes `key`: its leaf goes, and its branch is rebuilt without it (or, left with one child,
   * replaced by that child). Returns `OK`, `NOT_FOUND`, or `NO_MEMORY` when the smaller branch
   * could not be allocated (nothing changed then). Throws `EINVAL` for a bad key.
   */
  delete(key: Uint8Array): TrieStatus {
    this.#loadKey(key);
    this.#cpu.ensureUsable('QpTrie.delete');
    const i32 = this.#i32;
    robustLock(i32, this.#lock);
    let freeLeaf = 0;
    let freeBranch = 0;
    try {
      let parentEntry = 0;
      let parent = 0;
      let entry = this.#root;
      let node = i32[entry] as number;
      while (this.#isBranch(node)) {
        const nib = nibbleOf(this.#key, this.#keyLength, i32[(node >> 2) + N_INDEX] as number);
        if (((i32[(node >> 2) + N_BITMAP] as number) & (1 << nib)) === 0) return TrieStatus.NOT_FOUND;
        parentEntry = entry;
        parent = node;
        entry = this.#entryFor(node, nib);
        node = i32[entry] as number;
      }
      if (node === 0 || !this.#leafMatches(node)) return TrieStatus.NOT_FOUND;
      if (parent === 0) {
        this.#publishEntry(this.#root, 0, 0);
      } else {
        const p = parent >> 2;
        const bitmap = (i32[p + N_BITMAP] as number) & ~BRANCH;
        const nib = nibbleOf(this.#key, this.#keyLength, i32[p + N_INDEX] as number);
        if (popcount(bitmap) === 2) {
          // The sibling takes the branch's place.
          const sibling = entry === p + N_ENTRIES ? p + N_ENTRIES + 2 : p + N_ENTRIES;
          this.#publishEntry(parentEntry, i32[sibling] as number, i32[sibling + 1] as number);
        } else {
          const smaller = branchWithout(this.#builder, parent, nib);
          if (smaller === 0) return TrieStatus.NO_MEMORY;
          this.#publish(parentEntry, smaller);
        }
        freeBranch = parent;
      }
      freeLeaf = node;
      Atomics.sub(i32, this.#count, 1);
      return TrieStatus.OK;
    } finally {
      robustUnlock(i32, this.#lock);
      if (freeLeaf !== 0) this.#cpu.free(freeLeaf as Pointer);
      if (freeBranch !== 0) this.#cpu.free(freeBranch as Pointer);
    }
  }

  /**
   * A copy of every key in key order, read inside one read-side section. It checks no versions:
   * under an immediate-reuse policy it can return wrong keys in any mode (use it under a policy
   * that reuses after a GP).
   */
  keys(): Uint8Array[] {
    const keys: Uint8Array[] = [];
    const i32 = this.#i32;
    const cpu = this.#cpu;
    cpu.ensureUsable('QpTrie.keys');
    cpu.readLock();
    try {
      const stack = [i32[this.#root] as number];
      let steps = 0;
      while (stack.length > 0 && steps++ < 1 << 24) {
        const node = stack.pop() as number;
        if (!this.#inRange(node)) continue;
        const n = node >> 2;
        const bitmap = i32[n + N_BITMAP] as number;
        if (bitmap === 0) {
          const length = i32[n + N_INDEX] as number;
          if (length >= 1 && length <= this.maxKeyBytes) {
            keys.push(this.#bytes.slice(node + NODE_HEADER, node + NODE_HEADER + length));
          }
          continue;
        }
        const children = popcount(bitmap & ~BRANCH);
        for (let c = children - 1; c >= 0 && c < NIBBLES; c--)
          stack.push(i32[n + N_ENTRIES + 2 * c] as number);
      }
    } finally {
      cpu.readUnlock();
    }
    return keys;
  }

  #loadKey(key: Uint8Array): void {
    if (!(key instanceof Uint8Array) || key.length < 1 || key.length > this.maxKeyBytes) {
      fail('EINVAL', `QpTrie: the key must be a Uint8Array of 1 to ${this.maxKeyBytes} bytes`);
    }
    this.#key.set(key);
    this.#keyLength = key.length;
  }

  #inRange(node: number): boolean {
    return (node & 7) === 0 && node >= this.#lo && node <= this.#hi;
  }

  #isBranch(node: number): boolean {
    return node !== 0 && ((this.#i32[(node >> 2) + N_BITMAP] as number) & BRANCH) !== 0;
  }

  /** A restart of a lookup: false when a trie without versions simply answers "absent". */
  #retry(attempt: number): boolean {
    if (!this.#checks) return false;
    this.restarts++;
    if (attempt >= kMaxRestarts)
      fail('EBADARENA', 'QpTrie: a lookup restarted without end (is the trie corrupt?)');
    return true;
  }

  /**
   * The lock-free walk: the leaf holding the current key, or 0. Every pointer is range-checked
   * and the depth bounded, so a walk over reused nodes ends; with versions, every node is
   * checked against its entry's version before and after it is read, and a mismatch restarts.
   * Entries and versions are read with Atomics.load (READ_ONCE): the JIT may merge two plain
   * loads of one word, which turned the check after a node's read into a copy of the check
   * before it, and kept a restart on the pointers it loaded the first time (found by the torture
   * run: lookups restarting 100 000 times while the trie was consistent). On x86 the Atomics
   * load is a plain move.
   */
  #walk(): number {
    const i32 = this.#i32;
    const versions = this.#checks;
    const versionAt = this.#versionAt;
    const pairs = this.#pairs;
    const key = this.#key;
    const length = this.#keyLength;
    for (let attempt = 0; ; attempt++) {
      let node: number;
      let version: number;
      if (pairs) {
        const pair = Atomics.load(pairs, this.#root >> 1);
        node = Number(BigInt.asIntN(32, pair));
        version = Number(pair >> 32n);
        this.onStep?.('entry', this.#root);
      } else {
        node = Atomics.load(i32, this.#root);
        this.onStep?.('entry', this.#root);
        version = Atomics.load(i32, this.#root + 1);
      }
      let depth = 0;
      let restart = false;
      while (node !== 0) {
        if (!this.#inRange(node) || depth++ > this.#maxDepth) {
          restart = true;
          break;
        }
        const n = node >> 2;
        if (versions && Atomics.load(i32, n + versionAt) !== version) {
          restart = true;
          break;
        }
        this.onStep?.('node', node);
        const bitmap = i32[n + N_BITMAP] as number;
        if ((bitmap & BRANCH) === 0) {
          const found = this.#leafMatches(node);
          if (versions && Atomics.load(i32, n + versionAt) !== version) {
            restart = true;
            break;
          }
          this.#leafVersion = version;
          return found ? node : 0;
        }
        const bit = 1 << nibbleOf(key, length, i32[n + N_INDEX] as number);
        let child = 0;
        let childVersion = 0;
        if ((bitmap & bit) !== 0) {
          const e = n + N_ENTRIES + 2 * popcount(bitmap & (bit - 1));
          if (pairs) {
            const pair = Atomics.load(pairs, e >> 1);
            child = Number(BigInt.asIntN(32, pair));
            childVersion = Number(pair >> 32n);
            this.onStep?.('entry', e);
          } else {
            child = Atomics.load(i32, e);
            this.onStep?.('entry', e);
            childVersion = Atomics.load(i32, e + 1);
          }
        }
        if (versions && Atomics.load(i32, n + versionAt) !== version) {
          restart = true;
          break;
        }
        if (child === 0) return 0;
        node = child;
        version = childVersion;
      }
      if (!restart) return 0;
      if (!this.#retry(attempt)) return 0;
    }
  }

  #leafMatches(leaf: number): boolean {
    const n = leaf >> 2;
    if ((this.#i32[n + N_INDEX] as number) !== this.#keyLength) return false;
    const bytes = this.#bytes;
    const key = this.#key;
    const at = leaf + NODE_HEADER;
    for (let i = 0; i < this.#keyLength; i++) if (bytes[at + i] !== key[i]) return false;
    return true;
  }

  /** The updater's walk (under the lock): the leaf whose key shares the longest prefix tested. */
  #closestLeaf(): number {
    const i32 = this.#i32;
    let node = i32[this.#root] as number;
    while (this.#isBranch(node)) {
      const n = node >> 2;
      const bitmap = (i32[n + N_BITMAP] as number) & ~BRANCH;
      const bit = 1 << nibbleOf(this.#key, this.#keyLength, i32[n + N_INDEX] as number);
      // A missing child: any leaf below agrees with the key on every nibble tested above.
      const e = n + N_ENTRIES + ((bitmap & bit) !== 0 ? 2 * popcount(bitmap & (bit - 1)) : 0);
      node = i32[e] as number;
    }
    return node;
  }

  /** The entry that points to the current key's leaf (which exists; under the lock). */
  #entryOfLeaf(): number {
    const i32 = this.#i32;
    let entry = this.#root;
    let node = i32[entry] as number;
    while (this.#isBranch(node)) {
      entry = this.#entryFor(
        node,
        nibbleOf(this.#key, this.#keyLength, i32[(node >> 2) + N_INDEX] as number),
      );
      node = i32[entry] as number;
    }
    return entry;
  }

  /** The word index of `branch`'s entry for nibble `nib` (present). */
  #entryFor(branch: number, nib: number): number {
    const bitmap = this.#i32[(branch >> 2) + N_BITMAP] as number;
    return (branch >> 2) + N_ENTRIES + 2 * popcount(bitmap & ((1 << nib) - 1) & ~BRANCH);
  }

  /** The first nibble index where the current key and `leaf`'s key differ, or -1 if equal. */
  #firstDifference(leaf: number): number {
    const other = this.#bytes.subarray(
      leaf + NODE_HEADER,
      leaf + NODE_HEADER + (this.#i32[(leaf >> 2) + N_INDEX] as number),
    );
    const nibbles = 2 * Math.max(other.length, this.#keyLength);
    for (let i = 0; i < nibbles; i++) {
      if (nibbleOf(this.#key, this.#keyLength, i) !== nibbleOf(other, other.length, i)) return i;
    }
    return -1;
  }

  #nibbleOfLeaf(leaf: number, i: number): number {
    const length = this.#i32[(leaf >> 2) + N_INDEX] as number;
    return nibbleOf(this.#bytes.subarray(leaf + NODE_HEADER, leaf + NODE_HEADER + length), length, i);
  }

  /**
   * A unit for a new node. Under 'per-node' its version, the unit's previous one + 1 ("every
   * reuse would inc the seq"), is stored before the node's new contents, so that a reader that
   * sees any of them and then re-reads the version sees the change; under 'generation' the
   * allocator has already changed the unit's header word.
   */
  #allocNode(bytes: number): number {
    const ptr = this.#cpu.alloc(bytes);
    if (ptr === 0) return 0;
    const i32 = this.#i32;
    if ((i32[(ptr >> 2) - 1] as number) >>> 2 > 1) this.reusedNodes++;
    if (this.versions !== 'generation') {
      Atomics.store(i32, (ptr >> 2) + N_VERSION, ((i32[(ptr >> 2) + N_VERSION] as number) + 1) | 0);
    }
    return ptr;
  }

  #newLeaf(value: Uint8Array): number {
    const length = this.#keyLength;
    const leaf = this.#allocNode(NODE_HEADER + round8(length) + value.length);
    if (leaf === 0) return 0;
    const n = leaf >> 2;
    const i32 = this.#i32;
    i32[n + N_BITMAP] = 0;
    i32[n + N_INDEX] = length;
    i32[n + N_VALUE_LENGTH] = value.length;
    this.#bytes.set(this.#key.subarray(0, length), leaf + NODE_HEADER);
    this.#bytes.set(value, leaf + NODE_HEADER + round8(length));
    return leaf;
  }

  /** rcu_assign_pointer of a new node into `entry`, with the version it was built with. */
  #publish(entry: number, node: number): void {
    this.#publishEntry(entry, node, this.#i32[(node >> 2) + this.#versionAt] as number);
  }

  /** Version first, then pointer: a reader that loads the new pointer sees the new version. */
  #publishEntry(entry: number, node: number, version: number): void {
    if (this.#pairs) {
      Atomics.store(this.#pairs, entry >> 1, (BigInt(version) << 32n) | BigInt(node >>> 0));
      return;
    }
    Atomics.store(this.#i32, entry + 1, version);
    Atomics.store(this.#i32, entry, node);
  }
}

/**
 * Crash recovery (src/arena/recovery.ts, through `trieRecoverer`): releases the writer lock of
 * trie `ref` if its word names the dead thread. Its updates are copy-on-write, so the one write it can have cut is an entry's
 * two halves (version stored, pointer not yet): every entry's version is set again from the node
 * it points to before the lock goes (a leaf or branch it built and never linked leaks). Returns
 * the locks released.
 */
export function recoverTrieLocks(i32: Int32Array, ref: number, deadThreadId: number): StructureRecovery {
  let released = 0;
  const t = ref >> 2;
  const versionAt = VERSION_MODES[i32[t + T_FLAGS] as number] === 'generation' ? GENERATION_WORD : N_VERSION;
  const repair = (): void => {
    const entries = [t + T_ROOT];
    for (let steps = 0; entries.length > 0 && steps < 1 << 24; steps++) {
      const entry = entries.pop() as number;
      const node = i32[entry] as number;
      if (node === 0) continue;
      const n = node >> 2;
      i32[entry + 1] = i32[n + versionAt] as number;
      const bitmap = i32[n + N_BITMAP] as number;
      if ((bitmap & BRANCH) === 0) continue;
      const children = popcount(bitmap & ~BRANCH);
      for (let c = 0; c < children && c < NIBBLES; c++) entries.push(n + N_ENTRIES + 2 * c);
    }
  };
  if (mutexRecover(i32, t + T_LOCK, deadThreadId, repair)) released++;
  return { released, unlinked: 0 };
}

/** The structure chain's entry for qp-tries (src/shm/structure-chain.ts). */
export const trieRecoverer: StructureRecoverer = {
  magic: TRIE_MAGIC,
  name: 'qp-trie',
  nextWord: T_NEXT,
  recover: recoverTrieLocks,
};
