/**
 * SVG charts for the report, rendered by Apache ECharts' server-side SVG renderer (no DOM, no
 * browser): grouped bar charts of one value per preset. Plain SVG strings, so the HTML page can
 * inline them and the same text is written to .svg files.
 *
 * Who may call: anyone (pure rendering).
 */
import * as echarts from 'echarts';

export interface BarSeries {
  readonly name: string;
  readonly values: readonly number[];
  /** Error bars (± this much) drawn as a label, e.g. a standard deviation. */
  readonly spread?: readonly number[];
}

export interface BarChart {
  readonly title: string;
  readonly categories: readonly string[];
  readonly series: readonly BarSeries[];
  readonly yName: string;
  readonly width?: number;
  readonly height?: number;
}

const kPalette = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759'];

export function barChartSvg(chart: BarChart): string {
  const instance = echarts.init(null, null, {
    renderer: 'svg',
    ssr: true,
    width: chart.width ?? 640,
    height: chart.height ?? 340,
  });
  try {
    instance.setOption({
      animation: false,
      color: kPalette,
      title: { text: chart.title, left: 'center', top: 4, textStyle: { fontSize: 14 } },
      legend: { top: 30, show: chart.series.length > 1 },
      grid: { left: 64, right: 16, top: chart.series.length > 1 ? 70 : 48, bottom: 70 },
      xAxis: {
        type: 'category',
        data: [...chart.categories],
        axisLabel: { rotate: 30, fontSize: 11 },
      },
      yAxis: { type: 'value', name: chart.yName, nameTextStyle: { align: 'left' } },
      series: chart.series.map((s) => ({
        name: s.name,
        type: 'bar',
        data: [...s.values],
        label: {
          show: true,
          position: 'top',
          fontSize: 10,
          formatter: (p: { value: number; dataIndex: number }) =>
            s.spread ? `${format(p.value)}±${format(s.spread[p.dataIndex] ?? 0)}` : format(p.value),
        },
      })),
    });
    return instance.renderToSVGString();
  } finally {
    instance.dispose();
  }
}

function format(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

/** One preset on a trade-off chart. */
export interface TradeoffPoint {
  readonly name: string;
  readonly peakMiB: number;
  readonly throughput: number;
  /** From the report's torture run: undefined when it was not run. */
  readonly safe: boolean | undefined;
}

export interface TradeoffChart {
  readonly title: string;
  readonly yName: string;
  readonly points: readonly TradeoffPoint[];
  readonly width?: number;
  readonly height?: number;
}

/**
 * Throughput against peak memory, one point per preset: up and to the left is better. Presets
 * the torture run found safe under readers are green circles, those whose readers saw reuse red
 * triangles (grey diamonds: not judged). Memory on a log axis: the presets span 0.2 MiB to 1 GiB.
 */
export function tradeoffChartSvg(chart: TradeoffChart): string {
  const instance = echarts.init(null, null, {
    renderer: 'svg',
    ssr: true,
    width: chart.width ?? 640,
    height: chart.height ?? 360,
  });
  const groups = [
    { name: 'safe under readers', symbol: 'circle', color: '#2e7d32', safe: true },
    { name: 'reuses under readers', symbol: 'triangle', color: '#c62828', safe: false },
    { name: 'not judged', symbol: 'diamond', color: '#757575', safe: undefined },
  ] as const;
  try {
    instance.setOption({
      animation: false,
      title: { text: chart.title, left: 'center', top: 4, textStyle: { fontSize: 14 } },
      legend: { top: 30 },
      grid: { left: 64, right: 96, top: 70, bottom: 56 },
      xAxis: {
        type: 'log',
        name: 'peak MiB (log)',
        nameLocation: 'middle',
        nameGap: 30,
        min: (v: { min: number }) => 10 ** Math.floor(Math.log10(Math.max(v.min, 0.01))),
      },
      yAxis: { type: 'value', name: chart.yName, nameTextStyle: { align: 'left' }, min: 0 },
      series: groups
        .map((g) => ({
          name: g.name,
          type: 'scatter',
          symbol: g.symbol,
          symbolSize: 13,
          itemStyle: { color: g.color },
          label: { show: true, position: 'right', fontSize: 10, formatter: (p: { name: string }) => p.name },
          labelLayout: { hideOverlap: false, moveOverlap: 'shiftY' },
          data: chart.points
            .filter((p) => p.safe === g.safe)
            .map((p) => ({ name: p.name, value: [Math.max(p.peakMiB, 0.01), p.throughput] })),
        }))
        .filter((s) => s.data.length > 0),
    });
    return instance.renderToSVGString();
  } finally {
    instance.dispose();
  }
}
