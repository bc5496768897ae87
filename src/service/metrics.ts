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
export function arenaMetrics(arena: Arena, options: ArenaMetricsOptions = {}): Registry {
  if (!(arena instanceof Arena)) fail('EINVAL', 'arenaMetrics(arena) needs an Arena');
  if (options === null || typeof options !== 'object')
    fail('EINVAL', 'arenaMetrics: options must be an object');
  if (options.registry !== undefined && !(options.registry instanceof Registry)) {
    fail('EINVAL', 'arenaMetrics: options.registry must be a prom-client Registry');
  }
  const registry = options.registry ?? new Registry();
  const prefix = options.prefix ?? 'percpu_arena_';
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) {
    fail('EINVAL', `arenaMetrics: prefix must be a Prometheus metric name prefix, got ${show(prefix)}`);
  }
  const extra = options.labels ?? {};
  if (extra === null || typeof extra !== 'object') fail('EINVAL', 'arenaMetrics: labels must be an object');
  const extraNames = Object.keys(extra);
  for (const name of extraNames) {
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name) || typeof extra[name] !== 'string') {
      fail('EINVAL', `arenaMetrics: label ${name} must be a Prometheus label name with a string value`);
    }
  }
  const builtIn = new Set(kDefinitions.flatMap((d) => d.labels));
  for (const name of extraNames) {
    // A label the metrics set themselves would merge their series silently.
    if (builtIn.has(name))
      fail('EINVAL', `arenaMetrics: label '${name}' is one the metrics use (${[...builtIn].join(', ')})`);
  }
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
