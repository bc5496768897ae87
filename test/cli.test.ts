/**
 * The command line, run as a user runs it (the compiled dist/src/cli.js, built by the global
 * setup): bad arguments exit with 2 and a message, a small demo under a GP policy with emulated
 * GP durations exits with 0 and reports the policy and its grace periods.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const cli = fileURLToPath(new URL('../dist/src/cli.js', import.meta.url));
const run = (...args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });

describe('percpu-arena CLI', () => {
  it.each([
    [['demo', '--policy', 'kernel-5.0'], /--policy must be one of kernel-6.1, kernel-6.6/],
    [['demo', '--rcu-gp-ms', '-1'], /--rcu-gp-ms/],
    [['demo', '--ttrace-gp-ms', '1.5'], /--ttrace-gp-ms must be an integer from 0 to 60000/],
    [['demo', '--bogus'], /Unknown option '--bogus'/],
    [['frobnicate'], /unknown command/],
  ])('%j exits with 2 and says why', (args, message) => {
    const r = run(...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });

  it('runs the demo under a GP policy with emulated GP durations', () => {
    const r = run(
      'demo',
      '--cpus',
      '2',
      '--ops',
      '20000',
      '--policy',
      'reuse-after-gp',
      '--rcu-gp-ms',
      '2',
      '--ttrace-gp-ms',
      '5',
      '--json',
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      policy: 'reuse-after-gp',
      gpMinMs: { rcu: 2, ttrace: 5 },
      errors: 0,
      leaked: 0,
    });
    expect(out.gp.rcu.completed).toBeGreaterThan(0);
  });
});
