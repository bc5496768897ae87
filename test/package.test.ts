/**
 * The package round trip: `npm pack`, install the tarball in an empty folder (dependencies from
 * the registry or npm's cache), import every export path from plain JavaScript (the root,
 * `percpu-arena/structures`, `/lab`, `/metrics`, `/testing`), type-check a TypeScript file
 * against its declarations (the branded refs and pointers among them), and run the CLI from it,
 * a benchmark included (its worker modules must be in the tarball).
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

    const cli = path.join(app, 'node_modules/.bin/percpu-arena');
    expect(execFileSync(cli, ['--help'], { cwd: app, encoding: 'utf8' })).toMatch(/Usage: percpu-arena/);
    const bench = JSON.parse(
      execFileSync(cli, ['bench', 'pack', '--programs', '16', '--json'], { cwd: app, encoding: 'utf8' }),
    );
    expect(bench.withPack.corrupt).toBe(0);
  }, 180_000);
});
