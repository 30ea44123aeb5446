// Clusters of static endpoints with round-robin selection and passive health: an endpoint whose
// connection attempt failed is skipped for a backoff that doubles per consecutive failure.

import type { ClusterConfig } from '../config/types';
import type { ClusterStats, StatsStore } from '../core/stats';

const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 10_000;

export class Endpoint {
  /** Consecutive connection failures. */
  failures = 0;
  /** Skipped by load balancing until this time (ms, performance.now(): monotonic). */
  ejectedUntil = 0;

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
  private next = 0;

  constructor(public config: ClusterConfig, store: StatsStore) {
    this.endpoints = config.endpoints.map((e) => new Endpoint(e.address, e.port));
    this.stats = store.cluster(config.name);
  }

  /** Takes a new config (from CDS/EDS); endpoints that stay keep their health state. */
  update(config: ClusterConfig): void {
    const old = new Map(this.endpoints.map((e) => [e.label, e]));
    this.config = config;
    this.endpoints = config.endpoints.map((e) => old.get(`${e.address}:${e.port}`) ?? new Endpoint(e.address, e.port));
    this.next = 0;
  }

  get name(): string {
    return this.config.name;
  }

  /**
   * The next healthy endpoint in round-robin order at `now` (performance.now()), or undefined.
   * `avoid` (a retry's previous endpoint) is taken only when no other is healthy.
   */
  pick(now: number, avoid?: Endpoint): Endpoint | undefined {
    const eps = this.endpoints;
    let fallback: Endpoint | undefined;
    for (let tries = 0; tries < eps.length; tries++) {
      const ep = eps[this.next];
      this.next = (this.next + 1) % eps.length;
      if (ep.ejectedUntil > now) continue;
      if (ep !== avoid) return ep;
      fallback = ep;
    }
    return fallback;
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
