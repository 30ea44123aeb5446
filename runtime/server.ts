// Assembles a running proxy from a validated config: plugins, clusters, listeners (static, and
// dynamic from LDS), the control agent (RDS, ADS) and admin.

import type { Config } from './config/types';
import { ConfigError } from './core/errors';
import { ConsoleLogger, Logger } from './core/logger';
import { AdminServer } from './admin/admin-server';
import { isLoopbackAddress, readAdminToken } from './admin/admin-access';
import { missingCodec } from './config/preflight';
import { PluginRegistry } from './plugin/plugin-registry';
import { PluginWatcher } from './plugin/plugin-watcher';
import { ClusterManager } from './upstream/cluster';
import type { CodecPlugin } from './codec/codec-plugin';
import type { FilterPlugin } from './filter/filter-plugin';
import type { Listener } from './proxy/listener';
import { ListenerManager, RouteFollower } from './proxy/listener-manager';
import type { DecodedRoutes } from './xds/route-tunnel';
import type * as XdsLib from './xds/xds-lib';
import type { RdsAgent } from './xds/rds-agent';
import type { AdsClient } from './xds/ads-client';
import type * as grpc from '@grpc/grpc-js';
import { StatsStore } from './core/stats';
import { Telemetry } from './telemetry/telemetry';
import { RouteTable } from './router/route-table';
import { OverloadManager } from './proxy/overload-manager';
import type { ListenBinder } from './core/listen';
import { WorkerPool } from './workers/worker-pool';
import { GenerationBuilder } from './workers/generation';
import type { Generation } from './workers/worker-protocol';
import { pluginsWithWorkers, withWorkers } from './workers/worker-dumps';
import { CaptureListener } from './sidecar/capture-listener';
import type { OriginalDestination } from './sidecar/original-destination';
import { Drain } from './sidecar/drain';
import { ProxySecurity } from './security/proxy-security';
import { xdsCredentials } from './security/xds-credentials';

/** Largest xDS message sent or received (gRPC's default is 4 MiB). */
const MAX_XDS_MESSAGE = 64 * 1024 * 1024;

/** A generation the workers did not all take is offered again after this, doubling up to the max. */
const PUBLISH_RETRY_MIN_MS = 1000;
const PUBLISH_RETRY_MAX_MS = 30_000;

/** Least time between the starts of two plugin-directory reloads. */
const RELOAD_INTERVAL_MS = 100;

export interface StartOptions {
  logger?: Logger;
  /** Where the overload manager reads resident memory (process RSS unless given). */
  rss?: () => number;
  /** Worker threads serving the listeners; 1 (the default) serves them on this thread. */
  workers?: number;
  /** Where listeners get their sockets (a worker thread's duplicates of the primary's). */
  binder?: ListenBinder;
  /** Loads the first plugins instead of the plugin directory (a worker takes the primary's). */
  initialPlugins?: (registry: PluginRegistry) => void | Promise<void>;
  /** Runs once the static listeners exist, before they listen (a worker applies its first generation). */
  beforeListen?: () => void;
}

export class Meltemi {
  readonly stats = new StatsStore();
  readonly plugins: PluginRegistry;
  readonly clusters: ClusterManager;
  readonly listenerManager: ListenerManager;
  readonly overload: OverloadManager;
  /** Istio metrics, access logs, tracing (the primary of workers keeps metrics only: its listeners serve nothing). */
  readonly telemetry: Telemetry;
  /** Workload certificates, peer authentication, authorization. */
  readonly security: ProxySecurity;
  admin: AdminServer | undefined;
  private watcher: PluginWatcher | undefined;
  private reloading: Promise<void> = Promise.resolve();
  /** The reload queued behind the running one: every request made meanwhile shares it. */
  private queuedReload: Promise<void> | undefined;
  /** Directory reloads run so far (500 concurrent requests must not mean 500 reloads). */
  reloadRuns = 0;
  private lastReloadAt = Number.NEGATIVE_INFINITY;
  rds: RdsAgent | undefined;
  /** ADS delivered its first clusters: from then on a route to a cluster not here is to an unknown one. */
  private adsSynced = false;
  ads: AdsClient | undefined;
  private xdsChannel: grpc.Client | undefined;
  /** The control agent's modules, once xDS starts. */
  private xdsLib: typeof XdsLib | undefined;
  private started = false;
  private readonly logger: Logger;
  /** The worker threads that serve the listeners, when there are several. */
  readonly workers: WorkerPool | undefined;
  private readonly generations = new GenerationBuilder();
  private publishScheduled = false;
  /** The workers run a generation: changes are handed to them from then on. */
  private workersLive = false;
  private publishRetry: NodeJS.Timeout | undefined;
  private publishRetryMs = 0;
  /** The virtual listeners of transparent capture. */
  readonly captures: CaptureListener[] = [];
  /** The graceful drain, once SIGTERM or POST /drain began it. */
  drainState: Drain | undefined;

  constructor(readonly config: Config, private readonly opts: StartOptions = {}) {
    this.logger = opts.logger ?? new ConsoleLogger(config.logLevel);
    if ((opts.workers ?? 1) > 1) this.workers = new WorkerPool(config, opts.workers!, this.logger);
    this.plugins = new PluginRegistry(this.logger, config.plugins);
    // A new build of a filter: listeners that use it build their chain again; open connections
    // keep the chain (and generation) they started with.
    this.plugins.onFilterSwap = (name) => {
      for (const l of this.listeners) {
        if (!l.config.filters.some((f) => f.name === name)) continue;
        try {
          l.useFilterPlugins(this.plugins);
        } catch (err) {
          this.logger.log('error', `listener ${l.config.name} keeps its filters: ${(err as Error).message}`);
        }
      }
    };
    this.plugins.onSwap = (protocol, plugin) => {
      for (const l of this.listeners) if (l.config.protocol === protocol) l.swap(plugin);
    };
    this.security = new ProxySecurity(config.security, this.stats.security, this.logger);
    this.clusters = new ClusterManager(config.clusters, this.stats, this.security);
    this.overload = new OverloadManager(config.overload, this.logger, opts.rss);
    this.telemetry = new Telemetry(this.workers ? { ...config.telemetry, accessLog: [], tracing: undefined } : config.telemetry, config.xds?.node, this.logger);
    this.listenerManager = new ListenerManager({
      telemetry: this.telemetry,
      security: this.security,
      plugins: this.plugins, clusters: this.clusters, stats: this.stats, logger: this.logger, overload: this.overload,
      followRoutes: (l) => this.followRoutes(l),
      warmTimeoutMs: config.xds?.initialFetchTimeoutMs ?? 15_000,
      drainTimeoutMs: config.xds?.drainTimeoutMs ?? 5_000,
      binder: opts.binder ?? this.workers?.binder,
    });
  }

  /** Every listener: static ones, then those LDS added. */
  get listeners(): readonly Listener[] {
    return this.listenerManager.listeners;
  }

  /** Loads plugins, binds every listener and the admin port. Rejects if any listener cannot start. */
  async start(): Promise<void> {
    if (this.workers && this.config.xds?.lds) {
      throw new ConfigError('xds.lds', 'listeners from LDS are not served by worker threads yet: run with --workers 1');
    }
    if (this.workers && this.config.xds?.authorization) {
      throw new ConfigError('xds.authorization', 'AuthorizationPolicies from the control plane do not reach worker threads yet: run with --workers 1 (static security.authorization works with workers)');
    }
    if (this.opts.initialPlugins) await this.opts.initialPlugins(this.plugins);
    else await this.plugins.loadDirectory(this.config.plugins.directory);
    this.overload.start();
    try {
      // Certificates first: a listener must not accept a connection it cannot terminate.
      await this.security.start();
      // Watching starts before the listeners open, so a file dropped once they accept is seen.
      if (this.config.plugins.watch) {
        this.watcher = new PluginWatcher(this.config.plugins.directory, () => { void this.reloadPlugins(); });
        await this.watcher.start();
      }
      const statics = this.config.listeners.map((lc, i) => {
        const plugin = this.plugins.codec(lc.protocol);
        if (!plugin) throw missingCodec(this.config, i, this.plugins);
        return this.listenerManager.addStatic(lc, plugin, i);
      });
      // LDS updates wait until the YAML's listeners are bound: LDS never takes their ports.
      let openGate!: () => void;
      const gate = new Promise<void>((resolve) => { openGate = resolve; });
      const lds = await this.startXds(gate);
      this.opts.beforeListen?.();
      for (const l of statics) await l.listen();
      for (const direction of ['outbound', 'inbound'] as const) {
        const vc = this.config.capture[direction];
        if (!vc) continue;
        const capture = new CaptureListener(direction, vc, (dst) => this.capturedListener(direction, dst), this.logger, this.stats);
        this.captures.push(capture);
        await capture.listen(this.opts.binder ?? this.workers?.binder);
      }
      openGate();
      if (lds) await lds.first;
      if (this.workers) {
        this.clusters.onChange = () => this.publishSoon();
        await this.workers.start(this.generation());
        this.workersLive = true;
        this.logger.log('info', `${this.workers.size} worker threads serve the listeners; cluster circuit breakers, retry budgets, local rate limits and per-connection queue limits apply per worker (docs/workers.md)`);
        // What was accepted while the workers started (an RDS push, EDS, a reload) goes out now.
        this.publishSoon();
      }
      const admin = this.config.admin;
      if (admin) {
        // prom-client is loaded only where there is an admin port (never in a worker thread).
        const { createMetricsRegistry } = await import('./admin/metrics');
        const registry = createMetricsRegistry(this.stats, this.plugins, this.overload, this.telemetry);
        const workers = this.workers;
        const metrics = workers ? { contentType: registry.contentType, metrics: async () => workers.metrics(await registry.getMetricsAsJSON()) } : registry;
        this.admin = new AdminServer(metrics, {
          // With workers, ready while one of them serves (a replacement is starting for the others).
          ready: () => this.started && !this.drainState && (this.workers ? this.workers.running > 0 : true),
          drain: () => this.drainReport(this.drain()),
          draining: () => this.drainState !== undefined,
          configDump: async () => (this.workers ? withWorkers(this.configDump(), this.workers) : this.configDump()),
          plugins: () => this.pluginsReport(),
          reloadPlugins: async () => { await this.reloadPlugins(); return this.pluginsReport(); },
        }, { token: admin.tokenFile ? await readAdminToken(admin.tokenFile) : undefined, allowedHosts: admin.allowedHosts });
        await this.admin.listen(admin.address, admin.port);
        if (admin.socket) await this.admin.listenSocket(admin.socket);
        if (!isLoopbackAddress(admin.address)) {
          this.logger.log('warn', `admin listens on ${admin.address}, beyond this machine: anyone who reaches it can read the config and metrics`);
        }
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.started = true;
    for (const l of this.listeners) this.logger.log('info', `listener ${l.config.name} (${l.config.protocol}) ${l.config.bindToPort === false ? `for captured connections to ${l.config.address}:${l.config.port} (${l.config.trafficDirection ?? 'outbound'})` : `on ${l.config.address}:${l.port}`}`);
    for (const c of this.captures) this.logger.log('info', `capture listener ${c.name} on ${c.config.address}:${c.port}`);
    if (this.admin) this.logger.log('info', `admin on ${this.config.admin!.address}:${this.admin.port}`);
  }

  /**
   * Starts the control agent: RDS for listeners that name a route_config_name, ADS for clusters
   * and endpoints (xds.ads) and listeners (xds.lds). Listeners are warmed: they open once the
   * first routes, clusters and listeners arrived, or after initial_fetch_timeout.
   */
  /**
   * Starts the control agent and waits for routes and clusters. With LDS, returns the wait for
   * the first listeners (in an object: a promise returned bare would be awaited here, and the
   * first listeners wait for `gate`).
   */
  private async startXds(gate: Promise<void>): Promise<{ first: Promise<void> } | undefined> {
    const xds = this.config.xds;
    if (!xds) return undefined;
    const lib = this.xdsLib = await import('./xds/xds-lib');
    const { LdsUpdater, AdsClient } = lib;
    // Istio's pushes to a big mesh exceed gRPC's 4 MiB default; a response over the limit would
    // fail the stream on every retry.
    this.xdsChannel = new lib.grpc.Client(`${xds.address}:${xds.port}`, xdsCredentials(lib.grpc, xds, this.security), {
      ...(xds.tls?.serverName ? { 'grpc.ssl_target_name_override': xds.tls.serverName } : {}), 'grpc.max_receive_message_length': MAX_XDS_MESSAGE, 'grpc.max_send_message_length': MAX_XDS_MESSAGE });
    const waits: Array<Promise<unknown>> = [];
    for (const l of this.listeners) if (l.config.rds) waits.push(this.followRoutes(l).ready);
    this.rds?.start();
    if (xds.ads || xds.lds || xds.authorization) {
      const updater = xds.lds ? new LdsUpdater(this.listenerManager, this.logger, gate) : undefined;
      this.ads = new AdsClient(this.xdsChannel, xds, xds.ads ? this.clusters : undefined, this.logger, updater && ((listeners) => updater.apply(listeners)),
        xds.authorization ? (policies) => this.security.applyDynamic(policies) : undefined);
      this.ads.start();
      if (xds.authorization) waits.push(this.ads.authorizationReady);
      if (xds.ads) {
        void this.ads.ready.then(() => { this.adsSynced = true; });
        waits.push(this.ads.ready);
      }
    }
    const started = performance.now();
    if (!(await this.waitFor(waits, xds.initialFetchTimeoutMs))) {
      this.logger.log('warn', `xDS: routes and clusters not complete from ${xds.address}:${xds.port} within ${xds.initialFetchTimeoutMs} ms; opening listeners anyway`);
    }
    if (!xds.lds || !this.ads) return undefined;
    // The first listeners are awaited once the YAML's are bound, within what is left of the timeout.
    const ads = this.ads;
    return {
      first: (async () => {
        const left = Math.max(0, xds.initialFetchTimeoutMs - (performance.now() - started));
        if (!(await this.waitFor([ads.listenersReady], left))) this.logger.log('warn', `xDS: no listeners from ${xds.address}:${xds.port} within ${xds.initialFetchTimeoutMs} ms; starting without them`);
      })(),
    };
  }

  /**
   * The listener for a connection captured on the `direction` side and dialled at `dst`: one
   * reached through capture only, on that side, at that port and address, else at that port
   * and a wildcard address (Envoy's original_dst listener matching).
   */
  private capturedListener(direction: 'outbound' | 'inbound', dst: OriginalDestination): Listener | undefined {
    let wildcard: Listener | undefined;
    for (const l of this.listeners) {
      const c = l.config;
      if (c.bindToPort !== false || c.port !== dst.port || (c.trafficDirection ?? 'outbound') !== direction) continue;
      if (c.address === dst.address) return l;
      if (c.address === '0.0.0.0' || c.address === '::') wildcard ??= l;
    }
    return wildcard;
  }

  /**
   * Starts the graceful drain (once): readiness fails, listeners and inbound capture stop
   * accepting (the outbound side stays open), connections close as they become idle. Settles when none is left (not before
   * drain.min_duration) or at drain.timeout; the caller then stops the proxy or not.
   */
  drain(): Drain {
    if (this.drainState) return this.drainState;
    const own = [...this.listeners, ...this.captures];
    this.logger.log('info', `draining: ${this.workers ? `${this.workers.size} workers'` : own.reduce((n, t) => n + t.activeConnections, 0)} connections open; at most ${this.config.drain.timeoutMs} ms`);
    // With workers, the primary holds the bound sockets: those that stop accepting close here too,
    // or the kernel would go on completing handshakes no worker accepts.
    this.workers?.closeListenSockets([
      ...this.listeners.filter((l) => !l.keepsAcceptingWhileDraining).map((l) => l.config.name),
      ...this.captures.filter((c) => !c.keepsAcceptingWhileDraining).map((c) => c.name),
    ]);
    this.drainState = new Drain(this.workers ? [...own, this.workers] : own, this.config.drain);
    return this.drainState;
  }

  private drainReport(d: Drain): Record<string, unknown> {
    return {
      draining: true,
      elapsed_ms: Math.round(d.elapsedMs),
      timeout_ms: this.config.drain.timeoutMs,
      min_duration_ms: this.config.drain.minDurationMs,
      active_connections: this.listeners.reduce((n, l) => n + l.activeConnections, 0) + this.captures.reduce((n, c) => n + c.activeConnections, 0),
      outcome: d.outcome ?? null,
    };
  }

  /** Whether all of `waits` resolved within `ms`. */
  private async waitFor(waits: Array<Promise<unknown>>, ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      Promise.all(waits).then(() => true),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), ms); }),
    ]);
    clearTimeout(timer);
    return done;
  }

  /** Keeps `l`'s routes current from RDS (its `config.rds`, read at each update). */
  private followRoutes(l: Listener): RouteFollower {
    if (!this.rds) {
      this.rds = new this.xdsLib!.RdsAgent(this.xdsChannel!, this.config.xds!, this.logger);
      if (this.started || this.ads) this.rds.start();
    }
    const rds = this.rds;
    const name = l.config.rds!.routeConfigName;
    const sub = rds.subscribe(name, (decoded) => this.applyRoutes(l, decoded));
    return { ready: sub.ready, stop: () => rds.unsubscribe(sub) };
  }

  /** A route update applies to the next request on every connection; requests already dispatched keep the cluster they were given. */
  private applyRoutes(l: Listener, { routes, validateClusters }: DecodedRoutes): void {
    const rds = l.config.rds;
    if (!rds) return;
    // Until ADS delivered its first clusters, a cluster that is not here yet is not unknown.
    const unknown = this.config.xds?.ads && !this.adsSynced ? [] : this.xdsLib!.clusterReferences(routes).filter((ref) => !this.clusters.get(ref.cluster));
    if (unknown.length > 0 && (validateClusters || rds.validateClusters)) {
      // Thrown: the update is NACKed with this reason and the last accepted routes keep serving.
      throw new ConfigError(unknown[0].path, `unknown cluster "${unknown[0].cluster}"${unknown.length > 1 ? ` (and ${unknown.length - 1} more unknown)` : ''}`);
    }
    if (unknown.length > 0) {
      this.logger.log('warn', `RDS ${rds.routeConfigName}: routes name unknown clusters; matching requests get an error reply until they arrive (set rds.validate_clusters to reject such updates)`, { clusters: [...new Set(unknown.map((u) => u.cluster))] });
    }
    l.context.routes = new RouteTable(routes, l.config.name, this.stats);
    this.publishSoon();
  }

  /** What the workers are handed: the plugins, routes and clusters this thread accepted. */
  private generation(): Generation {
    return this.generations.build(this.plugins, this.listeners, this.clusters);
  }

  /** Hands the workers a new generation once the current burst of changes (a CDS and its EDS) is applied. */
  private publishSoon(): void {
    if (!this.workers || !this.workersLive || this.publishScheduled) return;
    this.publishScheduled = true;
    setImmediate(() => {
      this.publishScheduled = false;
      void this.publishNow();
    });
  }

  /**
   * Hands the workers what this thread runs now. If one worker cannot take it (or ends while
   * preparing it), all keep the last committed generation and the latest state is offered again,
   * 1 s later, then 2, 4 … 30 s: what was accepted (and ACKed) reaches the workers eventually.
   */
  private async publishNow(): Promise<void> {
    if (!this.workers || !this.workersLive) return;
    clearTimeout(this.publishRetry);
    if (await this.workers.publish(this.generation())) {
      this.publishRetryMs = 0;
      return;
    }
    if (!this.workersLive) return;
    this.publishRetryMs = Math.min(PUBLISH_RETRY_MAX_MS, this.publishRetryMs ? this.publishRetryMs * 2 : PUBLISH_RETRY_MIN_MS);
    this.publishRetry = setTimeout(() => this.publishSoon(), this.publishRetryMs);
    this.publishRetry.unref();
  }

  /**
   * Re-reads the plugin directory (file watcher, SIGHUP, POST /plugins/reload); never overlaps
   * itself, and requests that arrive while one waits to start share it.
   */
  reloadPlugins(): Promise<void> {
    // A request is served by a reload that starts after it: the queued one, if there is one.
    if (this.queuedReload) return this.queuedReload;
    const next = this.reloading.then(async () => {
      // Rate limit: reloads start at least RELOAD_INTERVAL_MS apart; requests meanwhile join this one.
      const wait = this.lastReloadAt + RELOAD_INTERVAL_MS - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      this.queuedReload = undefined;
      this.reloadRuns++;
      this.lastReloadAt = performance.now();
      await this.plugins.reload(this.config.plugins.directory);
      await this.publishNow();
    });
    this.queuedReload = next;
    this.reloading = next;
    return next;
  }

  /** /plugins: this thread's plugins, with each worker's share when there are workers. */
  private async pluginsReport(): Promise<unknown> {
    const own = this.pluginsDump() as Array<Record<string, unknown>>;
    return this.workers ? pluginsWithWorkers(own, this.workers) : own;
  }

  pluginsDump(): unknown {
    const current = new Set(this.plugins.codecs());
    const filterConnections = (name: string) =>
      this.listeners.reduce((n, l) => n + (l.config.filters.some((f) => f.name === name) ? l.activeConnections : 0), 0);
    return [
      ...this.plugins.generations().map((p) => generationDump(p, current.has(p), p.connections)),
      ...this.plugins.filters().map((p) => generationDump(p, true, filterConnections(p.name))),
    ];
  }

  listener(name: string): Listener | undefined {
    return this.listenerManager.listener(name);
  }

  configDump(): unknown {
    return {
      config: {
        ...this.config,
        listeners: this.config.listeners.map((l) => ({ ...l, port: this.listener(l.name)?.port ?? l.port })),
      },
      plugins: this.plugins.codecs().map((p) => ({
        name: p.name,
        kind: p.descriptor.kind,
        protocol: p.descriptor.protocol,
        version: p.descriptor.version,
        abi: `1.${p.descriptor.abiMinor}`,
        correlation: p.descriptor.correlation,
        file: p.compiled.file,
        sha256: p.compiled.sha256,
        loaded_at: p.compiled.loadedAt.toISOString(),
      })),
      rejected_plugins: this.plugins.rejected,
      dynamic_route_configs: this.rds?.statuses() ?? [],
      dynamic_clusters: this.ads && this.config.xds?.ads ? { connected: this.ads.connected, types: [...this.ads.statuses.values()].filter((t) => t.typeUrl !== this.xdsLib!.TYPE_LISTENER) } : undefined,
      dynamic_listeners: this.ads && this.config.xds?.lds ? {
        connected: this.ads.connected,
        status: this.ads.statuses.get(this.xdsLib!.TYPE_LISTENER),
        listeners: this.listenerManager.dynamicNames.map((n) => ({ ...this.listener(n)!.config, port: this.listener(n)!.port })),
      } : undefined,
      clusters: this.clusters.all().map((c) => ({ name: c.name, endpoints: c.endpoints.map((e) => e.label) })),
      routes: Object.fromEntries(this.listeners.map((l) => [l.config.name, l.context.routes.config])),
    };
  }

  async stop(): Promise<void> {
    this.started = false;
    this.workersLive = false;
    clearTimeout(this.publishRetry);
    // First: an LDS update in progress must not open a listener after this.
    const listenersClosed = this.listenerManager.close();
    this.overload.stop();
    await this.watcher?.stop();
    this.rds?.stop();
    this.ads?.stop();
    this.xdsChannel?.close();
    this.security.close();
    await listenersClosed;
    await Promise.all(this.captures.map((c) => c.close()));
    await this.workers?.stop();
    await this.telemetry.close();
    await this.admin?.close();
  }
}

/** One plugin generation as /plugins shows it (codecs and filters alike). */
function generationDump(p: CodecPlugin | FilterPlugin, current: boolean, connections: number): Record<string, unknown> {
  return {
    name: p.name,
    kind: p.descriptor.kind,
    protocol: p.descriptor.protocol,
    version: p.descriptor.version,
    abi: `1.${p.descriptor.abiMinor}`,
    sha256: p.compiled.sha256,
    generation: p.generation,
    current,
    removed: p.removed,
    loaded_at: p.compiled.loadedAt.toISOString(),
    connections,
    traps: p.traps,
    instance_recycles: p.recycles,
    file: p.compiled.file,
  };
}
