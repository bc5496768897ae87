/**
 * Load test of the example service: the same bounded load, side by side in one run, against the
 * service with the shared map in the arena and with per-worker Maps kept in step by postMessage.
 * Each side: a fresh server (a child process), `--keys` keys (1000) of `--value-bytes` (1 KiB) written first, then two
 * autocannon clients at once send `--requests` requests over `--connections` connections on
 * loopback: 90 % GETs of all keys, 10 % PUTs of 100 of them (one client with mixed requests
 * hung: autocannon carried a PUT's body into the GETs that followed it on a connection). Reports requests/s, latency p50 / p99, errors, and memory: the
 * service process's RSS and heap after the run, and the arena's pages in use (shared side).
 *
 * Run: `npx tsx examples/shared-cache/load-test.ts [--requests 20000] [--connections 16]
 * [--workers 2] [--json]`.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';

/** The service in a process of its own, so that its memory is its own. */
async function spawnService(mode: string, workers: number): Promise<{ url: string; close(): Promise<void> }> {
  const child = spawn(
    process.execPath,
    [
      ...(import.meta.url.endsWith('.ts') ? ['--import', 'tsx'] : []),
      new URL(import.meta.url.endsWith('.ts') ? './server.ts' : './server.js', import.meta.url).pathname,
      '--mode',
      mode,
      '--port',
      '0',
      '--workers',
      String(workers),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    const url = /service on (http:\S+)/.exec(line)?.[1];
    if (url) {
      return {
        url,
        async close() {
          child.kill('SIGINT');
          await once(child, 'exit');
        },
      };
    }
  }
  throw new Error(`the ${mode} service did not start`);
}

let KEYS = 1000;
let VALUE = 'v'.repeat(1024);

interface SideResult {
  readonly mode: 'shared' | 'postmessage';
  readonly requests: number;
  readonly requestsPerSec: number;
  readonly getP50Ms: number;
  readonly getP99Ms: number;
  readonly putP99Ms: number;
  readonly errors: number;
  readonly non2xx: number;
  readonly rssMiB: number;
  readonly heapUsedMiB: number;
  readonly arenaMiB: number;
}

async function side(
  mode: 'shared' | 'postmessage',
  requests: number,
  connections: number,
  workers: number,
): Promise<SideResult> {
  const service = await spawnService(mode, workers);
  try {
    // Touch every worker first: a postMessage worker joins the broadcast on its first task.
    await Promise.all(
      Array.from({ length: workers * 8 }, () => fetch(`${service.url}/item/warm-up`).then((r) => r.text())),
    );
    for (let k = 0; k < KEYS; k += 16) {
      const batch = Array.from({ length: Math.min(16, KEYS - k) }, (_, i) =>
        fetch(`${service.url}/item/key${k + i}`, { method: 'PUT', body: VALUE }).then((r) => r.status),
      );
      if ((await Promise.all(batch)).some((status) => status !== 204))
        throw new Error(`preload: a PUT failed at key${k}`);
    }
    // Every worker has every key (the postMessage side applies broadcasts asynchronously).
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Two clients at once on separate connections: readers GET (90 % of the requests), writers
    // PUT (10 %), each cycling over the keys in a fixed order.
    const paths = Array.from({ length: KEYS }, (_, k) => `/item/key${(k * 7919) % KEYS}`);
    const writerConnections = Math.max(1, Math.round(connections / 10));
    const [reads, writes] = await Promise.all([
      autocannon({
        url: service.url,
        connections: connections - writerConnections,
        amount: Math.round(requests * 0.9),
        requests: paths.map((path) => ({ method: 'GET' as const, path })),
      }),
      autocannon({
        url: service.url,
        connections: writerConnections,
        amount: Math.round(requests * 0.1),
        requests: paths
          .slice(0, Math.min(100, KEYS))
          .map((path) => ({ method: 'PUT' as const, path, body: VALUE })),
      }),
    ]);
    const stats = (await (await fetch(`${service.url}/stats`)).json()) as {
      memory: NodeJS.MemoryUsage;
      arena: number;
    };
    const MiB = 1 << 20;
    return {
      mode,
      requests: reads.requests.total + writes.requests.total,
      requestsPerSec: Math.round(
        (reads.requests.total + writes.requests.total) / Math.max(reads.duration, writes.duration),
      ),
      getP50Ms: reads.latency.p50,
      getP99Ms: reads.latency.p99,
      putP99Ms: writes.latency.p99,
      errors: reads.errors + reads.timeouts + writes.errors + writes.timeouts,
      non2xx: reads.non2xx + writes.non2xx,
      rssMiB: Math.round((stats.memory.rss / MiB) * 10) / 10,
      heapUsedMiB: Math.round((stats.memory.heapUsed / MiB) * 10) / 10,
      arenaMiB: Math.round((stats.arena / MiB) * 100) / 100,
    };
  } finally {
    await service.close();
  }
}

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '20000' },
    connections: { type: 'string', default: '16' },
    workers: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '2' },
    keys: { type: 'string', default: '1000' },
    'value-bytes': { type: 'string', default: '1024' },
    json: { type: 'boolean', default: false },
  },
});
KEYS = Number(values.keys);
VALUE = 'v'.repeat(Number(values['value-bytes']));
const requests = Number(values.requests);
const connections = Number(values.connections);
const workers = Number(values.workers);
// The sides take turns (shared, postmessage, shared, …): neither always runs on a cold machine.
const results: SideResult[] = [];
for (let round = 0; round < Number(values.rounds); round++) {
  for (const mode of ['shared', 'postmessage'] as const)
    results.push(await side(mode, requests, connections, workers));
}
const median = (mode: SideResult['mode'], pick: (r: SideResult) => number): number => {
  const xs = results
    .filter((r) => r.mode === mode)
    .map(pick)
    .sort((a, b) => a - b);
  return xs[Math.floor((xs.length - 1) / 2)] as number;
};
const report = {
  requests,
  connections,
  workers,
  keys: KEYS,
  valueBytes: VALUE.length,
  mix: '90 % GET, 10 % PUT',
  results,
  ratios: {
    requestsPerSec:
      Math.round(
        (median('shared', (r) => r.requestsPerSec) / median('postmessage', (r) => r.requestsPerSec)) * 100,
      ) / 100,
    getP99:
      Math.round((median('shared', (r) => r.getP99Ms) / median('postmessage', (r) => r.getP99Ms)) * 100) /
      100,
    rss: Math.round((median('shared', (r) => r.rssMiB) / median('postmessage', (r) => r.rssMiB)) * 100) / 100,
  },
  node: process.version,
  date: new Date().toISOString(),
};
if (values.json) console.log(JSON.stringify(report));
else {
  console.table(results);
  console.log('shared ÷ postmessage (lower medians of the rounds):', report.ratios);
}
