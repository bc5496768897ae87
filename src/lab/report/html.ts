/**
 * The report's self-contained HTML page: the verdict (per preset: safe under readers or not,
 * throughput and memory against kernel-6.6, what it is for), the run's conditions, then per
 * benchmark case a throughput-versus-memory chart, a throughput chart, a memory chart (inline
 * SVG), the numbers with the kernel's published ones beside them, what the columns mean and why
 * an outlier stands out. No scripts or fonts to fetch: the page opens from disk anywhere; its
 * links go to the installed package's docs.
 *
 * Who may call: anyone (pure text).
 */

import type { PresetName } from '../../epoch/policy.js';
import type { MachineConditions } from '../benchmarks/measure.js';
import { kernelFigure } from './kernel-table.js';
import { COLUMN_NOTES, docLink, outliers } from './notes.js';
import { BASELINE, type CaseReport, type VerdictRow } from './verdict.js';

export type { CaseReport };

export interface ReportSection {
  readonly id: string;
  readonly title: string;
  readonly description: string;
  /** Throughput against peak memory, safe and unsafe presets marked apart. */
  readonly tradeoffSvg: string;
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
  /** The verdict rows, when presets were run (and the torture seconds per preset, 0: not run). */
  readonly verdict: readonly VerdictRow[];
  readonly tortureSeconds: number;
}

const escapeHtml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function rowHtml(r: CaseReport, safe: boolean | undefined, withKernel: boolean): string {
  const ops =
    r.bench === 'xmalloc'
      ? `${(r.objectsPerSec / 1e6).toFixed(2)} ± ${(r.objectsPerSecStddev / 1e6).toFixed(2)} M obj/s`
      : `${r.perProdKops.toFixed(2)} ± ${r.perProdKopsStddev.toFixed(2)}k`;
  const failures = r.bench === 'xmalloc' ? r.allocFailures : r.failedUpdates;
  const mark =
    safe === undefined
      ? ''
      : safe
        ? ' <span class="safe">● safe</span>'
        : ' <span class="unsafe">▲ reuses</span>';
  const k = kernelFigure(r.useCase, r.policy);
  const kernel = withKernel
    ? `<td>${k ? `${escapeHtml(k.kernel)}: ${k.perProdKops.toFixed(2)}k, ${k.avgMiB.toFixed(2)} / ${k.peakMiB.toFixed(2)} MiB` : ''}</td>`
    : '';
  return `<tr><td>${escapeHtml(r.policy)}${mark}</td><td>${ops}</td><td>${r.avgMiB.toFixed(2)} ± ${r.avgMiBStddev.toFixed(2)}</td><td>${r.peakMiB.toFixed(2)}</td><td>${r.gp.rcu.advances} / ${r.gp.ttrace.advances}</td><td>${failures}</td>${kernel}</tr>`;
}

const link = (name: 'benchmarks' | 'design' | 'lab', text: string): string => {
  const href = docLink(name);
  return href ? `<a href="${escapeHtml(href)}">${escapeHtml(text)}</a>` : escapeHtml(text);
};

const millions = (n: number): string =>
  n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(0)} k` : String(n);

/** Per case, the fastest and the leanest of the presets found safe under readers. */
function choicesHtml(verdict: readonly VerdictRow[]): string {
  const safe = verdict.filter((v) => v.safety?.verdict === 'safe');
  if (safe.length === 0) return '';
  const cases = verdict[0]?.ratios.map((r) => r.useCase) ?? [];
  const items = cases.flatMap((useCase, k) => {
    const rated = safe
      .map((v) => ({ policy: v.policy, ...(v.ratios[k] ?? { throughput: undefined, peak: undefined }) }))
      .filter((r) => r.throughput !== undefined && r.peak !== undefined);
    if (rated.length === 0) return [];
    const fastest = rated.reduce((a, b) => ((b.throughput ?? 0) > (a.throughput ?? 0) ? b : a));
    const leanest = rated.reduce((a, b) => ((b.peak ?? 0) < (a.peak ?? 0) ? b : a));
    return [
      `<li><strong>${escapeHtml(useCase)}</strong>: fastest safe preset <code>${escapeHtml(fastest.policy)}</code> ` +
        `(${ratioText(fastest.throughput)} the throughput of ${BASELINE}, ${ratioText(fastest.peak)} its peak memory); ` +
        `leanest safe preset <code>${escapeHtml(leanest.policy)}</code> (${ratioText(leanest.throughput)}, ${ratioText(leanest.peak)}).</li>`,
    ];
  });
  return `<p>Which to use: a preset marked unsafe only where no lock-free reader holds the memory. With lock-free readers, in this run:</p><ul>${items.join('')}</ul>
  <p>Single runs on a shared machine: throughput differences under about 20 % are noise; rerun a case with <code>percpu-arena bench</code> to check one.</p>`;
}

const ratioText = (x: number | undefined): string =>
  x === undefined ? '—' : x >= 10 ? `${x.toFixed(0)}×` : `${x.toFixed(2)}×`;

function verdictHtml(page: ReportPage): string {
  if (page.verdict.length === 0) return '';
  const cases = page.verdict[0]?.ratios.map((r) => r.useCase) ?? [];
  const head = cases
    .map((c) => `<th>${escapeHtml(c).replace(/_/g, '_<wbr>')}<br><small>throughput · peak</small></th>`)
    .join('');
  const rows = page.verdict
    .map((v) => {
      const s = v.safety;
      const cell = !s
        ? '<td>not run</td>'
        : s.verdict === 'unsafe'
          ? `<td class="unsafe">▲ unsafe<br><small>readers saw ${s.errors.toLocaleString('en')} reuses in ${millions(s.readerSections)} sections</small></td>`
          : s.verdict === 'safe'
            ? `<td class="safe">● safe<br><small>no reuse in ${millions(s.readerSections)} sections while ${millions(s.recycled)} units went round</small></td>`
            : `<td>? not judged<br><small>too little work: ${s.readerSections.toLocaleString('en')} sections, ${s.recycled} units reused</small></td>`;
      const ratios = v.ratios
        .map((r) =>
          v.policy === BASELINE
            ? '<td>1× · 1× (baseline)</td>'
            : `<td>${ratioText(r.throughput)} · ${ratioText(r.peak)}</td>`,
        )
        .join('');
      return `<tr><td>${escapeHtml(v.policy)}</td>${cell}${ratios}<td class="text">${escapeHtml(v.useFor)}</td></tr>`;
    })
    .join('');
  const unsafe = page.verdict.filter((v) => v.safety?.verdict === 'unsafe').map((v) => v.policy);
  const safe = page.verdict.filter((v) => v.safety?.verdict === 'safe').map((v) => v.policy);
  return `
<section id="verdict">
  <h2>Verdict</h2>
  <p>${
    page.tortureSeconds > 0
      ? `Before the benchmarks the report ran the use-after-free torture for ${page.tortureSeconds} s under each preset ` +
        '(3 CPUs: a writer replacing published elements, a fake writer, a reader checking inside every read-side section that ' +
        `what it holds is never reused; ${link('lab', 'docs/lab.md')}). ` +
        (unsafe.length > 0
          ? `<strong>${unsafe.map(escapeHtml).join(', ')}</strong> reused memory under readers: their speed and low memory on the charts below ` +
            'come from handing a freed unit out again at once, which is safe only for data no lock-free reader holds. '
          : '') +
        (safe.length > 0 ? `${safe.map(escapeHtml).join(', ')} showed no reuse under readers. ` : '')
      : 'The torture run was skipped (--torture-seconds 0): safety is not judged. '
  }Ratios are against <code>${BASELINE}</code>, the kernel's current allocator (the default preset), in the same run:
  throughput (higher is faster) · peak memory (lower is leaner).</p>
  <table class="verdict">
    <thead><tr><th>preset</th><th>under lock-free readers</th>${head}<th>use it for</th></tr></thead>
    <tbody>${rows}</tbody>
  </table>
  ${choicesHtml(page.verdict)}
</section>`;
}

function notesHtml(s: ReportSection): string {
  const xmalloc = s.rows[0]?.bench === 'xmalloc';
  const items = [COLUMN_NOTES.epochs, xmalloc ? COLUMN_NOTES.failedXmalloc : COLUMN_NOTES.failedHtab];
  for (const o of outliers(s.id, s.rows)) {
    items.push(
      `${o.policy}'s peak of ${o.peakMiB.toFixed(1)} MiB is ${(o.peakMiB / Math.max(o.medianMiB, 0.01)).toFixed(0)}× the median ` +
        `of this case (${o.medianMiB.toFixed(2)} MiB): ${o.why}`,
    );
  }
  return `<ul class="notes">${items.map((t) => `<li>${escapeHtml(t)}</li>`).join('')}</ul>`;
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
  const safety = new Map<PresetName, boolean>();
  for (const v of page.verdict) {
    if (v.safety?.verdict === 'safe') safety.set(v.policy, true);
    if (v.safety?.verdict === 'unsafe') safety.set(v.policy, false);
  }
  const sections = page.sections
    .map((s) => {
      const xmalloc = s.rows[0]?.bench === 'xmalloc';
      const withKernel = s.rows.some((r) => kernelFigure(r.useCase, r.policy) !== undefined);
      return `
<section id="${escapeHtml(s.id)}">
  <h2>${escapeHtml(s.title)}</h2>
  <p>${escapeHtml(s.description)}</p>
  <div class="charts"><figure>${s.tradeoffSvg}</figure><figure>${s.throughputSvg}</figure><figure>${s.memorySvg}</figure></div>
  <table>
    <thead><tr><th>preset</th><th>${xmalloc ? 'objects freed/s' : 'per-producer k ops/s'}</th><th>avg MiB</th><th>peak MiB</th><th>grace-period steps rcu / ttrace</th><th>${xmalloc ? 'failed allocations' : 'failed updates'}</th>${withKernel ? `<th>the kernel's published figure (${link('benchmarks', 'table A')}: 8 producers, real RCU)</th>` : ''}</tr></thead>
    <tbody>${s.rows.map((r) => rowHtml(r, safety.get(r.policy), withKernel)).join('')}</tbody>
  </table>
  ${notesHtml(s)}
</section>`;
    })
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
  .safe { color: #2e7d32; }
  .unsafe { color: #c62828; }
  td.text { text-align: left; max-width: 26rem; }
  table.verdict td, table.verdict th { vertical-align: top; text-align: left; }
  ul.notes { font-size: 0.9rem; color: #444; max-width: 70rem; }
  .table-wrap, section { overflow-x: auto; }
  figure svg { max-width: 100%; height: auto; }
  @media (max-width: 900px) { table.verdict { font-size: 0.8rem; } table.verdict small { font-size: 0.7rem; } }
</style>
</head>
<body>
<h1>percpu-arena report</h1>
${verdictHtml(page)}
<p>What each reuse policy costs in throughput and memory, measured with real worker threads on this machine.
The htab-mem cases mirror the kernel's <code>bench htab-mem</code>; xmalloc is mimalloc-bench's
cross-thread producer/consumer shape. Presets and how they map to kernel code: ${link('design', 'docs/design.md')} and ${link('benchmarks', 'docs/benchmarks.md')}.
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
