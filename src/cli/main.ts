#!/usr/bin/env node
/**
 * The percpu-arena command line: `report` (the main job), `bench htab-mem|xmalloc`, `demo`,
 * `torture`. Bad arguments print a message and exit with code 2; a demo that saw corruption and
 * a torture run that saw errors exit with 1.
 *
 * Who may call: a shell. One command per process.
 */
import { bench } from './bench.js';
import { demo } from './demo.js';
import { UsageError } from './options.js';
import { report } from './report.js';
import { torture } from './torture.js';

const kUsage = `Usage: percpu-arena <command> [options]

Commands:
  report             every htab-mem use case and the xmalloc shape under every reuse policy:
                     a table here, an HTML page with charts in a folder (--out DIR)
  bench htab-mem     the kernel's htab-mem benchmark on the arena's hash map
  bench xmalloc      producer CPUs allocate, consumer CPUs free (all frees remote)
  demo               N worker CPUs allocate and free across each other; a table per CPU
  torture            readers check that what they hold is never reused (rcutorture); exit 1 on errors

Run 'percpu-arena <command> --help' for a command's options.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === 'report') return await report(rest);
    if (command === 'bench') return await bench(rest);
    if (command === 'demo') return await demo(rest);
    if (command === 'torture') return await torture(rest);
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
      process.stdout.write(kUsage);
      return command === undefined ? 2 : 0;
    }
    throw new UsageError(`unknown command '${command}'`);
  } catch (error) {
    if (
      error instanceof UsageError ||
      String((error as { code?: string }).code).startsWith('ERR_PARSE_ARGS_')
    ) {
      process.stderr.write(
        `percpu-arena: ${(error as Error).message}\nRun 'percpu-arena --help' for usage.\n`,
      );
      return 2;
    }
    throw error;
  }
}

process.exitCode = await main(process.argv.slice(2));
