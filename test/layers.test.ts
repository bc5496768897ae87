/**
 * The tree reads bottom to top as the system does: every module of src/ imports only its own
 * layer (top-level folder) or the layers below it, and no import chain is a cycle. The checker
 * also runs on small synthetic trees, each breaking one rule, to show that it fails on them.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkLayers, LAYERS, readTree } from './helpers/layers.js';

const src = fileURLToPath(new URL('../src/', import.meta.url));

describe('layers', () => {
  it('src/ has no upward import and no import cycle', () => {
    const tree = readTree(src);
    expect(tree.size).toBeGreaterThan(40);
    const folders = new Set([...tree.keys()].filter((f) => f.includes('/')).map((f) => f.split('/')[0]));
    expect([...folders].sort()).toEqual([...LAYERS].sort());
    expect(checkLayers(tree)).toEqual([]);
  });

  it('the checker reports an upward import', () => {
    const tree = readTree(src);
    // The slab (memory) naming the CPU handle (cpu), as a shortcut might.
    const slab = tree.get('memory/slab.ts') as string;
    tree.set('memory/slab.ts', `import type { CpuHandle } from '../cpu/cpu.js';\n${slab}`);
    const problems = checkLayers(tree);
    expect(problems.some((p) => p.includes('memory/slab.ts (layer memory) imports cpu/cpu.ts'))).toBe(true);
  });

  it('the checker reports a cycle inside one layer, an entry-point import and an unknown folder', () => {
    const tree = new Map([
      ['index.ts', "export { a } from './shm/a.js';"],
      ['shm/a.ts', "import { b } from './b.js';\nexport const a = b;"],
      ['shm/b.ts', "import { a } from './a.js';\nexport const b = a;"],
      ['shm/c.ts', "import { a } from '../index.js';"],
      ['misc/d.ts', 'export const d = 1;'],
    ]);
    const problems = checkLayers(tree);
    expect(problems).toContain('import cycle: shm/a.ts -> shm/b.ts -> shm/a.ts');
    expect(problems).toContain('shm/c.ts imports the entry point index.ts');
    expect(problems).toContain("misc/d.ts: folder 'misc' is not a layer");
  });

  it('the checker follows worker modules loaded by path and dynamic imports', () => {
    const tree = new Map([
      ['cpu/h.ts', "const m = siblingModule(import.meta.url, '../lab/x');"],
      ['memory/s.ts', "const m = await import('../cpu/h.js');"],
      ['lab/x.ts', 'export const x = 1;'],
    ]);
    const problems = checkLayers(tree);
    expect(problems).toContain('cpu/h.ts (layer cpu) imports lab/x.ts from the higher layer lab');
    expect(problems).toContain('memory/s.ts (layer memory) imports cpu/h.ts from the higher layer cpu');
  });
});
