/**
 * `percpu-arena/testing`: fault injection, for tests that must prove their oracle detects the bug
 * it looks for (an allocator that hands a unit out twice, a grace period one epoch short). Never
 * use it in production code: a faulty arena is wrong on purpose.
 */
import { type ArenaOptions, createArenaWithFaults } from './arena/arena.js';
import type { ArenaFaults } from './shm/arena-ref.js';
import { fail, show } from './shm/errors.js';

export type { ArenaFaults } from './shm/arena-ref.js';
export { createArenaWithFaults };

/** `ArenaOptions` plus the faults to inject: what a test's arena helper takes. */
export interface TestArenaOptions extends ArenaOptions {
  readonly faults?: ArenaFaults;
}

/** An arena with `options.faults` injected (none: a plain `Arena.create`). */
export function createTestArena(options: TestArenaOptions) {
  if (typeof options !== 'object' || options === null) {
    fail('EINVAL', `createTestArena: options must be an object, got ${show(options)}`);
  }
  const { faults, ...rest } = options;
  return createArenaWithFaults(rest, faults === undefined ? {} : faults);
}
