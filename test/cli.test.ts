/**
 * The command line, run as a user runs it (the compiled dist/src/cli.js, built by the global
 * setup): bad arguments exit with 2 and a message and run nothing; a small demo under a GP
 * policy with emulated GP durations reports the policy and its grace periods; one-second
 * benchmark runs print the JSON fields scripts rely on; the report writes its page, charts and
 * results. These check what the commands produce, not how fast anything is.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const cli = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const run = (...args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });

describe('percpu-arena CLI', () => {
  it.each([
    [['demo', '--policy', 'kernel-5.0'], /--policy must be one of kernel-6.1, kernel-6.4, kernel-6.6/],
    [['demo', '--rcu-gp-ms', '-1'], /--rcu-gp-ms/],
    [['demo', '--ttrace-gp-ms', '1.5'], /--ttrace-gp-ms must be an integer from 0 to 60000/],
    [['demo', '--bogus'], /Unknown option '--bogus'/],
    [['frobnicate'], /unknown command/],
    [['bench'], /bench needs htab-mem, xmalloc or pack/],
    [
      ['bench', 'htab-mem', '--use-case', 'update_all'],
      /--use-case must be one of overwrite, batch_add_batch_del, add_del_on_diff_cpu/,
    ],
    [
      ['bench', 'htab-mem', '--use-case', 'add_del_on_diff_cpu', '--producers', '3'],
      /add_del_on_diff_cpu needs an even number of producers/,
    ],
    [['bench', 'htab-mem', '--value-size', '0'], /--value-size must be an integer from 1 to 4096/],
    [['bench', 'htab-mem', '--value-size', '4097'], /--value-size must be an integer from 1 to 4096/],
    [['bench', 'htab-mem', '--producers', '1.5'], /--producers must be an integer/],
    [['bench', 'htab-mem', '--duration', 'abc'], /--duration must be a number from 1 to 3600/],
    [['bench', 'htab-mem', '--warmup=-1'], /--warmup must be a number from 0 to 600/],
    [
      ['bench', 'htab-mem', '--preallocated', '--policy', 'kernel-6.6'],
      /--preallocated is the prealloc preset/,
    ],
    [['bench', 'htab-mem', '--policy', 'nope'], /--policy must be one of/],
    [['bench', 'xmalloc', '--batch', '0'], /--batch must be an integer from 1 to 65536/],
    [['bench', 'xmalloc', '--size', '5000'], /--size must be an integer from 1 to 4088/],
    [['bench', 'xmalloc', '--use-case', 'overwrite'], /Unknown option '--use-case'/],
    [['report', '--presets', 'kernel-6.6,linux'], /--presets: 'linux' is not one of/],
    [['report', '--cases', 'overwrite,overwrite'], /--cases must name each item once/],
    [['report', '--duration', '0.5'], /--duration must be a number from 1 to 600/],
    [['report', '--out', '/dev/null/report'], /--out: \/dev\/null exists and is not a folder/],
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

  it('bench htab-mem --json prints one object with the kernel bench fields', () => {
    const r = run('bench', 'htab-mem', '--producers', '2', '--duration', '1', '--warmup', '0', '--json');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ useCase: 'overwrite', policy: 'kernel-6.6', producers: 2, maxEntries: 8192 });
    expect(out.perProdKops).toBeGreaterThan(0);
    expect(out.peakMiB).toBeGreaterThanOrEqual(out.avgMiB);
    expect(out.intervals).toHaveLength(1);
  });

  it('bench xmalloc --json reports objects freed and memory', () => {
    const r = run(
      'bench',
      'xmalloc',
      '--producers',
      '1',
      '--duration',
      '1',
      '--warmup',
      '0',
      '--policy',
      'kernel-6.6',
      '--json',
    );
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      useCase: 'xmalloc',
      policy: 'kernel-6.6',
      producers: 1,
      consumers: 1,
      allocFailures: 0,
    });
    expect(out.objectsPerSec).toBeGreaterThan(0);
    expect(out.peakMiB).toBeGreaterThan(0);
  });

  it('report writes a self-contained page with its charts, the SVGs and results.json', () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'percpu-report-'));
    const r = run(
      'report',
      '--out',
      out,
      '--duration',
      '1',
      '--warmup',
      '0',
      '--presets',
      'kernel-6.6,reuse-after-gp',
      '--cases',
      'add_del_on_diff_cpu,xmalloc,pack',
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/add_del_on_diff_cpu .*kernel-6.6/s);
    // Not a terminal: a line per finished run, the verdict's torture runs first.
    expect(r.stderr).toMatch(/^\[1\/7\] torture kernel-6.6: unsafe \(\d+ errors/m);
    expect(r.stderr).toMatch(/^\[2\/7\] torture reuse-after-gp: safe \(0 errors/m);
    expect(r.stderr).toMatch(/^\[7\/7\] pack: 2048 programs, 0 corrupt/m);
    expect(readdirSync(out).sort()).toEqual([
      'add_del_on_diff_cpu-memory.svg',
      'add_del_on_diff_cpu-throughput.svg',
      'add_del_on_diff_cpu-tradeoff.svg',
      'index.html',
      'pack-directmap.svg',
      'pack-memory.svg',
      'results.json',
      'xmalloc-memory.svg',
      'xmalloc-throughput.svg',
      'xmalloc-tradeoff.svg',
    ]);
    const html = readFileSync(path.join(out, 'index.html'), 'utf8');
    expect(html.match(/<svg /g)).toHaveLength(8);
    // The verdict, from the report's own torture runs: kernel-6.6 reuses under readers.
    expect(html).toMatch(/<td>kernel-6.6<\/td><td class="unsafe">▲ unsafe/);
    expect(html).toMatch(/<td>reuse-after-gp<\/td><td class="safe">● safe/);
    expect(html).toContain('fastest safe preset <code>reuse-after-gp</code>');
    // Safe and unsafe presets are marked apart on the trade-off chart.
    const tradeoff = readFileSync(path.join(out, 'xmalloc-tradeoff.svg'), 'utf8');
    expect(tradeoff).toContain('safe under readers');
    expect(tradeoff).toContain('reuses under readers');
    expect(html).not.toContain('∞');
    expect(html).toContain('grace-period steps');
    // Links to the docs resolve (the package's docs folder).
    const links = [...html.matchAll(/href="(file:[^"]+)"/g)].map((m) => fileURLToPath(m[1] as string));
    expect(links.length).toBeGreaterThan(0);
    for (const file of links) expect(existsSync(file), file).toBe(true);
    expect(html).toMatch(/DirectMap4k after 2048/);
    expect(html).not.toMatch(/<script|<link|src="http/);
    expect(html).toContain('every rcu epoch lasts ≥ 10 ms, every ttrace epoch ≥ 100 ms');
    const results = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8')).results;
    expect(results.map((x: { useCase: string; policy: string }) => `${x.useCase}/${x.policy}`)).toEqual([
      'add_del_on_diff_cpu/kernel-6.6',
      'add_del_on_diff_cpu/reuse-after-gp',
      'xmalloc/kernel-6.6',
      'xmalloc/reuse-after-gp',
    ]);
  });
});

describe('percpu-arena bench pack', () => {
  it('prints one JSON object with both sides, and exits 2 for bad arguments', () => {
    const shown = run('bench', 'pack', '--programs', '64', '--json');
    expect(shown.status, shown.stderr).toBe(0);
    const report = JSON.parse(shown.stdout);
    expect(report.programs).toBe(64);
    for (const side of [report.withPack, report.withoutPack]) {
      expect(typeof side.directMap4kKiB).toBe('number');
      expect(typeof side.splits).toBe('number');
      expect(side.corrupt).toBe(0);
    }
    for (const args of [
      ['--programs', '3'],
      ['--cpus', '0'],
      ['--seed', 'x'],
      ['--memory', 'disk'],
      ['--sizes', 'huge'],
      ['--instance-pages', '-1'],
      ['--bogus'],
    ]) {
      const bad = run('bench', 'pack', ...args);
      expect(bad.status, args.join(' ')).toBe(2);
      expect(bad.stderr).toMatch(/percpu-arena:/);
    }
  });
});

describe('percpu-arena torture', () => {
  it('exits 1 when readers saw errors (kernel-6.6), 0 with --expect-errors, and prints one JSON object', () => {
    const failing = run('torture', '--policy', 'kernel-6.6', '--seconds', '0.5');
    expect(failing.status, failing.stderr).toBe(1);
    expect(failing.stdout).toMatch(/errors [1-9]/);
    const shown = run('torture', '--policy', 'kernel-6.6', '--seconds', '0.5', '--expect-errors', '--json');
    expect(shown.status, shown.stderr).toBe(0);
    const report = JSON.parse(shown.stdout);
    expect(report).toMatchObject({ policy: 'kernel-6.6' });
    for (const key of ['operations', 'errors', 'recycled']) expect(typeof report[key]).toBe('number');
    expect(report.errors).toBeGreaterThan(0);
  });

  it('runs the qp-trie with version validation and reports its error kinds', () => {
    const shown = run(
      'torture',
      '--structure',
      'qp-trie',
      '--versions',
      'generation',
      '--policy',
      'arena',
      '--seconds',
      '0.5',
      '--json',
    );
    expect(shown.status, shown.stderr).toBe(0);
    const report = JSON.parse(shown.stdout);
    expect(report).toMatchObject({ structure: 'qp-trie', versions: 'generation', errors: 0 });
    expect(report.errorKinds).toMatchObject({ wrongLookup: 0, staleValue: 0 });
    expect(report.recycled).toBeGreaterThan(0);
  });

  it('exits 2 for bad arguments', () => {
    for (const args of [
      ['--cpus', '1'],
      ['--seconds', 'x'],
      ['--policy', 'nope'],
      ['--bogus'],
      ['--structure', 'tree'],
      ['--versions', 'per-node'],
      ['--structure', 'qp-trie', '--versions', 'always'],
    ]) {
      const bad = run('torture', ...args);
      expect(bad.status, args.join(' ')).toBe(2);
      expect(bad.stderr).toMatch(/percpu-arena:/);
    }
  });
});
