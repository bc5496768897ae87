/**
 * The package round trip: `npm pack`, install the tarball in an empty folder (dependencies from
 * the registry or npm's cache), import every export path from plain JavaScript (the root,
 * `percpu-arena/structures`, `/lab`, `/metrics`, `/testing`), type-check a TypeScript file
 * against its declarations (the branded refs and pointers among them), and run the CLI from it,
 * a benchmark included (its worker modules must be in the tarball).
 *
 * A light install: the library's own dependencies only (piscina); the CLI's optional peers
 * (echarts, cli-table3, cli-progress) and prom-client are not installed, and what needs them says
 * which package to install. Every source map in the tarball points at a file in it; the example
 * service runs from the installed package.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

describe('the npm package', () => {
  it('packs, installs in an empty folder, imports from JS and TS, runs its CLI', async () => {
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
    const install = (...what: string[]): void => {
      execFileSync(
        npm,
        ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', ...what],
        {
          cwd: app,
          stdio: 'pipe',
        },
      );
    };
    install(path.join(work, tarball as string));
    const installed = path.join(app, 'node_modules/percpu-arena');

    // What the tarball holds: LICENSE, CHANGELOG, and the file behind every source map.
    const shipped = (
      JSON.parse(
        execFileSync(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], {
          cwd: repo,
          encoding: 'utf8',
        }),
      ) as { files: { path: string }[] }[]
    )[0]?.files.map((f) => f.path);
    expect(shipped).toContain('LICENSE');
    expect(shipped).toContain('CHANGELOG.md');
    const maps = (shipped ?? []).filter((f) => f.endsWith('.map'));
    expect(maps.length).toBeGreaterThan(50);
    const missing = maps.flatMap((map) => {
      const { sources } = JSON.parse(readFileSync(path.join(installed, map), 'utf8')) as {
        sources: string[];
      };
      return sources
        .map((source) => path.join(path.dirname(map), source))
        .filter((source) => !existsSync(path.join(installed, source)));
    });
    expect(missing).toEqual([]);
    const manifest = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8'));
    expect(manifest.license).toBe('MIT');
    expect(manifest.author).toBeTruthy();

    // A light install: only the library's dependencies, none of the CLI's optional peers.
    const modules = readdirSync(path.join(app, 'node_modules'));
    for (const optional of ['echarts', 'zrender', 'cli-table3', 'cli-progress', 'prom-client']) {
      expect(modules).not.toContain(optional);
    }
    const cli = path.join(app, 'node_modules/.bin/percpu-arena');
    const needs = (args: string[], pkg: string): void => {
      const r = spawnSync(cli, args, { cwd: app, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toContain(`needs the optional package ${pkg}: npm install ${pkg}`);
    };
    needs(['report', '--out', path.join(work, 'report'), '--cases', 'pack'], 'echarts');
    needs(['bench', 'pack', '--programs', '16'], 'cli-table3');
    const metricsWithout = spawnSync(process.execPath, ['-e', "import('percpu-arena/metrics')"], {
      cwd: app,
      encoding: 'utf8',
    });
    expect(metricsWithout.status).not.toBe(0);
    expect(metricsWithout.stderr).toContain("'prom-client'");
    // The CLI without tables (JSON) and the library's root work without any optional peer.
    expect(
      JSON.parse(
        execFileSync(cli, ['bench', 'pack', '--programs', '16', '--json'], { cwd: app, encoding: 'utf8' }),
      ).withPack.corrupt,
    ).toBe(0);
    const root = execFileSync(
      process.execPath,
      ['--input-type=module', '-e', "import { Arena } from 'percpu-arena'; console.log(typeof Arena.create)"],
      { cwd: app, encoding: 'utf8' },
    );
    expect(root.trim()).toBe('function');
    install('prom-client', 'cli-table3');

    writeFileSync(
      path.join(app, 'main.js'),
      `import * as root from 'percpu-arena';
import { Arena, SharedMap } from 'percpu-arena';
import { HashMap, PackAllocator, QpTrie } from 'percpu-arena/structures';
import { PRESET_NAMES, runTorture } from 'percpu-arena/lab';
import { arenaMetrics } from 'percpu-arena/metrics';
import { createTestArena } from 'percpu-arena/testing';
const arena = Arena.create({ cpus: 1, maxBytes: 16 << 20, policy: 'arena' });
const cpu = arena.attach(0);
const map = SharedMap.open(cpu, SharedMap.create(arena, { maxEntries: 16 }));
map.set('greeting', { hello: 'world' });
const pack = PackAllocator.open(cpu, PackAllocator.create(arena));
const block = pack.alloc(10000);
const htab = HashMap.open(cpu, HashMap.create(arena, { keySize: 4, valueSize: 4, maxEntries: 4 }));
const trie = QpTrie.open(cpu, QpTrie.create(arena, { maxKeyBytes: 4, maxValueBytes: 4 }));
const text = await arenaMetrics(arena).metrics();
const value = map.get('greeting');
const empty = htab.size === 0 && trie.size === 0;
cpu[Symbol.dispose]();
await arena[Symbol.asyncDispose]();
const faulty = createTestArena({ cpus: 1, faults: { handOutTwice: true } });
const faults = faulty.shared.faults;
await faulty.close();
console.log(JSON.stringify({
  value,
  block: block > 0,
  structures: empty,
  metrics: text.includes('percpu_arena_bytes_in_use'),
  closed: arena.closed && !cpu.attached,
  presets: PRESET_NAMES.length > 0 && typeof runTorture === 'function',
  faults,
  root: Object.keys(root).sort(),
}));
`,
    );
    const out = execFileSync(process.execPath, ['main.js'], { cwd: app, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({
      value: { hello: 'world' },
      block: true,
      structures: true,
      metrics: true,
      closed: true,
      presets: true,
      faults: { handOutTwice: true },
      // The root's values: the types that go with them are checked in main.ts below.
      root: ['Arena', 'ArenaError', 'CpuHandle', 'CpuPool', 'SharedMap', 'attach', 'attachFree', 'watchPool'],
    });

    writeFileSync(
      path.join(app, 'main.ts'),
      `import { Arena, type ArenaStats, type Pointer, SharedMap, type SharedMapValue } from 'percpu-arena';
import { HashMap, type HashMapRef, QpTrie } from 'percpu-arena/structures';
import type { PresetName } from 'percpu-arena';
import type { Policy } from 'percpu-arena/lab';
import type { ArenaFaults } from 'percpu-arena/testing';
const arena: Arena = Arena.create({ cpus: 1, policy: 'arena' satisfies PresetName });
const cpu = arena.attach(0);
const map: SharedMap = SharedMap.open(cpu, SharedMap.create(arena, { maxEntries: 4 }));
const value: SharedMapValue | undefined = map.get('k');
const stats: ArenaStats = arena.stats();
const policy: Policy = arena.policy;
const faults: ArenaFaults = {};
// @ts-expect-error maxEntries is required
SharedMap.create(arena, {});
// @ts-expect-error fault injection is not an ArenaOptions field
Arena.create({ cpus: 1, faults: { handOutTwice: true } });
const mapRef: HashMapRef = HashMap.create(arena, { keySize: 4, valueSize: 4, maxEntries: 4 });
// @ts-expect-error a hash map's ref is not a qp-trie's
QpTrie.open(cpu, mapRef);
// @ts-expect-error a ref is not a pointer
cpu.free(mapRef);
const ptr: Pointer = cpu.alloc(8);
// @ts-expect-error a pointer is not a ref
HashMap.open(cpu, ptr);
cpu.free(ptr);
export { faults, policy, stats, value };
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

    expect(execFileSync(cli, ['--help'], { cwd: app, encoding: 'utf8' })).toMatch(/Usage: percpu-arena/);
    const bench = JSON.parse(
      execFileSync(cli, ['bench', 'pack', '--programs', '16', '--json'], { cwd: app, encoding: 'utf8' }),
    );
    expect(bench.withPack.corrupt).toBe(0);
    expect(execFileSync(cli, ['bench', 'pack', '--programs', '16'], { cwd: app, encoding: 'utf8' })).toMatch(
      /with packs/,
    );

    // The README's piscina + SharedMap program (the README shows these very files), from the installed package.
    const readme = readFileSync(path.join(repo, 'README.md'), 'utf8');
    for (const file of ['main.mjs', 'task.mjs']) {
      const text = readFileSync(path.join(repo, 'examples/piscina-shared-map', file), 'utf8');
      expect(readme).toContain(text.trimEnd());
    }
    const program = execFileSync(
      process.execPath,
      [path.join(installed, 'examples/piscina-shared-map/main.mjs')],
      { cwd: app, encoding: 'utf8' },
    );
    expect(program).toMatch(/^hello user:7 from worker thread \d+$/m);
    expect(program).toMatch(/^9 entries; user:3 is \{ greeting: 'hello', thread: \d+ \}$/m);

    // The example service, from the installed package (its compiled files import it by name).
    const server = spawn(
      process.execPath,
      [path.join(installed, 'dist/examples/shared-cache/server.js'), '--port', '0', '--workers', '2'],
      { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      const [line] = (await Promise.race([
        once(server.stdout, 'data'),
        once(server, 'exit').then(() => [Buffer.from('exited')]),
      ])) as [Buffer];
      const url = /service on (http:\S+)/.exec(String(line))?.[1];
      expect(url, String(line)).toBeDefined();
      expect((await fetch(`${url}/item/k`, { method: 'PUT', body: 'v' })).status).toBe(204);
      expect(await (await fetch(`${url}/item/k`)).text()).toBe('v');
    } finally {
      server.kill();
    }
  }, 240_000);
});
