// The telemetry of one proxy (one worker): who it is, Istio's metric rows, access logs and the
// tracer; and per listener, what its requests report and where. The request path calls three
// hooks: `onRequest` when a request is decoded (trace context, the inbound metadata exchange),
// `onResponse` when an upstream answer is decoded (the outbound exchange), and `record` when
// the request is over (metrics, access log, span end).

import type { ListenerConfig, TelemetryConfig } from '../config/types';
import type { Metadata } from '../codec/metadata';
import type { RequestStats } from '../core/stats';
import type { Logger } from '../core/logger';
import type { ActiveRequest } from '../proxy/active-request';
import { AccessLog } from './access-log';
import { IstioStore, type IstioReporter, type IstioSeries, type IstioTcpSeries } from './istio-metrics';
import { encodePeerMetadata, PEER_METADATA_ID_KEY, PEER_METADATA_KEY, PeerTable } from './peer-metadata';
import { responseCodeDetails, responseFlags } from './response-flags';
import type { RequestRecord } from './request-record';
import { Tracer } from './tracer';
import { resolveWorkload, UNKNOWN, UNKNOWN_PEER, type WorkloadIdentity } from './workload';

export class Telemetry {
  readonly self: WorkloadIdentity;
  readonly istio = new IstioStore();
  readonly peers = new PeerTable();
  readonly tracer: Tracer | null;
  /** This proxy's x-envoy-peer-metadata value. */
  readonly peerMetadata: string;

  constructor(readonly config: TelemetryConfig, node: { id: string; metadata: Readonly<Record<string, string>> } | undefined, logger: Logger) {
    this.self = resolveWorkload(config.workload, node);
    this.peerMetadata = encodePeerMetadata(this.self);
    const serviceName = config.tracing?.serviceName ?? (this.self.canonicalService !== UNKNOWN ? this.self.canonicalService : 'meltemi');
    this.tracer = config.tracing ? Tracer.create(config.tracing, serviceName, logger) : null;
  }

  /** The reporter for a listener's settings: one object per distinct label set (rows compare by it). */
  reporter(config: ListenerConfig, protocol: string, mutualTls = false): IstioReporter {
    const reporter = config.trafficDirection === 'inbound' ? 'destination' : 'source';
    // The destination knows what its connection proved; the source cannot tell what the peer enforces.
    const securityPolicy = mutualTls ? 'mutual_tls' : reporter === 'destination' ? 'none' : UNKNOWN;
    return this.istio.reporter({ reporter, self: this.self, protocol, destinationService: config.destinationService, securityPolicy });
  }

  forListener(config: ListenerConfig, protocol: string): ListenerTelemetry {
    return new ListenerTelemetry(this, config, protocol);
  }

  async close(): Promise<void> {
    await this.tracer?.shutdown();
  }
}

export class ListenerTelemetry {
  readonly reporter: IstioReporter | null;
  /** istio_tcp_* of this listener's downstream connections (null: Istio metrics off). */
  readonly tcp: IstioTcpSeries | null;
  readonly accessLogs: AccessLog[];
  readonly tracer: Tracer | null;
  readonly exchange: boolean;
  private readonly inbound: boolean;
  /** Connections that opened with this telemetry (each keeps it until it closes). */
  private users = 0;
  /** Replaced (LDS) or its listener closed: its logs close with its last connection. */
  private retired = false;
  private readonly site: { listener: string; protocol: string; inbound: boolean; samplingPercent: number };

  constructor(private readonly telemetry: Telemetry, private readonly config: ListenerConfig, readonly protocol: string) {
    const istioOn = config.istioMetrics ?? telemetry.config.istioMetrics;
    this.reporter = istioOn ? telemetry.reporter(config, protocol) : null;
    this.tcp = this.reporter ? telemetry.istio.tcp(this.reporter, this.tcpService()) : null;
    this.accessLogs = [];
    try {
      for (const c of [...telemetry.config.accessLog, ...(config.accessLog ?? [])]) this.accessLogs.push(new AccessLog(c));
    } catch (err) {
      void this.closeLogs();
      throw err;
    }
    this.tracer = telemetry.tracer;
    this.exchange = config.metadataExchange === true;
    this.inbound = config.trafficDirection === 'inbound';
    this.site = { listener: config.name, protocol, inbound: this.inbound, samplingPercent: config.tracingSamplingPercent ?? telemetry.config.tracing?.samplingPercent ?? 0 };
  }

  /** The destination of a listener's connections: its configured service, or the one cluster all its routes use. */
  private tcpService(): string {
    if (this.config.destinationService !== undefined) return this.config.destinationService;
    const clusters = new Set<string>();
    for (const r of this.config.routeConfig.routes) {
      if (r.route.kind === 'cluster') clusters.add(r.route.cluster);
      else for (const c of r.route.clusters) clusters.add(c.name);
    }
    return clusters.size === 1 ? [...clusters][0] : UNKNOWN;
  }

  /** A request was decoded: its trace context, and the identity its peer sent (inbound). */
  onRequest(req: ActiveRequest, meta: Metadata): void {
    if (this.exchange) {
      if (this.inbound) {
        const sent = meta.get(PEER_METADATA_KEY);
        req.peer = sent === undefined ? UNKNOWN_PEER : this.telemetry.peers.lookup(sent, meta.get(PEER_METADATA_ID_KEY) ?? '');
        req.mutateResponse(PEER_METADATA_KEY, this.telemetry.peerMetadata);
        req.mutateResponse(PEER_METADATA_ID_KEY, this.telemetry.self.nodeId);
      } else {
        req.mutate(PEER_METADATA_KEY, this.telemetry.peerMetadata);
        req.mutate(PEER_METADATA_ID_KEY, this.telemetry.self.nodeId);
      }
    }
    if (this.tracer !== null) this.tracer.start(req, meta, this.site, performance.timeOrigin + req.start);
  }

  /** An upstream answer was decoded: the identity the destination sent back (outbound). */
  onResponse(req: ActiveRequest, meta: Metadata): void {
    if (!this.exchange || this.inbound) return;
    const sent = meta.get(PEER_METADATA_KEY);
    if (sent !== undefined) req.peer = this.telemetry.peers.lookup(sent, meta.get(PEER_METADATA_ID_KEY) ?? '');
  }

  /** Inbound requests over mTLS count in rows of connection_security_policy="mutual_tls". */
  private mtlsReporter: IstioReporter | undefined;

  private seriesFor(stats: RequestStats): IstioSeries {
    if (stats.istioOwner !== this) {
      stats.istio = this.telemetry.istio.series(this.reporter!, stats.cluster);
      stats.istioOwner = this;
    }
    return stats.istio!;
  }

  /** The request is over: Istio's rows, the access logs, the span. */
  record(req: ActiveRequest, responseBytes: number, isError: boolean, now: number, responseMeta: Metadata | undefined, addresses: () => [string, string]): void {
    if (req.recorded) return;
    req.recorded = true;
    const ms = now - req.start;
    const code = isError ? 1 : 0;
    const flags = responseFlags(req.ending, req.endedByFilter, req.retries > 0);
    if (this.reporter !== null) {
      // A request a filter held when its client left has no route yet: its destination is unknown.
      const mtls = this.inbound && req.downstream.security.policy === 'mutual_tls';
      const series = mtls ? this.telemetry.istio.series(this.mtlsReporter ??= this.telemetry.reporter(this.config, this.protocol, true), req.stats?.cluster ?? '')
        : req.stats !== null ? this.seriesFor(req.stats) : this.telemetry.istio.series(this.reporter, '');
      series.row(code, flags, req.peer ?? UNKNOWN_PEER).observe(ms, req.requestBytes, responseBytes);
    }
    if (this.accessLogs.length === 0 && req.span === null) return;
    const [downstreamRemote, downstreamLocal] = addresses();
    const record: RequestRecord = {
      req, listener: this.config.name, protocol: this.protocol, durationMs: ms, responseBytes, code, flags,
      details: responseCodeDetails(req.ending, req.endedByFilter), responseMeta, startMs: performance.timeOrigin + req.start,
      downstreamRemote, downstreamLocal,
    };
    for (const log of this.accessLogs) log.log(record);
    if (req.span !== null) this.tracer?.end(record);
  }

  /** A connection opened with this telemetry. */
  acquire(): void {
    this.users++;
  }

  /** A connection that used it closed. */
  release(): void {
    if (--this.users === 0 && this.retired) void this.closeLogs();
  }

  /**
   * No new connection will use it. Its logs close once the connections still using it have
   * (until then they log where they did; a file closed early could hand its descriptor to
   * another file or socket).
   */
  close(): void {
    this.retired = true;
    if (this.users === 0) void this.closeLogs();
  }

  /**
   * The listener shuts down: its connections are being destroyed; what was logged is written
   * now. Resolves when the logs are written, or after `ms` (a stuck disk must not hold the stop).
   */
  async shutdown(ms = 2000): Promise<void> {
    this.retired = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.closeLogs(), new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); })]);
    clearTimeout(timer);
  }

  private async closeLogs(): Promise<void> {
    await Promise.all(this.accessLogs.map((log) => log.close()));
  }
}
