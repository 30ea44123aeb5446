// The proxy's listeners: the static ones of the YAML, and the dynamic ones LDS adds, changes and
// removes. An LDS update is state of the world: a listener it no longer names is drained and
// removed (first, so its port is free for the rest); one whose address changed is bound anew
// before the old one drains; any other change reconfigures the listener in place (new
// connections take it, open ones keep what they had). A new listener is bound at once — a port
// that cannot be had is known before the update is ACKed — and warms in the background: it
// holds its first connections until its first routes arrive (or the warm timeout), without
// holding up the update or later ones. A listener that cannot be served as sent (no codec, a
// filter refusing its config, a port taken) keeps its previous version, and the update is NACKed
// with the reason.

import type { ProxySecurity } from '../security/proxy-security';
import type { ListenerConfig } from '../config/types';
import { ConfigError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { StatsStore } from '../core/stats';
import type { CodecPlugin } from '../codec/codec-plugin';
import type { PluginRegistry } from '../plugin/plugin-registry';
import type { ClusterManager } from '../upstream/cluster';
import { Listener } from './listener';
import type { OverloadManager } from './overload-manager';
import type { ListenBinder } from '../core/listen';
import type { Telemetry } from '../telemetry/telemetry';

/** What follows a listener's routes over RDS while it lives. */
export interface RouteFollower {
  readonly ready: Promise<unknown>;
  stop(): void;
}

export interface ListenerManagerDeps {
  readonly plugins: PluginRegistry;
  readonly clusters: ClusterManager;
  readonly stats: StatsStore;
  readonly logger: Logger;
  readonly overload: OverloadManager;
  /** Starts following `listener`'s RDS routes (the listener reads `config.rds` when routes arrive). */
  readonly followRoutes: (listener: Listener) => RouteFollower;
  /** How long a new listener with RDS waits for its first routes before it opens anyway. */
  readonly warmTimeoutMs: number;
  /** How long a removed listener's connections may take to finish. */
  readonly drainTimeoutMs: number;
  /** Certificates, peer authentication and authorization of every listener. */
  readonly security?: ProxySecurity;
  /** Where listeners get their sockets (workers); unset, each binds its own. */
  readonly binder?: ListenBinder;
  /** Istio metrics, access logs and tracing for every listener. */
  readonly telemetry?: Telemetry;
}

/** A listener as LDS sent it, decoded; `where` names it in errors. */
export interface DesiredListener {
  readonly config: ListenerConfig;
  /** Codec protocols to try, preferred first. */
  readonly protocols: readonly string[];
  readonly where: string;
}

interface Dynamic {
  listener: Listener;
  routes: RouteFollower | undefined;
}

const addressOf = (c: ListenerConfig) => `${c.address}:${c.port}`;
const portTaken = (err: unknown) => /EADDRINUSE/.test((err as Error).message);

export class ListenerManager {
  /** Static listeners first, then dynamic ones in the order they were added. */
  readonly listeners: Listener[] = [];
  private readonly dynamic = new Map<string, Dynamic>();
  private readonly staticNames = new Set<string>();
  private readonly staticAddresses = new Set<string>();
  /** Stopping: nothing new is opened. */
  private closed = false;
  private readonly warmTimers = new Set<NodeJS.Timeout>();

  constructor(private readonly deps: ListenerManagerDeps) {}

  /** A static listener of the YAML (`listeners[index]`); it is bound by `listen`. */
  addStatic(config: ListenerConfig, plugin: CodecPlugin, index: number): Listener {
    const listener = this.create(config, plugin, `listeners[${index}]`);
    listener.useFilterPlugins(this.deps.plugins);
    this.listeners.push(listener);
    this.staticNames.add(config.name);
    if (config.port !== 0) this.staticAddresses.add(addressOf(config));
    return listener;
  }

  get dynamicNames(): string[] {
    return [...this.dynamic.keys()];
  }

  /**
   * Applies a state-of-the-world LDS update. `kept`: names of listeners in the update that could
   * not be decoded; they keep their previous version rather than being removed. Returns one line
   * per listener that could not be applied (empty: the update is accepted as a whole).
   */
  async applyDynamic(desired: readonly DesiredListener[], kept: ReadonlySet<string>): Promise<string[]> {
    if (this.closed) return [];
    const errors: string[] = [];
    const names = new Set<string>();
    const wanted: DesiredListener[] = [];
    for (const d of desired) {
      if (names.has(d.config.name)) errors.push(`${d.where}: name: duplicate listener name`);
      else if (this.staticNames.has(d.config.name)) errors.push(`${d.where}: name: a static listener of the YAML config has this name; LDS cannot change it`);
      else if (this.staticAddresses.has(addressOf(d.config))) errors.push(`${d.where}: address: ${addressOf(d.config)} is a static listener's of the YAML config`);
      else wanted.push(d);
      names.add(d.config.name);
    }
    for (const name of [...this.dynamic.keys()]) {
      if (!names.has(name) && !kept.has(name)) this.remove(name);
    }
    // A port another listener of this update moves away from is free only once that one moved:
    // what failed on a taken port is tried again after the rest.
    const again: DesiredListener[] = [];
    for (const d of wanted) {
      try {
        await this.upsert(d);
      } catch (err) {
        if (portTaken(err)) again.push(d);
        else errors.push(`${d.where}: ${(err as Error).message}`);
      }
    }
    for (const d of again) {
      try {
        await this.upsert(d);
      } catch (err) {
        errors.push(`${d.where}: ${(err as Error).message}`);
      }
    }
    return errors;
  }

  private async upsert(d: DesiredListener): Promise<void> {
    const plugin = this.codecFor(d);
    const config = { ...d.config, protocol: plugin.descriptor.protocol };
    const current = this.dynamic.get(config.name);
    if (this.closed) return;
    if (!current) {
      await this.open(config, plugin, d.where);
      this.deps.logger.log('info', `LDS: listener ${config.name} (${config.protocol}) on ${config.address}:${this.listener(config.name)!.port}`);
      return;
    }
    const before = current.listener.config;
    if (JSON.stringify(before) === JSON.stringify(config) && current.listener.context.plugin === plugin) return;
    if (before.address !== config.address || before.port !== config.port) {
      // Bound anew first: if the new address cannot be had, the old listener keeps serving.
      const old = current;
      this.dynamic.delete(config.name);
      this.listeners.splice(this.listeners.indexOf(old.listener), 1);
      try {
        await this.open(config, plugin, d.where);
      } catch (err) {
        this.dynamic.set(config.name, old);
        this.listeners.push(old.listener);
        throw err;
      }
      old.routes?.stop();
      void old.listener.drain(this.deps.drainTimeoutMs);
      this.deps.logger.log('info', `LDS: listener ${config.name} moved to ${config.address}:${config.port}`);
      return;
    }
    current.listener.reconfigure(config, plugin, this.deps.plugins);
    if (before.rds?.routeConfigName !== config.rds?.routeConfigName) {
      current.routes?.stop();
      current.routes = config.rds ? this.deps.followRoutes(current.listener) : undefined;
    }
    this.deps.logger.log('info', `LDS: listener ${config.name} updated`);
  }

  private codecFor(d: DesiredListener): CodecPlugin {
    for (const p of d.protocols) {
      const plugin = this.deps.plugins.codec(p);
      if (plugin) return plugin;
    }
    const known = this.deps.plugins.codecs().map((p) => p.descriptor.protocol).join(', ') || 'none';
    throw new ConfigError('protocol', `no codec plugin for protocol "${d.protocols.join('" or "')}" in the plugin directory (loaded: ${known})`);
  }

  /** Builds and binds a new dynamic listener; it warms (first routes, or the warm timeout) in the background. */
  private async open(config: ListenerConfig, plugin: CodecPlugin, where: string): Promise<void> {
    if (this.closed) throw new Error('the proxy is stopping');
    const listener = this.create(config, plugin, where);
    try {
      listener.useFilterPlugins(this.deps.plugins);
      await listener.listen();
    } catch (err) {
      await listener.close();
      throw err;
    }
    if (this.closed) {
      await listener.close();
      throw new Error('the proxy is stopping');
    }
    let routes: RouteFollower | undefined;
    if (config.rds) {
      routes = this.deps.followRoutes(listener);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.deps.warmTimeoutMs);
        this.warmTimers.add(timer);
      });
      listener.holdUntil(Promise.race([routes.ready, timeout]).finally(() => {
        clearTimeout(timer);
        this.warmTimers.delete(timer!);
      }));
    }
    this.dynamic.set(config.name, { listener, routes });
    this.listeners.push(listener);
  }

  private remove(name: string): void {
    const d = this.dynamic.get(name)!;
    this.dynamic.delete(name);
    this.listeners.splice(this.listeners.indexOf(d.listener), 1);
    d.routes?.stop();
    this.deps.logger.log('info', `LDS: listener ${name} removed; draining ${d.listener.activeConnections} connections`);
    // Not awaited: the listener stops accepting at once; its connections get the drain timeout.
    void d.listener.drain(this.deps.drainTimeoutMs).then(() => {
      // Its stats go with it, unless a listener of the same name came back meanwhile.
      if (!this.listener(name)) this.deps.stats.forgetListener(name);
    });
  }

  private create(config: ListenerConfig, plugin: CodecPlugin, fieldPath: string): Listener {
    const { clusters, stats, logger, overload, plugins } = this.deps;
    const listener = new Listener(config, plugin, clusters, stats, logger, overload, (p) => plugins.forgetIfIdle(p), fieldPath, this.deps.telemetry ?? null, this.deps.security ?? null);
    listener.binder = this.deps.binder;
    return listener;
  }

  listener(name: string): Listener | undefined {
    return this.listeners.find((l) => l.config.name === name);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.warmTimers) clearTimeout(t);
    this.warmTimers.clear();
    for (const d of this.dynamic.values()) d.routes?.stop();
    await Promise.all(this.listeners.map((l) => l.close()));
  }
}
