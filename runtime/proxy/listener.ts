// A listening socket bound to one codec and one route table.

import net from 'node:net';
import type { ListenerConfig } from '../config/types';
import { boundPort, listenOn } from '../core/listen';
import type { Logger } from '../core/logger';
import type { CodecPlugin } from '../codec/codec-plugin';
import type { ClusterManager } from '../upstream/cluster';
import { DownstreamConnection } from './downstream-connection';
import type { ListenerContext } from './listener-context';
import { RouteTable } from '../router/route-table';
import type { StatsStore } from '../core/stats';
import { UpstreamPool } from '../upstream/upstream-pool';
import type { OverloadManager } from './overload-manager';
import { FilterChain } from '../filter/filter-chain';
import type { Filter } from '../filter/filter';
import { Router } from '../router/router';
import { WasmFilter } from '../filter/wasm-filter';
import type { PluginRegistry } from '../plugin/plugin-registry';
import { ConfigError } from '../core/errors';

export class Listener {
  readonly context: ListenerContext;
  private readonly server: net.Server;
  private readonly connections = new Set<DownstreamConnection>();

  private readonly codecConfig: Buffer;
  private readonly childLogger: Logger;

  constructor(readonly config: ListenerConfig, plugin: CodecPlugin, clusters: ClusterManager, store: StatsStore, logger: Logger,
    overload: OverloadManager, private readonly onIdleGeneration: (plugin: CodecPlugin) => void = () => {}) {
    this.codecConfig = Buffer.from(Object.keys(config.codecConfig).length ? JSON.stringify(config.codecConfig) : '', 'utf8');
    this.childLogger = logger.child({ listener: config.name });
    const context: Omit<ListenerContext, 'chain'> & { chain?: FilterChain } = {
      config,
      plugin,
      codecConfig: this.codecConfig,
      routes: new RouteTable(config.routeConfig, config.name, store),
      clusters,
      pool: this.newPool(plugin),
      stats: store.listener(config.name),
      store,
      logger: this.childLogger,
      overload,
      released: (p: CodecPlugin, pool: UpstreamPool) => this.released(p, pool),
    };
    // The router reads the context at each request: RDS replaces its routes there.
    context.chain = new FilterChain([], new Router(context as ListenerContext), this.childLogger, context.stats);
    this.context = context as ListenerContext;
    // allowHalfOpen: a client may send its requests and half-close; it still gets its replies.
    this.server = net.createServer({ allowHalfOpen: true }, (socket) => {
      // Refused connections are closed at once: past the caps a descriptor is held for
      // microseconds, and the admin port and upstreams keep theirs.
      if (overload.admit(config.name, this.connections.size, config.maxConnections)) {
        socket.destroy();
        return;
      }
      const conn = new DownstreamConnection(socket, this.context);
      this.connections.add(conn);
      socket.once('close', () => {
        this.connections.delete(conn);
        overload.released();
      });
    });
  }

  /**
   * Replaces the filter chain for new connections; a connection keeps the chain it started with,
   * and a replaced chain closes (its filters release their roots) when its last connection does.
   */
  useFilters(filters: readonly Filter[]): void {
    const old = this.context.chain;
    this.context.chain = new FilterChain(filters, new Router(this.context), this.childLogger, this.context.stats);
    old.retired = true;
    if (old.users === 0) old.close();
  }

  /** Builds the chain of `filters:` from the registry's current filter plugins. */
  useFilterPlugins(registry: PluginRegistry, index: number): void {
    const filters: WasmFilter[] = [];
    try {
      this.config.filters.forEach((entry, j) => {
        const field = `listeners[${index}].filters[${j}]`;
        const plugin = registry.filter(entry.name);
        if (!plugin) {
          const known = registry.filters().map((p) => p.name).join(', ') || 'none';
          throw new ConfigError(`${field}.name`, `no filter plugin "${entry.name}" in the plugin directory (loaded: ${known})`);
        }
        filters.push(new WasmFilter(plugin, entry, field));
      });
    } catch (err) {
      for (const f of filters) f.close(); // the entries built before the failing one release their roots
      throw err;
    }
    this.useFilters(filters);
  }

  private newPool(plugin: CodecPlugin): UpstreamPool {
    return new UpstreamPool({ plugin, codecConfig: this.codecConfig, maxFrameSize: this.config.maxFrameSize, logger: this.childLogger });
  }

  /**
   * Makes `plugin` the generation for new connections. Connections already open keep theirs and
   * their upstream pool; an old pool closes when its last connection does.
   */
  swap(plugin: CodecPlugin): void {
    const oldPool = this.context.pool;
    const oldPlugin = this.context.plugin;
    this.context.plugin = plugin;
    this.context.pool = this.newPool(plugin);
    this.released(oldPlugin, oldPool);
  }

  private released(plugin: CodecPlugin, pool: UpstreamPool): void {
    if (pool !== this.context.pool && pool.users === 0) pool.close();
    if (plugin !== this.context.plugin && plugin.connections === 0) this.onIdleGeneration(plugin);
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
    this.context.chain.retired = true;
    if (this.context.chain.users === 0) this.context.chain.close();
    await closed;
  }
}
