/**
 * The futex mutexes and the barrier of src/shm/sync.ts under real parallelism: several
 * worker_threads (test/fixtures/sync-worker.mjs, running the compiled dist/src/sync.js) hammer
 * one SharedArrayBuffer. Each correctness oracle is also run against a deliberately broken
 * setup (no lock, no barrier) to prove that it can fail, so a green run means something.
 *
 * SYNC_ITERS scales the counter loops (default 200 000 increments per worker).
 */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { ArenaError } from '../src/shm/errors.js';
import { barrierInit, barrierWait, mutexLock, mutexTryLock, mutexUnlock } from '../src/shm/sync.js';

const ITERS = Number(process.env.SYNC_ITERS ?? 200_000);
const FIXTURE = new URL('./fixtures/sync-worker.mjs', import.meta.url);

/** Word indices in the test buffer; 16 words apart so unrelated words never share a cache line. */
const WORDS = { start: 0, lock: 16, counter: 32, scratch: 48, barrier: 64, slots: 80 } as const;

interface WorkerResult {
  readonly contended?: number;
  readonly violations?: number;
  readonly leader?: number;
}

/** Runs `workers` copies of the fixture on one fresh buffer; resolves with their results. */
async function runWorkers(
  workers: number,
  data: Record<string, unknown>,
  init: (i32: Int32Array) => void = () => {},
): Promise<{ i32: Int32Array; results: WorkerResult[] }> {
  const buffer = new SharedArrayBuffer(128 * 4);
  const i32 = new Int32Array(buffer);
  init(i32);
  // A start barrier lines the workers up: thread start-up takes milliseconds, long enough for
  // one worker to finish its whole loop before the next one starts, which would test nothing.
  barrierInit(i32, WORDS.start, workers);
  const results = await Promise.all(
    Array.from({ length: workers }, (_, slot) => {
      const worker = new Worker(FIXTURE, { workerData: { ...data, buffer, slot, words: WORDS } });
      return new Promise<WorkerResult>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`worker exited with code ${code} before reporting`)));
      });
    }),
  );
  return { i32, results };
}

const sum = (results: WorkerResult[], key: keyof WorkerResult): number =>
  results.reduce((total, r) => total + (r[key] ?? 0), 0);

/**
 * Runs the counter loop without a lock until an update is lost, four times longer each attempt.
 * The workers must actually overlap to lose one: on a loaded machine one worker can be
 * descheduled for the whole of a short loop (CI once saw exactly 2 × 200 000), and a starved run
 * proves nothing either way, so it is lengthened rather than judged. Returns the last attempt.
 */
async function runUntilLost(
  workers: number,
): Promise<{ counter: number; expected: number; attempts: number }> {
  let iters = ITERS;
  for (let attempt = 1; ; attempt++) {
    const { i32 } = await runWorkers(workers, { task: 'counter', lock: 'none', iters });
    const counter = i32[WORDS.counter] as number;
    if (counter < workers * iters || attempt === 4)
      return { counter, expected: workers * iters, attempts: attempt };
    console.log(`no update lost in ${workers} × ${iters} increments (no overlap): lengthening`);
    iters *= 4;
  }
}

describe('futex mutex', () => {
  it('keeps a racy read-modify-write exact under 4 workers on fewer cores', async () => {
    const { i32, results } = await runWorkers(4, { task: 'counter', lock: 'mutex', iters: ITERS });
    expect(i32[WORDS.counter]).toBe(4 * ITERS);
    // More workers than cores: holders get preempted, so waiters must have marked the word
    // CONTENDED (2) and slept; the count proves the futex path ran, not only the CAS fast path.
    expect(sum(results, 'contended')).toBeGreaterThan(0);
    // Left unlocked at the end, with no sleeper recorded.
    expect(i32[WORDS.lock]).toBe(0);
  });

  it('loses updates on the same loop without the lock, so the oracle above can fail', async () => {
    const { counter, expected } = await runUntilLost(4);
    expect(counter).toBeLessThan(expected);
  });

  it('the robust mutex (holder in the lock word) keeps it exact too, through its futex path', async () => {
    const { i32, results } = await runWorkers(4, { task: 'counter', lock: 'robust', iters: ITERS });
    expect(i32[WORDS.counter]).toBe(4 * ITERS);
    expect(sum(results, 'contended')).toBeGreaterThan(0);
    expect(i32[WORDS.lock]).toBe(0);
  });
});

describe('try-lock on the main thread', () => {
  it('fails while the mutex is held and succeeds after unlock', () => {
    const i32 = new Int32Array(new SharedArrayBuffer(64));
    expect(mutexTryLock(i32, 0)).toBe(true);
    expect(mutexTryLock(i32, 0)).toBe(false);
    mutexUnlock(i32, 0);
    // Uncontended: the word goes 0 → 1 → 0, never through CONTENDED.
    expect(i32[0]).toBe(0);
    mutexLock(i32, 0);
    expect(i32[0]).toBe(1);
    mutexUnlock(i32, 0);
  });
});

describe('no lock (the counter oracle can fail)', () => {
  it('loses updates without the lock under 2 workers', async () => {
    const { counter, expected } = await runUntilLost(2);
    expect(counter).toBeLessThan(expected);
  });
});

describe('barrier', () => {
  const ROUNDS = 1000;
  const data = { task: 'barrier', rounds: ROUNDS, parties: 3 };
  const initBarrier = (i32: Int32Array) => barrierInit(i32, WORDS.barrier, 3);

  it('never lets a party through before every party arrived, over 1000 rounds of 3 workers', async () => {
    const { i32, results } = await runWorkers(3, { ...data, lock: 'barrier' }, initBarrier);
    expect(sum(results, 'violations')).toBe(0);
    // Exactly one party per round is told it was the last to arrive.
    expect(sum(results, 'leader')).toBe(ROUNDS);
    // 1000 rounds passed: the generation word counts them, and nobody is left arrived.
    expect(i32[WORDS.barrier + 2]).toBe(ROUNDS);
    expect(i32[WORDS.barrier + 1]).toBe(0);
  });

  it('sees parties out of step when the barrier is skipped, so the oracle above can fail', async () => {
    const { results } = await runWorkers(3, { ...data, lock: 'none' }, initBarrier);
    expect(sum(results, 'violations')).toBeGreaterThan(0);
  });
});

describe('barrier on the main thread', () => {
  it('throws ETIMEDOUT on the main thread when a party never arrives', () => {
    const i32 = new Int32Array(new SharedArrayBuffer(64));
    barrierInit(i32, 0, 2);
    const started = Date.now();
    let error: unknown;
    try {
      barrierWait(i32, 0, 50);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ArenaError);
    expect((error as ArenaError).code).toBe('ETIMEDOUT');
    // It waited (roughly) the timeout, not zero and not forever.
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('can be initialised again after a timeout and then works', () => {
    const i32 = new Int32Array(new SharedArrayBuffer(64));
    barrierInit(i32, 0, 2);
    expect(() => barrierWait(i32, 0, 10)).toThrow(expect.objectContaining({ code: 'ETIMEDOUT' }));
    // The timeout broke the barrier: a party arriving late must not pass alone on the stale
    // arrival of the one that gave up, so it fails too.
    expect(() => barrierWait(i32, 0, 10)).toThrow(/broken/);
    // barrierInit resets it. A one-party barrier then never waits, and resets itself every round.
    barrierInit(i32, 0, 1);
    expect(barrierWait(i32, 0, 50)).toBe(true);
    expect(barrierWait(i32, 0, 50)).toBe(true);
  });

  it('rejects a barrier of zero parties with EINVAL', () => {
    const i32 = new Int32Array(new SharedArrayBuffer(64));
    expect(() => barrierInit(i32, 0, 0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});
