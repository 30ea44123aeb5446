// Starts meltemi in this process from a YAML string (listener ports 0 allowed) and offers small
// clients for tests: a raw socket that collects replies, and admin HTTP GETs.

import http from 'node:http';
import net from 'node:net';
import { parseConfig } from '../../runtime/config/load';
import { Meltemi, type StartOptions } from '../../runtime/server';
import { CaptureLogger } from './capture-logger';
import { PLUGIN_DIR, ROOT } from './paths';

export async function startProxy(yaml: string, opts: StartOptions = {}): Promise<Meltemi> {
  const proxy = new Meltemi(parseConfig(yaml, ROOT), { logger: new CaptureLogger(), ...opts });
  await proxy.start();
  return proxy;
}

export function portOf(proxy: Meltemi, listener: string): number {
  const l = proxy.listener(listener);
  if (!l) throw new Error(`no listener ${listener}`);
  return l.port;
}

/** A raw TCP client that accumulates everything it receives and reports when the peer closed. */
export class RawClient {
  received = Buffer.alloc(0);
  closed = false;
  private readonly socket: net.Socket;
  private waiters: Array<() => void> = [];

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.setNoDelay(true);
    this.socket.on('data', (d) => { this.received = Buffer.concat([this.received, d]); this.wake(); });
    this.socket.on('close', () => { this.closed = true; this.wake(); });
    this.socket.on('error', () => {});
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async connected(): Promise<void> {
    if (!this.socket.connecting) return;
    await new Promise((r) => this.socket.once('connect', r));
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Stops reading (the kernel buffers fill up and the peer sees backpressure). */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Bytes written but not yet accepted by the peer's kernel buffers. */
  get unsentBytes(): number {
    return this.socket.writableLength;
  }

  /** Half-closes: sends FIN after `data`, keeps reading. */
  end(data: string | Buffer): void {
    this.socket.end(data);
  }

  /** Waits until `predicate` holds on what arrived (or the socket closed), at most `ms`. */
  async until(predicate: (text: string) => boolean, ms = 5000): Promise<string> {
    const deadline = Date.now() + ms;
    while (!predicate(this.received.toString('latin1'))) {
      if (this.closed) break;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; received so far: ${JSON.stringify(this.received.toString('latin1').slice(0, 300))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return this.received.toString('latin1');
  }

  async waitClosed(ms = 5000): Promise<void> {
    await this.until(() => this.closed, ms);
    if (!this.closed) throw new Error('socket still open');
  }

  /** Closes with a TCP reset: the peer sees the client gone at once, not a half-close. */
  reset(): void {
    this.socket.resetAndDestroy();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export async function adminGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

/** Sum of a Prometheus metric's samples whose labels include `labels`. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/**
 * YAML of a proxy with one Redis listener (`redis`, port 0) whose one route has `action` (the
 * fields inside `route: { … }`), and `clusters` (YAML list items, one per line).
 */
export function redisRouteYaml(action: string, clusters: string[]): string {
  return `
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
listeners:
  - { name: redis, port: 0, protocol: redis, route_config: { routes: [ { route: { ${action} } } ] } }
clusters:
${clusters.map((c) => `  - ${c}`).join('\n')}
`;
}
