/**
 * The command line's whole surface under bad input: every command × every flag its `--help`
 * lists × bad values, an unknown flag per command, and a value on a boolean flag. Each must be
 * rejected before anything runs: exit code 2, exactly one line on stderr that names the flag,
 * no stack trace, nothing on stdout. Commands run in this process through `main` (one process
 * per case would take minutes).
 */
import { describe, expect, it } from 'vitest';
import { main } from '../src/cli/commands.js';

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `main(argv)` with stdout and stderr captured. */
async function run(argv: string[]): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write;
  const err = process.stderr.write;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    const code = await main(argv);
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

const COMMANDS = [
  ['report'],
  ['bench', 'htab-mem'],
  ['bench', 'xmalloc'],
  ['bench', 'pack'],
  ['demo'],
  ['torture'],
];

/** The flags a command's --help lists, with whether each takes a value. */
async function flagsOf(command: string[]): Promise<{ flag: string; takesValue: boolean }[]> {
  const help = await run([...command, '--help']);
  expect(help.code).toBe(0);
  const flags = new Map<string, boolean>();
  for (const match of help.stdout.matchAll(/^\s+(?:-\w, )?(--[a-z][a-z-]*)( [A-Z][A-Z,]*)?/gm)) {
    flags.set(match[1] as string, match[2] !== undefined);
  }
  return [...flags].map(([flag, takesValue]) => ({ flag, takesValue }));
}

/** Values no flag of any command accepts (numbers out of every range, names of nothing). */
const kBadValues = ['', 'abc', '-1', 'NaN', 'Infinity', '1e12', '1.5.5', '/proc/no-such-folder/x'];

/** `--out` takes any folder it can create: its bad values are nothing, a file, and /proc. */
const kBadFolders = ['', ' ', 'package.json', '/proc/no-such-folder/x'];

function badValuesOf(flag: string): string[] {
  return flag === '--out' ? kBadFolders : kBadValues;
}

/** A rejected value is explained: what the flag accepts (a range, a set, a folder). */
const kExplains = /must|not one of|needs|cannot|exists and is not/;

function expectRejected(outcome: Outcome, flag: string, explained = false): void {
  expect(outcome.code, outcome.stderr).toBe(2);
  expect(outcome.stdout).toBe('');
  const lines = outcome.stderr.split('\n').filter((line) => line !== '');
  expect(lines, outcome.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^percpu-arena: /);
  expect(lines[0]).toContain(flag);
  expect(outcome.stderr).not.toMatch(/\n\s+at /);
  if (explained) expect(lines[0]).toMatch(kExplains);
}

describe('every command rejects every bad flag value with one line and exit code 2', () => {
  for (const command of COMMANDS) {
    it(`${command.join(' ')}`, { timeout: 20_000 }, async () => {
      const flags = await flagsOf(command);
      // The help lists the options (a parse that found none would make this test vacuous).
      expect(flags.length).toBeGreaterThanOrEqual(3);
      let cases = 0;
      for (const { flag, takesValue } of flags) {
        if (flag === '--help') continue;
        if (!takesValue) {
          expectRejected(await run([...command, `${flag}=1`]), flag);
          cases++;
          continue;
        }
        for (const value of badValuesOf(flag)) {
          // Both spellings: the value as its own argument, and after '='.
          expectRejected(await run([...command, flag, value]), flag, true);
          expectRejected(await run([...command, `${flag}=${value}`]), flag, true);
          cases += 2;
        }
        expectRejected(await run([...command, flag]), flag);
        cases++;
      }
      expectRejected(await run([...command, '--no-such-flag']), '--no-such-flag');
      expectRejected(await run([...command, 'stray']), 'stray');
      expect(cases).toBeGreaterThan(10);
    });
  }

  it('an unknown command and a bench without a kind', async () => {
    expectRejected(await run(['no-such-command']), 'no-such-command');
    const bench = await run(['bench']);
    expect(bench.code).toBe(2);
    expect(bench.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('--version prints the package version', async () => {
    const outcome = await run(['--version']);
    expect(outcome.code).toBe(0);
    expect(outcome.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("a bench's --help shows that bench's options only", async () => {
    const htab = await run(['bench', 'htab-mem', '--help']);
    expect(htab.stdout).toContain('--use-case');
    expect(htab.stdout).not.toContain('--batch');
    expect(htab.stdout).not.toContain('--programs');
    const xmalloc = await run(['bench', 'xmalloc', '--help']);
    expect(xmalloc.stdout).toContain('--batch');
    expect(xmalloc.stdout).not.toContain('--use-case');
  });
});
