// A piscina pool whose workers share one SharedMap with this thread (README "A service with
// piscina"). Run it from an app that installed percpu-arena, or in the repository after
// `npm run build`: `node examples/piscina-shared-map/main.mjs`.
import os from 'node:os';
import { Arena, SharedMap, watchPool } from 'percpu-arena';
import { Piscina } from 'piscina';

// One CPU slot per thread that attaches: every pool worker, plus this thread, which reads and
// writes the map too. piscina's default maxThreads is 1.5 × the cores, so set it: a worker that
// finds no free slot throws EBUSY.
const workers = Math.max(1, os.availableParallelism() - 1);
const arena = Arena.create({ cpus: workers + 1, policy: 'arena', maxBytes: 64 << 20 });
const ref = SharedMap.create(arena, { maxEntries: 10_000, maxKeyBytes: 64, maxValueBytes: 4096 });

const pool = new Piscina({
  filename: new URL('./task.mjs', import.meta.url).href,
  minThreads: workers,
  maxThreads: workers,
  atomics: 'async', // idle workers keep serving their CPU's doorbell (grace periods go on)
});
watchPool(arena, pool); // a worker that ends, or dies, gives its slot back

const map = SharedMap.open(arena.shared, ref); // this thread's slot (before the workers take theirs)
map.set('config', { greeting: 'hello' });

// Each task gets `arena.shared` (an object around the SharedArrayBuffer: shared, not copied) and
// `ref` (a number naming the map in the arena).
const replies = await Promise.all(
  Array.from({ length: 8 }, (_, i) => pool.run({ shared: arena.shared, ref, key: `user:${i}` })),
);
console.log(replies.join('\n'));
console.log(`${map.size} entries; user:3 is`, map.get('user:3'));

await pool.destroy();
const report = await arena.close();
console.log(`closed: ${report.leaked} units still allocated (the map and its entries)`);
