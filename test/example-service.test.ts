/**
 * The example service (examples/shared-cache): both stores answer PUT and GET through the piscina
 * pool, the shared one across workers at once, and `/metrics` serves the arena in Prometheus
 * text. The load test itself is a benchmark (docs/service.md), not run here.
 */
import { describe, expect, it } from 'vitest';
import { startService } from '../examples/shared-cache/server.js';

describe('the example service', () => {
  it.each(['shared', 'postmessage'] as const)(
    '%s: PUT then GET from any worker, 404 for a missing key',
    async (mode) => {
      const service = await startService({ mode, workers: 2 });
      try {
        // Every worker runs a task first: a postMessage worker joins the broadcast on its first task
        // and misses what was written before (the shared map has no such window).
        await Promise.all(
          Array.from({ length: 16 }, () => fetch(`${service.url}/item/warm-up`).then((r) => r.text())),
        );
        const put = await fetch(`${service.url}/item/greeting`, { method: 'PUT', body: 'hello' });
        expect(put.status).toBe(204);
        // Many GETs at once land on both workers; every one sees the value (postMessage: once
        // the broadcast arrived, which the second pass waits for).
        await new Promise((resolve) => setTimeout(resolve, 100));
        const bodies = await Promise.all(
          Array.from({ length: 16 }, () => fetch(`${service.url}/item/greeting`).then((r) => r.text())),
        );
        expect(new Set(bodies)).toEqual(new Set(['hello']));
        expect((await fetch(`${service.url}/item/missing`)).status).toBe(404);
        if (mode === 'shared') {
          const metrics = await (await fetch(`${service.url}/metrics`)).text();
          expect(metrics).toMatch(/^percpu_arena_bytes_in_use \d+$/m);
          expect(metrics).toMatch(/^percpu_arena_cpu_online\{cpu="0"\} [01]$/m);
        }
      } finally {
        await service.close();
      }
    },
  );
});
