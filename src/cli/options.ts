/**
 * Option parsing shared by the CLI's commands: every bad value becomes a `UsageError`, which the
 * CLI prints with a hint and exit code 2 (as it does for node:util parseArgs errors).
 *
 * Who may call: the CLI's command modules (main thread).
 */
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { DEFAULT_PRESET, PRESET_NAMES, type PresetName } from '../epoch/policy.js';

/** A bad argument: printed on one line without a stack, exit code 2. */
export class UsageError extends Error {}

/**
 * parseArgs, strict, with two things it lacks: a negative number given as its own argument
 * (`--duration -1`) is the option's value, as `--duration=-1` is, so that the range check names
 * it (parseArgs calls it ambiguous); and its errors become one-line UsageErrors.
 */
export function parseCommand<const O extends NonNullable<ParseArgsConfig['options']>>(
  args: readonly string[],
  options: O,
): ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true }>> {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const next = args[i + 1];
    const name = arg.startsWith('--') && !arg.includes('=') ? arg.slice(2) : undefined;
    if (
      name !== undefined &&
      options[name]?.type === 'string' &&
      next !== undefined &&
      /^-(\d|\.\d|Inf)/.test(next)
    ) {
      joined.push(`${arg}=${next}`);
      i++;
    } else {
      joined.push(arg);
    }
  }
  try {
    return parseArgs({ args: joined, options, strict: true });
  } catch (error) {
    if (String((error as { code?: string }).code).startsWith('ERR_PARSE_ARGS_')) {
      throw new UsageError((error as Error).message.replace(/\s*\n\s*/g, ' '));
    }
    throw error;
  }
}

/**
 * Makes folder `dir` (and its missing parents) for `--name`, or a UsageError saying why not.
 * Not `mkdirSync(dir, { recursive: true })`: under /proc it loops forever (Node 20, seen here).
 */
export function outputFolder(dir: string, name: string): string {
  if (dir.trim() === '') throw new UsageError(`--${name} needs a folder, got ''`);
  const target = path.resolve(dir);
  const missing: string[] = [];
  let at = target;
  for (;;) {
    let isDir: boolean | undefined;
    try {
      isDir = statSync(at).isDirectory();
    } catch {
      isDir = undefined;
    }
    if (isDir === false) throw new UsageError(`--${name}: ${at} exists and is not a folder`);
    if (isDir === true) break;
    missing.unshift(at);
    const parent = path.dirname(at);
    if (parent === at) break;
    at = parent;
  }
  try {
    for (const folder of missing) mkdirSync(folder);
    accessSync(target, constants.W_OK);
  } catch (error) {
    throw new UsageError(
      `--${name}: cannot write to the folder ${target} (${(error as { code?: string }).code ?? (error as Error).message})`,
    );
  }
  return target;
}

/** The number `--name` gave (or `fallback`); a UsageError unless it lies in min..max. */
function numeric(
  value: string | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
  integer: boolean,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !(integer ? Number.isInteger(n) : Number.isFinite(n)) || n < min || n > max) {
    throw new UsageError(
      `--${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got '${value}'`,
    );
  }
  return n;
}

export function integerOption(
  value: string | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  return numeric(value, name, fallback, min, max, true);
}

export function numberOption(
  value: string | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  return numeric(value, name, fallback, min, max, false);
}

export function presetOption(value: string | undefined, fallback: PresetName = DEFAULT_PRESET): PresetName {
  const policy = (value ?? fallback) as PresetName;
  if (!PRESET_NAMES.includes(policy)) {
    throw new UsageError(`--policy must be one of ${PRESET_NAMES.join(', ')}, got '${value}'`);
  }
  return policy;
}

/** --rcu-gp-ms and --ttrace-gp-ms: minimum epoch durations, 0..60000 ms. */
export function gpTimingOptions(
  values: { 'rcu-gp-ms'?: string | undefined; 'ttrace-gp-ms'?: string | undefined },
  fallback = { rcu: 0, ttrace: 0 },
): { rcu: number; ttrace: number } {
  return {
    rcu: integerOption(values['rcu-gp-ms'], 'rcu-gp-ms', fallback.rcu, 0, 60_000),
    ttrace: integerOption(values['ttrace-gp-ms'], 'ttrace-gp-ms', fallback.ttrace, 0, 60_000),
  };
}

/** The parseArgs options every command with GP timing takes. */
export const gpTimingParseOptions = {
  'rcu-gp-ms': { type: 'string' },
  'ttrace-gp-ms': { type: 'string' },
} as const;

/** The machine's cores, as a default CPU count (at most the arena's 64 CPUs). */
export const defaultCpus = Math.min(os.availableParallelism(), 64);

/** The largest even count not above `n`, at least 2 (add_del_on_diff_cpu pairs its CPUs). */
export function evenCount(n: number): number {
  return n % 2 === 0 ? n : Math.max(2, n - 1);
}

/** xmalloc's producers on `cpus` CPUs: half of them (at least 1); as many consumers run beside. */
export function xmallocProducers(cpus: number): number {
  return Math.max(1, cpus >> 1);
}
