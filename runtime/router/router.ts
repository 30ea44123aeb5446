// The terminal stage of a listener's request path (Envoy generic_proxy's router filter): picks the
// route and cluster, hands the request to an upstream connection, and is the sink upstreams
// answer to — responses and failures come here, not to the client connection, so timeouts and
// retries (next) live in one place. What it answers goes back through the filter chain.

import { ErrorKind, FrameFlag, MessageType } from '../wasm/abi';
import type { KeyValue } from '../config/types';
import { Mutation, MutationEntry } from '../codec/mutation';
import type { RequestStats, StatsStore } from '../core/stats';
import type { FilterChain } from '../filter/filter-chain';
import type { ActiveRequest, ResponseSink } from '../proxy/active-request';
import type { Metadata } from '../codec/metadata';
import type { ClusterManager } from '../upstream/cluster';
import type { RouteTable } from './route-table';


/** What the router reads from its listener at each request (routes change with RDS). */
export interface RouterContext {
  readonly routes: RouteTable;
  readonly clusters: ClusterManager;
  readonly store: StatsStore;
  readonly config: { readonly name: string };
}

export class Router implements ResponseSink {
  private noRouteStats: RequestStats | undefined;
  /** Set by the chain that ends in this router. */
  chain!: FilterChain;

  constructor(private readonly ctx: RouterContext) {}

  route(req: ActiveRequest, now: number): void {
    const meta = req.meta!;
    const route = this.ctx.routes.match(meta);
    if (!route) {
      if (req.stats === null) this.unrouted(req);
      this.fail(req, ErrorKind.ROUTE_NOT_FOUND, 'meltemi: no route matched the request');
      return;
    }
    const clusterName = route.cluster();
    const stats = route.statsFor(clusterName);
    stats.total++;
    stats.active++;
    req.stats = stats;
    const cluster = this.ctx.clusters.get(clusterName);
    if (!cluster) {
      this.fail(req, ErrorKind.CLUSTER_NOT_FOUND, `meltemi: unknown cluster "${clusterName}"`);
      return;
    }
    const conn = req.downstream.upstreams.for(cluster, meta, now);
    if (!conn) {
      this.fail(req, ErrorKind.NO_HEALTHY_UPSTREAM, `meltemi: no healthy upstream in cluster "${cluster.name}"`);
      return;
    }
    const refused = conn.refusal(meta.frame.length);
    if (refused !== undefined) {
      cluster.stats.pendingOverflow++;
      this.fail(req, ErrorKind.OVER_LIMIT, `meltemi: upstream over limit: ${refused}`);
      return;
    }
    const oneway = meta.messageType === MessageType.ONEWAY;
    req.sink = this;
    try {
      conn.send(oneway ? null : req, meta, mutationOf(route.requestMutation, route.requestMutationOps, req.mutations));
    } catch (err) {
      this.fail(req, ErrorKind.UNSPECIFIED, `meltemi: the codec could not encode the request: ${(err as Error).message}`);
      req.downstream.closeAfterResponses();
      return;
    }
    if (oneway) this.chain.sent(req, now);
    if (meta.flags & FrameFlag.DRAIN_CLOSE) req.downstream.closeAfterResponses();
  }

  /** Counts `req` as a request without route (a filter answered or held it before routing). */
  unrouted(req: ActiveRequest): void {
    const stats = this.noRouteStats ??= this.ctx.store.request(this.ctx.config.name, '', '');
    stats.total++;
    stats.active++;
    req.stats = stats;
  }

  complete(req: ActiveRequest, response: Buffer, isError: boolean, now: number, meta?: Metadata): void {
    this.chain.respond(req, response, isError, now, meta);
  }

  fail(req: ActiveRequest, kind: number, message: string): void {
    this.chain.localReply(req, kind, message);
  }
}

/** The encoded mutation for the upstream: the route's, plus what filters added. */
function mutationOf(encoded: Buffer | null, ops: readonly KeyValue[], added: MutationEntry[] | null): Buffer | null {
  if (added === null) return encoded;
  const m = ops.reduce((acc, kv) => acc.set(kv.key, kv.value), new Mutation());
  for (const e of added) m.add(e);
  return m.encode();
}
