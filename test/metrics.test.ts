/**
 * The Prometheus export (src/service/metrics.ts): the registry's text parses, every metric family is
 * there with the right type, the numbers are the arena's stats at scrape time, and nothing is
 * read between scrapes.
 */
import { describe, expect, it } from 'vitest';
import { Arena } from '../src/index.js';
import { arenaMetrics } from '../src/service/metrics.js';

/** Prometheus text format: `name{labels} value` lines and `# TYPE name type` lines. */
function parse(text: string) {
  const types = new Map<string, string>();
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      types.set(name as string, type as string);
    } else if (line && !line.startsWith('#')) {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!m) throw new Error(`unparseable line: ${line}`);
      const labels: Record<string, string> = {};
      for (const pair of (m[2] ?? '').match(/[a-zA-Z_]+="[^"]*"/g) ?? []) {
        const [k, v] = pair.split('=');
        labels[k as string] = (v as string).slice(1, -1);
      }
      samples.push({ name: m[1] as string, labels, value: Number(m[3]) });
    }
  }
  return { types, samples };
}

describe('arenaMetrics', () => {
  it('exports the stats as parseable gauges and counters, read at scrape time', async () => {
    const arena = Arena.create({ cpus: 2, maxBytes: 8 << 20, policy: 'arena', coordinator: 'manual' });
    const cpu = arena.attach(1);
    const registry = arenaMetrics(arena, { labels: { arena: 'test' } });
    const held = Array.from({ length: 100 }, () => cpu.alloc(100));
    const first = parse(await registry.metrics());
    const one = (name: string, labels: Record<string, string> = {}) =>
      first.samples.find(
        (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
      )?.value;
    const stats = arena.stats();
    expect(one('percpu_arena_bytes_in_use')).toBe(stats.bytesInUse);
    expect(one('percpu_arena_live_units')).toBe(100);
    expect(one('percpu_arena_cpu_operations_total', { cpu: '1', op: 'alloc' })).toBe(100);
    expect(one('percpu_arena_cpu_online', { cpu: '0' })).toBe(0);
    expect(one('percpu_arena_cpu_online', { cpu: '1' })).toBe(1);
    expect(one('percpu_arena_class_units', { unit_size: '128', where: 'live' })).toBe(100);
    expect(first.samples.every((s) => s.labels.arena === 'test')).toBe(true);
    expect(first.types.get('percpu_arena_gp_completed_total')).toBe('counter');
    expect(first.types.get('percpu_arena_bytes_in_use')).toBe('gauge');
    for (const family of [
      'peak_bytes',
      'gp_latency_seconds',
      'gp_epoch_advances_total',
      'reclaim_steps_total',
      'sheaf_events_total',
    ]) {
      expect(first.types.has(`percpu_arena_${family}`), family).toBe(true);
    }
    // A later scrape sees later numbers (no cached values between scrapes beyond 50 ms).
    for (const ptr of held) cpu.free(ptr);
    await new Promise((resolve) => setTimeout(resolve, 60));
    const second = parse(await registry.metrics());
    expect(second.samples.find((s) => s.name === 'percpu_arena_live_units')?.value).toBe(0);
    await arena.close();
  });

  it('refuses an extra label the metrics use themselves', async () => {
    const arena = Arena.create({ cpus: 1, maxBytes: 4 << 20, coordinator: 'manual' });
    expect(() => arenaMetrics(arena, { labels: { cpu: 'x' } })).toThrow(/EINVAL.*label 'cpu'/);
    await arena.close();
  });
});
