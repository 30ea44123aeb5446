// Builds the generation a multi-worker primary hands its workers from what the primary runs.

import type { RouteTable } from '../router/route-table';
import type { PluginRegistry } from '../plugin/plugin-registry';
import type { ClusterManager } from '../upstream/cluster';
import type { Listener } from '../proxy/listener';
import type { Generation } from './worker-protocol';

export class GenerationBuilder {
  private nextId = 1;
  private nextRouteVersion = 1;
  /** A version per route table the primary built: workers rebuild a listener's only when it changes. */
  private readonly routeVersions = new WeakMap<RouteTable, number>();

  build(plugins: PluginRegistry, listeners: readonly Listener[], clusters: ClusterManager): Generation {
    const routes: Record<string, Generation['routes'][string]> = {};
    for (const l of listeners) {
      const table = l.context.routes;
      let version = this.routeVersions.get(table);
      if (version === undefined) {
        version = this.nextRouteVersion++;
        this.routeVersions.set(table, version);
      }
      routes[l.config.name] = { version, config: table.config };
    }
    return { id: this.nextId++, plugins: plugins.snapshot(), routes, clusters: clusters.all().map((c) => c.config) };
  }
}
