// One process = one count for bench/callgrind-fastpath.sh: warms up, then runs N LIFO
// alloc+free pairs of 56-byte requests (64-byte units) on one CPU of a compiled arena (dist/),
// or on a plain typed-array free list with `freelist` as the first argument. `arena` is the
// default preset (kernel-6.6: bpf_mem_alloc's lists), `sheaves` the SLUB-sheaves preset.
import { Arena } from '../dist/src/index.js';

const variant = process.argv[2];
const pairs = Number(process.argv[3]);

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

const target =
  variant === 'freelist'
    ? new FreeList(new Int32Array(new SharedArrayBuffer(1 << 16)))
    : Arena.create({ cpus: 1, policy: variant === 'sheaves' ? 'sheaves' : 'kernel-6.6' }).attach(0);

function lifo(cpu, n) {
  for (let i = 0; i < n; i++) cpu.free(cpu.alloc(56));
}
lifo(target, 3_000_000);
lifo(target, pairs);
