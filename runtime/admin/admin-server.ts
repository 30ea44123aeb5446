// The admin HTTP endpoint: /metrics (Prometheus), /ready, /config_dump, /plugins, POST /plugins/reload, POST /drain,
// on a TCP port and optionally on a Unix socket (see admin-access.ts for who may do what).

import http from 'node:http';
import { chmod, rm } from 'node:fs/promises';
import { MeltemiError } from '../core/errors';
import { boundPort, listenOn } from '../core/listen';
import { bearerMatches, hostAllowed } from './admin-access';

const MAX_ADMIN_CONNECTIONS = 64;

export interface AdminSource {
  ready(): boolean;
  /** Async with workers: their reports are asked for. */
  configDump(): unknown;
  plugins(): unknown;
  reloadPlugins(): Promise<unknown>;
  /** Starts the graceful drain (or reports the one under way). */
  drain(): unknown;
  /** A drain is under way: /ready says DRAINING. */
  draining(): boolean;
}

/** What /metrics serves: a prom-client Registry, or the sum of several (workers). */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface AdminAccess {
  /** Bearer token that authorises changes over TCP (from admin.token_file). */
  readonly token: string | undefined;
  /** Host names (besides loopback names and IP literals) requests may address. */
  readonly allowedHosts: readonly string[];
}

export class AdminServer {
  private readonly server: http.Server;
  private socketServer: http.Server | undefined;

  constructor(private readonly registry: MetricsSource, private readonly source: AdminSource, private readonly access: AdminAccess) {
    this.server = this.createServer(false);
  }

  private createServer(overSocket: boolean): http.Server {
    const server = http.createServer((req, res) => {
      this.handle(req, res, overSocket).catch((err) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`${(err as Error).message}\n`);
      });
    });
    // The admin port must stay reachable when listeners are flooded, and must not be the flood.
    server.maxConnections = MAX_ADMIN_CONNECTIONS;
    return server;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse, overSocket: boolean): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (!overSocket && !hostAllowed(req.headers.host, this.access.allowedHosts)) {
      res.writeHead(403, { 'content-type': 'text/plain' }).end(`Host "${req.headers.host}" is not allowed: use a loopback name, an IP address, or list it in admin.allowed_hosts\n`);
      return;
    }
    if (req.method === 'POST' && (path === '/plugins/reload' || path === '/drain')) {
      const denied = this.changeDenied(req, overSocket);
      if (denied) {
        res.writeHead(denied.status, { 'content-type': 'text/plain', ...(denied.status === 401 ? { 'www-authenticate': 'Bearer' } : {}) }).end(`${denied.message}\n`);
        return;
      }
      // /drain answers at once (202): the drain goes on, and /ready reports it.
      const body = path === '/drain' ? this.source.drain() : await this.source.reloadPlugins();
      res.writeHead(path === '/drain' ? 202 : 200, { 'content-type': 'application/json' }).end(JSON.stringify(body, null, 2) + '\n');
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
        res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'LIVE\n' : this.source.draining() ? 'DRAINING\n' : 'NOT READY\n');
        return;
      }
      case '/plugins':
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(await this.source.plugins(), null, 2) + '\n');
        return;
      case '/config_dump':
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(await this.source.configDump(), null, 2) + '\n');
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('endpoints: /metrics /ready /config_dump /plugins, POST /plugins/reload, POST /drain\n');
    }
  }

  /** Why a change request is refused, or undefined when it may go ahead. */
  private changeDenied(req: http.IncomingMessage, overSocket: boolean): { status: number; message: string } | undefined {
    if (overSocket) return undefined;
    const token = this.access.token;
    if (token === undefined) {
      return { status: 403, message: 'changes over the admin port need admin.token_file (then send Authorization: Bearer <token>), or use admin.socket; SIGHUP also reloads plugins' };
    }
    if (!bearerMatches(req.headers.authorization, token)) return { status: 401, message: 'missing or wrong bearer token (admin.token_file)' };
    return undefined;
  }

  async listen(address: string, port: number): Promise<void> {
    await listenOn(this.server, port, address, 'admin');
  }

  /** Also serves on a Unix socket, readable and writable by this user only; changes need no token there. */
  async listenSocket(path: string): Promise<void> {
    await rm(path, { force: true });
    const server = this.createServer(true);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new MeltemiError('MELTEMI_LISTEN_FAILED', `admin socket cannot listen on ${path}: ${err.message}`, { cause: err })));
      server.listen(path, () => resolve());
    });
    await chmod(path, 0o600);
    this.socketServer = server;
  }

  get port(): number {
    return boundPort(this.server, 0);
  }

  async close(): Promise<void> {
    for (const server of [this.server, this.socketServer]) {
      if (!server) continue;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
}
