/**
 * The daemon's two plain HTTP endpoints for the kubelet and Prometheus:
 * readiness (`GET /healthz/ready`, 200 or 503 with the reasons) and
 * metrics (`GET /metrics`). Both bind where the config says.
 */
import { createServer, type Server } from 'node:http';
import { parseListenAddress } from '../../src/config/daemon-config.js';
import type { Registry } from 'prom-client';

export interface ProbeServer {
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

async function serve(
  address: string,
  key: string,
  handler: (path: string) => Promise<{ status: number; type: string; body: string }>,
): Promise<ProbeServer> {
  const { host, port } = parseListenAddress(address, key);
  // Timeouts are enforced every connectionsCheckingInterval (30 s by
  // default): check every second so a slow client is cut off in time.
  const server = createServer({ connectionsCheckingInterval: 1000 }, (req, res) => {
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    handler((req.url ?? '/').split('?')[0] ?? '/').then(
      (r) => res.writeHead(r.status, { 'content-type': r.type }).end(r.body),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err)),
    );
  });
  server.headersTimeout = 5000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: host === '' ? undefined : host, port }, () => resolve());
  });
  const bound = server.address();
  return {
    server,
    port: typeof bound === 'object' && bound ? bound.port : port,
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/**
 * Readiness: `check()` returns the reasons it is not ready ([] when ready);
 * `warnings()` what an operator must fix although the daemon serves (listed
 * under "ready" with a 200).
 */
export function startReadinessServer(
  address: string,
  check: () => string[],
  warnings: () => string[] = () => [],
): Promise<ProbeServer> {
  return serve(address, 'readinessAddress', async (path) => {
    if (path !== '/healthz/ready') return { status: 404, type: 'text/plain', body: 'not found\n' };
    const problems = check();
    const warned = warnings();
    return problems.length === 0
      ? {
          status: 200,
          type: 'text/plain',
          body: `ready\n${warned.map((w) => `- warning: ${w}\n`).join('')}`,
        }
      : {
          status: 503,
          type: 'text/plain',
          body: `not ready:\n${problems.map((p) => `- ${p}`).join('\n')}\n`,
        };
  });
}

/** Metrics; `refresh` updates the gauges that are read from live state. */
export function startMetricsServer(
  address: string,
  registry: Registry,
  refresh: () => void = () => undefined,
): Promise<ProbeServer> {
  return serve(address, 'metricsAddress', async (path) => {
    if (path !== '/metrics') return { status: 404, type: 'text/plain', body: 'not found\n' };
    refresh();
    return { status: 200, type: registry.contentType, body: await registry.metrics() };
  });
}
