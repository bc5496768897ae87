/**
 * Crash recovery and hot-plug with real workers (src/arena/recovery.ts, `arena.watch`): workers
 * killed by `terminate()` at random moments or by an uncaught exception while they churn,
 * inside read-side sections, halfway through list updates, holding a slab mutex or stopped (by
 * the stallInTransit fault) with a chain in transit to the slab; GPs must go on, the slots must
 * attach again, and a quiet arena must account for every unit exactly (test/helpers/audit.ts).
 * Rounds from the environment: CRASH_ROUNDS (8 per policy; the 50 with
 * CRASH_ROUNDS=50).
 */
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { Arena, type PresetName } from '../src/index.js';
import type { StallReport } from '../src/lab/index.js';
import {
  C_FREE_COUNT,
  CPU_TRANSIT_COUNT,
  cacheWord,
  cpuWord,
  readLayout,
  SLAB_X_LOCK,
  slabWord,
} from '../src/shm/layout.js';
import { robustHolder } from '../src/shm/sync.js';
import { createArenaWithFaults } from '../src/testing.js';
import type { CrashTaskData, SurvivorResult } from './fixtures/crash-task.js';
import { auditArena } from './helpers/audit.js';

const rounds = Number(process.env.CRASH_ROUNDS ?? 8);
const FIXTURE = new URL('./fixtures/crash-task.ts', import.meta.url);
/** Boots a `.ts` worker: registers tsx inside it, then imports the fixture (js-ecosystem §1.3). */
const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(FIXTURE.href)}); })`;
const MAILBOX = 16;

let cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

interface Started {
  readonly worker: Worker;
  /** The CPU slot the worker attached. */
  readonly cpu: Promise<number>;
  /** Its second message (the survivor's result). */
  readonly result: Promise<unknown>;
  readonly exited: Promise<number>;
  /** Uncaught errors of the worker (a crasher's are the point; a survivor's are a bug to show). */
  readonly errors: unknown[];
}

function start(arena: Arena, data: Omit<CrashTaskData, 'shared'>, watch = true): Started {
  const worker = new Worker(boot, { eval: true, workerData: { ...data, shared: arena.shared } });
  if (watch) arena.watch(worker);
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  // An uncaught exception is the point of some runs; the 'exit' event is what matters.
  const errors: unknown[] = [];
  worker.on('error', (error) => errors.push(error));
  const messages: unknown[] = [];
  const waiters: ((m: unknown) => void)[] = [];
  worker.on('message', (m) => {
    const waiter = waiters.shift();
    if (waiter) waiter(m);
    else messages.push(m);
  });
  const nextMessage = (): Promise<unknown> =>
    messages.length > 0 ? Promise.resolve(messages.shift()) : new Promise((resolve) => waiters.push(resolve));
  const cpu = nextMessage().then((m) => (m as { cpu: number }).cpu);
  cleanup.push(() => worker.terminate());
  return { worker, cpu, result: cpu.then(nextMessage), exited, errors };
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)),
  ]);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('crash recovery', () => {
  it.each(['arena', 'kernel-6.6', 'sheaves', 'arena-sheaves', 'nolock'] as const)(
    '%s: workers killed at random moments leave a consistent arena and GPs that go on',
    async (policy: PresetName) => {
      const arena = Arena.create({ cpus: 3, maxBytes: 32 << 20, policy });
      cleanup.push(() => arena.close());
      const control = new SharedArrayBuffer(4 * (1 + MAILBOX));
      const survivor = start(arena, { role: 'survivor', seed: 7, control, throwAfter: 0 });
      const survivorCpu = await survivor.cpu;
      let seed = 12345;
      const random = () => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed;
      };
      for (let round = 0; round < rounds; round++) {
        // Every third crasher dies of an uncaught exception after some thousands of operations.
        const throwAfter = round % 3 === 2 ? 1000 + (random() % 20_000) : 0;
        const crasher = start(arena, { role: 'crasher', seed: random(), control, throwAfter });
        // The survivor's slot is taken only if the survivor died: say of what.
        expect(
          await crasher.cpu,
          `round ${round}; survivor errors: ${survivor.errors.map(String).join('; ')}`,
        ).not.toBe(survivorCpu);
        if (throwAfter === 0) {
          await sleep(random() % 30);
          await crasher.worker.terminate();
        }
        await within(crasher.exited, 20_000, `round ${round}: the crasher's exit`);
        // The watch took its CPU offline wherever it stopped: a full GP completes.
        await within(arena.synchronize('rcu'), 5000, `round ${round}: synchronize after the crash`);
      }
      new Int32Array(control)[0] = 1;
      const result = (await within(survivor.result, 20_000, 'the survivor')) as SurvivorResult;
      await survivor.exited;
      // Every crasher held one CPU; the survivor detached itself (nothing to recover).
      expect(arena.recoveries.map((r) => r.cpus.length)).toEqual(Array.from({ length: rounds }, () => 1));
      expect(result.badStamps).toBe(0);
      expect(result.ops).toBeGreaterThan(0);
      // Let every deferred batch pass its GPs, then account for every unit.
      for (let k = 0; k < 3; k++) {
        await arena.synchronize('rcu');
        await arena.synchronize('ttrace');
      }
      const stats = arena.stats();
      expect(stats.cpus.every((c) => !c.online)).toBe(true);
      expect(stats.cpusRecovered).toBe(rounds);
      const audit = auditArena(arena.shared.buffer);
      expect(audit.problems.join('\n')).toBe('');
      expect(audit.allocated + audit.lost).toBe(stats.liveUnits);
      // Only crashers' units are still allocated (the survivor freed its own and the mail).
      expect(audit.allocatedByCpu[survivorCpu] ?? 0).toBe(0);
      const lastLeaks = arena.recoveries.at(-1)?.leakedByCpu ?? {};
      expect(audit.allocated).toBeLessThanOrEqual(Object.values(lastLeaks).reduce((a, b) => a + b, 0));
      // A chain a thread held in its locals (a refill, a trim into the depot or a ttrace list) is
      // lost with it; moves to the slab and the free list are in transit (the test below).
      expect(audit.lost).toBeLessThanOrEqual(rounds * 8 * 96);
      const report = await arena.close();
      expect(report.leaked).toBe(stats.liveUnits);
    },
  );

  it.each(['kernel-6.6', 'free-after-gp', 'arena'] as const)(
    '%s: a worker killed with a chain in transit to the slab (in no list) loses no unit',
    async (policy: PresetName) => {
      const arena = createArenaWithFaults({ cpus: 2, maxBytes: 16 << 20, policy }, { stallInTransit: true });
      cleanup.push(() => arena.close());
      const control = new SharedArrayBuffer(4 * (1 + MAILBOX));
      const mover = start(arena, { role: 'mover', seed: 1, control, throwAfter: 0 });
      const i32 = new Int32Array(arena.shared.buffer);
      const transit = cpuWord(readLayout(i32), await mover.cpu) + CPU_TRANSIT_COUNT;
      // Its first move to the slab (a trim, or a batch past its GP) stops in transit for good.
      // Up to 15 s: under load the GPs and the idle check that lead to it come late.
      for (let k = 0; k < 1500 && i32[transit] === 0; k++) await sleep(10);
      const moving = i32[transit] as number;
      expect(moving, 'the mover never moved a chain to the slab').toBeGreaterThan(0);
      await sleep(50);
      expect(i32[transit]).toBe(moving);
      await mover.worker.terminate();
      await within(mover.exited, 20_000, "the mover's exit");
      for (let k = 0; k < 3; k++) {
        await arena.synchronize('rcu');
        await arena.synchronize('ttrace');
      }
      expect(arena.recoveries.map((r) => r.droppedUnits)).toEqual([0]);
      const audit = auditArena(arena.shared.buffer);
      expect(audit.problems.join('\n')).toBe('');
      // Nothing lost (the chain was in no list); what is allocated is what the mover still held
      // (it may stop before its last frees), reported as its leak.
      expect(audit.lost).toBe(0);
      const leaked = Object.values(arena.recoveries[0]?.leakedByCpu ?? {}).reduce((a, b) => a + b, 0);
      expect(audit.allocated).toBe(leaked);
      expect(arena.stats().liveUnits).toBe(leaked);
    },
  );

  it('a worker killed inside a read-side section: unwatched it holds GPs back and is reported as stalled; recovered, GPs go on', async () => {
    const stalls: StallReport[] = [];
    const arena = Arena.create({
      cpus: 2,
      policy: 'arena',
      stallWarningMs: 200,
      onStall: (s) => stalls.push(s),
    });
    cleanup.push(() => arena.close());
    const control = new SharedArrayBuffer(4 * (1 + MAILBOX));
    const sleeper = start(arena, { role: 'sleeper', seed: 1, control, throwAfter: 0 }, false);
    const cpu = await sleeper.cpu;
    const threadId = sleeper.worker.threadId;
    await sleeper.worker.terminate();
    let synchronized = false;
    const sync = arena.synchronize('rcu').then(() => {
      synchronized = true;
    });
    await sleep(600);
    expect(synchronized).toBe(false);
    expect(stalls).toEqual([expect.objectContaining({ cpu, threadId, flavor: 'rcu' })]);
    expect(stalls[0]?.ms).toBeGreaterThanOrEqual(200);
    expect(arena.stats().stalls).toBe(1);
    const report = arena.recoverThread(threadId);
    expect(report.cpus).toEqual([cpu]);
    await within(sync, 2000, 'synchronize after recovery');
    // The slot attaches again (a new worker on it is prefilled as any CPU coming online).
    const again = arena.attach(cpu);
    expect(arena.stats().cpus[cpu]?.classes[1]?.free).toBeGreaterThan(0);
    again.detach();
  });

  it('a list whose count lies (a kill between two writes) is dropped and reported; the audit would catch it otherwise', async () => {
    const arena = Arena.create({ cpus: 2, policy: 'kernel-6.6' });
    cleanup.push(() => arena.close());
    const control = new SharedArrayBuffer(4 * (1 + MAILBOX));
    const corrupter = start(arena, { role: 'corrupter', seed: 1, control, throwAfter: 0 }, false);
    const cpu = await corrupter.cpu;
    const threadId = corrupter.worker.threadId;
    await corrupter.worker.terminate();
    // The oracle: the audit sees the lie before recovery.
    expect(auditArena(arena.shared.buffer).problems.join()).toMatch(/chain ends after/);
    const report = arena.recoverThread(threadId);
    expect(report.cpus).toEqual([cpu]);
    expect(report.droppedUnits).toBeGreaterThan(3);
    // 20 allocated, 10 freed: 10 still allocated by that CPU.
    expect(report.leakedByCpu[cpu]).toBe(10);
    const audit = auditArena(arena.shared.buffer);
    expect(audit.problems).toEqual([]);
    expect(audit.allocated + audit.lost).toBe(arena.stats().liveUnits);
    const layout = readLayout(new Int32Array(arena.shared.buffer));
    expect(new Int32Array(arena.shared.buffer)[cacheWord(layout, cpu, 1) + C_FREE_COUNT]).toBe(0);
  });

  it('a worker killed holding a slab mutex: recovery releases it and the class allocates again', async () => {
    const arena = Arena.create({ cpus: 2, policy: 'arena' });
    cleanup.push(() => arena.close());
    const control = new SharedArrayBuffer(4 * (1 + MAILBOX));
    const locker = start(arena, { role: 'locker', seed: 1, control, throwAfter: 0 });
    await locker.cpu;
    const i32 = new Int32Array(arena.shared.buffer);
    const row = slabWord(readLayout(i32), 1);
    expect(robustHolder(i32, row + SLAB_X_LOCK)).toBe(locker.worker.threadId);
    await locker.worker.terminate();
    await locker.exited;
    expect(arena.recoveries.at(-1)?.locksReleased).toBe(1);
    expect(Atomics.load(i32, row + SLAB_X_LOCK)).toBe(0);
    const cpu = arena.attach(0);
    const ptrs = Array.from({ length: 500 }, () => cpu.alloc(24));
    expect(ptrs.every((p) => p !== 0)).toBe(true);
    cpu.detach();
  });

  it('watch() refuses what is not a running Worker', async () => {
    const arena = Arena.create({ cpus: 1 });
    cleanup.push(() => arena.close());
    expect(() => arena.watch({} as Worker)).toThrow(/EINVAL.*Worker/);
    expect(() => arena.recoverThread(-1)).toThrow(/EINVAL/);
    expect(() => Arena.create({ cpus: 1, stallWarningMs: -1 })).toThrow(/EINVAL.*stallWarningMs/);
  });
});
