/**
 * Exact accounting of a quiet arena (no CPU running): walks every list (each CPU's free list,
 * deferred lists, remote buffer and both inboxes; each slab row, its return stack and the
 * depot's slots) by its count, and scans every
 * unit start of the unit-start map. Each unit must be on at most one list, in the state that
 * list holds; off the lists it is allocated (live or leaked) or lost (free but on no list: a
 * chain a killed thread held in its locals).
 */

import { Barn } from '../../src/cpu/barn.js';
import { forEachUnitStart } from '../../src/memory/slab.js';
import {
  C_SHEAF_MAIN,
  CACHE_LISTS,
  CPU_X_STATE,
  cacheWord,
  cpuWord,
  DEPOT_COUNT,
  DEPOT_SLOTS,
  DEPOT_X_HEAD,
  depotWord,
  HINT_CLASS_BITS,
  readLayout,
  SHEAF_OBJECTS,
  SHEAF_SIZE,
  SLAB_FREE_COUNT,
  SLAB_FREE_HEAD,
  SLAB_X_RETURN_COUNT,
  SLAB_X_RETURNS,
  slabWord,
  UNIT_ALLOCATED,
  UNIT_DEFERRED,
  UNIT_FREE,
  UNIT_STATE_MASK,
} from '../../src/shm/layout.js';

export interface Audit {
  /** Units on lists, allocated, and free on no list. */
  readonly onLists: number;
  readonly allocated: number;
  readonly lost: number;
  /** Allocated units per owner CPU (from their hint). */
  readonly allocatedByCpu: Readonly<Record<number, number>>;
  /** Problems found: a unit on two lists, in the wrong state, a list whose count lies. */
  readonly problems: readonly string[];
}

export function auditArena(buffer: SharedArrayBuffer): Audit {
  const i32 = new Int32Array(buffer);
  const layout = readLayout(i32);
  const problems: string[] = [];
  const seen = new Map<number, string>();
  const walk = (head: number, count: number, state: number, where: string): void => {
    let unit = head;
    for (let k = 0; k < count; k++) {
      if (unit === 0) {
        problems.push(`${where}: chain ends after ${k} of ${count} units`);
        return;
      }
      const other = seen.get(unit);
      if (other !== undefined) {
        problems.push(`unit ${unit} is on ${where} and on ${other}`);
        return;
      }
      seen.set(unit, where);
      if (((i32[(unit >> 2) + 1] as number) & UNIT_STATE_MASK) !== state) {
        problems.push(
          `unit ${unit} on ${where} has state ${(i32[(unit >> 2) + 1] as number) & 3}, not ${state}`,
        );
      }
      unit = i32[unit >> 2] as number;
    }
  };
  for (let cpu = 0; cpu < layout.cpus; cpu++) {
    for (let cls = 0; cls < layout.classes; cls++) {
      const c = cacheWord(layout, cpu, cls);
      for (const [head, count, state] of CACHE_LISTS) {
        walk(
          Atomics.load(i32, c + head),
          Atomics.load(i32, c + count),
          state,
          `cpu ${cpu} class ${cls} list ${head}`,
        );
      }
    }
  }
  for (let cls = 0; cls < layout.classes; cls++) {
    const row = slabWord(layout, cls);
    walk(i32[row + SLAB_FREE_HEAD] as number, i32[row + SLAB_FREE_COUNT] as number, UNIT_FREE, `slab ${cls}`);
    for (let slot = 0; slot < DEPOT_SLOTS; slot++) {
      const w = depotWord(layout, cls, slot);
      const head = Atomics.load(i32, w + DEPOT_X_HEAD);
      if (head < 0) problems.push(`depot ${cls}/${slot} is still claimed by thread ${-head - 1}`);
      if (head > 0) walk(head, i32[w + DEPOT_COUNT] as number, UNIT_FREE, `depot ${cls}/${slot}`);
    }
    walk(
      Atomics.load(i32, row + SLAB_X_RETURNS),
      Atomics.load(i32, row + SLAB_X_RETURN_COUNT),
      UNIT_FREE,
      `slab ${cls} returns`,
    );
  }
  // Policy cache 'sheaves': the barns' full sheaves hold free units (a quiet arena's CPUs hold none).
  const barn = new Barn(i32, layout);
  for (let cls = 0; layout.sheaves !== 0 && cls < layout.classes; cls++) {
    for (const sheaf of barn.fullSheaves(cls)) {
      for (let j = 0; j < (i32[sheaf + SHEAF_SIZE] as number); j++) {
        const unit = i32[sheaf + SHEAF_OBJECTS + j] as number;
        const other = seen.get(unit);
        if (other !== undefined) problems.push(`unit ${unit} is in barn ${cls} and on ${other}`);
        seen.set(unit, `barn ${cls}`);
        // DEFERRED: an rcu_free sheaf's object, past its GP (no per-object pass marks it FREE).
        const state = (i32[(unit >> 2) + 1] as number) & UNIT_STATE_MASK;
        if (state !== UNIT_FREE && state !== UNIT_DEFERRED) {
          problems.push(`unit ${unit} in barn ${cls} is not free`);
        }
      }
    }
    for (let cpu = 0; cpu < layout.cpus; cpu++) {
      const c = cacheWord(layout, cpu, cls);
      if (
        (i32[c + C_SHEAF_MAIN] as number) !== 0 &&
        (Atomics.load(i32, cpuWord(layout, cpu) + CPU_X_STATE) & 7) === 0
      ) {
        problems.push(`offline cpu ${cpu} class ${cls} still holds a main sheaf`);
      }
    }
  }
  let allocated = 0;
  let lost = 0;
  const allocatedByCpu: Record<number, number> = {};
  forEachUnitStart(i32, layout, (unit) => {
    if (seen.has(unit)) return;
    const state = (i32[(unit >> 2) + 1] as number) & UNIT_STATE_MASK;
    if (state === UNIT_ALLOCATED) {
      allocated++;
      const cpu = (i32[unit >> 2] as number) >> HINT_CLASS_BITS;
      allocatedByCpu[cpu] = (allocatedByCpu[cpu] ?? 0) + 1;
    } else if (state !== 0) {
      // Carved and freed, on no list. (State 0: not carved yet, the frontier's rest.)
      lost++;
    }
  });
  return { onLists: seen.size, allocated, lost, allocatedByCpu, problems };
}
