/**
 * The pack bench's CPU side (`percpu-arena bench pack`, src/lab/benchmarks/pack-bench.ts): each CPU loads
 * its share of N programs — allocates a block of the JIT image's size from the pack allocator
 * and installs the image through `copyIn` — in four stages with a barrier after each (the last
 * CPU to arrive takes the allocator's stats then: the kernel table's rows at 512, 1024 … loaded
 * programs), then checks every image it loaded (another CPU's block overlapping one of its own
 * would have overwritten it) and unloads them: the odd-numbered ones first (stats again), then
 * the rest.
 *
 * Program sizes (stated in the bench's report): the JIT image length is drawn from the fleet
 * figures of Song Liu's execmem v5 cover letter (28 Nov 2022,
 * https://lore.kernel.org/bpf/?q=%22execmem_alloc+for+BPF+programs%22): "50% of the loaded BPF
 * programs are less than 500 bytes, 75% of them are less than 2kB": 50 % uniform in 64..499
 * bytes, 25 % in 500..2047, 20 % in 2 KiB..16 KiB, 5 % in 16 KiB..128 KiB; the block is the image
 * plus the 4-byte binary header and 16 bytes of illegal instructions (bpf_jit_binary_pack_alloc),
 * rounded by the allocator.
 *
 * Who may call: a CPU pool (src/service/pool.ts). Shared words: the allocator's (src/structures/pack.ts); program
 * bytes are written only through `copyIn` and read by the CPU that loaded them.
 */
import type { CpuContext } from '../../service/cpu-context.js';
import type { PackRef } from '../../shm/refs.js';
import { PackAllocator, type PackStats } from '../../structures/pack.js';

export interface PackBenchArgs {
  readonly ref: PackRef;
  /** Programs over all CPUs. */
  readonly programs: number;
  readonly seed: number;
}

export interface PackBenchResult {
  readonly loaded: number;
  readonly failures: number;
  /** Programs whose image was not intact when its CPU checked it before unloading. */
  readonly corrupt: number;
  readonly loadMs: number;
  readonly unloadMs: number;
  /** Set by the CPU that arrived last at each stage's barrier: the allocator's stats then. */
  readonly stages: readonly { readonly programs: number; readonly stats: PackStats }[];
  /** Set by the last CPU once every other program was unloaded: the allocator's stats then. */
  readonly half: PackStats | undefined;
}

export const PACK_STAGES = 4;

/** splitmix32: the size of program `id` under `seed`, reproducible on every CPU. */
function random(id: number, seed: number): number {
  let z = (Math.imul(id, 0x9e3779b9) + seed) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return ((z ^ (z >>> 16)) >>> 0) / 0x1_0000_0000;
}

/** JIT image bytes of program `id` (see the module comment for the distribution). */
export function imageBytes(id: number, seed: number): number {
  const band = random(id, seed);
  const within = random(id, seed ^ 0x5bd1e995);
  if (band < 0.5) return 64 + Math.floor(within * 436);
  if (band < 0.75) return 500 + Math.floor(within * 1548);
  if (band < 0.95) return 2048 + Math.floor(within * 14336);
  return 16384 + Math.floor(within * 114688);
}

/** What the kernel asks the pack allocator for: image + binary header + 16 trap bytes. */
export function blockBytes(id: number, seed: number): number {
  return imageBytes(id, seed) + 4 + 16;
}

function image(id: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (id * 31 + i * 7) & 0xff;
  return bytes;
}

export function loadPrograms(ctx: CpuContext<PackBenchArgs>): PackBenchResult {
  const { args } = ctx;
  const pack = PackAllocator.open(ctx.shared, args.ref);
  const mine: { id: number; block: number; length: number }[] = [];
  const stages: { programs: number; stats: PackStats }[] = [];
  let failures = 0;
  let loadMs = 0;
  for (let stage = 1; stage <= PACK_STAGES; stage++) {
    const upTo = Math.round((args.programs * stage) / PACK_STAGES);
    const from = Math.round((args.programs * (stage - 1)) / PACK_STAGES);
    const started = performance.now();
    for (let id = from + ctx.index; id < upTo; id += ctx.cpus) {
      const length = imageBytes(id, args.seed);
      const block = pack.alloc(blockBytes(id, args.seed));
      if (block === 0) {
        failures++;
        continue;
      }
      pack.copyIn(block, image(id, length), 4 + 16);
      mine.push({ id, block, length });
    }
    loadMs += performance.now() - started;
    if (ctx.barrier()) stages.push({ programs: upTo, stats: pack.stats() });
    // Nobody loads the next stage until the stats are taken.
    ctx.barrier();
  }
  let corrupt = 0;
  const view = pack.bytes.bind(pack);
  for (const p of mine) {
    const bytes = view(p.block);
    const want = image(p.id, p.length);
    for (let i = 0; i < p.length; i++) {
      if (bytes[20 + i] !== want[i]) {
        corrupt++;
        break;
      }
    }
  }
  ctx.barrier();
  // Every other program first (the chunks they free are scattered among the others: the
  // fragmentation packs suffer), then the rest.
  const started = performance.now();
  for (const p of mine) if ((p.id & 1) === 1) pack.free(p.block);
  let unloadMs = performance.now() - started;
  const half = ctx.barrier() ? pack.stats() : undefined;
  ctx.barrier();
  const rest = performance.now();
  for (const p of mine) if ((p.id & 1) === 0) pack.free(p.block);
  unloadMs += performance.now() - rest;
  return { loaded: mine.length, failures, corrupt, loadMs, unloadMs, stages, half };
}
