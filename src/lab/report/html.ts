/**
 * The report's self-contained HTML page: the run's conditions, then per benchmark case a
 * throughput chart, a memory chart (inline SVG) and the numbers. No scripts, fonts or links to
 * fetch: the page opens from disk anywhere.
 *
 * Who may call: anyone (pure text).
 */
import type { HtabMemReport } from '../benchmarks/htab-mem.js';
import type { MachineConditions } from '../benchmarks/measure.js';
import type { XmallocReport } from '../benchmarks/xmalloc.js';

export type CaseReport = HtabMemReport | XmallocReport;

export interface ReportSection {
  readonly id: string;
  readonly title: string;
  readonly description: string;
  readonly throughputSvg: string;
  readonly memorySvg: string;
  readonly rows: readonly CaseReport[];
}

/** The pack bench on the page: two charts and the side-by-side rows (src/cli/bench-pack.ts). */
export interface PackSection {
  readonly description: string;
  readonly directMapSvg: string;
  readonly memorySvg: string;
  /** [measure, with packs, without packs, ratio] */
  readonly rows: readonly (readonly string[])[];
}

export interface ReportPage {
  readonly conditions: MachineConditions;
  readonly gpMinMs: { readonly rcu: number; readonly ttrace: number };
  readonly producers: number;
  readonly xmallocProducers: number;
  readonly durationS: number;
  readonly warmupS: number;
  readonly command: string;
  readonly sections: readonly ReportSection[];
  readonly pack: PackSection | undefined;
  readonly wallS: number;
}

const escapeHtml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function rowHtml(r: CaseReport): string {
  const ops =
    r.bench === 'xmalloc'
      ? `${(r.objectsPerSec / 1e6).toFixed(2)} ± ${(r.objectsPerSecStddev / 1e6).toFixed(2)} M obj/s`
      : `${r.perProdKops.toFixed(2)} ± ${r.perProdKopsStddev.toFixed(2)}k`;
  const failures = r.bench === 'xmalloc' ? r.allocFailures : r.failedUpdates;
  return `<tr><td>${escapeHtml(r.policy)}</td><td>${ops}</td><td>${r.avgMiB.toFixed(2)} ± ${r.avgMiBStddev.toFixed(2)}</td><td>${r.peakMiB.toFixed(2)}</td><td>${r.gp.rcu.advances} / ${r.gp.ttrace.advances}</td><td>${failures}</td></tr>`;
}

function packHtml(p: PackSection): string {
  const rows = p.rows
    .map((r) => `<tr>${r.map((cell) => `<td>${escapeHtml(cell)}</td>`).join('')}</tr>`)
    .join('');
  return `
<section id="pack">
  <h2>pack: the direct map with and without packs</h2>
  <p>${escapeHtml(p.description)}</p>
  <div class="charts"><figure>${p.directMapSvg}</figure><figure>${p.memorySvg}</figure></div>
  <table>
    <thead><tr><th>measure</th><th>with packs</th><th>without packs</th><th>with ÷ without</th></tr></thead>
    <tbody>${rows}</tbody>
  </table>
</section>`;
}

export function reportHtml(page: ReportPage): string {
  const c = page.conditions;
  const sections = page.sections
    .map(
      (s) => `
<section id="${escapeHtml(s.id)}">
  <h2>${escapeHtml(s.title)}</h2>
  <p>${escapeHtml(s.description)}</p>
  <div class="charts"><figure>${s.throughputSvg}</figure><figure>${s.memorySvg}</figure></div>
  <table>
    <thead><tr><th>preset</th><th>${s.rows[0]?.bench === 'xmalloc' ? 'objects freed/s' : 'per-producer k ops/s'}</th><th>avg MiB</th><th>peak MiB</th><th>epoch advances rcu / ttrace</th><th>failed</th></tr></thead>
    <tbody>${s.rows.map(rowHtml).join('')}</tbody>
  </table>
</section>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>percpu-arena report</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1340px; padding: 0 1rem; color: #222; }
  h1 { margin-bottom: 0.2rem; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; }
  dt { font-weight: 600; }
  .charts { display: flex; flex-wrap: wrap; gap: 1rem; }
  figure { margin: 0; border: 1px solid #ddd; border-radius: 4px; }
  table { border-collapse: collapse; margin: 0.8rem 0 2rem; }
  th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
  th:first-child, td:first-child { text-align: left; }
  code { background: #f3f3f3; padding: 0 0.2rem; }
</style>
</head>
<body>
<h1>percpu-arena report</h1>
<p>What each reuse policy costs in throughput and memory, measured with real worker threads on this machine.
The htab-mem cases mirror the kernel's <code>bench htab-mem</code>; xmalloc is mimalloc-bench's
cross-thread producer/consumer shape. Presets and how they map to kernel code: docs/design.md and docs/benchmarks.md.
Each configuration runs on its own, one after another: on a shared machine, differences of less than about 20 % between
presets that run the same code (kernel-6.1, kernel-6.4 and kernel-6.6 on overwrite) are noise.</p>
<h2>Conditions</h2>
<dl>
  <dt>CPU</dt><dd>${escapeHtml(c.cpuModel)}, ${c.cores} cores available</dd>
  <dt>Platform</dt><dd>${escapeHtml(c.platform)}, Node ${escapeHtml(c.node)}</dd>
  <dt>Date</dt><dd>${escapeHtml(c.date)}</dd>
  <dt>Producers</dt><dd>htab-mem ${page.producers} (add_del_on_diff_cpu: the largest even count not above it, at least 2), xmalloc ${page.xmallocProducers} + as many consumers</dd>
  <dt>Timing</dt><dd>warm-up ${page.warmupS} s, ${page.durationS} s measured per run, memory sampled once a second (1-second intervals)</dd>
  <dt>GP emulation</dt><dd>every rcu epoch lasts ≥ ${page.gpMinMs.rcu} ms, every ttrace epoch ≥ ${page.gpMinMs.ttrace} ms (a batch sealed in epoch e is past its grace period at e + 2)</dd>
  <dt>Command</dt><dd><code>${escapeHtml(page.command)}</code> (${page.wallS.toFixed(0)} s)</dd>
</dl>
${sections}
${page.pack ? packHtml(page.pack) : ''}
</body>
</html>
`;
}
