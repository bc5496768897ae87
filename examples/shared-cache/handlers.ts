/**
 * The request handlers of the example service, run in its piscina pool. Two stores behind one
 * interface:
 *
 * - `shared`: one SharedMap in the arena; every worker reads and writes it directly (its CPU
 *   slot is claimed by `SharedMap.open` on the worker's first task).
 * - `postmessage`: a JS `Map` per worker, kept in step by broadcasting every write to the other
 *   workers over a `BroadcastChannel` (postMessage semantics: a copy per worker, applied when
 *   each worker's event loop gets to it).
 *
 * Loaded by piscina's worker through tsx (CommonJS), so no top-level await.
 */
import { BroadcastChannel } from 'node:worker_threads';
import { type SharedArena, SharedMap, type SharedMapRef } from 'percpu-arena';

export interface Task {
  readonly op: 'get' | 'set';
  readonly key: string;
  readonly value?: string;
  readonly mode: 'shared' | 'postmessage';
  readonly shared?: SharedArena | undefined;
  readonly ref?: number;
}

export interface Reply {
  readonly status: number;
  readonly body: string;
}

let local: Map<string, string> | undefined;
let channel: BroadcastChannel | undefined;

function localStore(): Map<string, string> {
  if (local === undefined) {
    const map = new Map<string, string>();
    local = map;
    channel = new BroadcastChannel('percpu-arena-example');
    channel.onmessage = (event) => {
      const [key, value] = (event as { data: [string, string] }).data;
      map.set(key, value);
    };
    // Idle workers may end; the channel must not keep them alive.
    channel.unref();
  }
  return local;
}

export function handle(task: Task): Reply {
  if (task.mode === 'shared') {
    const map = SharedMap.open(task.shared as SharedArena, task.ref as SharedMapRef);
    if (task.op === 'get') {
      const value = map.get(task.key);
      return value === undefined ? { status: 404, body: '' } : { status: 200, body: value as string };
    }
    return map.set(task.key, task.value ?? '') ? { status: 204, body: '' } : { status: 507, body: 'full' };
  }
  const map = localStore();
  if (task.op === 'get') {
    const value = map.get(task.key);
    return value === undefined ? { status: 404, body: '' } : { status: 200, body: value };
  }
  map.set(task.key, task.value ?? '');
  channel?.postMessage([task.key, task.value ?? '']);
  return { status: 204, body: '' };
}
