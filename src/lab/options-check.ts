/**
 * The lab's option checks: every `run*` function of `percpu-arena/lab` checks its options object
 * against a table of fields before it creates an arena or starts a worker, and rejects a wrong
 * type, a value out of range or an unknown option with an `ArenaError` `EINVAL` naming the
 * function and the option.
 *
 * Who may call: anyone; pure functions.
 */
import { PRESET_NAMES } from '../epoch/policy.js';
import { fail, show } from '../shm/errors.js';

/** One option: its type and range, and whether it may be left out. */
export type OptionSpec =
  | { readonly kind: 'integer'; readonly min: number; readonly max: number; readonly optional?: boolean }
  | { readonly kind: 'number'; readonly min: number; readonly max: number; readonly optional?: boolean }
  | { readonly kind: 'oneOf'; readonly values: readonly string[]; readonly optional?: boolean }
  | { readonly kind: 'boolean' | 'function' | 'gpMinMs'; readonly optional?: boolean }
  | {
      readonly kind: 'object';
      readonly fields: Readonly<Record<string, OptionSpec>>;
      readonly optional?: boolean;
    };

/** A preset name, required. */
export const PRESET_OPTION: OptionSpec = { kind: 'oneOf', values: PRESET_NAMES };
/** Minimum epoch durations `{ rcu?, ttrace? }` in ms, optional. */
export const GP_MIN_MS_OPTION: OptionSpec = { kind: 'gpMinMs', optional: true };
/** Seconds of a run or of its warm-up: up to a day. */
export const seconds = (min: number, optional = false): OptionSpec => ({
  kind: 'number',
  min,
  max: 86_400,
  optional,
});

/**
 * Throws EINVAL unless `options` is an object whose fields all match `spec` (`name` says where
 * it sits: `options`, or a nested object's path).
 */
export function checkOptions(
  call: string,
  options: unknown,
  spec: Readonly<Record<string, OptionSpec>>,
  name = 'options',
): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    fail('EINVAL', `${call}: ${name} must be an object, got ${show(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!Object.hasOwn(spec, key)) {
      fail('EINVAL', `${call}: unknown option '${name}.${key}' (one of ${Object.keys(spec).join(', ')})`);
    }
  }
  for (const [key, field] of Object.entries(spec)) {
    const value = (options as Record<string, unknown>)[key];
    if (value === undefined) {
      if (field.optional !== true) fail('EINVAL', `${call}: ${name}.${key} is required`);
      continue;
    }
    if (field.kind === 'object') {
      checkOptions(call, value, field.fields, `${name}.${key}`);
      continue;
    }
    const problem = problemOf(field, value);
    if (problem !== undefined) fail('EINVAL', `${call}: ${name}.${key} ${problem}, got ${show(value)}`);
  }
}

function problemOf(field: Exclude<OptionSpec, { kind: 'object' }>, value: unknown): string | undefined {
  switch (field.kind) {
    case 'integer':
      return Number.isInteger(value) && (value as number) >= field.min && (value as number) <= field.max
        ? undefined
        : `must be an integer from ${field.min} to ${field.max}`;
    case 'number':
      return typeof value === 'number' && value >= field.min && value <= field.max
        ? undefined
        : `must be a number from ${field.min} to ${field.max}`;
    case 'oneOf':
      return field.values.includes(value as string) ? undefined : `must be one of ${field.values.join(', ')}`;
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'must be true or false';
    case 'function':
      return typeof value === 'function' ? undefined : 'must be a function';
    case 'gpMinMs': {
      if (typeof value !== 'object' || value === null) return 'must be an object { rcu?, ttrace? }';
      for (const [flavor, ms] of Object.entries(value)) {
        if (flavor !== 'rcu' && flavor !== 'ttrace') return `has an unknown flavor '${flavor}'`;
        if (ms !== undefined && (typeof ms !== 'number' || !(ms >= 0) || ms > 60_000)) {
          return `.${flavor} must be a number of ms from 0 to 60000`;
        }
      }
      return undefined;
    }
  }
}
