// The piscina task of main.mjs: runs in a worker thread, on the map main.mjs created.
import { threadId } from 'node:worker_threads';
import { SharedMap } from 'percpu-arena';

export default function ({ shared, ref, key }) {
  // The first call on this thread claims a free CPU slot; later calls reuse it.
  const map = SharedMap.open(shared, ref);
  const { greeting } = map.get('config'); // a copy, read inside a read-side section
  map.set(key, { greeting, thread: threadId }); // false when the map is full or memory is out
  return `${greeting} ${key} from worker thread ${threadId}`;
}
