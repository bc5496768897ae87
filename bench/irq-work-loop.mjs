// One process = one count for bench/callgrind-irq-work.sh: on one CPU of a compiled arena
// (dist/) under kernel-6.4 with refills and trims `inline` or as `irq-work`, warms up, then runs
// N "programs" of the allocator traffic of htab-mem's use cases on a 24-byte fixed cache (the
// map's element): `batch` = 64 allocations then 64 frees (batch_add_batch_del), `overwrite` =
// 64 × (allocate, free the element it replaces). Manual coordinator: no timer runs meanwhile.
import { Arena, PRESETS } from '../dist/src/index.js';

const [variant, shape, runsArg] = process.argv.slice(2);
const runs = Number(runsArg);
if (!['inline', 'irq-work'].includes(variant) || !['batch', 'overwrite'].includes(shape) || !(runs >= 0)) {
  throw new Error('usage: irq-work-loop.mjs inline|irq-work batch|overwrite RUNS');
}
const arena = Arena.create({
  cpus: 1,
  maxBytes: 64 << 20,
  coordinator: 'manual',
  policy: { ...PRESETS['kernel-6.4'], refillWork: variant },
  fixedSizes: [24],
});
const cpu = arena.attach(0);
const live = new Int32Array(64);
const scratch = new Int32Array(64);
for (let i = 0; i < 64; i++) live[i] = cpu.allocFixed(0);

function batch(n) {
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < 64; i++) scratch[i] = cpu.allocFixed(0);
    for (let i = 0; i < 64; i++) cpu.free(scratch[i]);
  }
}
function overwrite(n) {
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < 64; i++) {
      const fresh = cpu.allocFixed(0);
      cpu.free(live[i]);
      live[i] = fresh;
    }
  }
}
const run = shape === 'batch' ? batch : overwrite;
run(20000); // warm-up: the same JIT tiers in every count
run(runs);
cpu.detach();
await arena.close();
