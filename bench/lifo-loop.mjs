// One process = one count for bench/callgrind-fastpath.sh: warms up, then runs N LIFO
// alloc+free pairs of 56-byte requests (64-byte units) on one CPU of a compiled arena (dist/),
// or on a plain typed-array free list with `freelist` as the first argument (`freelist-header`:
// the same list writing and checking the arena's 8-byte header). `arena` is the
// default preset (kernel-6.6: bpf_mem_alloc's lists); any other name is a preset's
// (`sheaves`, `arena-sheaves`, ...); a third argument sets the preset's sheafCapacity. It prints
// the timed pairs' ns per pair (performance.now around the N pairs, after the warm-up).
import { Arena } from '../dist/src/index.js';
import { PRESETS } from '../dist/src/lab/index.js';

const variant = process.argv[2];
const pairs = Number(process.argv[3]);
const sheafCapacity = process.argv[4] === undefined ? undefined : Number(process.argv[4]);

class FreeList {
  constructor(i32) {
    this.i32 = i32;
    this.head = 0;
    for (let unit = 64; unit < 64 * 100; unit += 64) {
      i32[unit >> 2] = this.head;
      this.head = unit;
    }
  }
  alloc() {
    const unit = this.head;
    this.head = this.i32[unit >> 2];
    return unit + 8;
  }
  free(ptr) {
    this.i32[(ptr - 8) >> 2] = this.head;
    this.head = ptr - 8;
  }
}

/**
 * The baseline issue 17's fast-path target names: the same free list, but each unit carries the
 * arena's 8-byte header. Alloc writes the class word and bumps the generation with state
 * ALLOCATED; free checks that state (a double free throws) and marks it FREE. The link lives in
 * the header's first word while the unit is free, as in the arena.
 */
class HeaderFreeList {
  constructor(i32) {
    this.i32 = i32;
    this.head = 0;
    for (let unit = 64; unit < 64 * 100; unit += 64) {
      i32[unit >> 2] = this.head;
      i32[(unit >> 2) + 1] = 2;
      this.head = unit;
    }
  }
  alloc() {
    const unit = this.head;
    const h = unit >> 2;
    this.head = this.i32[h];
    this.i32[h] = 1;
    this.i32[h + 1] = ((this.i32[h + 1] + 4) & ~3) | 1;
    return unit + 8;
  }
  free(ptr) {
    const h = (ptr - 8) >> 2;
    const word = this.i32[h + 1];
    if ((word & 3) !== 1) throw new Error(`free(${ptr}): not allocated`);
    this.i32[h + 1] = (word & ~3) | 2;
    this.i32[h] = this.head;
    this.head = ptr - 8;
  }
}

const buffer = () => new Int32Array(new SharedArrayBuffer(1 << 16));
const target =
  variant === 'freelist'
    ? new FreeList(buffer())
    : variant === 'freelist-header'
      ? new HeaderFreeList(buffer())
      : Arena.create({ cpus: 1, policy: arenaPolicy(variant === 'arena' ? 'kernel-6.6' : variant) }).attach(
          0,
        );

function arenaPolicy(preset) {
  return sheafCapacity === undefined ? preset : { ...PRESETS[preset], sheafCapacity };
}

function lifo(cpu, n) {
  for (let i = 0; i < n; i++) cpu.free(cpu.alloc(56));
}
lifo(target, 3_000_000);
const start = performance.now();
lifo(target, pairs);
const ns = ((performance.now() - start) * 1e6) / pairs;
console.log(
  `${variant}${sheafCapacity === undefined ? '' : ` (sheafCapacity ${sheafCapacity})`}: ${ns.toFixed(2)} ns per pair`,
);
