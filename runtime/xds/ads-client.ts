// Clusters, endpoints and listeners over ADS (AggregatedDiscoveryService/StreamAggregatedResources),
// as Istio sidecars receive them: CDS with a wildcard subscription, then EDS for the clusters that
// take their endpoints from EDS, and LDS (wildcard) when listeners come from the control plane.
// ACK/NACK per type on the one stream; reconnect with back-off; what was last accepted keeps
// serving. Clusters are named as Istio names them (outbound|port|subset|host), which is what
// MetaProtocol routes refer to.

import { UPSTREAM_LIMIT_DEFAULTS } from '../config/types';
import * as grpc from '@grpc/grpc-js';
import type { ClusterConfig, EndpointConfig, XdsConfig } from '../config/types';
import type { Logger } from '../core/logger';
import type { ClusterManager } from '../upstream/cluster';
import type { LbPolicy } from '../upstream/load-balancer';
import { ADS_METHOD, durationToMs, toPlain, TYPE_CLUSTER, TYPE_CLUSTER_LOAD_ASSIGNMENT, TYPE_AUTHORIZATION_POLICY, TYPE_LISTENER, typeOfUrl } from './envoy-protos';
import { INVALID_ARGUMENT, newUpdateStatus, Plain, recordAccepted, recordRejected, UpdateStatus, XdsStream } from './xds-stream';
import { nodeOf } from './node';

export interface TypeStatus extends UpdateStatus {
  readonly typeUrl: string;
}

/**
 * Applies a state-of-the-world LDS update (decoded Listener resources); resolves with the reason
 * to NACK it, or undefined to ACK. Updates are applied one at a time, in order.
 */
export type ListenersHandler = (listeners: Plain[], version: string) => Promise<string | undefined>;

/** Applies a state-of-the-world update of AuthorizationPolicies (decoded resources); returns the reason to NACK it, or undefined. */
export type AuthorizationHandler = (policies: Plain[], version: string) => string | undefined;

export class AdsClient extends XdsStream {
  readonly statuses = new Map<string, TypeStatus>();
  private readonly nonces = new Map<string, string>();
  /** Clusters that take their endpoints from EDS, with their settings from CDS. */
  private edsClusters = new Map<string, ClusterConfig>();
  private firstEds: (() => void) | undefined;
  /** Resolves once clusters (and their endpoints) were first applied. */
  readonly ready: Promise<void> = new Promise((resolve) => { this.firstEds = resolve; });
  private firstLds: (() => void) | undefined;
  /** Resolves once listeners were first applied. */
  readonly listenersReady: Promise<void> = new Promise((resolve) => { this.firstLds = resolve; });
  private firstAuthorization: (() => void) | undefined;
  /** Resolves once AuthorizationPolicies were first accepted (listeners wait for them, as for routes). */
  readonly authorizationReady: Promise<void> = new Promise((resolve) => { this.firstAuthorization = resolve; });
  /** The LDS update being applied: the next one waits for it. */
  private ldsQueue: Promise<void> = Promise.resolve();

  /** `clusters` for CDS and EDS (xds.ads), `onListeners` for LDS (xds.lds). */
  constructor(client: grpc.Client, xds: XdsConfig, private readonly clusters: ClusterManager | undefined, logger: Logger,
    private readonly onListeners?: ListenersHandler, private readonly onAuthorization?: AuthorizationHandler) {
    super(client, ADS_METHOD, xds, logger, 'ADS');
    const types = [...(clusters ? [TYPE_CLUSTER, TYPE_CLUSTER_LOAD_ASSIGNMENT] : []), ...(onListeners ? [TYPE_LISTENER] : []), ...(onAuthorization ? [TYPE_AUTHORIZATION_POLICY] : [])];
    for (const t of types) this.statuses.set(t, { typeUrl: t, ...newUpdateStatus() });
  }

  protected onOpen(): void {
    this.nonces.clear();
    // Envoy's order: clusters before the listeners whose routes name them.
    let node: Plain | undefined = nodeOf(this.xds);
    if (this.clusters) {
      this.write({ node, type_url: TYPE_CLUSTER, resource_names: [], version_info: this.status(TYPE_CLUSTER).versionInfo });
      node = undefined;
    }
    if (this.onListeners) {
      this.write({ ...(node ? { node } : {}), type_url: TYPE_LISTENER, resource_names: [], version_info: this.status(TYPE_LISTENER).versionInfo });
      node = undefined;
    }
    if (this.onAuthorization) this.write({ ...(node ? { node } : {}), type_url: TYPE_AUTHORIZATION_POLICY, resource_names: [], version_info: this.status(TYPE_AUTHORIZATION_POLICY).versionInfo });
    if (this.edsClusters.size > 0) this.requestEds();
  }

  private status(typeUrl: string): TypeStatus {
    return this.statuses.get(typeUrl)!;
  }

  private requestEds(error?: string): void {
    this.write({
      type_url: TYPE_CLUSTER_LOAD_ASSIGNMENT,
      resource_names: [...this.edsClusters.keys()].sort(),
      version_info: this.status(TYPE_CLUSTER_LOAD_ASSIGNMENT).versionInfo,
      response_nonce: this.nonces.get(TYPE_CLUSTER_LOAD_ASSIGNMENT) ?? '',
      ...(error ? { error_detail: { code: INVALID_ARGUMENT, message: error } } : {}),
    });
  }

  protected onResponse(resp: Plain): void {
    const typeUrl = String(resp.type_url);
    const status = this.statuses.get(typeUrl);
    if (!status) {
      this.logger.log('warn', `ADS: ignoring a response of type ${typeUrl}`);
      return;
    }
    this.nonces.set(typeUrl, String(resp.nonce ?? ''));
    const version = String(resp.version_info ?? '');
    if (typeUrl === TYPE_LISTENER) {
      this.ldsQueue = this.ldsQueue.then(() => this.applyListeners(resp, status, version));
      return;
    }
    if (typeUrl === TYPE_AUTHORIZATION_POLICY) {
      this.applyAuthorization(resp, status, version);
      return;
    }
    let error: string | undefined;
    let edsNamesChanged = false;
    try {
      const resources = ((resp.resources ?? []) as Plain[]).map((any, i) => {
        if (any.type_url !== typeUrl) throw new Error(`resources[${i}].type_url ${any.type_url} is not ${typeUrl}`);
        return toPlain(typeOfUrl(typeUrl), any.value ?? new Uint8Array());
      });
      if (typeUrl === TYPE_CLUSTER) edsNamesChanged = this.applyClusters(resources);
      else this.applyEndpoints(resources);
      recordAccepted(status, version);
    } catch (err) {
      error = (err as Error).message;
      recordRejected(status, version, error);
      this.logger.log('warn', `ADS: rejected ${typeUrl} version ${version}: ${error}`);
    }
    if (typeUrl === TYPE_CLUSTER_LOAD_ASSIGNMENT) {
      this.requestEds(error);
      if (!error) this.firstEds?.();
      return;
    }
    this.write({
      type_url: TYPE_CLUSTER, resource_names: [], version_info: status.versionInfo, response_nonce: this.nonces.get(TYPE_CLUSTER),
      ...(error ? { error_detail: { code: INVALID_ARGUMENT, message: error } } : {}),
    });
    if (edsNamesChanged) this.requestEds();
    if (!error && this.edsClusters.size === 0) this.firstEds?.();
  }

  private async applyListeners(resp: Plain, status: TypeStatus, version: string): Promise<void> {
    let error: string | undefined;
    try {
      const listeners = ((resp.resources ?? []) as Plain[]).map((any, i) => {
        if (any.type_url !== TYPE_LISTENER) throw new Error(`resources[${i}].type_url ${any.type_url} is not ${TYPE_LISTENER}`);
        return toPlain(typeOfUrl(TYPE_LISTENER), any.value ?? new Uint8Array());
      });
      error = await this.onListeners!(listeners, version);
    } catch (err) {
      error = (err as Error).message;
    }
    if (error) {
      recordRejected(status, version, error);
      this.logger.log('warn', `ADS: rejected ${TYPE_LISTENER} version ${version}: ${error}`);
    } else {
      recordAccepted(status, version);
      this.firstLds?.();
    }
    this.write({
      type_url: TYPE_LISTENER, resource_names: [], version_info: status.versionInfo, response_nonce: String(resp.nonce ?? ''),
      ...(error ? { error_detail: { code: INVALID_ARGUMENT, message: error } } : {}),
    });
  }

  private applyAuthorization(resp: Plain, status: TypeStatus, version: string): void {
    let error: string | undefined;
    try {
      const policies = ((resp.resources ?? []) as Plain[]).map((any, i) => {
        if (any.type_url !== TYPE_AUTHORIZATION_POLICY) throw new Error(`resources[${i}].type_url ${any.type_url} is not ${TYPE_AUTHORIZATION_POLICY}`);
        return toPlain(typeOfUrl(TYPE_AUTHORIZATION_POLICY), any.value ?? new Uint8Array());
      });
      error = this.onAuthorization!(policies, version);
    } catch (err) {
      error = (err as Error).message;
    }
    if (error) {
      recordRejected(status, version, error);
      this.logger.log('warn', `ADS: rejected AuthorizationPolicies version ${version}: ${error}; the last accepted policies stay in force`);
    } else {
      recordAccepted(status, version);
      this.firstAuthorization?.();
    }
    this.write({
      type_url: TYPE_AUTHORIZATION_POLICY, resource_names: [], version_info: status.versionInfo, response_nonce: String(resp.nonce ?? ''),
      ...(error ? { error_detail: { code: INVALID_ARGUMENT, message: error } } : {}),
    });
  }

  /** A state-of-the-world CDS update. Returns whether the set of EDS clusters changed. */
  private applyClusters(resources: Plain[]): boolean {
    const parsed = resources.map((c, i) => parseCluster(c, i));
    const names = new Set(parsed.map((p) => p.config.name));
    if (names.size !== parsed.length) throw new Error('resources: duplicate cluster names');
    const before = [...this.edsClusters.keys()].sort().join('\n');
    const eds = new Map<string, ClusterConfig>();
    for (const { config, fromEds } of parsed) {
      if (fromEds) {
        eds.set(config.name, config);
        // Keep the endpoints EDS gave before; only the settings change here.
        const current = this.edsClusters.get(config.name);
        this.clusters!.upsert({ ...config, endpoints: current ? current.endpoints : [] });
      } else {
        this.clusters!.upsert(config);
      }
    }
    this.clusters!.retainDynamic(names);
    this.edsClusters = new Map([...eds].map(([name, c]) => [name, { ...c, endpoints: this.edsClusters.get(name)?.endpoints ?? [] }]));
    return [...eds.keys()].sort().join('\n') !== before;
  }

  private applyEndpoints(resources: Plain[]): void {
    const updates = resources.map((cla, i) => {
      const name = cla.cluster_name;
      if (typeof name !== 'string' || !name) throw new Error(`resources[${i}].cluster_name is required`);
      return { name, endpoints: endpointsOf(cla, `resources[${i}]`) };
    });
    for (const { name, endpoints } of updates) {
      const settings = this.edsClusters.get(name);
      if (!settings) continue; // not (or no longer) an EDS cluster of ours
      const config = { ...settings, endpoints };
      this.edsClusters.set(name, config);
      this.clusters!.upsert(config);
    }
  }
}

function parseCluster(c: Plain, i: number): { config: ClusterConfig; fromEds: boolean } {
  const path = `resources[${i}]`;
  if (typeof c.name !== 'string' || !c.name) throw new Error(`${path}.name is required`);
  const type = c.type ?? 'STATIC';
  if (!['STATIC', 'EDS', 'STRICT_DNS', 'LOGICAL_DNS'].includes(type)) throw new Error(`${path}.type ${type} is not supported`);
  const timeout = ms(c.connect_timeout, 1000);
  const fromEds = type === 'EDS';
  return {
    fromEds,
    config: {
      name: c.name,
      endpoints: fromEds ? [] : endpointsOf(c.load_assignment ?? {}, `${path}.load_assignment`),
      lbPolicy: lbPolicyOf(c.lb_policy, path),
      connectTimeoutMs: timeout > 0 ? timeout : 1000,
      connectionsPerEndpoint: 1,
      ...UPSTREAM_LIMIT_DEFAULTS,
      ...breakersOf(c.circuit_breakers, `${path}.circuit_breakers`),
      ...(c.outlier_detection ? { outlierDetection: outlierOf(c.outlier_detection) } : {}),
      ...(c.least_request_lb_config?.choice_count ? { leastRequestChoiceCount: Math.max(2, Number(c.least_request_lb_config.choice_count.value ?? 2)) } : {}),
      ...(c.common_lb_config?.healthy_panic_threshold ? { healthyPanicThreshold: Number(c.common_lb_config.healthy_panic_threshold.value ?? 0) } : {}),
    },
  };
}

const ms = (d: Plain | undefined, fallback: number) => (d ? Math.round(durationToMs(d)) : fallback);

/** Envoy's outlier_detection with its defaults (consecutive_5xx 5, gateway failures 5, 30 s, 10%). */
function outlierOf(o: Plain): NonNullable<ClusterConfig['outlierDetection']> {
  // Envoy enforces gateway-failure ejection only at enforcing_consecutive_gateway_failure > 0 (default 0).
  const gatewayEnforced = Number(o.enforcing_consecutive_gateway_failure?.value ?? 0) > 0;
  const enforced5xx = o.enforcing_consecutive_5xx === undefined || Number(o.enforcing_consecutive_5xx.value ?? 0) > 0;
  return {
    consecutiveErrors: enforced5xx ? Number(o.consecutive_5xx?.value ?? 5) : 0,
    consecutiveGatewayFailures: gatewayEnforced ? Number(o.consecutive_gateway_failure?.value ?? 5) : 0,
    baseEjectionMs: ms(o.base_ejection_time, 30_000),
    maxEjectionPercent: Math.min(100, Number(o.max_ejection_percent?.value ?? 10)),
    intervalMs: Math.max(1, ms(o.interval, 10_000)),
  };
}

/** Envoy's circuit_breakers: the DEFAULT-priority thresholds (HIGH is not used by meltemi). */
function breakersOf(cb: Plain | undefined, path: string): Pick<ClusterConfig, 'circuitBreakers' | 'retryBudget'> | Record<string, never> {
  const t = ((cb?.thresholds ?? []) as Plain[]).find((x) => (x.priority ?? 'DEFAULT') === 'DEFAULT');
  if (!t) return {};
  const d = UPSTREAM_LIMIT_DEFAULTS.circuitBreakers;
  const n = (v: Plain | undefined, fallback: number) => (v?.value === undefined ? fallback : Number(v.value));
  const budget = t.retry_budget as Plain | undefined;
  const percent = budget ? n(budget.budget_percent, 20) : UPSTREAM_LIMIT_DEFAULTS.retryBudget.percent;
  if (!(percent >= 0 && percent <= 100)) throw new Error(`${path}.thresholds.retry_budget.budget_percent must be 0-100`);
  return {
    circuitBreakers: {
      maxConnections: n(t.max_connections, d.maxConnections),
      maxPendingRequests: n(t.max_pending_requests, d.maxPendingRequests),
      maxRequests: n(t.max_requests, d.maxRequests),
      maxRetries: n(t.max_retries, d.maxRetries),
    },
    retryBudget: budget ? { percent, minConcurrency: n(budget.min_retry_concurrency, 3) } : UPSTREAM_LIMIT_DEFAULTS.retryBudget,
  };
}

/** Envoy's lb_policy as meltemi's; MAGLEV is served by the ring hash (the same consistency, another table). */
const LB_POLICIES: Record<string, LbPolicy> = { ROUND_ROBIN: 'round_robin', LEAST_REQUEST: 'least_request', RANDOM: 'random', RING_HASH: 'ring_hash', MAGLEV: 'ring_hash' };

function lbPolicyOf(policy: unknown, path: string): LbPolicy {
  if (policy === undefined) return 'round_robin';
  const p = LB_POLICIES[String(policy)];
  if (!p) throw new Error(`${path}.lb_policy ${String(policy)} is not supported (${Object.keys(LB_POLICIES).join(', ')})`);
  return p;
}

function endpointsOf(cla: Plain, path: string): EndpointConfig[] {
  const out: EndpointConfig[] = [];
  (cla.endpoints ?? []).forEach((locality: Plain, i: number) => {
    (locality.lb_endpoints ?? []).forEach((lb: Plain, j: number) => {
      const sock = lb.endpoint?.address?.socket_address;
      if (!sock?.address || !sock.port_value) throw new Error(`${path}.endpoints[${i}].lb_endpoints[${j}].endpoint.address.socket_address needs address and port_value`);
      if (lb.health_status === 'UNHEALTHY' || lb.health_status === 'DRAINING') return;
      out.push({ address: sock.address, port: sock.port_value });
    });
  });
  return out;
}
