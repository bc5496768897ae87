/**
 * Argument checks the arena's structures share (the hash map, the qp-trie, the pack allocator,
 * the shared map): each failure is an `ArenaError` `EINVAL` whose message names the structure
 * and the option, thrown before anything is changed.
 *
 * Who may call: anyone; pure functions.
 */
import type { Arena } from './arena.js';
import type { SharedArena } from './cpu.js';
import { fail } from './errors.js';

/** `value` if it is an integer from `min` to `max`; else EINVAL naming `owner` and `name`. */
export function checkInteger(owner: string, name: string, value: unknown, min: number, max: number): number {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
    fail('EINVAL', `${owner}: ${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value as number;
}

/** The SharedArrayBuffer of an `Arena` or of its `shared` object; else EINVAL naming `owner`. */
export function arenaBuffer(arena: Arena | SharedArena, owner: string): SharedArrayBuffer {
  const buffer = (arena as { shared?: SharedArena })?.shared?.buffer ?? (arena as SharedArena)?.buffer;
  if (!(buffer instanceof SharedArrayBuffer)) fail('EINVAL', `${owner} needs an arena (or arena.shared)`);
  return buffer;
}
