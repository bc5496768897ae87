/**
 * The package round trip: `npm pack`, install the tarball in an empty folder (dependencies from
 * the registry or npm's cache), import it from plain JavaScript (the root and
 * `percpu-arena/metrics`), type-check a TypeScript file against its declarations, and run the
 * CLI from it, a benchmark included (its worker modules must be in the tarball).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

describe('the npm package', () => {
  it('packs, installs in an empty folder, imports from JS and TS, runs its CLI', () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'percpu-pack-'));
    // --ignore-scripts: dist/ is built by the test setup; a rebuild here would rewrite it under other tests.
    execFileSync(npm, ['pack', '--silent', '--ignore-scripts', '--pack-destination', work], {
      cwd: repo,
      stdio: 'pipe',
    });
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
    expect(tarball).toBeDefined();
    const app = path.join(work, 'app');
    mkdirSync(app);
    writeFileSync(
      path.join(app, 'package.json'),
      JSON.stringify({ name: 'app', private: true, type: 'module' }),
    );
    execFileSync(
      npm,
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
        path.join(work, tarball as string),
      ],
      { cwd: app, stdio: 'pipe' },
    );

    writeFileSync(
      path.join(app, 'main.js'),
      `import { Arena, SharedMap, PackAllocator } from 'percpu-arena';
import { arenaMetrics } from 'percpu-arena/metrics';
const arena = Arena.create({ cpus: 1, maxBytes: 16 << 20, policy: 'arena' });
const map = SharedMap.open(arena.attach(0), SharedMap.create(arena, { maxEntries: 16 }));
map.set('greeting', { hello: 'world' });
const pack = PackAllocator.open(arena.shared, PackAllocator.create(arena));
const block = pack.alloc(10000);
const text = await arenaMetrics(arena).metrics();
console.log(JSON.stringify({ value: map.get('greeting'), block: block > 0, metrics: text.includes('percpu_arena_bytes_in_use') }));
await arena.close();
`,
    );
    const out = execFileSync(process.execPath, ['main.js'], { cwd: app, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ value: { hello: 'world' }, block: true, metrics: true });

    writeFileSync(
      path.join(app, 'main.ts'),
      `import { Arena, type ArenaStats, SharedMap, type SharedMapValue } from 'percpu-arena';
const arena: Arena = Arena.create({ cpus: 1, policy: 'arena' });
const map: SharedMap = SharedMap.open(arena.attach(0), SharedMap.create(arena, { maxEntries: 4 }));
const value: SharedMapValue | undefined = map.get('k');
const stats: ArenaStats = arena.stats();
// @ts-expect-error maxEntries is required
SharedMap.create(arena, {});
export { stats, value };
`,
    );
    writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'es2022',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
          typeRoots: [path.join(repo, 'node_modules/@types')],
        },
        files: ['main.ts'],
      }),
    );
    execFileSync(
      process.execPath,
      [path.join(repo, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'],
      {
        cwd: app,
        stdio: 'pipe',
      },
    );

    const cli = path.join(app, 'node_modules/.bin/percpu-arena');
    expect(execFileSync(cli, ['--help'], { cwd: app, encoding: 'utf8' })).toMatch(/Usage: percpu-arena/);
    const bench = JSON.parse(
      execFileSync(cli, ['bench', 'pack', '--programs', '16', '--json'], { cwd: app, encoding: 'utf8' }),
    );
    expect(bench.withPack.corrupt).toBe(0);
  }, 180_000);
});
