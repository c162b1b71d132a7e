// The HTTP side: GET /metrics (Prometheus text format), /healthz (the process answers),
// /readyz (200 ready, 503 not ready; JSON body with the failing checks). Nothing else,
// no request bodies, short timeouts, few connections: it is a scrape target, not an API.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Readiness } from './registry.js';

export interface MetricsServer {
  /** http://HOST:PORT as bound (port 0 resolved). */
  readonly url: string;
  readonly address: AddressInfo;
  close(): Promise<void>;
}

export interface ServeOptions {
  host: string;
  port: number;
  registry: Registry;
  readiness: () => Readiness;
  log: (level: 'error' | 'warn' | 'info' | 'debug', msg: string) => void;
}

const MAX_CONNECTIONS = 32;

function send(res: http.ServerResponse, status: number, type: string, body: string, head: boolean): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(head ? undefined : body);
}

export async function serveMetrics(opts: ServeOptions): Promise<MetricsServer> {
  const server = http.createServer(async (req, res) => {
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', false);
      return;
    }
    const pathname = (req.url ?? '/').split('?')[0];
    try {
      if (pathname === '/metrics') {
        const body = await opts.registry.metrics();
        send(res, 200, opts.registry.contentType, body, head);
      } else if (pathname === '/healthz') {
        send(res, 200, 'application/json', JSON.stringify({ status: 'ok', pid: process.pid }) + '\n', head);
      } else if (pathname === '/readyz') {
        const r = opts.readiness();
        send(res, r.ready ? 200 : 503, 'application/json', JSON.stringify({ status: r.ready ? 'ready' : 'not_ready', ...r.checks }) + '\n', head);
      } else {
        send(res, 404, 'text/plain; charset=utf-8', 'not found: try /metrics, /healthz, /readyz\n', head);
      }
    } catch (e) {
      opts.log('error', `metrics: ${pathname}: ${(e as Error).message}`);
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n', head);
      else res.destroy();
    }
  });
  server.maxConnections = MAX_CONNECTIONS;
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(new Error(`metrics: cannot listen on ${opts.host}:${opts.port}: ${e.message}`));
    server.once('error', onError);
    server.listen({ host: opts.host, port: opts.port, exclusive: true }, () => {
      server.off('error', onError);
      server.on('error', (e) => opts.log('error', `metrics server: ${e.message}`));
      resolve();
    });
  });
  // Never keeps the daemon alive on its own.
  server.unref();
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
