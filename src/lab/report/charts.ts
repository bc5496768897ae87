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
