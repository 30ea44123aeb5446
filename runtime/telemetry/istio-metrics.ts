// Istio's standard metrics (istio.io reference/config/metrics) for every codec: requests,
// duration and sizes per request, and the TCP connection metrics per listener, with Istio's
// labels, so Kiali, the Istio dashboards and alerts written for HTTP work for Dubbo or Redis.
//
// The request path only bumps plain numbers in a row found by a short scan (rows differ by
// response code, response flags and peer: a handful per destination); labels are built when
// /metrics is scraped, as for meltemi's own metrics (core/stats.ts says why).

import { UNKNOWN, UNKNOWN_PEER, type WorkloadIdentity } from './workload';

/** Istio's buckets for istio_request_duration_milliseconds. */
export const ISTIO_DURATION_BUCKETS_MS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000] as const;
/** Istio's buckets for istio_request_bytes and istio_response_bytes (powers of ten). */
export const ISTIO_BYTES_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000] as const;

function bucketOf(buckets: readonly number[], v: number): number {
  let i = 0;
  while (i < buckets.length && v > buckets[i]) i++;
  return i;
}

/** Counters of the requests of one destination that ended alike (code, flags, peer). */
export class IstioRow {
  requests = 0;
  durationSum = 0;
  readonly duration = new Float64Array(ISTIO_DURATION_BUCKETS_MS.length + 1);
  requestBytesSum = 0;
  readonly requestBytes = new Float64Array(ISTIO_BYTES_BUCKETS.length + 1);
  responseBytesSum = 0;
  readonly responseBytes = new Float64Array(ISTIO_BYTES_BUCKETS.length + 1);

  constructor(readonly code: number, readonly flags: string, readonly peer: WorkloadIdentity) {}

  observe(ms: number, requestBytes: number, responseBytes: number): void {
    this.requests++;
    this.durationSum += ms;
    this.duration[bucketOf(ISTIO_DURATION_BUCKETS_MS, ms)]++;
    this.requestBytesSum += requestBytes;
    this.requestBytes[bucketOf(ISTIO_BYTES_BUCKETS, requestBytes)]++;
    this.responseBytesSum += responseBytes;
    this.responseBytes[bucketOf(ISTIO_BYTES_BUCKETS, responseBytes)]++;
  }
}

/** What every series of one listener shares: which side reports, who this proxy is, the protocol. */
export interface IstioReporter {
  /** `source` on an outbound listener (the client's sidecar), `destination` on an inbound one. */
  readonly reporter: 'source' | 'destination';
  readonly self: WorkloadIdentity;
  /** The application protocol (the codec's): request_protocol. */
  readonly protocol: string;
  /** Inbound: the service this listener fronts (else derived from the cluster name). */
  readonly destinationService: string | undefined;
  /** Istio's label: mutual_tls, none, or unknown (the source side cannot tell). */
  readonly securityPolicy: string;
}

/** Rows past this per destination are folded into one with the peer unknown (a peer cannot grow series without bound). */
const MAX_ROWS = 64;

/** The requests of one listener to one destination cluster. */
export class IstioSeries {
  readonly rows: IstioRow[] = [];
  readonly service: DestinationService;

  constructor(readonly reporter: IstioReporter, readonly cluster: string) {
    this.service = destinationService(reporter.destinationService, cluster);
  }

  row(code: number, flags: string, peer: WorkloadIdentity): IstioRow {
    const rows = this.rows;
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      if (r.code === code && r.peer === peer && r.flags === flags) return r;
    }
    if (rows.length >= MAX_ROWS) peer = UNKNOWN_PEER;
    for (const r of rows) if (r.code === code && r.peer === peer && r.flags === flags) return r;
    const r = new IstioRow(code, flags, peer);
    rows.push(r);
    return r;
  }
}


/** A listener's downstream connections, for istio_tcp_*. */
export class IstioTcpSeries {
  opened = 0;
  closed = 0;
  received = 0;
  sent = 0;
  constructor(readonly reporter: IstioReporter, readonly service: DestinationService) {}
}

export interface DestinationService {
  readonly host: string;
  readonly name: string;
  readonly namespace: string;
}

/**
 * Istio's outbound cluster names are `outbound|<port>|<subset>|<host>`: the service is the host,
 * its name and namespace the first two labels of a Kubernetes host (`<name>.<ns>.svc.<domain>`).
 */
export function destinationService(configured: string | undefined, cluster: string): DestinationService {
  const host = configured ?? (cluster === '' ? UNKNOWN : cluster.includes('|') ? cluster.slice(cluster.lastIndexOf('|') + 1) || UNKNOWN : cluster);
  const labels = host.split('.');
  const kube = labels.length >= 3 && labels[2] === 'svc';
  return { host, name: labels[0] || UNKNOWN, namespace: kube ? labels[1] : UNKNOWN };
}

/**
 * Every series of the process (of this worker), read at scrape time. Reporters are interned by
 * their labels, and each keeps its series by cluster (requests) and by service (connections), so
 * listeners alike — or one listener across LDS updates — count in the same rows.
 */
export class IstioStore {
  private readonly reporters = new Map<string, IstioReporter>();
  private readonly requestSeries = new Map<IstioReporter, Map<string, IstioSeries>>();
  private readonly tcpSeries = new Map<IstioReporter, Map<string, IstioTcpSeries>>();

  /** The interned reporter with `r`'s labels. */
  reporter(r: IstioReporter): IstioReporter {
    const key = `${r.reporter}\u0000${r.protocol}\u0000${r.destinationService ?? ''}\u0000${r.securityPolicy}`;
    let known = this.reporters.get(key);
    if (!known) this.reporters.set(key, (known = r));
    return known;
  }

  series(reporter: IstioReporter, cluster: string): IstioSeries {
    return lookup(this.requestSeries, reporter, cluster, () => new IstioSeries(reporter, cluster));
  }

  tcp(reporter: IstioReporter, service: string): IstioTcpSeries {
    return lookup(this.tcpSeries, reporter, service, () => new IstioTcpSeries(reporter, destinationService(reporter.destinationService, service)));
  }

  *allSeries(): Iterable<IstioSeries> {
    for (const m of this.requestSeries.values()) yield* m.values();
  }

  *allTcp(): Iterable<IstioTcpSeries> {
    for (const m of this.tcpSeries.values()) yield* m.values();
  }
}

function lookup<T>(maps: Map<IstioReporter, Map<string, T>>, reporter: IstioReporter, key: string, make: () => T): T {
  let m = maps.get(reporter);
  if (!m) maps.set(reporter, (m = new Map()));
  let v = m.get(key);
  if (v === undefined) m.set(key, (v = make()));
  return v;
}

type Labels = Record<string, string>;

function side(prefix: 'source' | 'destination', w: WorkloadIdentity, labels: Labels): void {
  labels[`${prefix}_workload`] = w.workload;
  labels[`${prefix}_workload_namespace`] = w.namespace;
  labels[`${prefix}_principal`] = w.principal;
  labels[`${prefix}_app`] = w.app;
  labels[`${prefix}_version`] = w.version;
  labels[`${prefix}_canonical_service`] = w.canonicalService;
  labels[`${prefix}_canonical_revision`] = w.canonicalRevision;
  labels[`${prefix}_cluster`] = w.cluster;
}

/** Istio's label set for one row (its order is Istio's). */
export function istioLabels(r: IstioReporter, peer: WorkloadIdentity, service: DestinationService, protocol: string, code: string, flags: string): Labels {
  const labels: Labels = { reporter: r.reporter };
  const [source, destination] = r.reporter === 'source' ? [r.self, peer] : [peer, r.self];
  side('source', source, labels);
  side('destination', destination, labels);
  labels.destination_service = service.host;
  labels.destination_service_name = service.name;
  labels.destination_service_namespace = service.namespace;
  labels.request_protocol = protocol;
  labels.response_code = code;
  labels.grpc_response_status = '';
  labels.response_flags = flags;
  labels.connection_security_policy = r.securityPolicy;
  return labels;
}
