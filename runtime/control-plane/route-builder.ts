// Builds what the data plane needs from the resources, the way Aeraki does: for every
// ServiceEntry port named tcp-metaprotocol-<protocol>-…, a route configuration named
// <host>_<port> (the MetaRouter's routes, or one default route), and the clusters routes point
// at — outbound|<port>|<subset>|<host>, endpoints selected by the DestinationRule's subset labels.

import { UPSTREAM_LIMIT_DEFAULTS } from '../config/types';
import type { ClusterConfig, MetadataMatcherConfig, RouteConfig, RouteConfiguration } from '../config/types';
import type { DestinationRule, MetaRouter, Resource, ServiceEntry } from './resources';

export interface BuiltConfig {
  routes: Map<string, RouteConfiguration>;
  clusters: ClusterConfig[];
}

export const clusterName = (port: number, subset: string, host: string) => `outbound|${port}|${subset}|${host}`;

/** The application protocol of a port name `tcp-metaprotocol-<protocol>[-…]`, else undefined. */
export function metaProtocolOf(portName: string): string | undefined {
  const parts = portName.split('-');
  return parts.length >= 3 && parts[1] === 'metaprotocol' && parts[2] ? parts[2] : undefined;
}

/** `withheldHosts`: services whose routes are not served (their MetaRouter never validated). */
export function buildConfig(resources: readonly Resource[], withheldHosts: ReadonlySet<string> = new Set()): BuiltConfig {
  const entries = resources.filter((r): r is ServiceEntry => r.kind === 'ServiceEntry');
  const routers = resources.filter((r): r is MetaRouter => r.kind === 'MetaRouter');
  const rules = resources.filter((r): r is DestinationRule => r.kind === 'DestinationRule');
  const routes = new Map<string, RouteConfiguration>();
  const clusters: ClusterConfig[] = [];
  for (const se of entries) {
    const dr = rules.find((r) => r.host === se.host);
    for (const port of se.ports) {
      clusters.push(...clustersFor(se, port, dr));
      if (!metaProtocolOf(port.name) || withheldHosts.has(se.host)) continue;
      const name = `${se.host}_${port.number}`;
      const router = routers.find((r) => r.host === se.host && r.routes.length > 0);
      routes.set(name, {
        name,
        routes: router ? router.routes.map((r) => routeOf(r, port.number, rules)) : [defaultRoute(se, port.number, dr)],
      });
    }
  }
  return { routes, clusters };
}

function endpointPort(se: ServiceEntry, port: ServiceEntry['ports'][number], ep: ServiceEntry['endpoints'][number]): number {
  return ep.ports[port.name] ?? port.targetPort ?? port.number;
}

function clustersFor(se: ServiceEntry, port: ServiceEntry['ports'][number], dr: DestinationRule | undefined): ClusterConfig[] {
  const cluster = (subset: string, labels: Record<string, string>, lbPolicy = dr?.lbPolicy, pool = dr?.connectionPool, od = dr?.outlierDetection): ClusterConfig => ({
    name: clusterName(port.number, subset, se.host),
    endpoints: se.endpoints
      .filter((ep) => Object.entries(labels).every(([k, v]) => ep.labels[k] === v))
      .map((ep) => ({ address: ep.address, port: endpointPort(se, port, ep) })),
    lbPolicy: lbPolicy ?? 'round_robin',
    connectTimeoutMs: pool?.connectTimeoutMs ?? 1000,
    connectionsPerEndpoint: 1,
    ...UPSTREAM_LIMIT_DEFAULTS,
    circuitBreakers: {
      maxConnections: pool?.maxConnections ?? UPSTREAM_LIMIT_DEFAULTS.circuitBreakers.maxConnections,
      maxPendingRequests: pool?.maxPendingRequests ?? UPSTREAM_LIMIT_DEFAULTS.circuitBreakers.maxPendingRequests,
      maxRequests: pool?.maxRequests ?? UPSTREAM_LIMIT_DEFAULTS.circuitBreakers.maxRequests,
      maxRetries: pool?.maxRetries ?? UPSTREAM_LIMIT_DEFAULTS.circuitBreakers.maxRetries,
    },
    ...(od ? {
      outlierDetection: { consecutiveErrors: od.consecutiveErrors, consecutiveGatewayFailures: od.consecutiveGatewayFailures, baseEjectionMs: od.baseEjectionMs, maxEjectionPercent: od.maxEjectionPercent, intervalMs: od.intervalMs },
      ...(od.minHealthPercent !== undefined ? { healthyPanicThreshold: od.minHealthPercent } : {}),
    } : {}),
  });
  return [cluster('', {}), ...(dr?.subsets ?? []).map((s) => cluster(s.name, s.labels, s.lbPolicy ?? dr?.lbPolicy, s.connectionPool ?? dr?.connectionPool, s.outlierDetection ?? dr?.outlierDetection))];
}

function defaultRoute(se: ServiceEntry, port: number, dr: DestinationRule | undefined): RouteConfig {
  return {
    name: 'default',
    match: { metadata: [] },
    route: { kind: 'cluster', cluster: clusterName(port, '', se.host), ...(dr?.hashKey ? { hashPolicy: [dr.hashKey] } : {}) },
    requestMutation: [],
  };
}

function hashKeyFor(rules: readonly DestinationRule[], host: string, subset: string): string | undefined {
  const dr = rules.find((r) => r.host === host);
  if (!dr) return undefined;
  return subset ? dr.subsets.find((s) => s.name === subset)?.hashKey ?? dr.hashKey : dr.hashKey;
}

function routeOf(r: MetaRouter['routes'][number], servicePort: number, rules: readonly DestinationRule[]): RouteConfig {
  const metadata: MetadataMatcherConfig[] = r.match.map(([name, m]) => ({
    name,
    invert: false,
    match: m.kind === 'present' ? { kind: 'present', value: true } : { kind: m.kind, value: m.value },
  }));
  const target = (d: { host: string; subset: string; port: number | undefined }) => clusterName(d.port ?? servicePort, d.subset, d.host);
  const hashPolicy = r.route.map((d) => hashKeyFor(rules, d.host, d.subset)).filter((k): k is string => k !== undefined);
  const extras = {
    ...(hashPolicy.length ? { hashPolicy } : {}),
    ...(r.mirror ? { mirrors: [{ cluster: target(r.mirror), percentage: r.mirrorPercentage ?? 100 }] } : {}),
  };
  return {
    name: r.name,
    match: { metadata },
    route: r.route.length === 1
      ? { kind: 'cluster', cluster: target(r.route[0]), ...extras }
      : { kind: 'weighted_clusters', clusters: r.route.map((d) => ({ name: target(d), weight: d.weight })), ...extras },
    requestMutation: r.requestMutation,
  };
}
