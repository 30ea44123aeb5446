// Istio's standard metrics in prom-client's metric shape, built from the rows at scrape time.
// Rows that come out with the same labels (two listeners to one service, peers that look alike)
// are summed first: a scrape must not carry one series twice.

import { addScraped, histogramSamples, type MetricTarget, type Sample } from '../admin/metric-list';
import { ISTIO_BYTES_BUCKETS, ISTIO_DURATION_BUCKETS_MS, istioLabels, type IstioStore } from './istio-metrics';
import { UNKNOWN_PEER } from './workload';
import { AccessLogSink } from './access-log';
import type { ExportCounts } from './tracer';
import type { PeerTable } from './peer-metadata';

interface Merged {
  labels: Record<string, string>;
  requests: number;
  durationSum: number;
  duration: Float64Array;
  requestBytesSum: number;
  requestBytes: Float64Array;
  responseBytesSum: number;
  responseBytes: Float64Array;
}

function add(into: Float64Array, from: Float64Array): void {
  for (let i = 0; i < into.length; i++) into[i] += from[i];
}

function mergedRows(store: IstioStore): Merged[] {
  const merged = new Map<string, Merged>();
  for (const series of store.allSeries()) {
    for (const row of series.rows) {
      const labels = istioLabels(series.reporter, row.peer, series.service, series.reporter.protocol, String(row.code), row.flags);
      const key = JSON.stringify(labels);
      let m = merged.get(key);
      if (!m) {
        m = {
          labels, requests: 0, durationSum: 0, duration: new Float64Array(row.duration.length),
          requestBytesSum: 0, requestBytes: new Float64Array(row.requestBytes.length), responseBytesSum: 0, responseBytes: new Float64Array(row.responseBytes.length),
        };
        merged.set(key, m);
      }
      m.requests += row.requests;
      m.durationSum += row.durationSum;
      add(m.duration, row.duration);
      m.requestBytesSum += row.requestBytesSum;
      add(m.requestBytes, row.requestBytes);
      m.responseBytesSum += row.responseBytesSum;
      add(m.responseBytes, row.responseBytes);
    }
  }
  return [...merged.values()];
}

function tcpSamples(store: IstioStore, value: (s: { opened: number; closed: number; received: number; sent: number }) => number): Sample[] {
  const merged = new Map<string, Sample>();
  for (const s of store.allTcp()) {
    // TCP metrics carry no response code; Istio's request_protocol is "tcp" for them.
    const labels = istioLabels(s.reporter, UNKNOWN_PEER, s.service, 'tcp', '0', '-');
    const key = JSON.stringify(labels);
    const m = merged.get(key);
    if (m) m.value += value(s);
    else merged.set(key, { labels, value: value(s) });
  }
  return [...merged.values()];
}

/** Istio's metrics, and meltemi's about its own telemetry (lost log lines, spans). */
export function registerIstioMetrics(registry: MetricTarget, telemetry: { readonly istio: IstioStore; readonly peers: PeerTable; readonly tracer: { readonly counts: ExportCounts } | null }): void {
  const store = telemetry.istio;
  const tracer = () => telemetry.tracer?.counts;
  addScraped(registry, 'meltemi_peer_metadata_rejected_total', 'x-envoy-peer-metadata values that could not be decoded, or named a new peer past the 1024 remembered (counted as unknown).', 'counter', () =>
    [{ labels: {}, value: telemetry.peers.rejected }]);
  addScraped(registry, 'meltemi_access_log_dropped_lines_total', 'Access-log lines dropped because 4 MiB were waiting for a sink that did not keep up.', 'counter', () =>
    [...AccessLogSink.all()].map((s) => ({ labels: { path: s.path }, value: s.dropped })));
  addScraped(registry, 'meltemi_access_log_write_errors_total', 'Access-log writes that failed (the lines in them are lost).', 'counter', () =>
    [...AccessLogSink.all()].map((s) => ({ labels: { path: s.path }, value: s.errors })));
  addScraped(registry, 'meltemi_tracing_spans_exported_total', 'Spans the OTLP collector took.', 'counter', () =>
    [{ labels: {}, value: tracer()?.exported ?? 0 }]);
  addScraped(registry, 'meltemi_tracing_spans_failed_total', 'Spans lost to failed exports (collector down, slow or refusing).', 'counter', () =>
    [{ labels: {}, value: tracer()?.failed ?? 0 }]);
  addScraped(registry, 'istio_requests_total', 'Requests, by Istio\'s standard labels (istio.io reference/config/metrics).', 'counter', () =>
    mergedRows(store).map((m) => ({ labels: m.labels, value: m.requests })));
  const histogram = (name: string, help: string, pick: (m: Merged) => [readonly number[], Float64Array, number]) =>
    addScraped(registry, name, help, 'histogram', () => {
      const out: Sample[] = [];
      for (const m of mergedRows(store)) histogramSamples(out, name, m.labels, ...pick(m));
      return out;
    });
  histogram('istio_request_duration_milliseconds', 'Time from reading a request to having its response, in milliseconds.', (m) => [ISTIO_DURATION_BUCKETS_MS, m.duration, m.durationSum]);
  histogram('istio_request_bytes', 'Size of each request frame, in bytes.', (m) => [ISTIO_BYTES_BUCKETS, m.requestBytes, m.requestBytesSum]);
  histogram('istio_response_bytes', 'Size of each response frame, in bytes.', (m) => [ISTIO_BYTES_BUCKETS, m.responseBytes, m.responseBytesSum]);
  addScraped(registry, 'istio_tcp_connections_opened_total', 'Downstream connections opened.', 'counter', () => tcpSamples(store, (s) => s.opened));
  addScraped(registry, 'istio_tcp_connections_closed_total', 'Downstream connections closed.', 'counter', () => tcpSamples(store, (s) => s.closed));
  addScraped(registry, 'istio_tcp_received_bytes_total', 'Bytes received from downstream clients.', 'counter', () => tcpSamples(store, (s) => s.received));
  addScraped(registry, 'istio_tcp_sent_bytes_total', 'Bytes sent to downstream clients.', 'counter', () => tcpSamples(store, (s) => s.sent));
}
