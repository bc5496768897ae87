/**
 * The layer rule of src/ (docs/design.md, "Layers"): each top-level folder of src/ is a layer,
 * and a module may import only modules of its own layer or of layers below it; nothing imports
 * the package entry points (the files directly in src/), and no import chain comes back to where
 * it started. `checkLayers` checks a tree given as file texts, so that the test can run it on the
 * real tree and on small synthetic trees that break each rule.
 */
import fs from 'node:fs';
import path from 'node:path';

/** The layers, bottom first. Files directly in src/ are the entry points, above them all. */
export const LAYERS = [
  'shm',
  'epoch',
  'memory',
  'cpu',
  'structures',
  'arena',
  'service',
  'lab',
  'cli',
] as const;

/** Every module a source text loads by a relative path: imports, re-exports, worker modules. */
export function relativeImports(text: string): string[] {
  const found: string[] = [];
  const patterns = [
    /\bfrom\s+'(\.[^']*)'/g,
    /\bimport\s+'(\.[^']*)'/g,
    /\bimport\(\s*'(\.[^']*)'\s*\)/g,
    /\bsiblingModule\(\s*import\.meta\.url,\s*'(\.[^']*)'\s*\)/g,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) found.push(m[1] as string);
  return found;
}

/** The layer of `file` (a path relative to src/, with '/'): its folder, or 'entry'. */
function layerOf(file: string): string {
  return file.includes('/') ? (file.split('/')[0] as string) : 'entry';
}

function rank(layer: string, layers: readonly string[]): number {
  return layer === 'entry' ? layers.length : layers.indexOf(layer);
}

/**
 * Problems of the tree `files` (path relative to src/ → text): an import of an unknown folder,
 * an upward import, an import of an entry point, an import that resolves to no file, a cycle.
 */
export function checkLayers(
  files: ReadonlyMap<string, string>,
  layers: readonly string[] = LAYERS,
): string[] {
  const problems: string[] = [];
  const edges = new Map<string, string[]>();
  for (const [file, text] of files) {
    const from = layerOf(file);
    if (from !== 'entry' && !layers.includes(from)) problems.push(`${file}: folder '${from}' is not a layer`);
    const targets: string[] = [];
    for (const spec of relativeImports(text)) {
      const resolved = path.posix
        .normalize(path.posix.join(path.posix.dirname(file), spec))
        .replace(/\.(js|ts)$/, '');
      if (resolved.startsWith('..')) continue; // outside src/ (the compiled workers)
      const target = `${resolved}.ts`;
      if (!files.has(target)) {
        problems.push(`${file}: imports '${spec}', which is no file of src/`);
        continue;
      }
      targets.push(target);
      const to = layerOf(target);
      if (to === 'entry') problems.push(`${file} imports the entry point ${target}`);
      else if (rank(to, layers) > rank(from, layers)) {
        problems.push(`${file} (layer ${from}) imports ${target} from the higher layer ${to}`);
      }
    }
    edges.set(file, targets);
  }
  // Cycles: a depth-first walk; a back edge to a module still on the stack closes one.
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of edges.get(file) ?? []) {
      if (state.get(next) === 'open') {
        problems.push(`import cycle: ${[...stack.slice(stack.indexOf(next)), next].join(' -> ')}`);
      } else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of [...files.keys()].sort()) if (!state.has(file)) visit(file);
  return problems;
}

/** The .ts files under `dir`, keyed by their path relative to it. */
export function readTree(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const full = path.join(entry.parentPath, entry.name);
    files.set(path.relative(dir, full).split(path.sep).join('/'), fs.readFileSync(full, 'utf8'));
  }
  return files;
}
