// meltemi's metrics: StatsStore and plugin counters in prom-client's metric shape, gathered at
// scrape time from plain counters (see runtime/core/stats.ts for why). prom-client itself is not
// loaded here: worker threads report these to the primary, which sums them.

import { DURATION_BUCKETS, MAX_COMMANDS, StatsStore, type ClusterStats } from '../core/stats';
import type { PluginRegistry } from '../plugin/plugin-registry';
import type { OverloadManager } from '../proxy/overload-manager';
import { PLUGIN_HISTOGRAM_BUCKETS, PluginMetric } from '../filter/plugin-metrics';
import { MetricKind } from '../wasm/abi';

type Labels = Record<string, string>;
export interface Sample { labels: Labels; value: number; metricName?: string }

/** A metric whose samples are computed when scraped. */
class ScrapedMetric {
  /** How the primary combines the workers' samples: summed, or (a state of the process) their maximum. */
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    private readonly sample: () => Sample[],
    readonly aggregator: 'sum' | 'max' = 'sum',
  ) {}

  async get() {
    return { name: this.name, help: this.help, type: this.type, values: this.sample(), aggregator: this.aggregator };
  }

  reset(): void {}
}

/** Where metrics are registered: a prom-client Registry, or a worker thread's MetricList. */
export interface MetricTarget {
  registerMetric(metric: never): void;
}

/** The metrics of a worker thread, as prom-client's getMetricsAsJSON gives them, without loading prom-client. */
export class MetricList implements MetricTarget {
  private readonly metrics: ScrapedMetric[] = [];

  registerMetric(metric: never): void {
    this.metrics.push(metric as ScrapedMetric);
  }

  getMetricsAsJSON(): Promise<Array<Awaited<ReturnType<ScrapedMetric['get']>>>> {
    return Promise.all(this.metrics.map((m) => m.get()));
  }
}

/** Registers a metric whose samples `sample` computes at scrape time. */
export function addScraped(registry: MetricTarget, name: string, help: string, type: 'counter' | 'gauge' | 'histogram', sample: () => Sample[], aggregator: 'sum' | 'max' = 'sum'): void {
  registry.registerMetric(new ScrapedMetric(name, help, type, sample, aggregator) as never);
}

/** The samples of one histogram series: cumulative buckets, sum and count (`counts` has one slot past the last bound). */
export function histogramSamples(out: Sample[], name: string, labels: Labels, bounds: readonly number[], counts: ArrayLike<number>, sum: number): void {
  let cumulative = 0;
  bounds.forEach((le, i) => {
    cumulative += counts[i];
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: String(le) }, value: cumulative });
  });
  cumulative += counts[bounds.length];
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: cumulative });
  out.push({ metricName: `${name}_sum`, labels, value: sum });
  out.push({ metricName: `${name}_count`, labels, value: cumulative });
}

/** Samples of a count map keyed "<a>\u0000<b>" (countIn), labelled `a` and `b` besides `labels`. */
function pairSamples(counts: ReadonlyMap<string, number>, a: string, b: string, labels: Labels = {}): Sample[] {
  return [...counts].map(([key, value]) => {
    const [x, y] = key.split('\u0000');
    return { labels: { ...labels, [a]: x, [b]: y }, value };
  });
}

/** Registers meltemi's metrics (requests, clusters, plugins, overload) in `registry`. */
/** `worker`: a worker thread's set, without what the primary alone counts (plugin reloads). */
export function registerMeltemiMetrics<T extends MetricTarget>(registry: T, stats: StatsStore, plugins: PluginRegistry, overload: OverloadManager, opts: { worker?: boolean } = {}): T {
  const requestLabels = (s: { listener: string; route: string; cluster: string }) => ({ listener: s.listener, route: s.route, cluster: s.cluster });
  const add = (name: string, help: string, type: 'counter' | 'gauge' | 'histogram', sample: () => Sample[], aggregator: 'sum' | 'max' = 'sum') =>
    addScraped(registry, name, help, type, sample, aggregator);

  const sec = stats.security;
  add('meltemi_tls_handshakes_total', 'Connections by how their transport was settled, by side: mutual_tls, plaintext (accepted: PERMISSIVE or DISABLE), plaintext_refused (STRICT), failed, untrusted_peer, timeout.', 'counter', () =>
    pairSamples(sec.handshakes, 'side', 'outcome'));
  add('meltemi_authorization_decisions_total', 'Requests authorization let through or denied, by listener.', 'counter', () =>
    pairSamples(sec.authorization, 'listener', 'decision'));
  if (!opts.worker) {
    add('meltemi_tls_certificate_expiry_timestamp_seconds', 'When the workload certificate (certificate="workload") and the first trust-bundle root to expire (certificate="trust_bundle") expire, in Unix seconds.', 'gauge', () =>
      (sec.certificateExpiry > 0 ? [
        { labels: { certificate: 'workload', source: sec.source }, value: sec.certificateExpiry },
        { labels: { certificate: 'trust_bundle', source: sec.source }, value: sec.trustBundleExpiry },
      ] : []), 'max');
    add('meltemi_tls_certificate_seconds_until_expiry', 'Seconds left before the workload certificate expires (negative: expired).', 'gauge', () =>
      (sec.certificateExpiry > 0 ? [{ labels: { certificate: 'workload' }, value: Math.round(sec.certificateExpiry - Date.now() / 1000) }] : []), 'max');
    add('meltemi_tls_certificate_rotations_total', 'Certificate rotations taken (outcome="rotated") and refused, the last good certificates kept (outcome="refused").', 'counter', () =>
      (sec.source ? [{ labels: { outcome: 'rotated' }, value: sec.rotations }, { labels: { outcome: 'refused' }, value: sec.rotationRejections }] : []));
  }
  add('meltemi_capture_connections_total', 'Connections the capture listeners took, by side (outbound, inbound) and outcome: listener, passthrough, passthrough_connect_failure, no_original_destination, loop, refused.', 'counter', () =>
    [...stats.captures.values()].flatMap((c) => ([
      ['listener', c.listener], ['passthrough', c.passthroughTotal], ['passthrough_connect_failure', c.passthroughConnectFailures],
      ['no_original_destination', c.noOriginalDestination], ['loop', c.loop], ['refused', c.refused],
    ] as const).map(([outcome, value]) => ({ labels: { capture: c.capture, outcome }, value }))));
  add('meltemi_capture_passthrough_active', 'Pass-through connections open, by side.', 'gauge', () =>
    [...stats.captures.values()].map((c) => ({ labels: { capture: c.capture }, value: c.passthroughActive })));
  add('meltemi_proxy_protocol_errors_total', 'Connections closed for a missing, malformed or late PROXY protocol header, by listener.', 'counter', () =>
    [...stats.listeners.values()].map((s) => ({ labels: { listener: s.listener }, value: s.proxyProtocolErrors })));
  add('meltemi_requests_total', 'Requests received, by listener, route and cluster.', 'counter', () =>
    [...stats.requests.values()].map((s) => ({ labels: requestLabels(s), value: s.total })));
  add('meltemi_request_errors_total', 'Requests answered with an error response or a local error reply.', 'counter', () =>
    [...stats.requests.values()].map((s) => ({ labels: requestLabels(s), value: s.errors })));
  add('meltemi_active_requests', 'Requests received and not yet answered.', 'gauge', () =>
    [...stats.requests.values()].map((s) => ({ labels: requestLabels(s), value: s.active })));
  add('meltemi_request_duration_seconds', 'Time from reading a request to having its response, in seconds.', 'histogram', () => {
    const out: Sample[] = [];
    for (const s of stats.requests.values()) histogramSamples(out, 'meltemi_request_duration_seconds', requestLabels(s), DURATION_BUCKETS, s.durationBuckets, s.durationSum);
    return out;
  });
  add('meltemi_request_decoding_errors_total', 'Downstream bytes the codec rejected as malformed (the connection was closed).', 'counter', () =>
    [...stats.listeners.values()].map((s) => ({ labels: { listener: s.listener }, value: s.decodingErrors })));
  add('meltemi_requests_by_command_total', `Requests by the codec's command metadata (MySQL COM_QUERY, Redis GET …); past ${MAX_COMMANDS} distinct values per listener, "other".`, 'counter', () =>
    [...stats.listeners.values()].flatMap((s) => [...s.commands].map(([command, value]) => ({ labels: { listener: s.listener, command }, value }))));
  add('meltemi_local_replies_total', 'Error replies produced by the proxy itself, by kind.', 'counter', () =>
    [...stats.listeners.values()].flatMap((s) => [...s.localReplies].map(([kind, value]) => ({ labels: { listener: s.listener, kind }, value }))));
  add('meltemi_filter_outcomes_total', 'Requests a filter answered itself (local_reply), closed the connection on (abort), or failed on (failure: trap, fuel, error).', 'counter', () =>
    [...stats.listeners.values()].flatMap((s) => pairSamples(s.filterOutcomes, 'filter', 'outcome', { listener: s.listener })));
  add('meltemi_downstream_connections_total', 'Downstream connections accepted.', 'counter', () =>
    [...stats.listeners.values()].map((s) => ({ labels: { listener: s.listener }, value: s.connectionsTotal })));
  add('meltemi_downstream_connections_active', 'Downstream connections open.', 'gauge', () =>
    [...stats.listeners.values()].map((s) => ({ labels: { listener: s.listener }, value: s.connectionsActive })));
  add('meltemi_upstream_connections_total', 'Upstream connections opened.', 'counter', () =>
    [...stats.clusters.values()].map((s) => ({ labels: { cluster: s.cluster }, value: s.connectionsTotal })));
  add('meltemi_upstream_connections_active', 'Upstream connections open.', 'gauge', () =>
    [...stats.clusters.values()].map((s) => ({ labels: { cluster: s.cluster }, value: s.connectionsActive })));
  add('meltemi_upstream_connect_failures_total', 'Failed upstream connection attempts.', 'counter', () =>
    [...stats.clusters.values()].map((s) => ({ labels: { cluster: s.cluster }, value: s.connectFailures })));
  add('meltemi_upstream_rq_pending_overflow_total', 'Requests answered over-limit because an upstream connection held max_pending_requests_per_connection or max_queued_bytes_per_connection.', 'counter', () =>
    [...stats.clusters.values()].map((s) => ({ labels: { cluster: s.cluster }, value: s.pendingOverflow })));
  const perCluster = (name: string, help: string, type: 'counter' | 'gauge', value: (s: ClusterStats) => number) =>
    add(name, help, type, () => [...stats.clusters.values()].map((s) => ({ labels: { cluster: s.cluster }, value: value(s) })));
  perCluster('meltemi_upstream_rq_timeout_total', 'Requests answered with a timeout: the route timeout passed (Envoy upstream_rq_timeout).', 'counter', (s) => s.rqTimeout);
  perCluster('meltemi_upstream_rq_per_try_timeout_total', 'Tries that passed the retry policy\'s per_try_timeout (Envoy upstream_rq_per_try_timeout).', 'counter', (s) => s.rqPerTryTimeout);
  perCluster('meltemi_upstream_rq_retry_total', 'Retries sent (Envoy upstream_rq_retry).', 'counter', (s) => s.rqRetry);
  perCluster('meltemi_upstream_rq_retry_success_total', 'Requests answered without error after a retry (Envoy upstream_rq_retry_success).', 'counter', (s) => s.rqRetrySuccess);
  perCluster('meltemi_upstream_rq_retry_overflow_total', 'Retries not sent: the cluster\'s retry budget was spent (Envoy upstream_rq_retry_overflow).', 'counter', (s) => s.rqRetryOverflow);
  perCluster('meltemi_upstream_rq_retry_limit_exceeded_total', 'Requests that failed again with no retries left (Envoy upstream_rq_retry_limit_exceeded).', 'counter', (s) => s.rqRetryLimitExceeded);
  perCluster('meltemi_upstream_cx_retired_total', 'Upstream connections retired because a request on them timed out and the responses behind it could not be matched (order correlation).', 'counter', (s) => s.connectionsRetired);
  perCluster('meltemi_upstream_rq_mirrored_total', 'Shadow requests sent to this cluster by a route\'s mirror policy (their answers are dropped).', 'counter', (s) => s.mirrored);
  perCluster('meltemi_upstream_rq_mirror_failed_total', 'Shadow requests that could not be sent to this cluster or failed there; the real requests are not affected.', 'counter', (s) => s.mirrorFailures);
  perCluster('meltemi_upstream_cx_overflow_total', 'Connections not opened because the cluster held circuit_breakers.max_connections (Envoy upstream_cx_overflow).', 'counter', (s) => s.cxOverflow);
  perCluster('meltemi_upstream_rq_pending_active', 'Requests waiting for an upstream connection to open (Envoy upstream_rq_pending_active).', 'gauge', (s) => s.rqPending);
  perCluster('meltemi_outlier_detection_ejections_enforced_total', 'Endpoints ejected by outlier detection (Envoy outlier_detection.ejections_enforced_total).', 'counter', (s) => s.outlierEjections);
  perCluster('meltemi_outlier_detection_ejections_overflow_total', 'Ejections not made because max_ejection_percent of the endpoints were out (Envoy outlier_detection.ejections_overflow).', 'counter', (s) => s.outlierOverflow);
  perCluster('meltemi_upstream_rq_active', 'Requests routed to the cluster and not answered yet (Envoy upstream_rq_active).', 'gauge', (s) => s.rqActive);
  add('meltemi_downstream_cx_idle_timeout_total', 'Downstream connections closed after idle_timeout with nothing in flight.', 'counter', () =>
    [...stats.listeners.values()].map((s) => ({ labels: { listener: s.listener }, value: s.idleTimeouts })));
  add('meltemi_downstream_cx_overflow_total', 'Downstream connections closed on arrival: the listener\'s max_connections, overload.max_downstream_connections, or memory overload.', 'counter', () =>
    pairSamples(overload.refused, 'listener', 'reason'));
  add('meltemi_overload_active', 'Overload actions in force (1) or not (0): stop_accepting, shed_requests.', 'gauge', () => [
    { labels: { action: 'stop_accepting' }, value: overload.stopAccepting ? 1 : 0 },
    { labels: { action: 'shed_requests' }, value: overload.shedding ? 1 : 0 },
  ], 'max');
  add('meltemi_overload_shed_requests_total', 'Requests answered over-limit because memory was over overload.shed_requests_at.', 'counter', () =>
    [{ labels: {}, value: overload.shedRequests }]);
  // Summed over every live generation of a plugin, so a reload does not reset them.
  const perPlugin = (f: (p: { traps: number; recycles: number }) => number) => () => {
    const sums = new Map<string, number>();
    for (const p of [...plugins.generations(), ...plugins.filters()]) sums.set(p.name, (sums.get(p.name) ?? 0) + f(p));
    return [...sums].map(([plugin, value]) => ({ labels: { plugin }, value }));
  };
  add('meltemi_plugin_traps_total', 'Plugin calls that trapped.', 'counter', perPlugin((p) => p.traps));
  add('meltemi_plugin_instance_recycles_total', 'Plugin instances replaced after a trap or a broken ABI rule.', 'counter', perPlugin((p) => p.recycles));
  add('meltemi_plugin_rejections_total', 'Plugin builds rejected (at start or on reload); the previous generation kept serving.', 'counter', () =>
    [{ labels: {}, value: plugins.rejectedTotal }]);
  if (!opts.worker) {
    add('meltemi_plugin_reloads_total', 'Plugin builds that replaced a previous generation.', 'counter', () =>
      plugins.codecs().map((p) => ({ labels: { plugin: p.name }, value: p.reloads })));
  }
  add('meltemi_plugin_generations_live', 'Plugin generations loaded: the current ones and older ones still used by connections.', 'gauge', () =>
    [{ labels: {}, value: plugins.generations().length }], 'max');
  // Metrics filter plugins define: registered as they are defined, read at scrape time.
  const pluginMetric = (m: PluginMetric) => add(m.fullName, `Defined by a plugin (${m.labelNames.length ? `labels ${m.labelNames.join(', ')}` : 'no labels'}).`,
    m.kind === MetricKind.COUNTER ? 'counter' : m.kind === MetricKind.GAUGE ? 'gauge' : 'histogram', () => {
      const out: Sample[] = [];
      for (const [key, s] of m.series) {
        const values = key === '' && m.labelNames.length === 0 ? [] : key.split('\u0000');
        const labels = Object.fromEntries(m.labelNames.map((n, i) => [n, values[i] ?? '']));
        if (m.kind !== MetricKind.HISTOGRAM) {
          out.push({ labels, value: s[0] });
          continue;
        }
        histogramSamples(out, m.fullName, labels, PLUGIN_HISTOGRAM_BUCKETS, s, s[PLUGIN_HISTOGRAM_BUCKETS.length + 1]);
      }
      return out;
    });
  for (const m of plugins.metrics.all()) pluginMetric(m);
  plugins.metrics.onDefine = pluginMetric;
  return registry;
}
