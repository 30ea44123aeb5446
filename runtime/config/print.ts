// The effective config (defaults filled in) in the input's own field names, so `meltemi validate`
// prints something that `meltemi run --config` accepts as it is and that means the same.

import type { VirtualListenerConfig, AccessLogConfig, ClusterConfig, Config, ListenerConfig, MetadataMatcherConfig, RouteConfig, TelemetryConfig, SecurityConfig } from './types';

type Plain = Record<string, unknown>;

const ms = (v: number) => `${v}ms`;

export function toInputConfig(config: Config): Plain {
  const o: Plain = { log_level: config.logLevel };
  if (config.admin) {
    const a = config.admin;
    o.admin = {
      address: a.address, port: a.port,
      ...(a.socket ? { socket: a.socket } : {}),
      ...(a.tokenFile ? { token_file: a.tokenFile } : {}),
      allowed_hosts: [...a.allowedHosts],
    };
  }
  const p = config.plugins;
  o.plugins = {
    directory: p.directory, watch: p.watch, max_memory: p.maxMemoryBytes, fuel_per_call: p.fuelPerCall,
    max_file_size: p.maxFileBytes, load_timeout: ms(p.loadTimeoutMs),
  };
  if (config.xds) {
    const x = config.xds;
    o.xds = {
      address: x.address, port: x.port, ads: x.ads, lds: x.lds,
      node: { id: x.node.id, cluster: x.node.cluster, metadata: { ...x.node.metadata } },
      initial_backoff: ms(x.initialBackoffMs), max_backoff: ms(x.maxBackoffMs), initial_fetch_timeout: ms(x.initialFetchTimeoutMs), drain_timeout: ms(x.drainTimeoutMs),
      ...(x.tls ? { tls: { ...(x.tls.serverName ? { server_name: x.tls.serverName } : {}), ...(x.tls.subjectAltNames.length ? { subject_alt_names: [...x.tls.subjectAltNames] } : {}) } } : {}),
      ...(x.authorization ? { authorization: true } : {}),
    };
  }
  o.security = security(config.security);
  const ov = config.overload;
  o.overload = {
    max_downstream_connections: ov.maxDownstreamConnections, memory_limit: ov.memoryLimitBytes,
    stop_accepting_at: ov.stopAcceptingAt, shed_requests_at: ov.shedRequestsAt, refresh_interval: ms(ov.refreshIntervalMs),
  };
  o.telemetry = telemetry(config.telemetry);
  const virtual = (v: VirtualListenerConfig | undefined) => v && {
    address: v.address, port: v.port, ...(v.passthroughSource ? { passthrough_source: v.passthroughSource } : {}),
    connect_timeout: ms(v.connectTimeoutMs), idle_timeout: ms(v.idleTimeoutMs),
  };
  const { outbound, inbound } = config.capture;
  if (outbound || inbound) o.capture = { ...(outbound ? { outbound: virtual(outbound) } : {}), ...(inbound ? { inbound: virtual(inbound) } : {}) };
  o.drain = { timeout: ms(config.drain.timeoutMs), min_duration: ms(config.drain.minDurationMs) };
  o.listeners = config.listeners.map(listener);
  o.clusters = config.clusters.map(cluster);
  return o;
}

function security(s: SecurityConfig): Plain {
  const c = s.certificates;
  return {
    ...(c?.kind === 'files' ? { certificates: { files: { cert_chain: c.certChain, private_key: c.privateKey, trust_bundle: c.trustBundle, refresh_interval: ms(c.refreshIntervalMs) } } } : {}),
    ...(c?.kind === 'sds' ? { certificates: { sds: { socket: c.socket, certificate: c.certificateName, trust_bundle: c.trustBundleName, initial_fetch_timeout: ms(c.initialFetchTimeoutMs), initial_backoff: ms(c.initialBackoffMs), max_backoff: ms(c.maxBackoffMs) } } } : {}),
    trust_domains: [...s.trustDomains],
    min_tls_version: s.minTlsVersion,
    max_tls_version: s.maxTlsVersion,
    handshake_timeout: ms(s.handshakeTimeoutMs),
    peer_authentication: { mode: s.peerAuthentication },
    ...(s.authorization.length ? { authorization: s.authorization.map((p) => ({ name: p.name, spec: p.spec })) } : {}),
  };
}

function telemetry(t: TelemetryConfig): Plain {
  const w = t.workload;
  const workload: Plain = {
    ...(w.workload ? { workload: w.workload } : {}), ...(w.namespace ? { namespace: w.namespace } : {}),
    ...(w.app ? { app: w.app } : {}), ...(w.version ? { version: w.version } : {}),
    ...(w.canonicalService ? { canonical_service: w.canonicalService } : {}), ...(w.canonicalRevision ? { canonical_revision: w.canonicalRevision } : {}),
    ...(w.cluster ? { cluster: w.cluster } : {}),
  };
  const tr = t.tracing;
  return {
    ...(Object.keys(workload).length ? { workload } : {}),
    istio_metrics: t.istioMetrics,
    ...(t.accessLog.length ? { access_log: t.accessLog.map(accessLog) } : {}),
    ...(tr ? {
      tracing: {
        sampling: tr.samplingPercent, otlp: { address: tr.otlp.address, port: tr.otlp.port, timeout: ms(tr.otlp.timeoutMs) },
        ...(tr.serviceName ? { service_name: tr.serviceName } : {}),
        flush_interval: ms(tr.flushIntervalMs), max_queue_size: tr.maxQueueSize, max_tag_length: tr.maxTagLength,
      },
    } : {}),
  };
}

function accessLog(a: AccessLogConfig): Plain {
  const f = a.filter;
  return {
    path: a.path,
    ...(a.format.kind === 'json' ? { json_format: { ...a.format.fields } } : { format: a.format.text }),
    filter: { errors_only: f.errorsOnly, min_duration: ms(f.minDurationMs), response_flags: [...f.responseFlags], sample_percent: f.samplePercent },
  };
}

function listener(l: ListenerConfig): Plain {
  return {
    name: l.name, address: l.address, port: l.port, protocol: l.protocol,
    ...(Object.keys(l.codecConfig).length ? { codec_config: l.codecConfig } : {}),
    max_frame_size: l.maxFrameSize, upstream_connection: l.upstreamConnection,
    max_inflight_per_connection: l.maxInflightPerConnection, max_connections: l.maxConnections, idle_timeout: ms(l.idleTimeoutMs),
    ...(l.filters.length ? { filters: l.filters.map((f) => ({ name: f.name, config: f.config, failure_policy: f.failurePolicy })) } : {}),
    ...(l.rds
      ? { rds: { route_config_name: l.rds.routeConfigName, validate_clusters: l.rds.validateClusters } }
      : { route_config: { name: l.routeConfig.name, routes: l.routeConfig.routes.map(route) } }),
    traffic_direction: l.trafficDirection ?? 'outbound',
    metadata_exchange: l.metadataExchange ?? false,
    ...(l.destinationService !== undefined ? { destination_service: l.destinationService } : {}),
    ...(l.accessLog?.length ? { access_log: l.accessLog.map(accessLog) } : {}),
    ...(l.istioMetrics !== undefined ? { istio_metrics: l.istioMetrics } : {}),
    ...(l.bindToPort === false ? { bind_to_port: false } : {}),
    ...(l.proxyProtocol ? { proxy_protocol: { allow_without: l.proxyProtocol.allowWithout } } : {}),
    ...(l.peerAuthentication ? { peer_authentication: l.peerAuthentication } : {}),
  };
}

function route(r: RouteConfig): Plain {
  const a = r.route;
  const action: Plain = a.kind === 'cluster'
    ? { cluster: a.cluster }
    : { weighted_clusters: { clusters: a.clusters.map((c) => ({ name: c.name, weight: c.weight })) } };
  if (a.hashPolicy) action.hash_policy = [...a.hashPolicy];
  if (a.mirrors) action.request_mirror_policies = a.mirrors.map((m) => ({ cluster: m.cluster, percentage: m.percentage }));
  if (a.timeoutMs !== undefined) action.timeout = ms(a.timeoutMs);
  if (a.retryPolicy) {
    const r = a.retryPolicy;
    action.retry_policy = {
      retry_on: r.retryOn.join(','), num_retries: r.numRetries, per_try_timeout: ms(r.perTryTimeoutMs),
      retry_back_off: { base_interval: ms(r.backOff.baseMs), max_interval: ms(r.backOff.maxMs) }, idempotent: r.idempotent,
    };
  }
  return {
    name: r.name,
    match: { metadata: r.match.metadata.map(matcher) },
    route: action,
    request_mutation: r.requestMutation.map((kv) => ({ key: kv.key, value: kv.value })),
  };
}

function matcher(m: MetadataMatcherConfig): Plain {
  const o: Plain = { name: m.name };
  switch (m.match.kind) {
    case 'regex': o.safe_regex_match = { regex: m.match.value }; break;
    case 'present': o.present_match = m.match.value; break;
    default: o[`${m.match.kind}_match`] = m.match.value;
  }
  if (m.invert) o.invert_match = true;
  return o;
}

function cluster(c: ClusterConfig): Plain {
  return {
    name: c.name, endpoints: c.endpoints.map((e) => ({ address: e.address, port: e.port })), lb_policy: c.lbPolicy,
    connect_timeout: ms(c.connectTimeoutMs), connections_per_endpoint: c.connectionsPerEndpoint,
    max_pending_requests_per_connection: c.maxPendingRequestsPerConnection, max_queued_bytes_per_connection: c.maxQueuedBytesPerConnection,
    retry_budget: { budget_percent: c.retryBudget.percent, min_retry_concurrency: c.retryBudget.minConcurrency },
    ...(c.outlierDetection ? { outlier_detection: {
      consecutive_5xx: c.outlierDetection.consecutiveErrors, consecutive_gateway_failure: c.outlierDetection.consecutiveGatewayFailures,
      base_ejection_time: ms(c.outlierDetection.baseEjectionMs), max_ejection_percent: c.outlierDetection.maxEjectionPercent, interval: ms(c.outlierDetection.intervalMs),
    } } : {}),
    ...(c.healthyPanicThreshold !== undefined ? { healthy_panic_threshold: c.healthyPanicThreshold } : {}),
    ...(c.proxyProtocol ? { proxy_protocol: `v${c.proxyProtocol}` } : {}),
    ...(c.tls ? { tls: { mode: 'ISTIO_MUTUAL', ...(c.tls.sni ? { sni: c.tls.sni } : {}), ...(c.tls.subjectAltNames.length ? { subject_alt_names: [...c.tls.subjectAltNames] } : {}) } } : {}),
    ...(c.leastRequestChoiceCount !== undefined ? { least_request: { choice_count: c.leastRequestChoiceCount } } : {}),
    ...(c.peakEwmaDecayMs !== undefined ? { peak_ewma: { decay_time: ms(c.peakEwmaDecayMs) } } : {}),
    circuit_breakers: {
      max_connections: c.circuitBreakers.maxConnections, max_pending_requests: c.circuitBreakers.maxPendingRequests,
      max_requests: c.circuitBreakers.maxRequests, max_retries: c.circuitBreakers.maxRetries,
    },
  };
}
