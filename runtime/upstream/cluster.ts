// Clusters of endpoints, picked by the cluster's load-balancing policy (load-balancer.ts), with
// passive health: an endpoint whose connection attempt failed is skipped for a backoff that
// doubles per consecutive failure.

import type { ClusterConfig } from '../config/types';
import type { ClusterStats, StatsStore } from '../core/stats';
import { createLoadBalancer, LoadBalancer } from './load-balancer';

const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 10_000;

export class Endpoint {
  /** Consecutive connection failures. */
  failures = 0;
  /** Skipped by load balancing until this time (ms, performance.now(): monotonic). */
  ejectedUntil = 0;
  /** Tries on this endpoint not yet over (least_request compares them). */
  active = 0;

  constructor(readonly address: string, readonly port: number) {}

  get label(): string {
    return `${this.address}:${this.port}`;
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

export class Cluster {
  endpoints: Endpoint[];
  readonly stats: ClusterStats;
  private lb: LoadBalancer;

  constructor(public config: ClusterConfig, store: StatsStore) {
    this.endpoints = config.endpoints.map((e) => new Endpoint(e.address, e.port));
    this.stats = store.cluster(config.name);
    this.lb = createLoadBalancer(config.lbPolicy, this.endpoints);
  }

  /** Takes a new config (from CDS/EDS); endpoints that stay keep their health state. */
  update(config: ClusterConfig): void {
    const old = new Map(this.endpoints.map((e) => [e.label, e]));
    this.config = config;
    this.endpoints = config.endpoints.map((e) => old.get(`${e.address}:${e.port}`) ?? new Endpoint(e.address, e.port));
    this.lb = createLoadBalancer(config.lbPolicy, this.endpoints);
  }

  get name(): string {
    return this.config.name;
  }

  /** Whether another connection may open (circuit_breakers.max_connections); counts the overflow if not. */
  mayConnect(): boolean {
    if (this.stats.connectionsActive < this.config.circuitBreakers.maxConnections) return true;
    this.stats.cxOverflow++;
    return false;
  }

  /**
   * An endpoint healthy at `now` (performance.now()) by the cluster's policy, or undefined.
   * `avoid` (a retry's previous endpoint) is taken only when no other is healthy; `hash` picks
   * the point on a ring_hash cluster's ring.
   */
  pick(now: number, avoid?: Endpoint, hash?: number): Endpoint | undefined {
    return this.lb.pick({ now, avoid, hash });
  }
}

export class ClusterManager {
  private readonly clusters = new Map<string, Cluster>();
  /** Clusters from the config file: dynamic updates never remove them. */
  private readonly staticNames: ReadonlySet<string>;

  constructor(configs: readonly ClusterConfig[], private readonly store: StatsStore) {
    for (const c of configs) this.clusters.set(c.name, new Cluster(c, store));
    this.staticNames = new Set(configs.map((c) => c.name));
  }

  /** Adds or updates a cluster received over CDS/EDS. */
  upsert(config: ClusterConfig): void {
    const existing = this.clusters.get(config.name);
    if (existing) existing.update(config);
    else this.clusters.set(config.name, new Cluster(config, this.store));
  }

  /** Removes dynamic clusters not in `keep` (a state-of-the-world CDS update). */
  retainDynamic(keep: ReadonlySet<string>): void {
    for (const name of [...this.clusters.keys()]) {
      if (!this.staticNames.has(name) && !keep.has(name)) this.clusters.delete(name);
    }
  }

  get(name: string): Cluster | undefined {
    return this.clusters.get(name);
  }

  all(): Cluster[] {
    return [...this.clusters.values()];
  }
}
