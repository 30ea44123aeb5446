// A listening socket bound to one codec, one filter chain and one route table. Static listeners
// come from the YAML; dynamic ones from LDS, which may reconfigure them in place (new connections
// take the new config, open ones keep what they started with) or drain and remove them.

import net from 'node:net';
import type { FilterConfig, ListenerConfig } from '../config/types';
import { boundPort, listenOn, type ListenBinder } from '../core/listen';
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
import type { Telemetry } from '../telemetry/telemetry';
import type { ConnectionEndpoints } from './downstream-connection';
import { Waiters } from '../core/waiters';
import { readProxyHeader, type Address } from '../sidecar/proxy-protocol';
import { secureInbound } from '../security/downstream-tls';
import type { ProxySecurity } from '../security/proxy-security';

export class Listener {
  readonly context: ListenerContext;
  private readonly server: net.Server;
  private readonly connections = new Set<DownstreamConnection>();

  private readonly codecConfig: Buffer;
  private readonly childLogger: Logger;
  /** Drains waiting for the last connection to close. */
  private readonly idle = new Waiters();

  /**
   * `fieldPath` names the listener in errors about its filters (`listeners[0]`, or an LDS
   * listener's name and field).
   */
  constructor(config: ListenerConfig, plugin: CodecPlugin, clusters: ClusterManager, store: StatsStore, logger: Logger,
    overload: OverloadManager, private readonly onIdleGeneration: (plugin: CodecPlugin) => void = () => {}, public fieldPath = config.name,
    private readonly telemetry: Telemetry | null = null, private readonly security: ProxySecurity | null = null) {
    this.codecConfig = Buffer.from(Object.keys(config.codecConfig).length ? JSON.stringify(config.codecConfig) : '', 'utf8');
    // A codec that refuses its codec_config refuses it now, naming the field, not at the first connection.
    try {
      plugin.open(false, this.codecConfig).create().close();
    } catch (err) {
      throw new ConfigError(`${fieldPath}.codec_config`, `codec ${plugin.descriptor.name} refused its codec_config: ${(err as Error).message}`);
    }
    this.childLogger = logger.child({ listener: config.name });
    const context: Omit<ListenerContext, 'chain'> & { chain?: FilterChain } = {
      config,
      plugin,
      codecConfig: this.codecConfig,
      routes: new RouteTable(config.routeConfig, config.name, store),
      clusters,
      pool: this.newPool(plugin, config),
      stats: store.listener(config.name),
      store,
      logger: this.childLogger,
      overload,
      released: (p: CodecPlugin, pool: UpstreamPool) => this.released(p, pool),
      telemetry: telemetry?.forListener(config, plugin.descriptor.protocol) ?? null,
    };
    // The router reads the context at each request: RDS replaces its routes there.
    context.chain = new FilterChain(this.withAuthorization([], config), new Router(context as ListenerContext), this.childLogger, context.stats);
    this.context = context as ListenerContext;
    // allowHalfOpen: a client may send its requests and half-close; it still gets its replies.
    this.server = net.createServer({ allowHalfOpen: true }, (socket) => this.onConnection(socket, undefined));
  }

  private onConnection(socket: net.Socket, dialled: Address | undefined): void {
    // Refused connections are closed at once: past the caps a descriptor is held for
    // microseconds, and the admin port and upstreams keep theirs.
    if (this.context.overload.admit(this.config.name, this.connections.size + this.held.length + this.handshaking.size, this.context.config.maxConnections)) {
      socket.destroy();
      return;
    }
    if (dialled) this.dialled.set(socket, dialled);
    if (this.warming) {
      // Bound but warming (its first routes): the client waits, unread, rather than meeting an empty route table.
      socket.pause();
      this.held.push(socket);
      return;
    }
    this.accept(socket);
  }

  /**
   * Takes a connection captured for this listener's address and port (`dialled`: its original
   * destination). False when this listener takes no connections any more (draining, closed).
   */
  adopt(socket: net.Socket, dialled: Address): boolean {
    if (this.stopped) return false;
    this.onConnection(socket, dialled);
    return true;
  }

  /** Original destinations of captured connections not yet accepted (held while warming). */
  private readonly dialled = new WeakMap<net.Socket, Address>();
  /** Connections reading their PROXY protocol header. */
  private readonly handshaking = new Set<net.Socket>();
  /** Takes no new connections: draining (most listeners) or closed. */
  private stopped = false;
  /** Draining: connections close once idle, new ones included. */
  private draining = false;

  /** Sockets accepted while warming, served once it is warm. */
  private held: net.Socket[] = [];
  private warming = false;

  /**
   * Holds new connections until `ready` settles (Envoy's listener warming): the listener is bound,
   * so its port is taken and a bind error is known at once, but it serves only once it has routes.
   */
  holdUntil(ready: Promise<unknown>): void {
    this.warming = true;
    const release = () => {
      this.warming = false;
      const held = this.held;
      this.held = [];
      for (const socket of held) {
        if (socket.destroyed) {
          this.context.overload.released(this.config.name);
          continue;
        }
        this.accept(socket);
        socket.resume();
      }
    };
    ready.then(release, release);
  }

  private dropHeld(): void {
    for (const socket of this.held.splice(0)) {
      socket.destroy();
      this.context.overload.released(this.config.name);
    }
  }

  private accept(socket: net.Socket): void {
    const dialled = this.dialled.get(socket);
    const pp = this.config.proxyProtocol;
    if (!pp) {
      this.secure(socket, dialled && { local: dialled });
      return;
    }
    this.handshaking.add(socket);
    readProxyHeader(socket, pp.allowWithout).then((header) => {
      this.handshaking.delete(socket);
      if (socket.destroyed) {
        this.context.overload.released(this.config.name);
        return;
      }
      // A LOCAL/UNKNOWN header (a health check) leaves the socket's own addresses.
      this.secure(socket, { remote: header?.source, local: header?.destination ?? dialled });
    }, (err: Error) => {
      this.handshaking.delete(socket);
      this.context.stats.proxyProtocolErrors++;
      this.childLogger.log('debug', `closing downstream connection: ${err.message}`);
      socket.destroy();
      this.context.overload.released(this.config.name);
    });
  }

  /** PeerAuthentication (docs/security.md): mTLS terminated, plaintext served or refused; then served. */
  private secure(socket: net.Socket, endpoints: ConnectionEndpoints | undefined): void {
    const security = this.security;
    const mode = security?.modeFor(this.config) ?? 'DISABLE';
    if (mode === 'DISABLE' || !security?.workload) {
      this.serve(socket, endpoints);
      socket.resume();
      return;
    }
    this.handshaking.add(socket);
    secureInbound(socket, mode, security.workload, security.stats, security.config.handshakeTimeoutMs).then(({ socket: served, security: proved }) => {
      this.handshaking.delete(socket);
      if (socket.destroyed) {
        this.context.overload.released(this.config.name);
        return;
      }
      this.serve(served, { ...endpoints, security: proved });
      served.resume();
    }, (err: Error) => {
      this.handshaking.delete(socket);
      this.childLogger.log('debug', `refusing downstream connection: ${err.message}`);
      socket.destroy();
      this.context.overload.released(this.config.name);
    });
  }

  private serve(socket: net.Socket, endpoints: ConnectionEndpoints | undefined): void {
    const conn = new DownstreamConnection(socket, this.context, endpoints);
    this.connections.add(conn);
    if (this.draining) conn.drain(true);
    socket.once('close', () => {
      this.connections.delete(conn);
      this.context.overload.released(this.config.name);
      if (this.connections.size === 0) this.idle.release();
    });
  }

  /**
   * Replaces the filter chain for new connections; a connection keeps the chain it started with,
   * and a replaced chain closes (its filters release their roots) when its last connection does.
   */
  useFilters(filters: readonly Filter[]): void {
    const old = this.context.chain;
    this.context.chain = new FilterChain(this.withAuthorization(filters, this.config), new Router(this.context), this.childLogger, this.context.stats);
    old.retired = true;
    if (old.users === 0) old.close();
  }

  /** `filters` behind the authorization filter where policies apply (inbound listeners). */
  private withAuthorization(filters: readonly Filter[], config: ListenerConfig): readonly Filter[] {
    const authz = this.security?.filterFor(config);
    return authz ? [authz, ...filters] : filters;
  }

  /** The config new connections take (LDS may replace it). */
  get config(): ListenerConfig {
    return this.context.config;
  }

  /**
   * Builds the chain of `filters` (the config's unless given) from the registry's current
   * filter plugins. Throws, changing nothing, when a plugin is missing or refuses its config.
   */
  useFilterPlugins(registry: PluginRegistry, entries: readonly FilterConfig[] = this.config.filters): void {
    const filters: WasmFilter[] = [];
    try {
      entries.forEach((entry, j) => {
        const field = entry.field ?? `${this.fieldPath}.filters[${j}]`;
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

  /**
   * Takes a new config on the same address and port (LDS). Filters are built first, so a config
   * whose filters cannot be built changes nothing; then the codec, the static routes and the
   * rest apply to new connections.
   */
  reconfigure(config: ListenerConfig, plugin: CodecPlugin, registry: PluginRegistry): void {
    const before = this.context.config;
    // Telemetry first (opening a log can fail): a refused update changes nothing.
    const telemetry = this.telemetry?.forListener(config, plugin.descriptor.protocol) ?? null;
    try {
      if (JSON.stringify(before.filters) !== JSON.stringify(config.filters)) this.useFilterPlugins(registry, config.filters);
    } catch (err) {
      telemetry?.close();
      throw err;
    }
    this.context.config = config;
    this.context.telemetry?.close();
    this.context.telemetry = telemetry;
    if (plugin !== this.context.plugin) this.swap(plugin);
    if (!config.rds && JSON.stringify(before.routeConfig) !== JSON.stringify(config.routeConfig)) {
      this.context.routes = new RouteTable(config.routeConfig, config.name, this.context.store);
    }
  }

  private newPool(plugin: CodecPlugin, config = this.config): UpstreamPool {
    return new UpstreamPool({ plugin, codecConfig: this.codecConfig, maxFrameSize: config.maxFrameSize, logger: this.childLogger });
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

  /** Set before listen() when something else provides the socket (workers). */
  binder: ListenBinder | undefined;
  /** The port of a socket the binder holds for this listener (a primary's). */
  private heldPort: number | undefined;

  async listen(): Promise<void> {
    // Reached through capture only: no socket of its own.
    if (this.config.bindToPort === false) return;
    if (this.binder) this.heldPort = await this.binder(this.server, this.config);
    else await listenOn(this.server, this.config.port, this.config.address, `listener ${this.config.name}`);
  }

  /** The bound port (useful with port 0). */
  get port(): number {
    return this.heldPort ?? boundPort(this.server, this.config.port);
  }

  get activeConnections(): number {
    return this.connections.size;
  }

  /**
   * Graceful drain: stops accepting, and every connection closes once it has nothing in flight
   * (idle ones now). `whenIdle()` tells when the last one has.
   */
  startDrain(): void {
    this.draining = true;
    for (const c of this.connections) c.drain();
    // The application's own way out (an outbound listener behind capture) stays open while the
    // pod shuts down: its last calls must still reach their services. Its connections still
    // close once idle.
    if (this.keepsAcceptingWhileDraining) return;
    this.stopped = true;
    if (this.server.listening) this.server.close();
    this.dropHeld();
    for (const socket of this.handshaking) socket.destroy();
  }

  /** Reached through outbound capture only: see startDrain. */
  get keepsAcceptingWhileDraining(): boolean {
    return this.config.bindToPort === false && (this.config.trafficDirection ?? 'outbound') === 'outbound';
  }

  /** Resolves once no connection is open (at once if none is). */
  whenIdle(): Promise<void> {
    return this.idle.wait(this.connections.size === 0);
  }

  /**
   * Stops accepting, lets open connections finish for up to `timeoutMs`, then closes what is
   * left (Envoy's listener drain on removal).
   */
  async drain(timeoutMs: number): Promise<void> {
    this.stopped = true;
    if (this.server.listening) this.server.close();
    this.dropHeld();
    if (this.connections.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.whenIdle(), new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs); })]);
      clearTimeout(timer);
    }
    await this.close();
  }

  async close(): Promise<void> {
    this.stopped = true;
    for (const socket of this.handshaking) socket.destroy();
    const closed = this.server.listening ? new Promise<void>((resolve) => this.server.close(() => resolve())) : Promise.resolve();
    this.dropHeld();
    for (const c of this.connections) c.destroy();
    this.context.pool.close();
    this.context.chain.retired = true;
    if (this.context.chain.users === 0) this.context.chain.close();
    await this.context.telemetry?.shutdown();
    await closed;
  }
}
