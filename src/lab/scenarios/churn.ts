/**
 * The churn scenario: every CPU allocates units of random sizes, stamps each one, frees most of
 * them itself and hands the rest to other CPUs through a shared queue, so units are freed on a
 * CPU other than the one that allocated them. Before every free the stamp is checked: a unit
 * handed out twice, or overwritten by another CPU, shows up as a corrupted stamp. It ends with
 * every unit freed, so the arena must report zero live units and zero leaks.
 *
 * It is the body of the stress test (test/stress.test.ts) and of the CLI demo; it is not a
 * benchmark (it checks every byte it wrote).
 *
 * Who may call: a worker of a CpuPool, with its CPU context (one CPU per worker). Shared words:
 * only through the PointerQueue (src/structures/ring.ts, whose contract covers it) and the
 * arena; a unit's stamp words are written and read by its holder only, and a unit changes holder
 * through the queue, whose push and pop order those accesses.
 *
 * Unit contents: word 0 = stamp (random per allocation, kept by the holder), word 1 = requested
 * size, every further byte = stamp & 0xff.
 */
import type { CpuContext } from '../../service/cpu-context.js';
import type { Pointer } from '../../shm/refs.js';
import { PointerQueue } from '../../structures/ring.js';

export interface ChurnArgs {
  /** Allocations per CPU. */
  readonly ops: number;
  /** Units each CPU keeps live while it churns (it frees a random one when above this). */
  readonly live: number;
  /** Largest request in bytes (8..4088); sizes are log-uniform so small ones dominate. */
  readonly maxSize: number;
  /** Fraction of frees handed to another CPU through the queue. */
  readonly remoteFraction: number;
  /** Buffer of a `PointerQueue` shared by the CPUs of the run. */
  readonly queue: SharedArrayBuffer;
  readonly seed: number;
}

export interface ChurnResult {
  readonly cpu: number;
  readonly allocs: number;
  readonly allocFailures: number;
  readonly localFrees: number;
  readonly remoteFrees: number;
  /** Units this CPU passed to the queue. */
  readonly handedOff: number;
  /** Corruptions and free errors seen (the first few are described in `errorSamples`). */
  readonly errors: number;
  readonly errorSamples: readonly string[];
  readonly ms: number;
}

/** xorshift32: a fast deterministic generator per CPU. */
function rng(seed: number): () => number {
  let x = seed | 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

const kMinSize = 8;

export function churn(ctx: CpuContext<ChurnArgs>): ChurnResult {
  const { cpu, args } = ctx;
  const queue = new PointerQueue(args.queue);
  const random = rng(args.seed * 7919 + ctx.index * 104_729 + 1);
  const bytes = cpu.bytes;
  const view = new DataView(bytes.buffer);
  const maxSize = Math.max(kMinSize, Math.min(args.maxSize, 4088));
  const logRange = Math.log(maxSize / kMinSize);
  const livePtrs: number[] = [];
  const liveStamps: number[] = [];
  const result = {
    cpu: cpu.cpu,
    allocs: 0,
    allocFailures: 0,
    localFrees: 0,
    remoteFrees: 0,
    handedOff: 0,
    errors: 0,
    errorSamples: [] as string[],
    ms: 0,
  };
  const report = (message: string): void => {
    result.errors++;
    if (result.errorSamples.length < 5) result.errorSamples.push(`CPU ${cpu.cpu}: ${message}`);
  };

  /** Checks the stamp and contents of a unit, then frees it on this CPU. */
  const verifyAndFree = (ptr: number, stamp: number): void => {
    const seen = view.getInt32(ptr, true);
    const size = view.getInt32(ptr + 4, true);
    if (seen !== stamp) {
      report(`unit ${ptr}: stamp ${seen} is not the holder's ${stamp} (handed out twice?)`);
    } else if (size < kMinSize || size > maxSize) {
      report(`unit ${ptr}: size word ${size} corrupted`);
    } else {
      const fill = stamp & 0xff;
      for (let i = ptr + 8, end = ptr + size; i < end; i++) {
        if (bytes[i] !== fill) {
          report(`unit ${ptr}: byte ${i - ptr} is ${bytes[i]}, expected ${fill}`);
          break;
        }
      }
    }
    try {
      cpu.free(ptr as Pointer);
    } catch (error) {
      report(`free(${ptr}): ${(error as Error).message}`);
    }
  };

  const freeFromQueue = (): boolean => {
    const ptr = queue.pop();
    if (ptr === 0) return false;
    verifyAndFree(ptr, queue.lastTag);
    result.remoteFrees++;
    return true;
  };

  const start = performance.now();
  for (let n = 0; n < args.ops; n++) {
    const size = Math.floor(kMinSize * Math.exp(random() * logRange));
    const ptr = cpu.alloc(size);
    if (ptr === 0) {
      result.allocFailures++;
    } else {
      result.allocs++;
      const stamp = (random() * 0x7fff_ffff) | 0;
      view.setInt32(ptr, stamp, true);
      view.setInt32(ptr + 4, size, true);
      bytes.fill(stamp & 0xff, ptr + 8, ptr + size);
      livePtrs.push(ptr);
      liveStamps.push(stamp);
    }
    while (livePtrs.length > args.live) {
      const k = Math.floor(random() * livePtrs.length);
      const victim = livePtrs[k] as number;
      const stamp = liveStamps[k] as number;
      livePtrs[k] = livePtrs[livePtrs.length - 1] as number;
      liveStamps[k] = liveStamps[liveStamps.length - 1] as number;
      livePtrs.pop();
      liveStamps.pop();
      if (random() < args.remoteFraction && queue.push(victim, stamp)) {
        result.handedOff++;
      } else {
        verifyAndFree(victim, stamp);
        result.localFrees++;
      }
    }
    if ((n & 7) === 0) freeFromQueue();
  }
  // Wind down: free what this CPU holds, then drain the queue once every CPU has stopped pushing.
  for (let k = 0; k < livePtrs.length; k++) {
    verifyAndFree(livePtrs[k] as number, liveStamps[k] as number);
    result.localFrees++;
  }
  ctx.barrier();
  while (freeFromQueue()) {}
  result.ms = performance.now() - start;
  return result;
}
