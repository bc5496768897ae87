/**
 * `percpu-arena torture`: the use-after-free lab's torture run (src/lab/torture-run.ts) from the command
 * line. Prints the operations, the errors by kind, the readers' age histogram and the units that
 * went round the free lists, or one JSON object with `--json`. Exits 1 when errors were seen,
 * unless `--expect-errors` (for showing what immediate reuse does), 2 for bad arguments.
 *
 * Who may call: src/cli/main.ts.
 */
import { runTorture } from '../lab/torture-run.js';
import {
  gpTimingOptions,
  gpTimingParseOptions,
  integerOption,
  numberOption,
  parseCommand,
  presetOption,
  UsageError,
} from './options.js';

const kHelp = `Usage: percpu-arena torture [options]

One writer replaces published elements and frees the old ones through the allocator, a fake
writer presses on the free lists, readers inside read-side sections check that what they hold
is never reused (its generation, its words, its state) and record its age in grace-period epochs
(rcutorture's pipe count: more than 1 is an error). The writer stutters (pauses and resumes) and
readers go offline and online during the run.

  --policy NAME      reuse policy (default kernel-6.6)
  --cpus N           worker CPUs, 2..64 (default 3: a writer, a fake writer, a reader)
  --seconds S        how long to run (default 2)
  --rcu-gp-ms N      minimum rcu epoch in ms (default 0)
  --ttrace-gp-ms N   minimum ttrace epoch in ms (default 0)
  --stutter-ms N     writer pause and run period, 0 for none (default 100)
  --sleep-ms N       every 256th reader section sleeps N ms inside readLockTrace holding an
                     element (elements; default 0: no sleepers)
  --structure S      element (default); refcount: ref-counted objects (the bpf_cpumask shape)
                     that readers acquire (kptr_get) and release, an acquisition of an object
                     that was freed and re-created is an error; qp-trie: a trie the writer
                     changes and readers look up against a model (wrong lookups, stale values)
  --versions V       qp-trie version validation: none (default), per-node (the seed's proposal)
                     or generation
  --expect-errors    exit 0 even if errors were seen (to show what immediate reuse does)
  --json             print one JSON object
  -h, --help         show this help
`;

export async function torture(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    policy: { type: 'string' },
    cpus: { type: 'string' },
    seconds: { type: 'string' },
    'stutter-ms': { type: 'string' },
    'sleep-ms': { type: 'string' },
    structure: { type: 'string' },
    versions: { type: 'string' },
    'expect-errors': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
    ...gpTimingParseOptions,
  });
  if (values.help) {
    process.stdout.write(kHelp);
    return 0;
  }
  const structure = values.structure ?? 'element';
  if (structure !== 'element' && structure !== 'refcount' && structure !== 'qp-trie') {
    throw new UsageError(`--structure must be element, refcount or qp-trie, got '${structure}'`);
  }
  const versions = values.versions ?? 'none';
  if (versions !== 'none' && versions !== 'per-node' && versions !== 'generation') {
    throw new UsageError(`--versions must be none, per-node or generation, got '${versions}'`);
  }
  if (values.versions !== undefined && structure !== 'qp-trie') {
    throw new UsageError('--versions applies to --structure qp-trie only');
  }
  const report = await runTorture({
    structure,
    versions,
    policy: presetOption(values.policy),
    cpus: integerOption(values.cpus, 'cpus', 3, 2, 64),
    seconds: numberOption(values.seconds, 'seconds', 2, 0.1, 3600),
    gpMinMs: gpTimingOptions(values),
    stutterMs: integerOption(values['stutter-ms'], 'stutter-ms', 100, 0, 60_000),
    sleepMs: integerOption(values['sleep-ms'], 'sleep-ms', 0, 0, 10_000),
  });
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    const k = report.errorKinds;
    console.log(
      `${report.conditions.cpuModel}, ${report.conditions.cores} cores, Node ${report.conditions.node}; ` +
        `policy ${report.policy}, ${report.structure}${report.structure === 'qp-trie' ? ` (versions ${report.versions})` : 's'}, ${report.cpus} CPUs, ${report.seconds} s, epochs ≥ ${report.gpMinMs.rcu} / ${report.gpMinMs.ttrace} ms`,
    );
    console.log(
      `operations ${report.operations} (reader sections ${report.readerSections}, writes ${report.writes}); ` +
        `recycled ${report.recycled}`,
    );
    if (report.structure === 'element')
      console.log(`ages (epochs 0 / 1 / 2 / 3+): ${report.ages.join(' / ')}`);
    console.log(
      `errors ${report.errors} (generation ${k.generation}, contents ${k.contents}, freed ${k.freed}, age ${k.age}, ` +
        `recreated ${k.recreated}, wrong lookups ${k.wrongLookup}, stale values ${k.staleValue}, sleepers ${k.sleeper}, ` +
        `undetected by generation references ${k.undetected})`,
    );
    for (const sample of report.samples) console.log(`  ${sample}`);
    if (report.recycled === 0)
      console.log('warning: no unit went round the free lists; the run proves nothing');
  }
  return report.errors > 0 && !values['expect-errors'] ? 1 : 0;
}
