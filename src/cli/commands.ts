/**
 * The percpu-arena command line as a function: `main(argv)` runs one command and returns its exit
 * code, so the CLI tests can call every command with bad arguments in one process. Bad arguments
 * print one line and return 2; a demo that saw corruption and a torture run that saw errors
 * return 1.
 *
 * Who may call: src/cli/main.ts (a shell), the tests. One command at a time.
 */
import { readFileSync } from 'node:fs';
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
  bench pack         the bpf_prog_pack experiment: programs loaded with and without 2 MiB packs
  demo               N worker CPUs allocate and free across each other; a table per CPU
  torture            readers check that what they hold is never reused (rcutorture); exit 1 on errors

Run 'percpu-arena <command> --help' for a command's options, 'percpu-arena --version' for the version.
`;

/** The package's version, from its package.json (three folders up from dist/src/cli/, two from src/cli/). */
function version(): string {
  for (const up of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'percpu-arena' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // Not this folder: try the next.
    }
  }
  return 'unknown';
}

/** Runs one command; returns the exit code (2 for bad arguments, printed on one line). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === 'report') return await report(rest);
    if (command === 'bench') return await bench(rest);
    if (command === 'demo') return await demo(rest);
    if (command === 'torture') return await torture(rest);
    if (command === '--version' || command === '-v' || command === 'version') {
      process.stdout.write(`${version()}\n`);
      return 0;
    }
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
      // One line: what is wrong, and where the usage is.
      const sub =
        command === 'bench' && ['htab-mem', 'xmalloc', 'pack'].includes(rest[0] ?? '') ? ` ${rest[0]}` : '';
      const where = ['report', 'bench', 'demo', 'torture'].includes(command ?? '') ? `${command}${sub} ` : '';
      const message = (error as Error).message.replace(/\s*\n\s*/g, ' ');
      process.stderr.write(`percpu-arena: ${message} (see 'percpu-arena ${where}--help')\n`);
      return 2;
    }
    throw error;
  }
}
