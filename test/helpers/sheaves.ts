/**
 * What the sheaves tests share (test/sheaves.test.ts, test/nolock.test.ts): the 64-byte class,
 * a manual two-CPU sheaves arena, and the exact-accounting checks (every unit of a class in
 * exactly one place; every sheaf of its pool in exactly one place).
 */
import { expect } from 'vitest';
import type { CpuHandle, Pointer } from '../../src/index.js';
import { Arena, type ArenaOptions } from '../../src/index.js';
import {
  BARN_GROWN,
  BARN_NR_EMPTY,
  BARN_NR_FULL,
  BARN_NR_READY,
  BARN_UNUSED_COUNT,
  barnWord,
  C_SEALED_COUNT,
  C_SHEAF_MAIN,
  C_SHEAF_RCU,
  C_SHEAF_SPARE,
  cacheWord,
  readLayout,
} from '../../src/shm/layout.js';

/** The 64-byte class (requests of 49..56 bytes) and its kernel capacity. */
export const CLS64 = 2;
export const SIZE64 = 56;
export const CAP64 = 60;

export function setup(options: Omit<ArenaOptions, 'cpus' | 'policy'> & { policy?: object } = {}) {
  const { policy, ...rest } = options;
  const arena = Arena.create({
    cpus: 2,
    maxBytes: 16 << 20,
    coordinator: 'manual',
    ...rest,
    policy: { ...arena0Policy, ...(policy ?? {}) },
  });
  return arena;
}
export const arena0Policy = { cache: 'sheaves', trimVia: 'slab', afterRcuGp: 'slab' } as const;

/** Every unit of class `cls` is in exactly one place; returns the class's stats. */
export function expectUnitsAccounted(arena: Arena, cls: number, live: number) {
  const stats = arena.stats();
  const k = stats.classes[cls];
  if (k === undefined) throw new Error('no class');
  expect(k.live).toBe(live);
  expect(k.slabFree + k.cached + k.depot + k.deferred + k.sheaved + k.barn + k.live).toBe(k.units);
  return k;
}

/** Every sheaf of the pool of `cls` is in exactly one place: a CPU, the barn or the unused stack. */
export function expectSheavesConserved(arena: Arena, cls: number): void {
  const i32 = new Int32Array(arena.shared.buffer);
  const layout = readLayout(i32);
  const b = barnWord(layout, cls);
  let held = 0;
  const seen = new Set<number>();
  for (let cpu = 0; cpu < layout.cpus; cpu++) {
    const c = cacheWord(layout, cpu, cls);
    for (const w of [C_SHEAF_MAIN, C_SHEAF_SPARE, C_SHEAF_RCU]) {
      const s = i32[c + w] as number;
      if (s !== 0) {
        expect(seen.has(s)).toBe(false);
        seen.add(s);
        held++;
      }
    }
    held += i32[c + C_SEALED_COUNT] as number;
  }
  const total =
    held +
    (i32[b + BARN_NR_FULL] as number) +
    (i32[b + BARN_NR_READY] as number) +
    (i32[b + BARN_NR_EMPTY] as number) +
    (i32[b + BARN_UNUSED_COUNT] as number);
  expect(total).toBe(layout.sheaves + (i32[b + BARN_GROWN] as number));
}

export function sheafStats(arena: Arena, cpu: number, cls = CLS64) {
  const s = arena.stats().cpus[cpu]?.classes[cls]?.sheaf;
  if (s === undefined) throw new Error('no cache');
  return s;
}

export function allocN(cpu: CpuHandle, n: number, size = SIZE64): Pointer[] {
  const out: Pointer[] = [];
  for (let k = 0; k < n; k++) {
    const p = cpu.alloc(size);
    expect(p).not.toBe(0);
    out.push(p);
  }
  return out;
}
