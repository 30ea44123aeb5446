// The validated configuration. Field names follow the MetaProtocol proxy protos (route.proto,
// Envoy's HeaderMatcher/WeightedCluster) in snake_case, so static config and RDS share one model.

import type { OverloadConfig } from '../proxy/overload-manager';
import type tls from 'node:tls';
import type { LbPolicy } from '../upstream/load-balancer';
import type { PeerAuthenticationMode } from '../security/downstream-tls';
import type { CertificateFiles } from '../security/file-certificate-source';
import type { SdsConfig } from '../security/sds-certificate-source';
import type { UpstreamTlsConfig } from '../security/upstream-tls';

export interface Config {
  readonly admin: AdminConfig | undefined;
  readonly plugins: PluginsConfig;
  readonly listeners: readonly ListenerConfig[];
  readonly clusters: readonly ClusterConfig[];
  readonly logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** The xDS server that listeners with `rds` fetch their routes from. */
  readonly xds: XdsConfig | undefined;
  readonly overload: OverloadConfig;
  readonly telemetry: TelemetryConfig;
  /** Transparent capture: the virtual listeners iptables redirects to (docs/sidecar.md). */
  readonly capture: CaptureConfig;
  /** Graceful shutdown on SIGTERM and POST /drain. */
  readonly drain: DrainConfig;
  /** Workload identity, mTLS and authorization (docs/security.md). */
  readonly security: SecurityConfig;
}

/** An AuthorizationPolicy as written: plain data, so the config can cross to worker threads. */
export interface AuthorizationPolicySpec {
  readonly name: string;
  readonly spec: unknown;
}

export interface SecurityConfig {
  /** The workload certificate, key and trust bundle (none: no mTLS either way). */
  readonly certificates: (({ readonly kind: 'files' } & CertificateFiles) | ({ readonly kind: 'sds' } & SdsConfig)) | undefined;
  /** Trust domains whose workloads are accepted as peers (empty: the workload certificate's own). */
  readonly trustDomains: readonly string[];
  readonly minTlsVersion: tls.SecureVersion;
  readonly maxTlsVersion: tls.SecureVersion;
  /** An inbound TLS handshake (or the first bytes, to peek at) must be done within this. */
  readonly handshakeTimeoutMs: number;
  /** PeerAuthentication of inbound listeners that set none (PERMISSIVE with certificates, as Istio's default). */
  readonly peerAuthentication: PeerAuthenticationMode;
  /** Static AuthorizationPolicies (validated specs: compiled by each proxy thread), applied to every inbound listener. */
  readonly authorization: readonly AuthorizationPolicySpec[];
  /** Inbound listeners run the authorization filter: static policies, or policies from the control plane (xds.authorization). */
  readonly authorizationEnabled: boolean;
}

/** mTLS to the xDS server with the workload certificate. */
export interface XdsTlsConfig {
  /** SNI and the DNS name checked in the server's certificate (default: xds.address), unless `subjectAltNames` is set. */
  readonly serverName: string | undefined;
  /** SPIFFE IDs the server may have; when set, they replace the DNS name check. */
  readonly subjectAltNames: readonly string[];
}

/** One virtual listener of transparent capture (Istio's 15001 outbound, 15006 inbound). */
export interface VirtualListenerConfig {
  readonly address: string;
  readonly port: number;
  /** Source address of inbound pass-through connections (127.0.0.6, as Istio's, which the capture rules let through). */
  readonly passthroughSource: string | undefined;
  readonly connectTimeoutMs: number;
  /** A pass-through connection with no bytes either way for this long is closed. */
  readonly idleTimeoutMs: number;
}

export interface CaptureConfig {
  readonly outbound: VirtualListenerConfig | undefined;
  readonly inbound: VirtualListenerConfig | undefined;
}

/**
 * SIGTERM or POST /drain: readiness fails, listeners stop accepting, idle connections close,
 * in-flight requests finish; SIGTERM then exits once no connection is left (never before
 * `minDurationMs`) or when `timeoutMs` has passed.
 */
export interface DrainConfig {
  readonly timeoutMs: number;
  readonly minDurationMs: number;
}

/** A listener accepts the PROXY protocol (v1 and v2); `allowWithout`: connections without a header are served too. */
export interface ProxyProtocolAcceptConfig {
  readonly allowWithout: boolean;
}

/** Istio's standard metrics, access logs and tracing (runtime/telemetry/). */
export interface TelemetryConfig {
  /** Who this proxy is, for metric labels and the metadata exchange (defaults: node metadata, then the pod's environment). */
  readonly workload: Readonly<Partial<Record<'workload' | 'namespace' | 'app' | 'version' | 'canonicalService' | 'canonicalRevision' | 'cluster', string>>>;
  /** istio_requests_total and the other standard metrics on /metrics. */
  readonly istioMetrics: boolean;
  /** Access logs of every listener. */
  readonly accessLog: readonly AccessLogConfig[];
  readonly tracing: TracingConfig | undefined;
}

export interface AccessLogConfig {
  /** A file (appended to), or /dev/stdout, /dev/stderr. */
  readonly path: string;
  readonly format: { readonly kind: 'text'; readonly text: string } | { readonly kind: 'json'; readonly fields: Readonly<Record<string, string>> };
  readonly filter: AccessLogFilterConfig;
  /** Where it was configured, for errors (`telemetry.access_log[0]`, an LDS listener's field). */
  readonly field: string;
}

export interface AccessLogFilterConfig {
  /** Only requests that ended in an error response or with a response flag. */
  readonly errorsOnly: boolean;
  readonly minDurationMs: number;
  /** Only requests with one of these response flags (empty: any). */
  readonly responseFlags: readonly string[];
  /** The share of requests logged, 0-100. */
  readonly samplePercent: number;
}

export interface TracingConfig {
  /** Requests without a trace context that start a sampled trace, in percent (Istio's default: 1). */
  readonly samplingPercent: number;
  /** The OTLP/gRPC collector spans are exported to. */
  readonly otlp: { readonly address: string; readonly port: number; readonly timeoutMs: number };
  /** service.name of the spans (default: the workload's canonical service). */
  readonly serviceName: string | undefined;
  readonly flushIntervalMs: number;
  /** Spans waiting for export; past it, new ones are dropped (a slow collector costs spans, not memory). */
  readonly maxQueueSize: number;
  readonly maxTagLength: number;
}

/** Which side of a service a listener is on: Istio's reporter (source on outbound, destination on inbound). */
export type TrafficDirection = 'outbound' | 'inbound';

export interface XdsConfig {
  readonly address: string;
  readonly port: number;
  readonly node: { readonly id: string; readonly cluster: string; readonly metadata: Readonly<Record<string, string>> };
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  /** Fetch clusters and endpoints over ADS (CDS + EDS). */
  readonly ads: boolean;
  /** Fetch listeners over ADS (LDS): Listener resources whose network filter is a MetaProtocolProxy. */
  readonly lds: boolean;
  /** How long the connections of a listener LDS removed or moved may take to finish. */
  readonly drainTimeoutMs: number;
  /** How long a listener with `rds` waits for its first routes before it opens anyway (Envoy: 15 s). */
  readonly initialFetchTimeoutMs: number;
  /** mTLS to the server with the workload certificate (security.certificates). */
  readonly tls?: XdsTlsConfig;
  /** Subscribe to AuthorizationPolicies over ADS (meltemi's control plane serves them). */
  readonly authorization?: boolean;
}

export interface AdminConfig {
  readonly address: string;
  readonly port: number;
  /** A Unix socket also served (mode 0600); changes over it need no token. */
  readonly socket: string | undefined;
  /** File holding the bearer token that authorises changes over the TCP port. */
  readonly tokenFile: string | undefined;
  /** Host names requests may address besides loopback names and IP literals. */
  readonly allowedHosts: readonly string[];
}

export interface PluginsConfig {
  readonly directory: string;
  /** Reload plugins when files in the directory change (also on SIGHUP and POST /plugins/reload). */
  readonly watch: boolean;
  /** Guest memory above which a plugin instance is replaced. */
  readonly maxMemoryBytes: number;
  /** Fuel (instructions) one plugin call may use before it counts as stuck (0: off). */
  readonly fuelPerCall: number;
  /** Largest plugin file the loader reads. */
  readonly maxFileBytes: number;
  /** Time one plugin may take from read to passed self-test before its compile worker is stopped. */
  readonly loadTimeoutMs: number;
}

/** `shared`: many clients multiplexed onto pooled upstream connections; `per_client`: each client owns its upstream connections. */
export type UpstreamConnectionMode = 'shared' | 'per_client';

export interface ListenerConfig {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  /** Protocol name of the codec (a plugin's descriptor `protocol`). */
  readonly protocol: string;
  readonly codecConfig: Readonly<Record<string, unknown>>;
  readonly maxFrameSize: number;
  readonly upstreamConnection: UpstreamConnectionMode;
  /** In-flight requests per downstream connection above which the proxy stops reading it. */
  readonly maxInflightPerConnection: number;
  /** Open connections above which new ones are closed at once. */
  readonly maxConnections: number;
  /** A connection with nothing in flight and no bytes either way for this long is closed (0: never). */
  readonly idleTimeoutMs: number;
  /** Static routes; empty when the listener uses `rds`. */
  /** L7 filters, run in order on requests and in reverse on responses, before the router. */
  readonly filters: readonly FilterConfig[];
  readonly routeConfig: RouteConfiguration;
  /** Routes fetched over RDS under this name (Aeraki: `<service host>_<port>`). */
  /**
   * Routes from RDS. `validateClusters` (Envoy's validate_clusters, false by default for RDS):
   * NACK an update that names a cluster this proxy does not have, instead of accepting it and
   * answering matching requests with an error.
   */
  readonly rds: { readonly routeConfigName: string; readonly validateClusters: boolean } | undefined;
  /** Envoy's traffic_direction (default outbound): the reporter of Istio's metrics, the kind of spans. */
  readonly trafficDirection?: TrafficDirection;
  /** Exchange workload identities with a peer sidecar in request and response metadata (MetaProtocol Proxy's metadata_exchange). */
  readonly metadataExchange?: boolean;
  /** Inbound: the service this listener fronts (Istio's destination_service; IstioStats' destination_service). */
  readonly destinationService?: string;
  /** Access logs of this listener only (LDS access_log), besides telemetry.access_log. */
  readonly accessLog?: readonly AccessLogConfig[];
  /** This listener's sampling rate (LDS tracing.random_sampling), instead of telemetry.tracing's. */
  readonly tracingSamplingPercent?: number;
  /** Istio's standard metrics for this listener (LDS: the istio_stats filter); default telemetry.istio_metrics. */
  readonly istioMetrics?: boolean;
  /**
   * false: the listener binds no socket and is reached only through capture, for connections whose
   * original destination is its address (0.0.0.0: any) and port (Envoy's bind_to_port).
   */
  readonly bindToPort?: boolean;
  /** Read a PROXY protocol header before the first message: the client's address comes from it. */
  readonly proxyProtocol?: ProxyProtocolAcceptConfig;
  /** PeerAuthentication of this listener (default: security.peer_authentication for inbound listeners, DISABLE for outbound). */
  readonly peerAuthentication?: PeerAuthenticationMode;
}

/** One entry of a listener's `filters:` list: a filter plugin by name, and its config. */
export interface FilterConfig {
  readonly name: string;
  readonly config: Readonly<Record<string, unknown>>;
  readonly failurePolicy: 'fail_closed' | 'fail_open';
  /** Where the entry came from, for errors (an LDS listener's Envoy field); default `listeners[i].filters[j]`. */
  readonly field?: string;
}

export interface RouteConfiguration {
  readonly name: string;
  readonly routes: readonly RouteConfig[];
}

export interface RouteConfig {
  readonly name: string;
  readonly match: RouteMatchConfig;
  readonly route: RouteActionConfig;
  readonly requestMutation: readonly KeyValue[];
}

export interface RouteMatchConfig {
  /** ANDed; an empty list matches every message. */
  readonly metadata: readonly MetadataMatcherConfig[];
}

export type StringMatch =
  | { readonly kind: 'exact'; readonly value: string }
  | { readonly kind: 'prefix'; readonly value: string }
  | { readonly kind: 'suffix'; readonly value: string }
  | { readonly kind: 'contains'; readonly value: string }
  | { readonly kind: 'regex'; readonly value: string }
  | { readonly kind: 'present'; readonly value: boolean };

export interface MetadataMatcherConfig {
  readonly name: string;
  readonly match: StringMatch;
  readonly invert: boolean;
}

export interface WeightedClusterConfig {
  readonly name: string;
  readonly weight: number;
}

export type RouteActionConfig = (
  | { readonly kind: 'cluster'; readonly cluster: string }
  | { readonly kind: 'weighted_clusters'; readonly clusters: readonly WeightedClusterConfig[] }
) & {
  /** Metadata keys whose values pick an endpoint by consistent hashing (Aeraki hash_policy). */
  readonly hashPolicy?: readonly string[];
  /** Traffic mirroring (Aeraki request_mirror_policies); percentage 0-100. */
  readonly mirrors?: readonly { readonly cluster: string; readonly percentage: number }[];
  /** The whole request, retries included (Envoy's route timeout; absent: 15 s; 0: none). */
  readonly timeoutMs?: number;
  readonly retryPolicy?: RetryPolicyConfig;
};

/** What a failed try may be retried on (Envoy's retry_on, for any protocol). */
export const RETRY_ON = ['connect-failure', 'reset', 'timeout', 'error', 'refused'] as const;
export type RetryOn = typeof RETRY_ON[number];

export interface RetryPolicyConfig {
  readonly retryOn: readonly RetryOn[];
  /** Retries after the first try (Envoy default 1). */
  readonly numRetries: number;
  /** Each try's own deadline (0: none; the route timeout still bounds the whole). */
  readonly perTryTimeoutMs: number;
  /** Exponential back-off with full jitter between tries (Envoy: 25 ms, 10x that at most). */
  readonly backOff: { readonly baseMs: number; readonly maxMs: number };
  /** Every request this route matches may be sent twice (else only those the codec marks). */
  readonly idempotent: boolean;
}

/** Envoy's and generic_proxy's default route timeout. */
export const DEFAULT_ROUTE_TIMEOUT_MS = 15_000;

export interface KeyValue {
  readonly key: string;
  readonly value: string;
}

export interface EndpointConfig {
  readonly address: string;
  readonly port: number;
}

/** Defaults of the per-connection containment limits (validate.ts, CDS, the control plane). */
export const UPSTREAM_LIMIT_DEFAULTS = {
  maxPendingRequestsPerConnection: 65_536,
  maxQueuedBytesPerConnection: 64 * 1024 * 1024,
  retryBudget: { percent: 50, minConcurrency: 10 },
  circuitBreakers: { maxConnections: 2 ** 31 - 1, maxPendingRequests: 2 ** 31 - 1, maxRequests: 2 ** 31 - 1, maxRetries: 2 ** 31 - 1 },
} as const;

export interface ClusterConfig {
  readonly name: string;
  readonly endpoints: readonly EndpointConfig[];
  readonly lbPolicy: LbPolicy;
  readonly connectTimeoutMs: number;
  /** Shared connections per endpoint (`shared` listeners). */
  readonly connectionsPerEndpoint: number;
  /** Requests sent or queued on one upstream connection and not yet answered; past it, over-limit replies. */
  readonly maxPendingRequestsPerConnection: number;
  /** Bytes queued for one upstream connection that is not reading; past it, over-limit replies. */
  readonly maxQueuedBytesPerConnection: number;
  /**
   * Envoy's retry budget: requests being retried may be at most `percent` of the cluster's active
   * requests (never fewer than `minConcurrency`), so retries cannot multiply an outage's load.
   */
  readonly retryBudget: RetryBudgetConfig;
  /** Envoy's circuit breaker thresholds for the whole cluster (unlimited unless set, as Istio leaves them). */
  readonly circuitBreakers: CircuitBreakersConfig;
  /** least_request: endpoints drawn per pick (Envoy's least_request_lb_config.choice_count, 2). */
  readonly leastRequestChoiceCount?: number;
  /** peak_ewma: how fast an endpoint's latency estimate decays while it gets no answers (10 s). */
  readonly peakEwmaDecayMs?: number;
  /** Passive health by results (off unless set). */
  readonly outlierDetection?: OutlierDetectionConfig;
  /** Below this share (%) of endpoints not ejected, ejection is ignored (Envoy's healthy_panic_threshold, 50). */
  readonly healthyPanicThreshold?: number;
  /** Send a PROXY protocol header of this version on each new connection (then each client's connections are its own). */
  readonly proxyProtocol?: 1 | 2;
  /** mTLS to the cluster's endpoints with the workload certificate (Istio's ISTIO_MUTUAL). */
  readonly tls?: UpstreamTlsConfig;
}

/** Envoy's outlier_detection, for any protocol: an error response from the codec counts as a 5xx. */
export interface OutlierDetectionConfig {
  /** Consecutive error responses that eject an endpoint (0: not by errors). */
  readonly consecutiveErrors: number;
  /** Consecutive connect failures, resets and timeouts that eject it (0: not by those). */
  readonly consecutiveGatewayFailures: number;
  /** Ejection time: this × the number of times the endpoint was ejected (at most 300 s). */
  readonly baseEjectionMs: number;
  /** At most this share (%) of endpoints ejected at once (at least one). */
  readonly maxEjectionPercent: number;
  /** Each interval back in service takes one off an endpoint's ejection multiplier (Envoy: 10 s). */
  readonly intervalMs: number;
}

export interface CircuitBreakersConfig {
  /** Upstream connections open to the cluster. */
  readonly maxConnections: number;
  /** Requests waiting for a connection to open. */
  readonly maxPendingRequests: number;
  /** Requests sent to the cluster and not answered. */
  readonly maxRequests: number;
  /** Requests being retried at once. */
  readonly maxRetries: number;
}

export interface RetryBudgetConfig {
  readonly percent: number;
  readonly minConcurrency: number;
}

/**
 * Half the active requests: one failed endpoint of two or three has all its requests retried,
 * and retries can at most add half again to the load. (Envoy's budget_percent default is 20.)
 */
export const RETRY_BUDGET_DEFAULT: RetryBudgetConfig = { percent: 50, minConcurrency: 10 };
