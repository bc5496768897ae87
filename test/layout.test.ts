/**
 * The memory map is the contract between threads (src/shm/layout.ts): this table pins every
 * field's word offset. A change to it must come with a new LAYOUT_VERSION (so that two builds
 * never share an arena); the load-time check in layout.ts catches overlaps, overflows and a
 * field whose marking (`X_` in its name) disagrees with its access.
 */
import { describe, expect, it } from 'vitest';
import * as layout from '../src/shm/layout.js';

const kMap: Record<string, Record<string, number>> = {
  header: {
    H_MAGIC: 0,
    H_VERSION: 1,
    H_CPUS: 2,
    H_CLASSES: 3,
    H_MAX_PAGES: 4,
    H_PAGES_BASE: 5,
    H_POLICY: 6,
    H_GP_MIN_MS: 7,
    H_DEBUG: 9,
    H_BIRTH_MS: 10,
    H_SHEAVES: 12,
    X_CLOSED: 16,
    X_PAGE_LOCK: 17,
    X_PAGES_NEXT: 18,
    X_PAGES_IN_USE: 19,
    X_PEAK_PAGES: 20,
    X_PAGE_LIMIT_HITS: 21,
    X_POISON_ERRORS: 22,
    X_POISON_FIRST: 23,
    X_BARRIER: 24,
    X_GP_REQUEST: 28,
    X_GP_SLEEPING: 29,
    X_GP_COORDINATOR: 30,
    X_GP: 32,
    X_RECLAIM_RUNS: 48,
    X_RECLAIM_DRAINED: 49,
    X_RECLAIM_ADVANCES: 50,
    X_RECLAIM_SUCCEEDED: 51,
    X_FREE_SPANS: 52,
    X_FREE_SPAN_PAGES: 53,
    X_SPANS_RELEASED: 54,
    X_CPUS_RECOVERED: 56,
    X_STALLS: 57,
    X_DEPOT_PARKS: 58,
    X_DEPOT_TAKES: 59,
    X_SPAN_GENERATIONS: 60,
    X_STRUCT_CHAIN: 61,
    X_PAGE_LOCK_BUSY: 62,
  },
  gp: { G_EPOCH: 0, G_WANT: 1, G_URGENT: 2, G_LAST_ADVANCE: 3 },
  cpu: {
    CPU_X_STATE: 0,
    CPU_X_OWNER: 1,
    CPU_X_PIN: 2,
    CPU_X_DOORBELL: 4,
    CPU_X_PENDING: 5,
    CPU_TRANSIT_COUNT: 6,
    CPU_TRANSIT_HEAD: 7,
    CPU_TRANSIT_CLASS: 8,
    CPU_TRANSIT_FROM: 9,
  },
  class: {
    CLS_UNIT_SIZE: 0,
    CLS_LOW: 1,
    CLS_HIGH: 2,
    CLS_BATCH: 3,
    CLS_PREFILL: 4,
    CLS_SPAN_PAGES: 5,
    CLS_SPAN_UNITS: 6,
    CLS_OBJECT_SIZE: 7,
  },
  cache: {
    C_FREE_HEAD: 0,
    C_FREE_COUNT: 1,
    C_ALLOCS: 2,
    C_FREES: 3,
    C_REFILLS: 4,
    C_TRIMS: 5,
    C_REFILL_SHORT: 6,
    C_GATE_LOW: 7,
    C_GATE_HIGH: 8,
    C_BATCH: 9,
    C_TRIM_TO: 10,
    C_LOW: 11,
    C_HIGH: 12,
    C_RECLAIMED: 13,
    C_RCU_TGT: 14,
    C_TTW_EPOCH_RCU: 15,
    C_RCU_HEAD: 16,
    C_RCU_TAIL: 17,
    C_RCU_COUNT: 18,
    C_WAIT_HEAD: 19,
    C_WAIT_TAIL: 20,
    C_WAIT_COUNT: 21,
    C_WAIT_EPOCH: 22,
    C_TT_HEAD: 23,
    C_TT_TAIL: 24,
    C_TT_COUNT: 25,
    C_TTW_HEAD: 26,
    C_TTW_TAIL: 27,
    C_TTW_COUNT: 28,
    C_TTW_EPOCH: 29,
    C_X_INBOX_HEAD: 30,
    C_X_INBOX_COUNT: 31,
    C_REMOTE_HEAD: 32,
    C_REMOTE_TAIL: 33,
    C_REMOTE_COUNT: 34,
    C_REMOTE_OWNER: 35,
    C_REMOTE_POSTS: 36,
    C_REMOTE_TAKES: 37,
    C_IDLE_MARK: 38,
    C_TAKING_INBOX: 39,
    C_TAKING_RETURN: 40,
    C_SHEAF_MAIN: 41,
    C_SHEAF_SPARE: 42,
    C_SHEAF_RCU: 43,
    C_SEALED_HEAD: 44,
    C_SEALED_TAIL: 45,
    C_SEALED_COUNT: 46,
    C_FREE_DEFERRED: 47,
    C_X_RETURN_HEAD: 48,
    C_X_RETURN_COUNT: 49,
    C_BARN_GET: 50,
    C_BARN_GET_FAIL: 51,
    C_BARN_PUT: 52,
    C_BARN_PUT_FAIL: 53,
    C_SHEAF_REFILL: 54,
    C_SHEAF_FLUSH: 55,
    C_FREE_RCU_SHEAF: 56,
    C_FREE_RCU_SHEAF_FAIL: 57,
    C_SLAB_TAKEN: 58,
    C_SLAB_RETURNED: 59,
    C_READY_GET: 60,
    C_ALLOC_SLOWPATH: 61,
    C_ALLOC_RETRY: 62,
    C_ALLOC_FAIL: 63,
  },
  slab: {
    SLAB_X_LOCK: 0,
    SLAB_FREE_HEAD: 1,
    SLAB_FREE_COUNT: 2,
    SLAB_CARVE_NEXT: 3,
    SLAB_CARVE_END: 4,
    SLAB_UNITS: 5,
    SLAB_SPANS: 6,
    SLAB_CARVE_GEN: 7,
    SLAB_X_RETURNS: 8,
    SLAB_X_RETURN_COUNT: 9,
  },
  depot: { DEPOT_X_HEAD: 0, DEPOT_TAIL: 1, DEPOT_COUNT: 2 },
  barn: {
    BARN_X_LOCK: 0,
    BARN_CAPACITY: 1,
    BARN_NR_FULL: 2,
    BARN_NR_EMPTY: 3,
    BARN_UNUSED_HEAD: 4,
    BARN_UNUSED_COUNT: 5,
    BARN_FULL: 6,
    BARN_EMPTY: 16,
    BARN_GROWN: 26,
    BARN_READY_HEAD: 27,
    BARN_NR_READY: 28,
  },
  sheaf: { SHEAF_SIZE: 0, SHEAF_EPOCH: 1, SHEAF_NEXT: 2, SHEAF_CAPACITY: 3, SHEAF_OBJECTS: 4 },
};

describe('the memory map', () => {
  it('is version 14 with every field where the table says', () => {
    expect(layout.LAYOUT_VERSION).toBe(14);
    for (const [record, fields] of Object.entries(kMap)) {
      const names = layout
        .recordFields(record)
        .filter(([name]) => name !== '-')
        .map(([name]) => name);
      expect(names).toEqual(Object.keys(fields));
      for (const [name, offset] of Object.entries(fields)) {
        expect([record, name, (layout as unknown as Record<string, number>)[name]]).toEqual([
          record,
          name,
          offset,
        ]);
      }
    }
  });

  it('marks every shared word with X_ (the GP block is all shared) and nothing else', () => {
    for (const record of Object.keys(kMap)) {
      for (const [name, , access] of layout.recordFields(record)) {
        if (name === '-') continue;
        const marked = /(^|_)X_/.test(name) || record === 'gp';
        expect([record, name, access === 'shared']).toEqual([record, name, marked]);
      }
    }
  });

  it('fills each record exactly', () => {
    const size = {
      header: layout.HEADER_WORDS,
      gp: layout.GP_WORDS,
      cpu: layout.RECORD_WORDS,
      class: layout.RECORD_WORDS,
      cache: layout.CACHE_WORDS,
      slab: layout.RECORD_WORDS,
      depot: layout.DEPOT_SLOT_WORDS,
      barn: layout.BARN_WORDS,
      sheaf: layout.SHEAF_WORDS,
    };
    for (const [record, words] of Object.entries(size)) {
      expect(layout.recordFields(record).reduce((sum, [, n]) => sum + n, 0)).toBe(words);
    }
  });
});
