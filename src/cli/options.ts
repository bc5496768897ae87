/**
 * Option parsing shared by the CLI's commands: every bad value becomes a `UsageError`, which the
 * CLI prints with a hint and exit code 2 (as it does for node:util parseArgs errors).
 *
 * Who may call: the CLI's command modules (main thread).
 */
import os from 'node:os';
import { DEFAULT_PRESET, PRESET_NAMES, type PresetName } from '../epoch/policy.js';

/** A bad argument: printed without a stack, exit code 2. */
export class UsageError extends Error {}

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
