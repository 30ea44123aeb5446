// Clusters of endpoints, picked by the cluster's load-balancing policy (load-balancer.ts), with
// passive health: an endpoint whose connection attempt failed is skipped for a backoff that
// doubles per consecutive failure; with outlier_detection, one whose requests fail in a row is
// ejected for base_ejection_time × its ejections, at most max_ejection_percent of the endpoints
// at once, and ejection is ignored altogether while fewer than healthy_panic_threshold percent
// are left (Envoy's panic mode: better an ejected endpoint than none).

import type { ProxySecurity } from '../security/proxy-security';
import type { ClusterConfig, OutlierDetectionConfig } from '../config/types';
import type { ClusterStats, StatsStore } from '../core/stats';
import { createLoadBalancer, LoadBalancer } from './load-balancer';
import { observeRtt, PEAK_EWMA_DEFAULT_DECAY_MS } from './load-balancer-peak-ewma';

const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 10_000;

export class Endpoint {
  /** Consecutive connection failures. */
  failures = 0;
  /** Skipped by load balancing until this time (ms, performance.now(): monotonic). */
  ejectedUntil = 0;
  /** Tries on this endpoint not yet over (least_request compares them). */
  active = 0;
  /** Outlier detection: failures in a row, ejected until (performance.now() ms), times ejected. */
  consecutiveErrors = 0;
  consecutiveGatewayFailures = 0;
  outlierUntil = 0;
  ejections = 0;
  /** peak_ewma: the latency estimate (ms), when it was last updated, and whether it ever was. */
  rttMs = 0;
  rttAt = 0;
  rttMeasured = false;

  /** `address:port` (made once: access logs and spans read it per request). */
  readonly label: string;

  constructor(readonly address: string, readonly port: number) {
    this.label = `${address}:${port}`;
  }

  connectFailed(now: number): void {
    this.failures++;
    this.ejectedUntil = now + Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (this.failures - 1));
  }

  connected(): void {
    this.failures = 0;
    this.ejectedUntil = 0;
  }
}

/** What a try's outcome says of its endpoint (outlier detection). */
export type TryOutcome = 'ok' | 'error' | 'gateway';

const MAX_EJECTION_MS = 300_000;
const DEFAULT_PANIC_THRESHOLD = 50;

export class Cluster {
  endpoints: Endpoint[];
  readonly stats: ClusterStats;
  private lb: LoadBalancer;
  /** Endpoints ejected by outlier detection (some may have come back: pruned when looked at). */
  private readonly ejected = new Set<Endpoint>();

  /** `security`: the proxy's workload identity, for clusters with `tls`. */
  constructor(public config: ClusterConfig, store: StatsStore, readonly security?: ProxySecurity) {
    this.endpoints = config.endpoints.map((e) => new Endpoint(e.address, e.port));
    this.stats = store.cluster(config.name);
    this.lb = createLoadBalancer(config, this.endpoints);
  }

  /** Takes a new config (from CDS/EDS); endpoints that stay keep their health state. */
  update(config: ClusterConfig): void {
    const old = new Map(this.endpoints.map((e) => [e.label, e]));
    this.config = config;
    this.endpoints = config.endpoints.map((e) => old.get(`${e.address}:${e.port}`) ?? new Endpoint(e.address, e.port));
    for (const ep of this.ejected) if (!this.endpoints.includes(ep)) this.ejected.delete(ep);
    this.lb = createLoadBalancer(config, this.endpoints);
  }

  get name(): string {
    return this.config.name;
  }

  /** The cluster holds circuit_breakers.max_connections: no other connection may open. */
  get atMaxConnections(): boolean {
    return this.stats.connectionsActive >= this.config.circuitBreakers.maxConnections;
  }

  /** Whether another connection may open; counts the overflow if not. */
  mayConnect(): boolean {
    if (!this.atMaxConnections) return true;
    this.stats.cxOverflow++;
    return false;
  }

  /**
   * An endpoint healthy at `now` (performance.now()) by the cluster's policy, or undefined.
   * `avoid` (a retry's previous endpoint) is taken only when no other is healthy; `hash` picks
   * the point on a ring_hash cluster's ring.
   */
  pick(now: number, avoid?: Endpoint, hash?: number): Endpoint | undefined {
    return this.lb.pick({ now, avoid, hash, panic: this.ejected.size > 0 && this.inPanic(now) });
  }

  /** Whether so few endpoints are left that ejection is ignored. */
  private inPanic(now: number): boolean {
    for (const ep of this.ejected) if (ep.outlierUntil <= now) this.ejected.delete(ep);
    const n = this.endpoints.length;
    return n > 0 && ((n - this.ejected.size) * 100) / n < (this.config.healthyPanicThreshold ?? DEFAULT_PANIC_THRESHOLD);
  }

  /**
   * Records a try's outcome on `ep`; ejects it when its failures in a row reach the thresholds.
   * `tryAt`: when the try was sent, for an answer or a timeout (peak_ewma learns the round trip;
   * a connect failure or reset says nothing of the endpoint's speed).
   */
  report(ep: Endpoint, outcome: TryOutcome, now: number, tryAt?: number): void {
    if (tryAt !== undefined && this.config.lbPolicy === 'peak_ewma') observeRtt(ep, now - tryAt, now, this.config.peakEwmaDecayMs ?? PEAK_EWMA_DEFAULT_DECAY_MS);
    const od = this.config.outlierDetection;
    if (!od) return;
    if (outcome === 'ok') {
      ep.consecutiveErrors = 0;
      ep.consecutiveGatewayFailures = 0;
      return;
    }
    const tripped = outcome === 'error'
      ? od.consecutiveErrors > 0 && ++ep.consecutiveErrors >= od.consecutiveErrors
      : od.consecutiveGatewayFailures > 0 && ++ep.consecutiveGatewayFailures >= od.consecutiveGatewayFailures;
    if (tripped) this.eject(ep, od, now);
  }

  private eject(ep: Endpoint, od: OutlierDetectionConfig, now: number): void {
    ep.consecutiveErrors = 0;
    ep.consecutiveGatewayFailures = 0;
    if (ep.outlierUntil > now) return;
    // Envoy's decay: every `interval` an endpoint spends back in service takes one off the
    // multiplier, so an endpoint that failed once long ago is not ejected for long again.
    if (ep.ejections > 0) ep.ejections = Math.max(0, ep.ejections - Math.floor((now - ep.outlierUntil) / od.intervalMs));
    for (const e of this.ejected) if (e.outlierUntil <= now) this.ejected.delete(e);
    // Envoy ejects at least one endpoint whatever the percentage.
    if (this.ejected.size >= Math.max(1, Math.floor((od.maxEjectionPercent / 100) * this.endpoints.length))) {
      this.stats.outlierOverflow++;
      return;
    }
    ep.ejections++;
    ep.outlierUntil = now + Math.min(MAX_EJECTION_MS, od.baseEjectionMs * ep.ejections);
    this.ejected.add(ep);
    this.stats.outlierEjections++;
  }
}

export class ClusterManager {
  private readonly clusters = new Map<string, Cluster>();
  /** Clusters from the config file: dynamic updates never remove them. */
  private readonly staticNames: ReadonlySet<string>;
  /** Called after a dynamic update (a multi-worker primary passes the clusters on). */
  onChange: (() => void) | undefined;

  constructor(configs: readonly ClusterConfig[], private readonly store: StatsStore, private readonly security?: ProxySecurity) {
    for (const c of configs) this.clusters.set(c.name, new Cluster(c, store, security));
    this.staticNames = new Set(configs.map((c) => c.name));
  }

  /** Adds or updates a cluster received over CDS/EDS. */
  upsert(config: ClusterConfig): void {
    const existing = this.clusters.get(config.name);
    if (existing) existing.update(config);
    else this.clusters.set(config.name, new Cluster(config, this.store, this.security));
    this.onChange?.();
  }

  /** Removes dynamic clusters not in `keep` (a state-of-the-world CDS update). */
  retainDynamic(keep: ReadonlySet<string>): void {
    for (const name of [...this.clusters.keys()]) {
      if (!this.staticNames.has(name) && !keep.has(name)) this.clusters.delete(name);
    }
    this.onChange?.();
  }

  get(name: string): Cluster | undefined {
    return this.clusters.get(name);
  }

  all(): Cluster[] {
    return [...this.clusters.values()];
  }
}
