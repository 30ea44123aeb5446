// Turns parsed YAML into a validated `Config`. Errors are `ConfigError`s naming the field.

import { isAbsolute, resolve } from 'node:path';
import { Field } from './field';
import { RETRY_BUDGET_DEFAULT, RETRY_ON, UPSTREAM_LIMIT_DEFAULTS } from './types';
import type { LbPolicy } from '../upstream/load-balancer';

const LB_POLICIES: readonly LbPolicy[] = ['round_robin', 'least_request', 'random', 'ring_hash', 'peak_ewma'];
import type {
  AdminConfig, ClusterConfig, OutlierDetectionConfig, Config, EndpointConfig, FilterConfig, KeyValue, ListenerConfig, MetadataMatcherConfig, PluginsConfig,
  RetryOn, RetryPolicyConfig, RouteActionConfig, RouteConfig, RouteConfiguration, StringMatch,
} from './types';
import { ConfigError } from '../core/errors';
import { readPeerAuthentication, readSecurity, readUpstreamTls, readXdsTls, SECURITY_DEFAULTS } from './validate-security';
import { CAPTURE_DEFAULTS, DRAIN_DEFAULTS, readCapture, readDrain, readProxyProtocolAccept, readProxyProtocolSend } from './validate-sidecar';
import { readAccessLogs, readTelemetry, TELEMETRY_DEFAULTS } from './validate-telemetry';
import { LOG_LEVELS, LogLevel } from '../core/logger';
import { regexProblem } from '../core/safe-regex';
import { cgroupMemoryLimit, defaultMaxDownstreamConnections, type OverloadConfig } from '../proxy/overload-manager';

const NAME = /^[A-Za-z0-9_.|:-]+$/;
const MAX_PORT = 65535;
const DEFAULT_MAX_FRAME = 64 * 1024 * 1024;
/** About 0.1-0.5 s of plugin work in one call: far above any real decode, far below a hang. */
const DEFAULT_FUEL = 2_000_000_000;

/**
 * `baseDir` resolves relative paths (the config file's directory). Every section, listener,
 * route and cluster is checked even after one fails: the ConfigError thrown carries them all.
 */
export function validateConfig(raw: unknown, baseDir: string): Config {
  const { config, errors } = checkConfig(raw, baseDir);
  if (errors.length > 0 || !config) throw ConfigError.of(errors);
  return config;
}

/**
 * Every error, and the config as far as it could be read (invalid parts replaced by defaults or
 * left out): `meltemi validate` runs the start-time checks on the parts that are valid.
 */
export function checkConfig(raw: unknown, baseDir: string): { config: Config | undefined; errors: ConfigError[] } {
  const errors: ConfigError[] = [];
  const root = new Field('', raw ?? {}, errors);
  const config = root.collect(() => readConfig(root, baseDir), undefined);
  return { config, errors };
}

function readConfig(root: Field, baseDir: string): Config {
  root.collect(() => root.only(['admin', 'plugins', 'listeners', 'clusters', 'log_level', 'xds', 'overload', 'telemetry', 'capture', 'drain', 'security']), undefined);
  const clustersField = root.child('clusters');
  const clusters = clustersField.collect(() => clustersField.or((f) => f.items().map((c) => c.collect(() => readCluster(c), undefined)), []), [])
    .filter((c): c is ClusterConfig => c !== undefined);
  root.collect(() => unique((Array.isArray(clustersField.value) ? (clustersField.value as unknown[]) : []).map(nameOf), clustersField, 'name'), undefined);
  // Names as written, so a cluster with another mistake is not also reported as unknown.
  const clusterNames = new Set([...clusters.map((c) => c.name), ...namesIn(clustersField.value)]);
  const xdsField = root.child('xds');
  const xds = xdsField.collect(() => xdsField.or(readXds, undefined), undefined);
  const ldsOn = xds?.lds === true;
  const listenersField = root.child('listeners');
  // One slot per listener as written (undefined where it had errors), so indices stay the input's.
  const slots = listenersField.collect(() => {
    const items = listenersField.present ? listenersField.items() : [];
    if (items.length === 0 && !ldsOn) listenersField.fail('must have at least one listener (or xds.lds: listeners from the control plane)');
    return items.map((f) => f.collect(() => readListener(f, clusterNames, baseDir), undefined));
  }, [] as Array<ListenerConfig | undefined>);
  const written = Array.isArray(listenersField.value) ? (listenersField.value as unknown[]) : [];
  root.collect(() => unique(written.map((l) => nameOf(l)), listenersField, 'name'), undefined);
  // A listener reached only through capture takes no socket: it clashes only with its like on the same side.
  root.collect(() => unique(slots.map((l) => (l && l.port !== 0 ? `${l.bindToPort === false ? `captured ${l.trafficDirection} ` : ''}${l.address}:${l.port}` : undefined)), listenersField, 'address/port'), undefined);
  written.forEach((l, i) => {
    const rds = l && typeof l === 'object' ? (l as Record<string, unknown>).rds : undefined;
    if (rds !== undefined && !xdsField.present) root.collect(() => new Field(`listeners[${i}].rds`, rds).fail('needs a top-level xds server to fetch routes from'), undefined);
  });
  const listeners = slots.filter((l): l is ListenerConfig => l !== undefined);
  const pluginsField = root.child('plugins');
  // Defaults stand in for a section only when it failed (readOverload's read /proc and the cgroup).
  const plugins = pluginsField.collect(() => readPlugins(pluginsField, baseDir), undefined) ?? readPlugins(new Field('plugins', undefined), baseDir);
  const adminField = root.child('admin');
  const logField = root.child('log_level');
  const overloadField = root.child('overload');
  const telemetryField = root.child('telemetry');
  const captureField = root.child('capture');
  const drainField = root.child('drain');
  const securityField = root.child('security');
  return {
    admin: adminField.collect(() => adminField.or((f) => readAdmin(f, baseDir), undefined), undefined),
    plugins,
    listeners,
    clusters,
    logLevel: logField.collect(() => logField.or((f) => f.oneOf(LOG_LEVELS as readonly LogLevel[]), 'info'), 'info'),
    xds,
    overload: overloadField.collect(() => readOverload(overloadField), undefined) ?? readOverload(new Field('overload', undefined)),
    telemetry: telemetryField.collect(() => readTelemetry(telemetryField, baseDir), TELEMETRY_DEFAULTS),
    capture: captureField.collect(() => {
      const capture = readCapture(captureField);
      slots.forEach((l, i) => {
        if (l?.bindToPort !== false) return;
        const at = new Field(`listeners[${i}].bind_to_port`, false, root.errors);
        if (l.port === 0) at.collect(() => at.fail('false needs a port: connections are matched to the listener by their original destination port'), undefined);
        else if (!capture[l.trafficDirection ?? 'outbound']) at.collect(() => at.fail(`false needs capture.${l.trafficDirection ?? 'outbound'}: only captured connections reach this listener`), undefined);
      });
      return capture;
    }, CAPTURE_DEFAULTS),
    drain: drainField.collect(() => readDrain(drainField), DRAIN_DEFAULTS),
    security: securityField.collect(() => {
      const security = readSecurity(securityField, baseDir, xds?.authorization === true);
      if (security.certificates) return security;
      // Without a workload certificate nothing can originate or terminate mTLS: say where it was asked for.
      const needs = (path: string) => new Field(path, undefined, root.errors).collect(() => new Field(path, undefined).fail('needs security.certificates (the workload identity for mTLS)'), undefined);
      slots.forEach((l, i) => { if (l?.peerAuthentication && l.peerAuthentication !== 'DISABLE') needs(`listeners[${i}].peer_authentication`); });
      clusters.forEach((c, i) => { if (c.tls) needs(`clusters[${i}].tls`); });
      if (xds?.tls) needs('xds.tls');
      return security;
    }, SECURITY_DEFAULTS),
  };
}

function namesIn(list: unknown): string[] {
  return (Array.isArray(list) ? list.map(nameOf) : []).filter((n): n is string => n !== undefined);
}

/** `name` of a listener or cluster as written, if it is a string. */
function nameOf(item: unknown): string | undefined {
  const name = item && typeof item === 'object' ? (item as Record<string, unknown>).name : undefined;
  return typeof name === 'string' ? name : undefined;
}

function readPlugins(f: Field, baseDir: string): PluginsConfig {
  if (f.present) f.only(['directory', 'watch', 'max_memory', 'fuel_per_call', 'max_file_size', 'load_timeout']);
  const plugin = <T>(key: string, read: (c: Field) => T, fallback: T): T => (f.present ? f.child(key).or(read, fallback) : fallback);
  const directory = plugin('directory', (d) => d.string({ nonEmpty: true }), 'build/plugins');
  return {
    directory: isAbsolute(directory) ? directory : resolve(baseDir, directory),
    watch: plugin('watch', (w) => w.boolean(), true),
    // Wasm32 memory ends at 4 GiB; the cap is what the module's maximum is rewritten to.
    maxMemoryBytes: plugin('max_memory', (m) => m.integer(64 * 1024, 4 * 1024 ** 3), 512 * 1024 ** 2),
    fuelPerCall: plugin('fuel_per_call', (m) => m.integer(0, 2 ** 31 - 1), DEFAULT_FUEL),
    maxFileBytes: plugin('max_file_size', (m) => m.integer(8, 1024 ** 3), 32 * 1024 ** 2),
    loadTimeoutMs: plugin('load_timeout', (m) => m.durationMs(), 10_000),
  };
}

/** Values by input index (undefined: not checked); a repeat is an error at its own index. */
function unique(values: Array<string | undefined>, field: Field, what: string): void {
  const seen = new Set<string>();
  values.forEach((v, i) => {
    if (v === undefined) return;
    if (seen.has(v)) {
      const repeat = new Field(`${field.path}[${i}].${what === 'address/port' ? 'port' : what}`, v, field.errors);
      repeat.collect(() => repeat.fail(`duplicate ${what} "${v}"`), undefined);
    }
    seen.add(v);
  });
}

function readListener(f: Field, clusters: ReadonlySet<string>, baseDir: string): ListenerConfig {
  f.only(['name', 'address', 'port', 'protocol', 'codec_config', 'max_frame_size', 'upstream_connection', 'max_inflight_per_connection', 'max_connections', 'idle_timeout', 'filters', 'route_config', 'rds',
    'traffic_direction', 'metadata_exchange', 'destination_service', 'access_log', 'istio_metrics', 'bind_to_port', 'proxy_protocol', 'peer_authentication']);
  const name = f.get('name', (c) => c.string({ nonEmpty: true, pattern: NAME }), '');
  const address = f.child('address').or((a) => a.string({ nonEmpty: true }), '127.0.0.1');
  const port = f.get('port', (c) => c.integer(0, MAX_PORT), 0);
  const protocol = f.get('protocol', (c) => c.string({ nonEmpty: true }), '');
  const rdsField = f.child('rds');
  if (rdsField.present === f.child('route_config').present) f.collect(() => f.fail('needs exactly one of route_config or rds'), undefined);
  const rds = rdsField.present ? rdsField.collect(() => ({
    routeConfigName: rdsField.only(['route_config_name', 'validate_clusters']).get('route_config_name', (c) => c.string({ nonEmpty: true }), ''),
    validateClusters: rdsField.child('validate_clusters').or((v) => v.boolean(), false),
  }), undefined) : undefined;
  return {
    name,
    address,
    port,
    protocol,
    codecConfig: f.child('codec_config').or((c) => c.object(), {}),
    maxFrameSize: f.child('max_frame_size').or((c) => c.integer(64, 2 ** 31 - 1), DEFAULT_MAX_FRAME),
    upstreamConnection: f.child('upstream_connection').or((c) => c.oneOf(['shared', 'per_client'] as const), 'shared'),
    maxInflightPerConnection: f.child('max_inflight_per_connection').or((c) => c.integer(1, 1_000_000), 4096),
    maxConnections: f.child('max_connections').or((c) => c.integer(1, 10_000_000), 10_000_000),
    // Envoy's HTTP connection manager default; Aeraki's MetaProtocolProxy idle_timeout.
    idleTimeoutMs: f.child('idle_timeout').or((c) => c.durationMs(), 3_600_000),
    filters: f.child('filters').or((l) => l.items().map((i) => i.collect(() => readFilter(i), undefined)), [])
      .filter((x): x is FilterConfig => x !== undefined),
    routeConfig: rds || !f.child('route_config').present ? { name: rds?.routeConfigName ?? '', routes: [] } : f.get('route_config', (c) => readRouteConfiguration(c, clusters), { name: '', routes: [] }),
    rds,
    trafficDirection: f.child('traffic_direction').or((c) => c.oneOf(['outbound', 'inbound'] as const), 'outbound'),
    metadataExchange: f.child('metadata_exchange').or((c) => c.boolean(), false),
    destinationService: f.child('destination_service').or((c) => c.string({ nonEmpty: true, max: 256 }), undefined),
    accessLog: f.child('access_log').or((c) => readAccessLogs(c, baseDir), []),
    istioMetrics: f.child('istio_metrics').or((c) => c.boolean(), undefined),
    bindToPort: f.child('bind_to_port').or((c) => c.boolean(), true),
    proxyProtocol: f.child('proxy_protocol').or(readProxyProtocolAccept, undefined),
    peerAuthentication: f.child('peer_authentication').or(readPeerAuthentication, undefined),
  };
}

function readFilter(f: Field): FilterConfig {
  f.only(['name', 'config', 'failure_policy']);
  return {
    name: f.get('name', (n) => n.string({ nonEmpty: true, pattern: /^[a-z0-9_.-]+$/ }), ''),
    config: f.child('config').or((c) => c.object(), {}),
    failurePolicy: f.child('failure_policy').or((p) => p.oneOf(['fail_closed', 'fail_open'] as const), 'fail_closed'),
  };
}

function readAdmin(f: Field, baseDir: string): AdminConfig {
  f.only(['address', 'port', 'socket', 'token_file', 'allowed_hosts']);
  const path = (c: Field) => {
    const p = c.string({ nonEmpty: true });
    return isAbsolute(p) ? p : resolve(baseDir, p);
  };
  return {
    address: f.child('address').or((a) => a.string({ nonEmpty: true }), '127.0.0.1'),
    port: f.get('port', (c) => c.integer(0, MAX_PORT), 0),
    socket: f.child('socket').or(path, undefined),
    tokenFile: f.child('token_file').or(path, undefined),
    allowedHosts: f.child('allowed_hosts').or((h) => h.items().map((i) => i.string({ nonEmpty: true })), [] as string[]),
  };
}

function readOverload(f: Field): OverloadConfig {
  if (f.present) f.only(['max_downstream_connections', 'memory_limit', 'stop_accepting_at', 'shed_requests_at', 'refresh_interval']);
  const get = <T>(key: string, read: (c: Field) => T, fallback: () => T): T => (f.present ? f.child(key).or(read, fallback()) : fallback());
  const fraction = (c: Field) => {
    if (typeof c.value !== 'number' || !(c.value > 0 && c.value <= 1)) c.fail('must be a fraction above 0 and at most 1');
    return c.value as number;
  };
  const stopAcceptingAt = get('stop_accepting_at', fraction, () => 0.9);
  const shedRequestsAt = get('shed_requests_at', fraction, () => 0.95);
  if (shedRequestsAt < stopAcceptingAt) f.child('shed_requests_at').fail('must not be below stop_accepting_at (connections stop before requests are shed)');
  return {
    maxDownstreamConnections: get('max_downstream_connections', (c) => c.integer(1, 10_000_000), defaultMaxDownstreamConnections),
    memoryLimitBytes: get('memory_limit', (c) => c.integer(0, 2 ** 53), cgroupMemoryLimit),
    stopAcceptingAt,
    shedRequestsAt,
    refreshIntervalMs: get('refresh_interval', (c) => c.durationMs(), () => 250),
  };
}

function readXds(f: Field) {
  f.only(['address', 'port', 'node', 'ads', 'lds', 'initial_backoff', 'max_backoff', 'initial_fetch_timeout', 'drain_timeout', 'tls', 'authorization']);
  const node = f.child('node');
  if (node.present) node.only(['id', 'cluster', 'metadata']);
  const metadata = node.present ? node.child('metadata').or((m) => m.object(), {}) : {};
  for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') new Field(`${node.path}.metadata.${k}`, v).fail('must be a string');
  return {
    address: f.child('address').or((a) => a.string({ nonEmpty: true }), '127.0.0.1'),
    port: f.get('port', (c) => c.integer(1, MAX_PORT), 1),
    node: {
      id: node.present ? node.child('id').or((n) => n.string({ nonEmpty: true }), 'meltemi') : 'meltemi',
      cluster: node.present ? node.child('cluster').or((n) => n.string(), '') : '',
      metadata: metadata as Record<string, string>,
    },
    initialBackoffMs: f.child('initial_backoff').or((b) => b.durationMs(), 500),
    maxBackoffMs: f.child('max_backoff').or((b) => b.durationMs(), 30_000),
    ads: f.child('ads').or((a) => a.boolean(), false),
    lds: f.child('lds').or((a) => a.boolean(), false),
    drainTimeoutMs: f.child('drain_timeout').or((d) => d.durationMs(), 5_000),
    initialFetchTimeoutMs: f.child('initial_fetch_timeout').or((b) => b.durationMs(), 15_000),
    tls: f.child('tls').or(readXdsTls, undefined),
    authorization: f.child('authorization').or((a) => a.boolean(), false),
  };
}

export function readRouteConfiguration(f: Field, clusters: ReadonlySet<string> | undefined): RouteConfiguration {
  f.only(['name', 'routes']);
  const routes = f.child('routes').items().map((r) => r.collect(() => readRoute(r, clusters), undefined))
    .filter((r): r is RouteConfig => r !== undefined);
  return { name: f.child('name').or((n) => n.string(), ''), routes };
}

function readRoute(f: Field, clusters: ReadonlySet<string> | undefined): RouteConfig {
  f.only(['name', 'match', 'route', 'request_mutation', 'response_mutation']);
  const match = f.child('match');
  const metadata = match.present
    ? match.only(['metadata']).child('metadata').or((m) => m.items().map((i) => i.collect(() => readMatcher(i), undefined)), [])
      .filter((m): m is MetadataMatcherConfig => m !== undefined)
    : [];
  return {
    name: f.child('name').or((n) => n.string(), ''),
    match: { metadata },
    route: f.get('route', (a) => readAction(a, clusters), { kind: 'cluster', cluster: '' }),
    requestMutation: f.child('request_mutation').or((m) => m.items().map((i) => i.collect(() => readKeyValue(i), undefined)), [])
      .filter((kv): kv is KeyValue => kv !== undefined),
  };
}

const STRING_MATCHES = ['exact_match', 'prefix_match', 'suffix_match', 'contains_match', 'safe_regex_match', 'present_match'] as const;

function readMatcher(f: Field): MetadataMatcherConfig {
  f.only(['name', ...STRING_MATCHES, 'invert_match']);
  const name = f.get('name', (c) => c.string({ nonEmpty: true }), '');
  const given = STRING_MATCHES.filter((k) => f.child(k).present);
  if (given.length > 1) f.fail(`has ${given.join(' and ')}; give one match`);
  let match: StringMatch;
  switch (given[0]) {
    case 'exact_match': match = { kind: 'exact', value: f.child('exact_match').string() }; break;
    case 'prefix_match': match = { kind: 'prefix', value: f.child('prefix_match').string({ nonEmpty: true }) }; break;
    case 'suffix_match': match = { kind: 'suffix', value: f.child('suffix_match').string({ nonEmpty: true }) }; break;
    case 'contains_match': match = { kind: 'contains', value: f.child('contains_match').string({ nonEmpty: true }) }; break;
    case 'safe_regex_match': {
      const r = f.child('safe_regex_match');
      r.only(['regex', 'google_re2']);
      const regex = r.child('regex').string({ nonEmpty: true });
      const problem = regexProblem(regex);
      if (problem) r.child('regex').fail(problem);
      match = { kind: 'regex', value: regex };
      break;
    }
    case 'present_match': match = { kind: 'present', value: f.child('present_match').boolean() }; break;
    default: match = { kind: 'present', value: true }; // a name-only matcher tests presence (Envoy)
  }
  return { name, match, invert: f.child('invert_match').or((i) => i.boolean(), false) };
}

/** Envoy's HTTP retry_on names and the conditions they mean for any protocol. */
const ENVOY_RETRY_ON: Record<string, RetryOn[]> = {
  '5xx': ['error', 'connect-failure', 'reset', 'timeout'],
  'gateway-error': ['connect-failure', 'reset', 'timeout'],
  'refused-stream': ['refused'],
};

/** Deadlines are swept every 10 ms: a shorter one cannot be kept (0 is none). */
function deadlineMs(f: Field): number {
  const ms = f.durationMs();
  if (ms > 0 && ms < 10) f.fail('must be 0 (none) or at least 10ms, the resolution of deadlines');
  return ms;
}

function readRetryPolicy(f: Field): RetryPolicyConfig {
  f.only(['retry_on', 'num_retries', 'per_try_timeout', 'retry_back_off', 'idempotent']);
  const on = f.child('retry_on');
  // Envoy writes retry_on as one comma-separated string; a list is accepted too.
  const written = on.or((o) => (Array.isArray(o.value) ? o.items().map((i) => i.string({ nonEmpty: true })) : o.string({ nonEmpty: true }).split(',').map((t) => t.trim())), ['connect-failure', 'reset'] as string[]);
  if (written.length === 0) on.fail(`must name at least one condition (${RETRY_ON.join(', ')})`);
  const tokens: string[] = [];
  for (const t of written) {
    if ((RETRY_ON as readonly string[]).includes(t)) tokens.push(t);
    else if (ENVOY_RETRY_ON[t]) tokens.push(...ENVOY_RETRY_ON[t]);
    else on.fail(`unknown condition "${t}" (expected: ${RETRY_ON.join(', ')}; or Envoy's ${Object.keys(ENVOY_RETRY_ON).join(', ')})`);
  }
  const backOff = f.child('retry_back_off');
  if (backOff.present) backOff.only(['base_interval', 'max_interval']);
  const baseMs = backOff.present ? backOff.child('base_interval').or((b) => b.durationMs(), 25) : 25;
  const maxMs = backOff.present ? backOff.child('max_interval').or((m) => m.durationMs(), baseMs * 10) : baseMs * 10;
  if (maxMs < baseMs) backOff.child('max_interval').fail('must not be below base_interval');
  return {
    retryOn: [...new Set(tokens)] as RetryOn[],
    numRetries: f.child('num_retries').or((n) => n.integer(0, 10), 1),
    perTryTimeoutMs: f.child('per_try_timeout').or(deadlineMs, 0),
    backOff: { baseMs, maxMs },
    idempotent: f.child('idempotent').or((i) => i.boolean(), false),
  };
}

function readAction(f: Field, clusters: ReadonlySet<string> | undefined): RouteActionConfig {
  f.only(['cluster', 'weighted_clusters', 'hash_policy', 'request_mirror_policies', 'timeout', 'retry_policy']);
  const extras = {
    // Absent: the router's default (DEFAULT_ROUTE_TIMEOUT_MS, 15 s), so routes compare equal however they came.
    ...(f.child('timeout').present ? { timeoutMs: deadlineMs(f.child('timeout')) } : {}),
    ...(f.child('retry_policy').present ? { retryPolicy: readRetryPolicy(f.child('retry_policy')) } : {}),
    ...(f.child('hash_policy').present ? { hashPolicy: f.child('hash_policy').items().map((h) => h.string({ nonEmpty: true })) } : {}),
    ...(f.child('request_mirror_policies').present ? {
      mirrors: f.child('request_mirror_policies').items().map((m) => {
        m.only(['cluster', 'percentage']);
        return { cluster: m.child('cluster').string({ nonEmpty: true }), percentage: m.child('percentage').or((p) => {
          if (typeof p.value !== 'number' || p.value < 0 || p.value > 100) p.fail('must be a number from 0 to 100');
          return p.value as number;
        }, 100) };
      }),
    } : {}),
  };
  const single = f.child('cluster');
  const weighted = f.child('weighted_clusters');
  if (single.present === weighted.present) f.fail('needs exactly one of cluster or weighted_clusters');
  const known = (c: Field) => {
    const name = c.string({ nonEmpty: true });
    if (clusters && !clusters.has(name)) c.fail(`unknown cluster "${name}"`);
    return name;
  };
  if (single.present) return { kind: 'cluster', cluster: known(single), ...extras };
  weighted.only(['clusters', 'total_weight']);
  const list = weighted.child('clusters').items().map((c) => {
    c.only(['name', 'weight']);
    return { name: known(c.child('name')), weight: c.child('weight').integer(0, 1_000_000) };
  });
  if (list.length === 0) weighted.child('clusters').fail('must name at least one cluster');
  if (list.every((c) => c.weight === 0)) weighted.child('clusters').fail('weights must not all be 0');
  return { kind: 'weighted_clusters', clusters: list, ...extras };
}

function readKeyValue(f: Field): KeyValue {
  f.only(['key', 'value']);
  return { key: f.get('key', (c) => c.string({ nonEmpty: true, max: 16384 }), ''), value: f.child('value').or((v) => v.string({ max: 16384 }), '') };
}

function readCluster(f: Field): ClusterConfig {
  f.only(['name', 'endpoints', 'lb_policy', 'connect_timeout', 'connections_per_endpoint', 'max_pending_requests_per_connection', 'max_queued_bytes_per_connection', 'retry_budget', 'circuit_breakers', 'outlier_detection', 'healthy_panic_threshold', 'least_request', 'peak_ewma', 'proxy_protocol', 'tls']);
  const leastRequest = f.child('least_request');
  if (leastRequest.present) leastRequest.only(['choice_count']);
  const peakEwma = f.child('peak_ewma');
  if (peakEwma.present) peakEwma.only(['decay_time']);
  const outlier = f.child('outlier_detection');
  const breakers = f.child('circuit_breakers');
  if (breakers.present) breakers.only(['max_connections', 'max_pending_requests', 'max_requests', 'max_retries']);
  const threshold = (key: string, fallback: number) => (breakers.present ? breakers.child(key).or((t) => t.integer(0, 2 ** 31 - 1), fallback) : fallback);
  const budget = f.child('retry_budget');
  if (budget.present) budget.only(['budget_percent', 'min_retry_concurrency']);
  const endpoints = f.get('endpoints', (e) => {
    const items = e.items();
    if (items.length === 0) e.fail('must have at least one endpoint');
    return items.map((i) => i.collect(() => readEndpoint(i), undefined)).filter((ep): ep is EndpointConfig => ep !== undefined);
  }, []);
  return {
    name: f.get('name', (c) => c.string({ nonEmpty: true, pattern: NAME }), ''),
    endpoints,
    // Envoy's enum names are accepted as well (ROUND_ROBIN …).
    lbPolicy: f.child('lb_policy').or((p) => {
      const v = typeof p.value === 'string' ? p.value.toLowerCase() : p.value;
      return new Field(p.path, v, p.errors).oneOf(LB_POLICIES);
    }, 'round_robin' as LbPolicy),
    connectTimeoutMs: f.child('connect_timeout').or((t) => t.durationMs(), 1000),
    connectionsPerEndpoint: f.child('connections_per_endpoint').or((n) => n.integer(1, 1024), 1),
    maxPendingRequestsPerConnection: f.child('max_pending_requests_per_connection').or((n) => n.integer(1, 10_000_000), UPSTREAM_LIMIT_DEFAULTS.maxPendingRequestsPerConnection),
    maxQueuedBytesPerConnection: f.child('max_queued_bytes_per_connection').or((n) => n.integer(1024, 2 ** 31 - 1), UPSTREAM_LIMIT_DEFAULTS.maxQueuedBytesPerConnection),
    retryBudget: budget.present ? {
      percent: budget.child('budget_percent').or((p) => {
        if (typeof p.value !== 'number' || p.value < 0 || p.value > 100) p.fail('must be a percentage from 0 to 100');
        return p.value as number;
      }, RETRY_BUDGET_DEFAULT.percent),
      minConcurrency: budget.child('min_retry_concurrency').or((m) => m.integer(0, 1_000_000), RETRY_BUDGET_DEFAULT.minConcurrency),
    } : RETRY_BUDGET_DEFAULT,
    ...(outlier.present ? { outlierDetection: readOutlierDetection(outlier) } : {}),
    ...(leastRequest.present ? { leastRequestChoiceCount: leastRequest.child('choice_count').or((c) => c.integer(2, 1000), 2) } : {}),
    ...(peakEwma.present ? { peakEwmaDecayMs: peakEwma.child('decay_time').or((d) => {
      const ms = d.durationMs();
      if (ms < 1) d.fail('must be at least 1ms');
      return ms;
    }, 10_000) } : {}),
    ...(f.child('healthy_panic_threshold').present ? { healthyPanicThreshold: percentOf(f.child('healthy_panic_threshold')) } : {}),
    ...(f.child('proxy_protocol').present ? { proxyProtocol: f.child('proxy_protocol').or(readProxyProtocolSend, 2) } : {}),
    ...(f.child('tls').present ? { tls: f.child('tls').or(readUpstreamTls, undefined) } : {}),
    circuitBreakers: {
      maxConnections: threshold('max_connections', UPSTREAM_LIMIT_DEFAULTS.circuitBreakers.maxConnections),
      maxPendingRequests: threshold('max_pending_requests', UPSTREAM_LIMIT_DEFAULTS.circuitBreakers.maxPendingRequests),
      maxRequests: threshold('max_requests', UPSTREAM_LIMIT_DEFAULTS.circuitBreakers.maxRequests),
      maxRetries: threshold('max_retries', UPSTREAM_LIMIT_DEFAULTS.circuitBreakers.maxRetries),
    },
  };
}

function percentOf(p: Field): number {
  if (typeof p.value !== 'number' || p.value < 0 || p.value > 100) p.fail('must be a percentage from 0 to 100');
  return p.value as number;
}

function readOutlierDetection(f: Field): OutlierDetectionConfig {
  f.only(['consecutive_5xx', 'consecutive_gateway_failure', 'base_ejection_time', 'max_ejection_percent', 'interval']);
  return {
    consecutiveErrors: f.child('consecutive_5xx').or((n) => n.integer(0, 1_000_000), 5),
    consecutiveGatewayFailures: f.child('consecutive_gateway_failure').or((n) => n.integer(0, 1_000_000), 5),
    baseEjectionMs: f.child('base_ejection_time').or((d) => d.durationMs(), 30_000),
    maxEjectionPercent: f.child('max_ejection_percent').or(percentOf, 10),
    intervalMs: f.child('interval').or((d) => {
      const ms = d.durationMs();
      if (ms < 1) d.fail('must be at least 1ms');
      return ms;
    }, 10_000),
  };
}

function readEndpoint(f: Field): EndpointConfig {
  f.only(['address', 'port']);
  return { address: f.get('address', (c) => c.string({ nonEmpty: true }), ''), port: f.get('port', (c) => c.integer(1, MAX_PORT), 1) };
}
