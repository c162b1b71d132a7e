// [metrics] listen: HOST:PORT (IPv6 as [ADDR]:PORT), and the loopback rule. The endpoint
// is plain HTTP without authentication, so it binds to loopback unless the operator set
// [metrics] allow_non_loopback = true (docs/operations.md).
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

export interface ListenAddress {
  /** Host as written, without IPv6 brackets. */
  host: string;
  port: number;
}

export class MetricsConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MetricsConfigError';
  }
}

export function parseListen(listen: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new MetricsConfigError(`metrics.listen = "${listen}" is not HOST:PORT`);
  const host = m[1] ?? m[2]!;
  if (m[1] !== undefined && isIP(host) !== 6) throw new MetricsConfigError(`metrics.listen = "${listen}": [${host}] is not an IPv6 address`);
  return { host, port };
}

/** 127.0.0.0/8, ::1 and ::ffff:127.x.y.z. */
export function isLoopbackAddress(ip: string): boolean {
  const v = isIP(ip);
  if (v === 4) return ip.split('.')[0] === '127';
  if (v === 6) {
    const low = ip.toLowerCase();
    if (low === '::1' || /^0{0,4}(:0{0,4}){6}:0{0,3}1$/.test(low)) return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(low);
    return mapped !== null && isLoopbackAddress(mapped[1]!);
  }
  return false;
}

/**
 * The address to bind. A name is resolved and must resolve to loopback addresses only
 * (unless allowed); the first address is bound. Throws MetricsConfigError otherwise.
 */
export async function resolveListen(listen: string, allowNonLoopback: boolean): Promise<ListenAddress> {
  const { host, port } = parseListen(listen);
  let addrs: string[];
  if (isIP(host)) addrs = [host];
  else {
    try {
      addrs = (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
    } catch (e) {
      throw new MetricsConfigError(`metrics.listen = "${listen}": cannot resolve ${host}: ${(e as Error).message}`);
    }
    if (addrs.length === 0) throw new MetricsConfigError(`metrics.listen = "${listen}": ${host} has no address`);
  }
  const outside = addrs.filter((a) => !isLoopbackAddress(a));
  if (outside.length > 0 && !allowNonLoopback) {
    throw new MetricsConfigError(
      `metrics.listen = "${listen}" is not a loopback address (${outside.join(', ')}); the metrics endpoint has no authentication. ` +
        'Use 127.0.0.1 or [::1], or set [metrics] allow_non_loopback = true behind a firewall or authenticating proxy',
    );
  }
  return { host: addrs[0]!, port };
}
