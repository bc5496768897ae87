/**
 * A worker of the shared-cache benchmark (bench/shared-cache.bench.ts): opens one store, runs a
 * get/set mix on it for a set time, and takes part in the write-visibility measurement.
 *
 * Stores: `shared` (one SharedMap in the arena), `lmdb` (one LMDB environment every worker
 * opens: `getBinary`, async `put`), `map` (a Map per worker, kept in step by broadcasting every
 * write over a BroadcastChannel) and `lru` (the same with lru-cache). Every get copies the value
 * out (`get`, `getBinary`, `slice()`), so the gets compare like for like. The op loop runs in
 * slices of about 2 ms and yields to the event loop between them, for every store alike: the
 * broadcasting stores receive their messages there, and lmdb commits its puts.
 */
import { BroadcastChannel, parentPort } from 'node:worker_threads';
import { open as openLmdb, type RootDatabase } from 'lmdb';
import { LRUCache } from 'lru-cache';
import { attachFree } from '../src/cpu/attach.js';
import type { CpuHandle } from '../src/cpu/cpu.js';
import { SharedMap } from '../src/service/shared-map.js';
import type { SharedArena } from '../src/shm/arena-ref.js';
import type { SharedMapRef } from '../src/shm/refs.js';

export type StoreName = 'shared' | 'lmdb' | 'map' | 'lru';

export interface SetupMessage {
  readonly cmd: 'setup';
  readonly store: StoreName;
  readonly keys: number;
  readonly valueBytes: number;
  /** The arena and map (shared), the environment's folder (lmdb), the channel's name (map, lru). */
  readonly shared?: SharedArena;
  readonly ref?: number;
  readonly path?: string;
  readonly channel?: string;
}

export interface RunMessage {
  readonly cmd: 'run';
  readonly store: StoreName;
  readonly ms: number;
  /** Fraction of ops that are gets. */
  readonly readShare: number;
  readonly seed: number;
}

export interface VisibilityMessage {
  readonly cmd: 'visibility';
  readonly store: StoreName;
  readonly role: 'writer' | 'reader';
  readonly samples: number;
  /** Float64 [0]: the writer's time stamp of sample [1] (as performance.timeOrigin + now()). */
  readonly clock: SharedArrayBuffer;
}

export type WorkerMessage = SetupMessage | RunMessage | VisibilityMessage | { readonly cmd: 'teardown' };

export interface SetupReply {
  readonly ownBytes: number;
}
export interface RunReply {
  readonly ops: number;
  readonly gets: number;
  readonly misses: number;
  readonly ms: number;
}

/**
 * Key `k` (16 bytes) as a flat string, as keys parsed from a request are: a template literal
 * this long would be a rope, which every store would flatten on its first look.
 */
export const keyName = (k: number): string =>
  Buffer.from(`key:${String(k).padStart(12, '0')}`).toString('latin1');

interface Store {
  get(key: string): Uint8Array | undefined;
  set(key: string, value: Uint8Array): void;
  /** Waits for what `set` started (lmdb's async puts); nothing for the others. */
  flush(): Promise<void>;
  close(): void;
}

/** The stores of the configuration being measured, by name. */
const stores = new Map<StoreName, Store>();
let cpu: CpuHandle | undefined;
let names: string[] = [];
let valueBytes = 64;

const now = (): number => performance.timeOrigin + performance.now();
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function sharedStore(m: SetupMessage): Store {
  cpu = attachFree(m.shared as SharedArena);
  const map = SharedMap.open(cpu, m.ref as SharedMapRef);
  return {
    get: (key) => map.get(key) as Uint8Array | undefined,
    set: (key, value) => {
      map.set(key, value);
    },
    flush: async () => {},
    close: () => {
      cpu?.detach();
      cpu = undefined;
    },
  };
}

function lmdbStore(m: SetupMessage): Store {
  const db: RootDatabase<Uint8Array, string> = openLmdb({
    path: m.path as string,
    encoding: 'binary',
    noSync: true,
  });
  let last: Promise<unknown> | undefined;
  return {
    get: (key) => db.getBinary(key),
    set: (key, value) => {
      last = db.put(key, value);
    },
    flush: async () => {
      if (last) await last;
      last = undefined;
    },
    close: () => {
      void db.close();
    },
  };
}

/** A per-worker copy (Map or lru-cache) that every write is broadcast to. */
/** Bytes this worker's heap and array buffers grew by when it filled its own copy. */
let ownBytes = 0;

function broadcastStore(m: SetupMessage, lru: boolean): Store {
  const before = process.memoryUsage();
  const copy: Map<string, Uint8Array> | LRUCache<string, Uint8Array> = lru
    ? new LRUCache<string, Uint8Array>({ max: m.keys })
    : new Map<string, Uint8Array>();
  const fill = new Uint8Array(m.valueBytes);
  for (let k = 0; k < m.keys; k++) copy.set(names[k] as string, fill.slice());
  const after = process.memoryUsage();
  ownBytes = after.heapUsed - before.heapUsed + (after.arrayBuffers - before.arrayBuffers);
  const channel = new BroadcastChannel(m.channel as string);
  channel.onmessage = (event: unknown) => {
    const [key, value] = (event as { data: [string, Uint8Array] }).data;
    copy.set(key, value);
  };
  return {
    get: (key) => copy.get(key)?.slice(),
    set: (key, value) => {
      const mine = value.slice();
      copy.set(key, mine);
      channel.postMessage([key, mine]);
    },
    flush: async () => {},
    close: () => {
      channel.close();
    },
  };
}

async function run(m: RunMessage): Promise<RunReply> {
  const s = stores.get(m.store) as Store;
  const value = new Uint8Array(valueBytes);
  let x = m.seed | 1;
  const threshold = Math.floor(m.readShare * 0x1_0000);
  let ops = 0;
  let gets = 0;
  let misses = 0;
  const n = names.length;
  const start = performance.now();
  const end = start + m.ms;
  for (;;) {
    const sliceEnd = Math.min(end, performance.now() + 2);
    do {
      for (let i = 0; i < 32; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        const key = names[(x >>> 0) % n] as string;
        if (x >>> 16 < threshold) {
          gets++;
          if (s.get(key) === undefined) misses++;
        } else {
          value[0] = x & 0xff;
          s.set(key, value);
        }
      }
      ops += 32;
    } while (performance.now() < sliceEnd);
    await s.flush();
    if (performance.now() >= end) break;
    await turn();
  }
  return { ops, gets, misses, ms: performance.now() - start };
}

/**
 * Write visibility: the writer stamps sample i into the key `vis` (its first 4 bytes), noting
 * the time just before in the shared clock; the reader polls `vis` (a busy loop for the shared
 * map, an event-loop turn between polls for the others, which need one to see a write) and
 * returns the delay at which it saw each sample.
 */
async function visibility(m: VisibilityMessage): Promise<number[]> {
  const s = stores.get(m.store) as Store;
  const clock = new Float64Array(m.clock);
  const value = new Uint8Array(valueBytes);
  const stamp = new DataView(value.buffer);
  if (m.role === 'writer') {
    for (let i = 1; i <= m.samples; i++) {
      clock[1] = i;
      clock[0] = now();
      stamp.setUint32(0, i, true);
      s.set('vis', value);
      await s.flush();
      // Let the reader see it and settle before the next one.
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    return [];
  }
  const delays: number[] = [];
  const busy = m.store === 'shared';
  let seen = 0;
  const deadline = performance.now() + m.samples * 50 + 5000;
  while (seen < m.samples && performance.now() < deadline) {
    const v = s.get('vis');
    const got = v && v.length >= 4 ? new DataView(v.buffer, v.byteOffset).getUint32(0, true) : 0;
    if (got > seen) {
      const t = now();
      if (clock[1] === got) delays.push((t - (clock[0] as number)) * 1000);
      seen = got;
    } else if (!busy) {
      await turn();
    }
  }
  return delays;
}

parentPort?.on('message', async (m: WorkerMessage) => {
  try {
    if (m.cmd === 'setup') {
      valueBytes = m.valueBytes;
      if (names.length !== m.keys) names = Array.from({ length: m.keys }, (_, k) => keyName(k));
      ownBytes = 0;
      stores.set(
        m.store,
        m.store === 'shared'
          ? sharedStore(m)
          : m.store === 'lmdb'
            ? lmdbStore(m)
            : broadcastStore(m, m.store === 'lru'),
      );
      parentPort?.postMessage({ ok: true, ownBytes } satisfies SetupReply & { ok: true });
    } else if (m.cmd === 'run') {
      parentPort?.postMessage({ ok: true, ...(await run(m)) });
    } else if (m.cmd === 'visibility') {
      parentPort?.postMessage({ ok: true, delays: await visibility(m) });
    } else {
      for (const s of stores.values()) s.close();
      stores.clear();
      parentPort?.postMessage({ ok: true });
    }
  } catch (error) {
    parentPort?.postMessage({ ok: false, error: String((error as Error).stack ?? error) });
  }
});
