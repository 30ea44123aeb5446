// A listening socket bound to one codec and one route table.

import net from 'node:net';
import type { ListenerConfig } from '../config/types';
import { boundPort, listenOn } from '../core/listen';
import type { Logger } from '../core/logger';
import type { CodecPlugin } from '../plugin/codec-plugin';
import type { ClusterManager } from './cluster';
import { DownstreamConnection } from './downstream-connection';
import type { ListenerContext } from './listener-context';
import { RouteTable } from './route-table';
import type { StatsStore } from './stats';
import { UpstreamPool } from './upstream-pool';

export class Listener {
  readonly context: ListenerContext;
  private readonly server: net.Server;
  private readonly connections = new Set<DownstreamConnection>();

  constructor(readonly config: ListenerConfig, plugin: CodecPlugin, clusters: ClusterManager, store: StatsStore, logger: Logger) {
    const codecConfig = Buffer.from(Object.keys(config.codecConfig).length ? JSON.stringify(config.codecConfig) : '', 'utf8');
    const childLogger = logger.child({ listener: config.name });
    this.context = {
      config,
      plugin,
      codecConfig,
      routes: new RouteTable(config.routeConfig, config.name, store),
      clusters,
      pool: new UpstreamPool({ plugin, codecConfig, maxFrameSize: config.maxFrameSize, logger: childLogger }),
      stats: store.listener(config.name),
      store,
      logger: childLogger,
    };
    // allowHalfOpen: a client may send its requests and half-close; it still gets its replies.
    this.server = net.createServer({ allowHalfOpen: true }, (socket) => {
      const conn = new DownstreamConnection(socket, this.context);
      this.connections.add(conn);
      socket.once('close', () => this.connections.delete(conn));
    });
  }

  async listen(): Promise<void> {
    await listenOn(this.server, this.config.port, this.config.address, `listener ${this.config.name}`);
  }

  /** The bound port (useful with port 0). */
  get port(): number {
    return boundPort(this.server, this.config.port);
  }

  get activeConnections(): number {
    return this.connections.size;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.connections) c.destroy();
    this.context.pool.close();
    await closed;
  }
}
