// Plain-number counters on the request path; prom-client reads them only when /metrics is scraped
// (runtime/admin/metrics.ts). A labelled prom-client child hashes its labels on every inc(), which
// costs more than the whole per-request budget at high pipelining depth.

import { SecurityStats } from '../security/security-stats';
import { countIn } from './count-in';
import type { IstioSeries } from '../telemetry/istio-metrics';

/** Request duration buckets in seconds. */
export const DURATION_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
] as const;

/** Counters for one (listener, route, cluster). */
export class RequestStats {
  total = 0;
  errors = 0;
  active = 0;
  durationSum = 0;
  readonly durationBuckets = new Float64Array(DURATION_BUCKETS.length + 1);
  /** Istio's rows for these requests, and the listener telemetry that chose them (telemetry/telemetry.ts). */
  istio: IstioSeries | null = null;
  istioOwner: object | null = null;

  constructor(readonly listener: string, readonly route: string, readonly cluster: string) {}

  observe(seconds: number): void {
    this.durationSum += seconds;
    let i = 0;
    while (i < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[i]) i++;
    this.durationBuckets[i]++;
  }
}

/** Distinct `command` values counted per listener. */
export const MAX_COMMANDS = 128;

export class ListenerStats {
  decodingErrors = 0;
  idleTimeouts = 0;
  /** Connections closed for a missing, malformed or late PROXY protocol header. */
  proxyProtocolErrors = 0;
  connectionsTotal = 0;
  connectionsActive = 0;
  readonly localReplies = new Map<string, number>();
  /** Requests a filter answered, cut or failed on: "<filter>\u0000<outcome>" → count. */
  readonly filterOutcomes = new Map<string, number>();
  /** Requests by their `command` metadata; values past MAX_COMMANDS count as "other" (clients choose them). */
  readonly commands = new Map<string, number>();

  constructor(readonly listener: string) {}

  command(name: string): void {
    const n = this.commands.get(name);
    if (n !== undefined) this.commands.set(name, n + 1);
    else if (this.commands.size < MAX_COMMANDS) this.commands.set(name, 1);
    else countIn(this.commands, 'other');
  }

  onFilterOutcome(filter: string, outcome: string): void {
    const key = `${filter}\u0000${outcome}`;
    countIn(this.filterOutcomes, key);
  }

  localReply(kind: string): void {
    countIn(this.localReplies, kind);
  }
}

export class ClusterStats {
  connectionsTotal = 0;
  connectionsActive = 0;
  connectFailures = 0;
  /** Requests refused because an upstream connection was at its limits (Envoy: upstream_rq_pending_overflow). */
  pendingOverflow = 0;
  /** Envoy's names: requests that timed out (route timeout), tries that did (per-try timeout). */
  rqTimeout = 0;
  rqPerTryTimeout = 0;
  /** Retries sent, requests answered after a retry, retries refused by the budget or the limit. */
  rqRetry = 0;
  rqRetrySuccess = 0;
  rqRetryOverflow = 0;
  rqRetryLimitExceeded = 0;
  /** Outlier detection: endpoints ejected, and ejections refused by max_ejection_percent (Envoy outlier_detection.ejections_*). */
  outlierEjections = 0;
  outlierOverflow = 0;
  /** Requests queued on connections still opening (circuit breaker max_pending_requests). */
  rqPending = 0;
  /** Connections not opened because the cluster held max_connections (Envoy upstream_cx_overflow). */
  cxOverflow = 0;
  /** Shadow requests sent to this cluster, and those that could not be sent or failed (their answers are dropped). */
  mirrored = 0;
  mirrorFailures = 0;
  /** Bytes of shadows sent and not answered (capped: mirror.ts). */
  mirrorBytesActive = 0;
  /** Connections taken out of service because a request on them timed out. */
  connectionsRetired = 0;
  /** Requests routed to the cluster and not answered yet, and those among them being retried (the retry budget). */
  rqActive = 0;
  retriesActive = 0;
  /** The most requests active at once this second and the last: a burst of failures is judged against the load before it. */
  rqActivePeak = 0;
  rqActivePrevPeak = 0;
  peakWindowStart = 0;

  /** A request was routed here at `now`. */
  routed(now: number): void {
    const active = ++this.rqActive;
    if (now - this.peakWindowStart >= 1000) {
      this.rqActivePrevPeak = this.rqActivePeak;
      this.rqActivePeak = 0;
      this.peakWindowStart = now;
    }
    if (active > this.rqActivePeak) this.rqActivePeak = active;
  }

  constructor(readonly cluster: string) {}
}

/** How the connections a capture listener took were handled. */
export class CaptureStats {
  /** Handed to a listener. */
  listener = 0;
  /** Passed through as plain TCP: open now, in all, and those whose connect failed. */
  passthroughActive = 0;
  passthroughTotal = 0;
  passthroughConnectFailures = 0;
  /** No original destination: dialled at the capture port itself. */
  noOriginalDestination = 0;
  /** The proxy's own connection, captured again (its UID/GID is not exempt). */
  loop = 0;
  /** Arrived while draining. */
  refused = 0;

  constructor(readonly capture: string) {}
}

export class StatsStore {
  readonly requests = new Map<string, RequestStats>();
  /** TLS handshakes, certificates and authorization decisions. */
  readonly security = new SecurityStats();
  readonly captures = new Map<string, CaptureStats>();

  capture(name: string): CaptureStats {
    let s = this.captures.get(name);
    if (!s) this.captures.set(name, (s = new CaptureStats(name)));
    return s;
  }
  readonly listeners = new Map<string, ListenerStats>();
  readonly clusters = new Map<string, ClusterStats>();

  request(listener: string, route: string, cluster: string): RequestStats {
    const key = `${listener}\u0000${route}\u0000${cluster}`;
    let s = this.requests.get(key);
    if (!s) this.requests.set(key, (s = new RequestStats(listener, route, cluster)));
    return s;
  }

  /** Drops a removed listener's stats and its requests' (LDS churn must not grow memory). */
  forgetListener(name: string): void {
    this.listeners.delete(name);
    for (const [key, s] of this.requests) if (s.listener === name) this.requests.delete(key);
  }

  listener(name: string): ListenerStats {
    let s = this.listeners.get(name);
    if (!s) this.listeners.set(name, (s = new ListenerStats(name)));
    return s;
  }

  cluster(name: string): ClusterStats {
    let s = this.clusters.get(name);
    if (!s) this.clusters.set(name, (s = new ClusterStats(name)));
    return s;
  }
}
