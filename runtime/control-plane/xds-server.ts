// The control plane's xDS server: RouteDiscoveryService/StreamRoutes (Aeraki-compatible: one
// RouteConfiguration per response, tunnelled MetaProtocol routes) and
// AggregatedDiscoveryService/StreamAggregatedResources for clusters, endpoints and listeners. Each
// resource has its own version, a hash of its content, so an update reaches only the proxies
// that use it and versions stay unique across restarts. ACKs are kept per node; a NACKed version is logged with the proxy's
// reason and not sent again (no resend loop); the next change supersedes it.

import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { ClusterConfig, RouteConfiguration } from '../config/types';
import type { Logger } from '../core/logger';
import { ADS_METHOD, envoyType, fromPlain, msToDuration, RDS_METHOD, toPlain, TYPE_CLUSTER, TYPE_CLUSTER_LOAD_ASSIGNMENT, TYPE_AUTHORIZATION_POLICY, TYPE_LISTENER, TYPE_ROUTE_CONFIGURATION } from '../xds/envoy-protos';
import { jsonToStruct, structToJson, type Json } from '../xds/proto-json';
import type { AuthorizationPolicyResource } from './resources';
import { encodeTunnel } from '../xds/route-tunnel';
import type { BuiltConfig } from './route-builder';

type Plain = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Versioned<T> { version: string; json: string; value: T }

interface Stream {
  call: grpc.ServerDuplexStream<Plain, Plain>;
  node: string;
  /** The node's namespace and pod labels (node metadata NAMESPACE, LABELS), for AuthorizationPolicy selection. */
  workload: { namespace: string; labels: Record<string, string> };
  /** type_url -> names subscribed ([] = all, for CDS). */
  names: Map<string, string[]>;
  /** type_url -> version last sent (joined versions of the resources in it). */
  sent: Map<string, string>;
  nonce: number;
}

export interface NodeStatus {
  readonly node: string;
  /** type_url + name -> version ACKed. */
  readonly acked: Record<string, string>;
  readonly nacked: Record<string, { version: string; message: string }>;
}

export class XdsServer {
  private readonly routes = new Map<string, Versioned<RouteConfiguration>>();
  private clusters: Versioned<ClusterConfig[]> = { version: '0', json: '[]', value: [] };
  private listeners: Versioned<Plain[]> = { version: '0', json: '[]', value: [] };
  private policies: AuthorizationPolicyResource[] = [];
  private readonly streams = new Set<Stream>();
  private readonly nodes = new Map<string, NodeStatus>();
  private server: grpc.Server | undefined;
  /** Called for every ACK (benchmarks and tests time updates with it). */
  onAck: ((node: string, typeUrl: string, version: string) => void) | undefined;

  constructor(private readonly logger: Logger) {}

  /** Takes a new build; pushes what changed to the streams that subscribed to it. */
  setConfig(built: BuiltConfig): { changedRoutes: string[]; clustersChanged: boolean } {
    const changedRoutes: string[] = [];
    for (const [name, rc] of built.routes) {
      const json = JSON.stringify(rc);
      if (this.routes.get(name)?.json !== json) {
        this.routes.set(name, { version: contentVersion(json), json, value: rc });
        changedRoutes.push(name);
      }
    }
    for (const name of [...this.routes.keys()]) if (!built.routes.has(name)) this.routes.delete(name);
    const json = JSON.stringify(built.clusters);
    const clustersChanged = json !== this.clusters.json;
    if (clustersChanged) this.clusters = { version: contentVersion(json), json, value: built.clusters };
    for (const s of this.streams) {
      for (const name of changedRoutes) if (s.names.get(TYPE_ROUTE_CONFIGURATION)?.includes(name)) this.sendRoute(s, name);
      if (clustersChanged && s.names.has(TYPE_CLUSTER)) this.sendClusters(s);
      if (clustersChanged && s.names.has(TYPE_CLUSTER_LOAD_ASSIGNMENT)) this.sendEndpoints(s);
    }
    return { changedRoutes, clustersChanged };
  }

  /**
   * Takes the Listener resources to serve over LDS (envoy.config.listener.v3.Listener plain
   * objects, state of the world); pushes them to the streams that subscribed if they changed.
   */
  setListeners(listeners: Plain[]): boolean {
    // Bytes are hashed by content, so two builds of the same listeners share a version.
    const json = JSON.stringify(listeners, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v));
    if (json === this.listeners.json) return false;
    this.listeners = { version: contentVersion(json), json, value: listeners };
    for (const s of this.streams) if (s.names.has(TYPE_LISTENER)) this.sendListeners(s);
    return true;
  }

  /** Takes the AuthorizationPolicies; each subscribed proxy gets those that select it, when they changed. */
  setAuthorizationPolicies(policies: readonly AuthorizationPolicyResource[]): void {
    this.policies = [...policies].sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
    for (const s of this.streams) if (s.names.has(TYPE_AUTHORIZATION_POLICY) && s.sent.get(TYPE_AUTHORIZATION_POLICY) !== this.policiesFor(s).version) this.sendPolicies(s);
  }

  /**
   * Istio's selection: policies in the root namespace apply to every workload; others to the
   * workloads of their namespace, all of them or those their selector's labels match.
   */
  private policiesFor(s: Stream): { version: string; value: AuthorizationPolicyResource[] } {
    const { namespace, labels } = s.workload;
    const value = this.policies.filter((p) => p.namespace === ROOT_NAMESPACE
      || (p.namespace === namespace && Object.entries(p.selector ?? {}).every(([k, v]) => labels[k] === v)));
    return { version: contentVersion(JSON.stringify(value)), value };
  }

  private sendPolicies(s: Stream): void {
    const { version, value } = this.policiesFor(s);
    this.write(s, TYPE_AUTHORIZATION_POLICY, version, value.map((p) => ({
      type: 'AuthorizationPolicy' as const,
      value: { name: `${p.namespace}/${p.name}`, namespace: p.namespace, spec: jsonToStruct(p.spec as { [key: string]: Json }) },
    })));
  }

  /** `credentials`: mTLS (control-plane-tls.ts); plaintext unless given. */
  async listen(address: string, port: number, credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure()): Promise<number> {
    const req = envoyType('DiscoveryRequest');
    const resp = envoyType('DiscoveryResponse');
    const method = (path: string, originalName: string) => ({
      path, requestStream: true, responseStream: true, originalName,
      requestSerialize: (m: Plain) => Buffer.from(fromPlain(req, m)), requestDeserialize: (b: Buffer) => toPlain(req, b),
      responseSerialize: (m: Plain) => Buffer.from(fromPlain(resp, m)), responseDeserialize: (b: Buffer) => toPlain(resp, b),
    });
    const server = new grpc.Server({ 'grpc.max_concurrent_streams': 1_000_000 });
    server.addService({ StreamRoutes: method(RDS_METHOD, 'StreamRoutes') } as grpc.ServiceDefinition, { StreamRoutes: (call: grpc.ServerDuplexStream<Plain, Plain>) => this.serve(call) });
    server.addService({ StreamAggregatedResources: method(ADS_METHOD, 'StreamAggregatedResources') } as grpc.ServiceDefinition, { StreamAggregatedResources: (call: grpc.ServerDuplexStream<Plain, Plain>) => this.serve(call) });
    const bound = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${address}:${port}`, credentials, (err, p) => (err ? reject(err) : resolve(p))));
    this.server = server;
    return bound;
  }

  stop(): void {
    this.streams.clear();
    this.server?.forceShutdown();
  }

  /** The version of every resource now served (tests and /debug). */
  versions(): { clusters: string; listeners: string; routes: Record<string, string> } {
    return { clusters: this.clusters.version, listeners: this.listeners.version, routes: Object.fromEntries([...this.routes].map(([n, v]) => [n, v.version])) };
  }

  /** The route configuration now served under `name`. */
  routeConfiguration(name: string): RouteConfiguration | undefined {
    return this.routes.get(name)?.value;
  }

  nodeStatuses(): NodeStatus[] {
    return [...this.nodes.values()];
  }

  get streamCount(): number {
    return this.streams.size;
  }

  private serve(call: grpc.ServerDuplexStream<Plain, Plain>): void {
    const s: Stream = { call, node: '', workload: { namespace: '', labels: {} }, names: new Map(), sent: new Map(), nonce: 0 };
    this.streams.add(s);
    const drop = () => this.streams.delete(s);
    call.on('data', (r: Plain) => this.onRequest(s, r));
    call.on('error', drop);
    call.on('cancelled', drop);
    call.on('end', () => { drop(); call.end(); });
  }

  private status(node: string): NodeStatus {
    let st = this.nodes.get(node);
    if (!st) this.nodes.set(node, (st = { node, acked: {}, nacked: {} }));
    return st;
  }

  private onRequest(s: Stream, r: Plain): void {
    if (r.node?.id) s.node = r.node.id;
    if (r.node?.metadata) s.workload = workloadOf(structToJson(r.node.metadata));
    const typeUrl = String(r.type_url ?? '');
    const names = (r.resource_names ?? []) as string[];
    const st = this.status(s.node || '(unknown)');
    if (r.response_nonce) {
      const key = `${typeUrl} ${names.join(',')}`;
      if (r.error_detail) {
        const message = String(r.error_detail.message ?? '');
        st.nacked[key] = { version: s.sent.get(typeUrl) ?? '', message };
        this.logger.log('warn', `NACK from ${s.node} for ${typeUrl} ${names.join(',') || '*'} version ${s.sent.get(typeUrl)}: ${message}`);
      } else {
        st.acked[key] = String(r.version_info ?? '');
        delete st.nacked[key];
        this.onAck?.(s.node, typeUrl, String(r.version_info ?? ''));
      }
      // EDS subscriptions change by sending new names with the latest nonce.
      if (typeUrl === TYPE_CLUSTER_LOAD_ASSIGNMENT && names.join(',') !== (s.names.get(typeUrl) ?? []).join(',')) {
        s.names.set(typeUrl, names);
        this.sendEndpoints(s);
      }
      return;
    }
    s.names.set(typeUrl, names);
    const has = String(r.version_info ?? '');
    if (typeUrl === TYPE_ROUTE_CONFIGURATION) {
      for (const name of names) if (this.routes.has(name) && this.routes.get(name)!.version !== has) this.sendRoute(s, name);
    } else if (typeUrl === TYPE_CLUSTER) {
      if (has !== this.clusters.version) this.sendClusters(s);
    } else if (typeUrl === TYPE_CLUSTER_LOAD_ASSIGNMENT) {
      if (has !== this.clusters.version) this.sendEndpoints(s);
    } else if (typeUrl === TYPE_LISTENER) {
      if (has !== this.listeners.version) this.sendListeners(s);
    } else if (typeUrl === TYPE_AUTHORIZATION_POLICY) {
      if (has !== this.policiesFor(s).version) this.sendPolicies(s);
    }
  }

  private write(s: Stream, typeUrl: string, version: string, resources: Array<{ type: 'RouteConfiguration' | 'Cluster' | 'ClusterLoadAssignment' | 'Listener' | 'AuthorizationPolicy'; value: Plain }>): void {
    s.sent.set(typeUrl, version);
    s.call.write({
      version_info: version, type_url: typeUrl, nonce: String(++s.nonce),
      resources: resources.map((r) => ({ type_url: typeUrl, value: fromPlain(envoyType(r.type), r.value) })),
    });
  }

  private sendRoute(s: Stream, name: string): void {
    const v = this.routes.get(name)!;
    this.write(s, TYPE_ROUTE_CONFIGURATION, v.version, [{ type: 'RouteConfiguration', value: encodeTunnel(v.value) }]);
  }

  private sendClusters(s: Stream): void {
    this.write(s, TYPE_CLUSTER, this.clusters.version, this.clusters.value.map((c) => ({
      type: 'Cluster' as const,
      value: { name: c.name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } }, connect_timeout: msToDuration(c.connectTimeoutMs), lb_policy: c.lbPolicy.toUpperCase(),
        circuit_breakers: { thresholds: [{
          priority: 'DEFAULT',
          max_connections: { value: c.circuitBreakers.maxConnections },
          max_pending_requests: { value: c.circuitBreakers.maxPendingRequests },
          max_requests: { value: c.circuitBreakers.maxRequests },
          max_retries: { value: c.circuitBreakers.maxRetries },
          retry_budget: { budget_percent: { value: c.retryBudget.percent }, min_retry_concurrency: { value: c.retryBudget.minConcurrency } },
        }] },
        ...(c.outlierDetection ? { outlier_detection: {
          consecutive_5xx: { value: c.outlierDetection.consecutiveErrors },
          enforcing_consecutive_5xx: { value: c.outlierDetection.consecutiveErrors > 0 ? 100 : 0 },
          consecutive_gateway_failure: { value: c.outlierDetection.consecutiveGatewayFailures },
          enforcing_consecutive_gateway_failure: { value: c.outlierDetection.consecutiveGatewayFailures > 0 ? 100 : 0 },
          base_ejection_time: msToDuration(c.outlierDetection.baseEjectionMs),
          max_ejection_percent: { value: c.outlierDetection.maxEjectionPercent },
          interval: msToDuration(c.outlierDetection.intervalMs),
        } } : {}),
        ...(c.healthyPanicThreshold !== undefined ? { common_lb_config: { healthy_panic_threshold: { value: c.healthyPanicThreshold } } } : {}),
      },
    })));
  }

  private sendListeners(s: Stream): void {
    this.write(s, TYPE_LISTENER, this.listeners.version, this.listeners.value.map((value) => ({ type: 'Listener' as const, value })));
  }

  private sendEndpoints(s: Stream): void {
    const wanted = new Set(s.names.get(TYPE_CLUSTER_LOAD_ASSIGNMENT) ?? []);
    this.write(s, TYPE_CLUSTER_LOAD_ASSIGNMENT, this.clusters.version, this.clusters.value.filter((c) => wanted.has(c.name)).map((c) => ({
      type: 'ClusterLoadAssignment' as const,
      value: { cluster_name: c.name, endpoints: [{ lb_endpoints: c.endpoints.map((e) => ({ endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } } })) }] },
    })));
  }
}

/** Istio's root namespace: its policies apply mesh-wide. */
const ROOT_NAMESPACE = 'istio-system';

/** A proxy's namespace and labels from its node metadata (LABELS as a struct or JSON, and flat string keys). */
function workloadOf(meta: { [key: string]: Json }): Stream['workload'] {
  const labels: Record<string, string> = {};
  let nested: unknown = meta.LABELS;
  if (typeof nested === 'string') {
    try { nested = JSON.parse(nested); } catch { nested = undefined; }
  }
  if (typeof nested === 'object' && nested !== null && !Array.isArray(nested)) {
    for (const [k, v] of Object.entries(nested)) if (typeof v === 'string') labels[k] = v;
  }
  for (const [k, v] of Object.entries(meta)) if (typeof v === 'string' && k !== 'LABELS') labels[k] = v;
  return { namespace: typeof meta.NAMESPACE === 'string' ? meta.NAMESPACE : '', labels };
}

/**
 * A resource's version is a hash of its content, not a counter: a restarted control plane with
 * changed content can never repeat a version a proxy already holds (and keep it stale), and one
 * with the same content serves the same versions, so proxies have nothing to re-apply.
 */
function contentVersion(json: string): string {
  return createHash('sha256').update(json).digest('hex').slice(0, 16);
}
