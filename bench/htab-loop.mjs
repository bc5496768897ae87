// One process = one count for bench/callgrind-irq-work.sh: htab-mem's program loop
// (src/scenarios/htab-mem.ts) on one CPU of a compiled arena (dist/) on this thread, under
// kernel-6.4 with refills and trims `inline` or as `irq-work`: N programs of `overwrite` (64
// updates) or `batch` (64 updates, then 64 deletes of the same keys), each in a read section,
// on a map of 8192 entries with 4-byte keys, 8-byte values and its own fixed cache. Manual
// coordinator: no timer runs meanwhile.
import { Arena, HashMap, PRESETS, UpdateFlag } from '../dist/src/index.js';

const [variant, shape, runsArg] = process.argv.slice(2);
const runs = Number(runsArg);
if (!['inline', 'irq-work'].includes(variant) || !['batch', 'overwrite'].includes(shape) || !(runs >= 0)) {
  throw new Error('usage: htab-loop.mjs inline|irq-work batch|overwrite RUNS');
}
const arena = Arena.create({
  cpus: 1,
  maxBytes: 64 << 20,
  coordinator: 'manual',
  policy: { ...PRESETS['kernel-6.4'], refillWork: variant },
  fixedSizes: [HashMap.elementBytes(4, 8)],
});
const ref = HashMap.create(arena, { keySize: 4, valueSize: 8, maxEntries: 8192, fixedCache: 0 });
const cpu = arena.attach(0);
const map = HashMap.open(cpu, ref);
const key = new Uint8Array(4);
const view = new DataView(key.buffer);
const value = new Uint8Array(8);
const both = shape === 'batch';

function program(n) {
  for (let r = 0; r < n; r++) {
    cpu.readLock();
    for (let i = 0; i < 64; i++) {
      view.setUint32(0, i, true);
      map.update(key, value, UpdateFlag.ANY);
    }
    if (both) {
      for (let i = 0; i < 64; i++) {
        view.setUint32(0, i, true);
        map.delete(key);
      }
    }
    cpu.readUnlock();
  }
}
program(20000); // warm-up: the same JIT tiers in every count
program(runs);
cpu.detach();
await arena.close();
