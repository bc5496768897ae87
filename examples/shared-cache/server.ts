/**
 * The example service: an HTTP server whose request handlers run in a piscina pool and share one
 * map — in the arena (`--mode shared`) or as a per-worker Map kept in step by postMessage
 * (`--mode postmessage`). Routes: `GET /item/:key`, `PUT /item/:key` (the body is the value),
 * `GET /metrics` (the arena in Prometheus format, shared mode), `GET /stats` (process memory).
 *
 * Run: `npx tsx examples/shared-cache/server.ts --mode shared --port 8080 --workers 2` in the
 * repository (tsconfig.json maps `percpu-arena` to src/), or from an installed package
 * (`npm install percpu-arena prom-client`):
 * `node node_modules/percpu-arena/dist/examples/shared-cache/server.js --port 8080`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { Arena, SharedMap, watchPool } from 'percpu-arena';
import { arenaMetrics } from 'percpu-arena/metrics';
import { Piscina } from 'piscina';

import type { Reply, Task } from './handlers.js';

export interface ServiceOptions {
  readonly mode: 'shared' | 'postmessage';
  readonly port?: number;
  readonly workers?: number;
  /** Most entries of the shared map. @defaultValue 100 000 */
  readonly maxEntries?: number;
}

export interface Service {
  readonly url: string;
  close(): Promise<void>;
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startService(options: ServiceOptions): Promise<Service> {
  const workers = options.workers ?? 2;
  // handlers.ts next to server.ts (run through tsx), handlers.js next to the compiled server.js.
  const fromSource = import.meta.url.endsWith('.ts');
  const pool = new Piscina({
    filename: new URL(fromSource ? './handlers.ts' : './handlers.js', import.meta.url).href,
    name: 'handle',
    // 'async': an idle worker's event loop keeps running (the arena's doorbells, the channel).
    atomics: 'async',
    minThreads: workers,
    maxThreads: workers,
    ...(fromSource ? { execArgv: ['--import', import.meta.resolve('tsx')] } : {}),
  });
  let arena: Arena | undefined;
  let ref = 0;
  let metrics: ReturnType<typeof arenaMetrics> | undefined;
  if (options.mode === 'shared') {
    arena = Arena.create({ cpus: workers, maxBytes: 512 << 20, policy: 'arena' });
    ref = SharedMap.create(arena, { maxEntries: options.maxEntries ?? 100_000, maxKeyBytes: 128 });
    watchPool(arena, pool);
    metrics = arenaMetrics(arena);
  }
  const context = { mode: options.mode, shared: arena?.shared, ref };

  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    try {
      const url = req.url ?? '/';
      if (req.method === 'GET' && url === '/metrics' && metrics) {
        res.writeHead(200, { 'content-type': metrics.contentType }).end(await metrics.metrics());
        return;
      }
      if (req.method === 'GET' && url === '/stats') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ memory: process.memoryUsage(), arena: arena?.stats().bytesInUse ?? 0 }));
        return;
      }
      const match = /^\/item\/([^/?]{1,128})$/.exec(url);
      if (!match || (req.method !== 'GET' && req.method !== 'PUT')) {
        res.writeHead(404).end();
        return;
      }
      const key = decodeURIComponent(match[1] as string);
      const task: Task =
        req.method === 'GET'
          ? { ...context, op: 'get', key }
          : { ...context, op: 'set', key, value: await body(req) };
      const reply = (await pool.run(task)) as Reply;
      res.writeHead(reply.status, { 'content-type': 'text/plain' }).end(reply.body);
    } catch (error) {
      res.writeHead(500).end(String(error));
    }
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await pool.destroy();
      await arena?.close();
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      mode: { type: 'string', default: 'shared' },
      port: { type: 'string', default: '8080' },
      workers: { type: 'string', default: '2' },
    },
  });
  const mode = values.mode === 'postmessage' ? 'postmessage' : 'shared';
  const service = await startService({ mode, port: Number(values.port), workers: Number(values.workers) });
  console.log(`${mode} service on ${service.url}`);
  process.on('SIGINT', () => void service.close().then(() => process.exit(0)));
}
