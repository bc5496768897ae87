/**
 * `arena.stats()` as Prometheus metrics through prom-client. Every gauge reads one snapshot of
 * the stats in its `collect()`, so nothing runs between scrapes (no timers, no hooks on the
 * allocation path): an arena that is never scraped pays nothing. prom-client is loaded only by
 * whoever imports this module (`percpu-arena/metrics`; the package root does not).
 *
 * Who may call: the thread that created the arena (`arena.stats()` there), once per registry.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { Arena } from '../arena/arena.js';
import type { ArenaStats } from '../arena/stats.js';
import { fail, show } from '../shm/errors.js';
import { SharedMap, type SharedMapStats } from './shared-map.js';

export interface ArenaMetricsOptions {
  /** The registry to register in. @defaultValue a new Registry */
  readonly registry?: Registry;
  /** Prefix of every metric name. @defaultValue 'percpu_arena_' */
  readonly prefix?: string;
  /** Labels added to every sample (e.g. `{ arena: 'sessions' }`). */
  readonly labels?: Readonly<Record<string, string>>;
}

type Sampler = (
  stats: ArenaStats,
  set: (labels: Record<string, string | number>, value: number) => void,
) => void;

interface Definition {
  /** Counters only grow (rate() works on them); gauges go up and down. */
  readonly type: 'counter' | 'gauge';
  readonly name: string;
  readonly help: string;
  readonly labels: readonly string[];
  readonly sample: Sampler;
}

const kDefinitions: readonly Definition[] = [
  {
    type: 'gauge',
    name: 'bytes_in_use',
    help: 'Arena pages in use, in bytes.',
    labels: [],
    sample: (s, set) => set({}, s.bytesInUse),
  },
  {
    type: 'gauge',
    name: 'peak_bytes',
    help: 'Most arena bytes ever in use.',
    labels: [],
    sample: (s, set) => set({}, s.peakBytes),
  },
  {
    type: 'gauge',
    name: 'max_bytes',
    help: 'The arena memory limit, in bytes.',
    labels: [],
    sample: (s, set) => set({}, s.maxBytes),
  },
  {
    type: 'gauge',
    name: 'live_units',
    help: 'Units allocated and not freed.',
    labels: [],
    sample: (s, set) => set({}, s.liveUnits),
  },
  {
    type: 'gauge',
    name: 'class_units',
    help: 'Units of a size class by where they are: live, cached in CPU caches, free in the slab, deferred, in the depot.',
    labels: ['unit_size', 'where'],
    sample: (s, set) => {
      for (const c of s.classes) {
        const unit = String(c.unitSize + (c.objectSize > 0 ? `/${c.objectSize}` : ''));
        set({ unit_size: unit, where: 'live' }, c.live);
        set({ unit_size: unit, where: 'cached' }, c.cached);
        set({ unit_size: unit, where: 'slab_free' }, c.slabFree);
        set({ unit_size: unit, where: 'deferred' }, c.deferred);
        set({ unit_size: unit, where: 'depot' }, c.depot);
      }
    },
  },
  {
    type: 'counter',
    name: 'gp_completed_total',
    help: 'Grace periods completed, per flavor.',
    labels: ['flavor'],
    sample: (s, set) => {
      for (const [flavor, g] of Object.entries(s.gp)) set({ flavor }, g.completed);
    },
  },
  {
    type: 'counter',
    name: 'gp_epoch_advances_total',
    help: 'Epoch advances per flavor, and those CPUs made themselves.',
    labels: ['flavor', 'by'],
    sample: (s, set) => {
      for (const [flavor, g] of Object.entries(s.gp)) {
        set({ flavor, by: 'all' }, g.advances);
        set({ flavor, by: 'cpus' }, g.helpedAdvances);
      }
    },
  },
  {
    type: 'gauge',
    name: 'gp_latency_seconds',
    help: 'Grace-period latency per flavor (request noticed to epoch reached), by quantile.',
    labels: ['flavor', 'quantile'],
    sample: (s, set) => {
      for (const [flavor, g] of Object.entries(s.gp)) {
        for (const [q, v] of [
          ['0.5', g.latencyUs.p50],
          ['0.9', g.latencyUs.p90],
          ['0.99', g.latencyUs.p99],
          ['1', g.latencyUs.max],
        ] as const) {
          set({ flavor, quantile: q }, v / 1e6);
        }
      }
    },
  },
  {
    type: 'counter',
    name: 'reclaim_steps_total',
    help: 'Memory reclaim: shrinker runs, CPUs it drained, epochs it advanced, successful runs, empty spans released, CPUs recovered from dead threads, stalls.',
    labels: ['step'],
    sample: (s, set) => {
      set({ step: 'shrinker_runs' }, s.reclaim.runs);
      set({ step: 'shrinker_drained_cpus' }, s.reclaim.drainedCpus);
      set({ step: 'shrinker_gp_advances' }, s.reclaim.gpAdvances);
      set({ step: 'shrinker_succeeded' }, s.reclaim.succeeded);
      set({ step: 'spans_released' }, s.spansReleased);
      set({ step: 'cpus_recovered' }, s.cpusRecovered);
      set({ step: 'stalls' }, s.stalls);
      set({ step: 'depot_parks' }, s.depot.parks);
      set({ step: 'depot_takes' }, s.depot.takes);
    },
  },
  {
    type: 'counter',
    name: 'cpu_operations_total',
    help: 'Per CPU: allocations, frees, refills (underflows) and trims (overflows).',
    labels: ['cpu', 'op'],
    sample: (s, set) => {
      for (const c of s.cpus) {
        const cpu = String(c.cpu);
        set({ cpu, op: 'alloc' }, c.allocs);
        set({ cpu, op: 'free' }, c.frees);
        set({ cpu, op: 'refill' }, c.refills);
        set({ cpu, op: 'trim' }, c.trims);
      }
    },
  },
  {
    type: 'counter',
    name: 'sheaf_events_total',
    help: "SLUB_STATS of the sheaf caches (policy cache 'sheaves'; 0 otherwise), by event: alloc_fastpath, barn_get, barn_put_fail, sheaf_flush, free_rcu_sheaf, ...",
    labels: ['event'],
    sample: (s, set) => {
      for (const [event, value] of Object.entries(s.totals.sheaf)) set({ event }, value);
    },
  },
  {
    type: 'gauge',
    name: 'cpu_online',
    help: 'Whether a CPU slot is attached to a thread (1) or offline (0).',
    labels: ['cpu'],
    sample: (s, set) => {
      for (const c of s.cpus) set({ cpu: String(c.cpu) }, c.online ? 1 : 0);
    },
  },
];

/**
 * Registers the arena's metrics in a registry (a new one unless given) and returns it: serve
 * `await registry.metrics()` with `registry.contentType` on a `/metrics` endpoint.
 */
/**
 * EINVAL, naming `call`, unless `options` is an object whose registry is a prom-client Registry,
 * whose prefix is a Prometheus metric name prefix and whose labels are Prometheus label names with
 * string values, none of them in `builtIn` (the metrics' own labels, whose series would merge).
 */
function checkMetricsOptions(call: string, options: unknown, builtIn: ReadonlySet<string>): void {
  if (options === null || typeof options !== 'object') fail('EINVAL', `${call}: options must be an object`);
  const { registry, prefix, labels } = options as ArenaMetricsOptions;
  if (registry !== undefined && !(registry instanceof Registry)) {
    fail('EINVAL', `${call}: options.registry must be a prom-client Registry`);
  }
  if (prefix !== undefined && (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix))) {
    fail('EINVAL', `${call}: prefix must be a Prometheus metric name prefix, got ${show(prefix)}`);
  }
  if (labels === undefined) return;
  if (labels === null || typeof labels !== 'object') fail('EINVAL', `${call}: labels must be an object`);
  for (const name of Object.keys(labels)) {
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name) || typeof labels[name] !== 'string') {
      fail('EINVAL', `${call}: label ${name} must be a Prometheus label name with a string value`);
    }
    if (builtIn.has(name)) {
      fail('EINVAL', `${call}: label '${name}' is one the metrics use (${[...builtIn].join(', ')})`);
    }
  }
}

export function arenaMetrics(arena: Arena, options: ArenaMetricsOptions = {}): Registry {
  if (!(arena instanceof Arena)) fail('EINVAL', 'arenaMetrics(arena) needs an Arena');
  checkMetricsOptions('arenaMetrics', options, new Set(kDefinitions.flatMap((d) => d.labels)));
  const registry = options.registry ?? new Registry();
  const prefix = options.prefix ?? 'percpu_arena_';
  const extra = options.labels ?? {};
  const extraNames = Object.keys(extra);
  // One stats snapshot per scrape, shared by every gauge of that scrape.
  let snapshot: { stats: ArenaStats; at: number } | undefined;
  const stats = (): ArenaStats => {
    const now = performance.now();
    if (snapshot === undefined || now - snapshot.at > 50) snapshot = { stats: arena.stats(), at: now };
    return snapshot.stats;
  };
  for (const d of kDefinitions) {
    const config = {
      name: `${prefix}${d.name}`,
      help: d.help,
      labelNames: [...d.labels, ...extraNames],
      registers: [registry],
    };
    if (d.type === 'counter') {
      new Counter({
        ...config,
        collect() {
          this.reset();
          d.sample(stats(), (labels, value) => this.inc({ ...labels, ...extra }, value));
        },
      });
    } else {
      new Gauge({
        ...config,
        collect() {
          this.reset();
          d.sample(stats(), (labels, value) => this.set({ ...labels, ...extra }, value));
        },
      });
    }
  }
  return registry;
}

export interface SharedMapMetricsOptions {
  /** The registry to register in. @defaultValue a new Registry */
  readonly registry?: Registry;
  /** Prefix of every metric name. @defaultValue 'percpu_arena_map_' */
  readonly prefix?: string;
  /** Labels added to every sample, e.g. `{ map: 'sessions' }` (one set per map in a registry). */
  readonly labels?: Readonly<Record<string, string>>;
}

const kMapDefinitions: readonly {
  readonly type: 'counter' | 'gauge';
  readonly name: string;
  readonly help: string;
  readonly of: (s: SharedMapStats) => number;
}[] = [
  {
    type: 'gauge',
    name: 'entries',
    help: 'Entries in the map (expired ones not yet swept included).',
    of: (s) => s.entries,
  },
  {
    type: 'gauge',
    name: 'bytes',
    help: "Bytes the map's entries hold (units and pack blocks).",
    of: (s) => s.bytes,
  },
  { type: 'counter', name: 'hits_total', help: 'Lookups that found their key.', of: (s) => s.hits },
  {
    type: 'counter',
    name: 'misses_total',
    help: 'Lookups that did not (or found it expired).',
    of: (s) => s.misses,
  },
  { type: 'counter', name: 'evictions_total', help: 'Entries evicted to make room.', of: (s) => s.evictions },
  {
    type: 'counter',
    name: 'expired_total',
    help: 'Entries removed because their TTL had passed.',
    of: (s) => s.expired,
  },
];

/**
 * Registers one SharedMap's counters (summed over every handle of every thread) in a registry
 * and returns it; read from `map.stats()` at each scrape. Who may call: the thread owning `map`.
 */
export function sharedMapMetrics(map: SharedMap, options: SharedMapMetricsOptions = {}): Registry {
  if (!(map instanceof SharedMap)) fail('EINVAL', 'sharedMapMetrics(map) needs a SharedMap');
  checkMetricsOptions('sharedMapMetrics', options, new Set());
  const registry = options.registry ?? new Registry();
  const prefix = options.prefix ?? 'percpu_arena_map_';
  const labels = options.labels ?? {};
  let snapshot: { stats: SharedMapStats; at: number } | undefined;
  const stats = (): SharedMapStats => {
    const now = performance.now();
    if (snapshot === undefined || now - snapshot.at > 50) snapshot = { stats: map.stats(), at: now };
    return snapshot.stats;
  };
  for (const d of kMapDefinitions) {
    const config = {
      name: `${prefix}${d.name}`,
      help: d.help,
      labelNames: Object.keys(labels),
      registers: [registry],
    };
    if (d.type === 'counter') {
      new Counter({
        ...config,
        collect() {
          this.reset();
          this.inc(labels, d.of(stats()));
        },
      });
    } else {
      new Gauge({
        ...config,
        collect() {
          this.set(labels, d.of(stats()));
        },
      });
    }
  }
  return registry;
}
