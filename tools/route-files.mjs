// Which functions, and so which files, of src/ run during one alloc and one free, counted with
// V8's precise coverage (call counts per function between two calls). It prints the route of a
// fast alloc, an alloc that refills from the slab, one that carves a new span, a fast free and a
// slow free (a trim or a deferred look), as design.md's "path of an alloc and a free" lists them.
//
//   npx tsx tools/route-files.mjs [preset] [size]      (defaults: kernel-6.6, 4000 bytes)
//
// It imports the TypeScript sources (src/index.ts) through tsx, so file names are src/ paths.
import { Session } from 'node:inspector/promises';

const preset = process.argv[2] ?? 'kernel-6.6';
const size = Number(process.argv[3] ?? 4000);
const session = new Session();
session.connect();
await session.post('Profiler.enable');
await session.post('Profiler.startPreciseCoverage', { callCount: true, detailed: false });
const { Arena } = await import(new URL('../src/index.ts', import.meta.url).href);
const arena = Arena.create({ cpus: 2, coordinator: 'manual', policy: preset });
const cpu = arena.attach(0);

/** The src/ functions called since the last take, by file. */
async function take() {
  const { result } = await session.post('Profiler.takePreciseCoverage');
  const byFile = new Map();
  for (const script of result) {
    const at = script.url.indexOf('/src/');
    if (at < 0) continue;
    const file = script.url.slice(at + 1);
    for (const fn of script.functions) {
      if (fn.ranges[0].count === 0 || fn.functionName === '') continue;
      if (!byFile.has(file)) byFile.set(file, []);
      byFile.get(file).push(`${fn.functionName}×${fn.ranges[0].count}`);
    }
  }
  return byFile;
}

function show(label, byFile) {
  console.log(`--- ${label}: ${byFile.size} files`);
  for (const [file, fns] of byFile) console.log(`  ${file}: ${fns.join(', ')}`);
}

await take();
const seen = new Set();
const once = (label, byFile) => {
  if (seen.has(label)) return;
  seen.add(label);
  show(label, byFile);
};
const ptrs = [];
for (let i = 0; i < 200; i++) {
  ptrs.push(cpu.alloc(size));
  const byFile = await take();
  const fns = [...byFile.values()].flat().join(' ');
  if (fns.includes('allocBulk') && !fns.includes('allocSpan')) once('alloc (refill from the slab)', byFile);
  if (fns.includes('allocSpan')) once('alloc (refill, a new span)', byFile);
  if (i > 2 && !fns.includes('allocBulk')) once('alloc (fast)', byFile);
}
for (const p of ptrs) {
  cpu.free(p);
  const byFile = await take();
  const fns = [...byFile.values()].flat().join(' ');
  if (!fns.includes('freeSlow') && !fns.includes('deferFree')) once('free (fast)', byFile);
  if (fns.includes('freeBulk') || fns.includes('progressRcu'))
    once('free (slow: a trim or a deferred look)', byFile);
}
cpu.detach();
await arena.close();
