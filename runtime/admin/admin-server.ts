// The admin HTTP endpoint: /metrics (Prometheus), /ready, /config_dump, /plugins, POST /plugins/reload.

import http from 'node:http';
import type { Registry } from 'prom-client';
import { boundPort, listenOn } from '../core/listen';

const MAX_ADMIN_CONNECTIONS = 64;

export interface AdminSource {
  ready(): boolean;
  configDump(): unknown;
  plugins(): unknown;
  reloadPlugins(): Promise<unknown>;
}

export class AdminServer {
  private readonly server: http.Server;

  constructor(private readonly registry: Registry, private readonly source: AdminSource) {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`${(err as Error).message}\n`);
      });
    });
    // The admin port must stay reachable when listeners are flooded, and must not be the flood.
    this.server.maxConnections = MAX_ADMIN_CONNECTIONS;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'POST' && path === '/plugins/reload') {
      const body = await this.source.reloadPlugins();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body, null, 2) + '\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    switch (path) {
      case '/metrics': {
        const body = await this.registry.metrics();
        res.writeHead(200, { 'content-type': this.registry.contentType }).end(body);
        return;
      }
      case '/ready': {
        const ok = this.source.ready();
        res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'LIVE\n' : 'NOT READY\n');
        return;
      }
      case '/plugins':
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.source.plugins(), null, 2) + '\n');
        return;
      case '/config_dump':
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.source.configDump(), null, 2) + '\n');
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('endpoints: /metrics /ready /config_dump /plugins, POST /plugins/reload\n');
    }
  }

  async listen(address: string, port: number): Promise<void> {
    await listenOn(this.server, port, address, 'admin');
  }

  get port(): number {
    return boundPort(this.server, 0);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
