// Compiled MetaProtocol routes: ordered, first match wins; a match is an AND of metadata matchers
// with Envoy HeaderMatcher semantics. Metadata values are latin1 strings (one char per byte), so
// configured strings are compared as the latin1 view of their UTF-8 bytes: byte-exact matching.

import { DEFAULT_ROUTE_TIMEOUT_MS } from '../config/types';
import type { KeyValue, MetadataMatcherConfig, RetryOn, RetryPolicyConfig, RouteActionConfig, RouteConfig, RouteConfiguration } from '../config/types';
import type { Metadata } from '../codec/metadata';
import { Mutation } from '../codec/mutation';
import { compileSafeRegex } from '../core/safe-regex';
import type { RequestStats, StatsStore } from '../core/stats';
import { hash32 } from '../upstream/load-balancer-ring-hash';

type Predicate = (meta: Metadata) => boolean;

const asBytes = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
const asText = (latin1: string) => Buffer.from(latin1, 'latin1').toString('utf8');

export function compileMatcher(m: MetadataMatcherConfig): Predicate {
  const { name, invert } = m;
  const match = m.match;
  if (match.kind === 'present') {
    const want = match.value;
    return (meta) => (meta.has(name) === want) !== invert;
  }
  let test: (v: string) => boolean;
  switch (match.kind) {
    case 'exact': { const x = asBytes(match.value); test = (v) => v === x; break; }
    case 'prefix': { const x = asBytes(match.value); test = (v) => v.startsWith(x); break; }
    case 'suffix': { const x = asBytes(match.value); test = (v) => v.endsWith(x); break; }
    case 'contains': { const x = asBytes(match.value); test = (v) => v.includes(x); break; }
    case 'regex': {
      // Envoy's safe_regex_match must match the whole value; RE2, so linear in its length.
      const re = compileSafeRegex(match.value);
      test = (v) => re.fullMatch(asText(v));
      break;
    }
  }
  // Envoy: a matcher on an absent key fails whether or not it is inverted.
  return (meta) => {
    const v = meta.get(name);
    return v !== undefined && test(v) !== invert;
  };
}

/** retry_on conditions as bits, so the router tests one with an AND. */
export const RetryCondition: Readonly<Record<RetryOn, number>> = { 'connect-failure': 1, reset: 2, timeout: 4, error: 8, refused: 16 };

export interface CompiledRetryPolicy extends RetryPolicyConfig {
  readonly retryOnBits: number;
}

export class CompiledRoute {
  readonly name: string;
  /** The whole request's time, retries included (0: none). */
  readonly timeoutMs: number;
  readonly retryPolicy: CompiledRetryPolicy | null;
  /** Shadow clusters and the percentage of requests each gets (Aeraki request_mirror_policies). */
  readonly mirrors: readonly { readonly cluster: string; readonly percentage: number }[] | null;
  /** Metadata keys whose values hash the request onto a ring_hash cluster's ring (Aeraki hash_policy). */
  readonly hashKeys: readonly string[] | null;
  /** Pre-encoded request mutation, or null when the route has none. */
  readonly requestMutation: Buffer | null;
  /** The same mutation as key/values (filters' mutations are added to it). */
  readonly requestMutationOps: readonly KeyValue[];
  private readonly predicates: Predicate[];
  private readonly pick: () => string;
  private readonly clusterNames: ReadonlySet<string>;
  private readonly stats = new Map<string, RequestStats>();

  constructor(config: RouteConfig, index: number, private readonly listener: string, private readonly store: StatsStore) {
    this.name = config.name || `route-${index}`;
    this.predicates = config.match.metadata.map(compileMatcher);
    this.pick = compileAction(config.route);
    this.clusterNames = new Set(config.route.kind === 'cluster' ? [config.route.cluster] : config.route.clusters.map((c) => c.name));
    this.timeoutMs = config.route.timeoutMs ?? DEFAULT_ROUTE_TIMEOUT_MS;
    this.hashKeys = config.route.hashPolicy?.length ? config.route.hashPolicy : null;
    this.mirrors = config.route.mirrors?.some((m) => m.percentage > 0) ? config.route.mirrors.filter((m) => m.percentage > 0) : null;
    const p = config.route.retryPolicy;
    this.retryPolicy = p && p.numRetries > 0 ? { ...p, retryOnBits: p.retryOn.reduce((bits, c) => bits | RetryCondition[c], 0) } : null;
    this.requestMutationOps = config.requestMutation;
    this.requestMutation = config.requestMutation.length > 0
      ? config.requestMutation.reduce((m, kv) => m.set(kv.key, kv.value), new Mutation()).encode()
      : null;
  }

  matches(meta: Metadata): boolean {
    const p = this.predicates;
    for (let i = 0; i < p.length; i++) if (!p[i](meta)) return false;
    return true;
  }

  /** The request's hash from the hash_policy keys it has; undefined when it has none of them. */
  hashOf(meta: Metadata): number | undefined {
    const keys = this.hashKeys;
    if (keys === null) return undefined;
    let text: string | undefined;
    for (let i = 0; i < keys.length; i++) {
      const v = meta.get(keys[i]);
      if (v !== undefined) text = text === undefined ? v : `${text}\u0000${v}`;
    }
    return text === undefined ? undefined : hash32(text);
  }

  /** The cluster for one request (weighted routes draw at random). */
  cluster(): string {
    return this.pick();
  }

  /** Whether this route can send a request to `cluster` (its cluster, or one of its weighted ones). */
  sendsTo(cluster: string): boolean {
    return this.clusterNames.has(cluster);
  }

  statsFor(cluster: string): RequestStats {
    let s = this.stats.get(cluster);
    if (!s) this.stats.set(cluster, (s = this.store.request(this.listener, this.name, cluster)));
    return s;
  }
}

function compileAction(action: RouteActionConfig): () => string {
  if (action.kind === 'cluster') {
    const name = action.cluster;
    return () => name;
  }
  const names = action.clusters.map((c) => c.name);
  const cumulative: number[] = [];
  let total = 0;
  for (const c of action.clusters) cumulative.push((total += c.weight));
  return () => {
    const r = Math.random() * total;
    for (let i = 0; i < cumulative.length; i++) if (r < cumulative[i]) return names[i];
    return names[names.length - 1];
  };
}

export class RouteTable {
  readonly routes: readonly CompiledRoute[];

  constructor(readonly config: RouteConfiguration, listener: string, store: StatsStore) {
    this.routes = config.routes.map((r, i) => new CompiledRoute(r, i, listener, store));
  }

  match(meta: Metadata): CompiledRoute | undefined {
    const routes = this.routes;
    for (let i = 0; i < routes.length; i++) if (routes[i].matches(meta)) return routes[i];
    return undefined;
  }
}
