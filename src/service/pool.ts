/**
 * The CPU pool: piscina hosts the arena's CPUs for parallel runs. One worker per CPU
 * (`minThreads = maxThreads = cpus`, one task per worker, no idle timeout); a run sends every
 * worker one task carrying its CPU index, the worker attaches that CPU, waits at the arena's
 * start barrier so that all CPUs begin together, calls the named export of a module with a
 * {@link CpuContext}, detaches and returns the result.
 *
 * The function module is loaded in the worker with `require()` (Node 20.19+ loads ES modules
 * that way), so it must not use top-level await; from TypeScript sources (tests, development)
 * the workers register tsx, which makes `.ts` modules loadable the same way.
 *
 * The pool watches its workers (`arena.watch`), those piscina starts later included: a worker
 * that dies in a run (terminate, uncaught exception) has its CPU taken offline wherever it
 * stopped, and its replacement attaches the slot again.
 *
 * Who may call: the thread that created the arena; one run at a time per arena (the start
 * barrier lives in the arena header, X_BARRIER).
 */
import { pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { Arena } from '../arena/arena.js';
import type { SharedArena } from '../shm/arena-ref.js';
import { fail, show } from '../shm/errors.js';
import { X_BARRIER } from '../shm/layout.js';
import { barrierInit } from '../shm/sync.js';
import { checkWellFormed } from '../structures/arguments.js';

/** What a pool worker receives for one run (structured-cloned). */
export interface CpuTask {
  readonly shared: SharedArena;
  readonly cpu: number;
  /** Position of this CPU among the run's CPUs (0 .. cpus-1) and their number. */
  readonly index: number;
  readonly cpus: number;
  /** File URL of the module and the name of the export to call. */
  readonly module: string;
  readonly fn: string;
  readonly args: unknown;
  readonly barrierTimeoutMs: number;
}

/** Options of `CpuPool.start`. */
export interface CpuPoolOptions {
  /**
   * CPU slots to host: a count (slots 0..n-1) or a list of slots.
   * @defaultValue every slot of the arena
   */
  readonly cpus?: number | readonly number[];
  /**
   * How long the start barrier waits for all CPUs before the run fails with `ETIMEDOUT`.
   * @defaultValue 30000
   */
  readonly barrierTimeoutMs?: number;
}

const kIsTypeScript = import.meta.url.endsWith('.ts');

/**
 * URL of the module `path` (written without extension) relative to `base` (the caller's
 * `import.meta.url`): `.ts` when the caller runs from TypeScript sources, `.js` from dist/.
 */
export function siblingModule(base: string, path: string): URL {
  return new URL(`${path}${base.endsWith('.ts') ? '.ts' : '.js'}`, base);
}

/**
 * Watches every worker of a piscina pool with `arena.watch`, those it starts later included (a
 * pool that grows and shrinks): when piscina ends a worker (idle timeout, `destroy()`, a crash),
 * the CPUs its thread held go offline and their slots can be attached by the next worker
 * (`attachFree`).
 *
 * Workers that keep a CPU attached between tasks need piscina's `atomics: 'async'` (or
 * `'disabled'`): with the default `'sync'` an idle worker blocks in `Atomics.wait`, its event
 * loop never runs, and its CPU's doorbell (deferred lists, timely return) is never served —
 * the stranded-cache problem. Warns once per pool in that case.
 */
export function watchPool(arena: Arena, piscina: Piscina): void {
  checkPoolArena(arena, 'watchPool');
  // Duck-typed: the caller's piscina may be another copy of the package than ours.
  const pool = piscina as Partial<Piscina> | null;
  if (
    pool === null ||
    typeof pool !== 'object' ||
    typeof pool.on !== 'function' ||
    !Array.isArray(pool.threads)
  ) {
    fail('EINVAL', 'watchPool(arena, piscina) needs a piscina pool');
  }
  if ((piscina.options as { atomics?: string }).atomics === 'sync') {
    process.emitWarning(
      "watchPool: this piscina pool uses atomics: 'sync'; idle workers cannot serve their CPU's doorbell (use atomics: 'async')",
      { code: 'PERCPU_ARENA_SYNC_ATOMICS' },
    );
  }
  watchWorkers(arena, piscina);
}

/** `watchPool` without the check: for `CpuPool`, whose tasks detach their CPU before they end. */
function watchWorkers(arena: Arena, piscina: Piscina): void {
  const watchAll = (): void => {
    // A worker piscina starts after the arena closed needs no watching.
    if (arena.closed) return;
    for (const worker of piscina.threads) arena.watch(worker);
  };
  watchAll();
  piscina.on('workerCreate', watchAll);
}

/** EINVAL unless `arena` is an `Arena`, ECLOSED once it is closed. */
function checkPoolArena(arena: unknown, call: string): asserts arena is Arena {
  if (!(arena instanceof Arena)) fail('EINVAL', `${call} needs an Arena (on the thread that created it)`);
  if (arena.closed) fail('ECLOSED', `${call}: the arena is closed`);
}

export class CpuPool {
  readonly #arena: Arena;
  readonly #piscina: Piscina;
  readonly #cpus: readonly number[];
  readonly #barrierTimeoutMs: number;
  #running = false;

  private constructor(arena: Arena, piscina: Piscina, cpus: readonly number[], barrierTimeoutMs: number) {
    this.#arena = arena;
    this.#piscina = piscina;
    this.#cpus = cpus;
    this.#barrierTimeoutMs = barrierTimeoutMs;
  }

  /** Starts one worker per CPU slot. */
  static start(arena: Arena, options: CpuPoolOptions = {}): CpuPool {
    checkPoolArena(arena, 'CpuPool.start');
    if (options === null || typeof options !== 'object')
      fail('EINVAL', 'CpuPool.start: options must be an object');
    const timeout = options.barrierTimeoutMs ?? 30_000;
    if (!Number.isInteger(timeout) || timeout < 1 || timeout > 2 ** 31 - 1) {
      fail(
        'EINVAL',
        `CpuPool.start: barrierTimeoutMs must be an integer from 1 to 2^31-1, got ${show(timeout)}`,
      );
    }
    const requested = options.cpus ?? arena.cpus;
    if (typeof requested !== 'number' && !Array.isArray(requested)) {
      fail('EINVAL', 'CpuPool.start: options.cpus must be a count or an array of slots');
    }
    if (
      typeof requested === 'number' &&
      (!Number.isInteger(requested) || requested < 1 || requested > arena.cpus)
    ) {
      fail('EINVAL', `CpuPool.start: options.cpus must be from 1 to ${arena.cpus}, got ${show(requested)}`);
    }
    const cpus =
      typeof requested === 'number' ? Array.from({ length: requested }, (_, i) => i) : [...requested];
    if (cpus.length === 0 || new Set(cpus).size !== cpus.length) {
      fail('EINVAL', 'CpuPool: options.cpus must name at least one slot, each once');
    }
    for (const cpu of cpus) {
      if (!Number.isInteger(cpu) || cpu < 0 || cpu >= arena.cpus) {
        fail('EINVAL', `CpuPool: CPU ${show(cpu)} is not a slot of this arena (0..${arena.cpus - 1})`);
      }
    }
    const entry = siblingModule(import.meta.url, '../../workers/cpu-task');
    const piscina = new Piscina({
      filename: entry.href,
      minThreads: cpus.length,
      maxThreads: cpus.length,
      concurrentTasksPerWorker: 1,
      idleTimeout: Number.POSITIVE_INFINITY,
      // From sources, workers load .ts through tsx's require hook (see js-ecosystem notes).
      execArgv: kIsTypeScript ? ['--import', import.meta.resolve('tsx')] : [],
    });
    watchWorkers(arena, piscina);
    return new CpuPool(arena, piscina, cpus, timeout);
  }

  /** The CPU slots this pool hosts, in run order. */
  get cpus(): readonly number[] {
    return this.#cpus;
  }

  /**
   * Runs export `fn` of `module` (a path or file URL) on every CPU of the pool at once, each
   * with `args`, and resolves to their results in CPU order. Rejects with the first error if any CPU's function
   * throws, once every CPU's task has ended (the others fail at their next barrier with
   * `ETIMEDOUT`).
   */
  async run<R>(module: string | URL, fn: string, args?: unknown): Promise<R[]> {
    if (
      !((typeof module === 'string' && module !== '') || module instanceof URL) ||
      typeof fn !== 'string' ||
      fn === ''
    ) {
      fail('EINVAL', 'CpuPool.run(module, fn, args) needs a module path or URL and a function name');
    }
    if (typeof module === 'string') checkWellFormed(module, 'CpuPool.run', 'module path');
    checkWellFormed(fn, 'CpuPool.run', 'function name');
    if (this.#arena.closed) fail('ECLOSED', 'CpuPool.run: the arena is closed');
    if (this.#running) fail('EBUSY', 'CpuPool: a run is already in progress');
    this.#running = true;
    try {
      const href = module instanceof URL ? module.href : pathToFileURL(module).href;
      const i32 = new Int32Array(this.#arena.shared.buffer);
      barrierInit(i32, X_BARRIER, this.#cpus.length);
      // Wait for every CPU even when one fails, so no task of this run still holds its slot (or
      // waits at the barrier) when the next run starts.
      const settled = await Promise.allSettled(
        this.#cpus.map((cpu, index) => {
          const task: CpuTask = {
            shared: this.#arena.shared,
            cpu,
            index,
            cpus: this.#cpus.length,
            module: href,
            fn,
            args,
            barrierTimeoutMs: this.#barrierTimeoutMs,
          };
          return this.#piscina.run(task) as Promise<R>;
        }),
      );
      const failed = settled.find((s) => s.status === 'rejected');
      if (failed) throw failed.reason;
      return settled.map((s) => (s as PromiseFulfilledResult<R>).value);
    } finally {
      this.#running = false;
    }
  }

  /** Stops the workers. */
  async close(): Promise<void> {
    await this.#piscina.destroy();
  }

  /** `await using pool = CpuPool.start(arena)`: stops the workers at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
