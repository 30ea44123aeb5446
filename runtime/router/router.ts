// The terminal stage of a listener's request path (Envoy generic_proxy's router filter): picks the
// route and cluster, hands each try of the request to an upstream connection, and is the sink
// upstreams answer to. It owns the request's deadlines (the route's timeout over all tries, the
// retry policy's per-try timeout) and its retries; what it finally answers goes back through the
// filter chain.
//
// Retries (retry.ts decides): only a request the codec marks idempotent or whose route says so, on
// the conditions of the route's retry_on, up to num_retries, within the cluster's retry budget,
// after a jittered back-off. A response is never half-delivered, so "never after a byte went
// downstream" holds by construction: the decision is made on the whole response.

import { ErrorKind, FrameFlag, MessageType } from '../wasm/abi';
import type { KeyValue } from '../config/types';
import { Mutation, MutationEntry } from '../codec/mutation';
import type { RequestStats, StatsStore } from '../core/stats';
import { SweepTimer } from '../core/sweep-timer';
import type { FilterChain } from '../filter/filter-chain';
import type { ActiveRequest, ResponseSink } from '../proxy/active-request';
import type { Metadata } from '../codec/metadata';
import type { ClusterManager } from '../upstream/cluster';
import { UpstreamConnection } from '../upstream/upstream-connection';
import { RetryCondition, RouteTable } from './route-table';
import { backOffMs, retryRefusal, withinBudget } from './retry';
import { mirror, SHADOW_SINK, shadowTimedOut } from './mirror';
import type { ListenerTelemetry } from '../telemetry/telemetry';

/** Deadline resolution: a timeout fires up to this much late. */
const TICK_MS = 10;

const fire = (req: ActiveRequest, now: number) => {
  const sink = req.sink;
  if (sink instanceof Router) sink.onDeadline(req, now);
  else if (sink === SHADOW_SINK) shadowTimedOut(req);
  else req.timerDue = Infinity;
};

// Deadlines cost no timer and no list per request: every tick, one sweep looks at the requests
// waiting on live upstream connections (which hold them anyway) and fires those past due.
// Requests waiting out a retry back-off are on no connection: they are in a list of their own.
const backOffs = new SweepTimer<ActiveRequest>(TICK_MS, fire);
let armed = 0;
let sweeper: NodeJS.Timeout | undefined;

function sweepConnections(): void {
  const now = performance.now();
  const due: ActiveRequest[] = [];
  for (const conn of UpstreamConnection.live) conn.collectDue(now, due);
  for (const req of due) if (req.timerDue <= now) fire(req, now); // one firing may settle another
  if (armed === 0 && sweeper !== undefined) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

/** What the router reads from its listener at each request (routes change with RDS). */
export interface RouterContext {
  readonly routes: RouteTable;
  readonly clusters: ClusterManager;
  readonly store: StatsStore;
  readonly config: { readonly name: string };
  readonly telemetry: ListenerTelemetry | null;
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
      this.chain.localReply(req, ErrorKind.ROUTE_NOT_FOUND, 'meltemi: no route matched the request');
      return;
    }
    let clusterName = route.cluster();
    const bound = req.downstream.upstreams.session?.clientFirstCluster;
    if (bound !== undefined && clusterName !== bound) {
      // A client-first session (ZooKeeper) lives on the cluster its first request chose: a later
      // request whose route can only send it elsewhere is refused, not sent where it does not say.
      if (!route.sendsTo(bound)) {
        if (req.stats === null) this.unrouted(req);
        this.chain.localReply(req, ErrorKind.ROUTE_NOT_FOUND, `meltemi: route "${route.name}" sends this request to cluster ${clusterName}, but its session lives on cluster ${bound}; a session cannot span clusters`);
        return;
      }
      clusterName = bound;
    }
    const stats = route.statsFor(clusterName);
    stats.total++;
    stats.active++;
    req.stats = stats;
    const cluster = this.ctx.clusters.get(clusterName);
    if (!cluster) {
      this.chain.localReply(req, ErrorKind.CLUSTER_NOT_FOUND, `meltemi: unknown cluster "${clusterName}"`);
      return;
    }
    const breakers = cluster.config.circuitBreakers;
    if (cluster.stats.rqActive >= breakers.maxRequests) {
      cluster.stats.pendingOverflow++;
      this.chain.localReply(req, ErrorKind.OVER_LIMIT, `meltemi: cluster ${cluster.name} has ${cluster.stats.rqActive} requests in flight (circuit_breakers.max_requests ${breakers.maxRequests})`);
      return;
    }
    req.route = route;
    req.cluster = cluster;
    req.sink = this;
    cluster.stats.routed(now);
    // A request the codec marks blocking (Redis BLPOP …) waits as long as its own command says:
    // the route timeout would cut it off, and the item it popped would be lost with the reply.
    if (meta.messageType !== MessageType.ONEWAY && route.timeoutMs > 0 && (meta.flags & FrameFlag.BLOCKING) === 0) req.deadline = now + route.timeoutMs;
    this.send(req, now);
  }

  /** Sends one try of `req` (the first, or a retry) to an upstream of its cluster. */
  private send(req: ActiveRequest, now: number): void {
    const meta = req.meta!;
    const cluster = req.cluster!;
    const route = req.route!;
    req.sent = false; // until the upstream writes this try
    // A retry goes to another endpoint — except by consistent hash, where the key's owner is the
    // only right one (Envoy avoids previous hosts only when told to).
    const hashing = cluster.config.lbPolicy === 'ring_hash';
    const session = req.downstream.upstreams.session;
    if (session !== null && session.movesTo(cluster, meta)) {
      // The login routes elsewhere than the greeting came from: the session moves, and the
      // login is answered by the codec's request to authenticate again for the new server.
      req.tryId++;
      session.rebind(req, cluster, this, now);
      if (!req.done) this.arm(req); // the route's timeout bounds the wait for the new server's greeting
      return;
    }
    const conn = req.downstream.upstreams.for(cluster, meta, now, hashing ? undefined : req.lastEndpoint ?? undefined, hashing && route.hashKeys ? route.hashOf(meta) : undefined);
    if (!conn) {
      if (req.downstream.upstreams.lostState) {
        this.answer(req, ErrorKind.UPSTREAM_CLOSED, 'meltemi: this client\'s own upstream connection closed; what it set there (SELECT, MULTI …) is gone, so this connection closes too');
        req.downstream.closeAfterResponses();
        return;
      }
      if (cluster.atMaxConnections) {
        this.failed(req, ErrorKind.OVER_LIMIT, `meltemi: cluster ${cluster.name} has ${cluster.stats.connectionsActive} connections open (circuit_breakers.max_connections ${cluster.config.circuitBreakers.maxConnections})`, RetryCondition.refused, now);
      } else {
        this.failed(req, ErrorKind.NO_HEALTHY_UPSTREAM, `meltemi: no healthy upstream in cluster "${cluster.name}"`, RetryCondition.refused, now);
      }
      return;
    }
    const refused = conn.refusal(meta.frame.length);
    if (refused !== undefined) {
      cluster.stats.pendingOverflow++;
      this.failed(req, ErrorKind.OVER_LIMIT, `meltemi: upstream over limit: ${refused}`, RetryCondition.refused, now);
      return;
    }
    const oneway = meta.messageType === MessageType.ONEWAY;
    req.tryId++;
    req.upstream = conn;
    if (req.lastEndpoint !== null) req.lastEndpoint.active--; // the previous try is over
    req.lastEndpoint = conn.endpoint;
    req.upstreamEndpoint = conn.endpoint;
    conn.endpoint.active++;
    req.tryAt = now;
    const mutation = mutationOf(route.requestMutation, route.requestMutationOps, req.mutations);
    try {
      // A rebind's answer: the codec turns it into the login for the session's new server.
      const replaced = session !== null && (meta.flags & FrameFlag.REBIND) !== 0 ? session.answer(meta.frame) ?? undefined : undefined;
      conn.send(oneway ? null : req, meta, mutation, replaced);
    } catch (err) {
      this.answer(req, ErrorKind.UNSPECIFIED, `meltemi: the codec could not encode the request: ${(err as Error).message}`);
      req.downstream.closeAfterResponses();
      return;
    }
    // Shadows go after the real request, once (not again with a retry).
    if (route.mirrors !== null && req.tryId === 1 && session === null) mirror(req, route, this.ctx.clusters, now, mutation);
    if (oneway) {
      this.finish(req);
      this.chain.sent(req, now);
    } else {
      const perTry = route.retryPolicy?.perTryTimeoutMs ?? 0;
      req.tryDeadline = perTry > 0 ? now + perTry : Infinity;
      this.arm(req);
    }
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
    if (req.done) return; // answered already (a timeout): this is a late response
    const cluster = req.cluster;
    if (cluster === null) {
      // Finished by the router already (its client left): only the accounting is left to do.
      this.chain.respond(req, response, isError, now, meta);
      return;
    }
    if (req.lastEndpoint !== null) cluster.report(req.lastEndpoint, isError ? 'error' : 'ok', now, req.tryAt);
    if (meta !== undefined) this.ctx.telemetry?.onResponse(req, meta);
    if (isError && this.retry(req, RetryCondition.error, now)) return;
    if (!isError && req.retries > 0) cluster.stats.rqRetrySuccess++;
    this.finish(req);
    this.chain.respond(req, response, isError, now, meta);
  }

  fail(req: ActiveRequest, kind: number, message: string, retired = false): void {
    if (req.done) return;
    const now = performance.now();
    const conn = req.upstream;
    req.upstream = null;
    if (req.cluster === null) {
      this.chain.localReply(req, kind, message); // finished already: accounting only
      return;
    }
    if (now >= req.deadline) {
      this.timedOut(req); // its deadline passed before the sweep saw it: that is what it is
      return;
    }
    // A request that did not fail itself but shared a connection retired for another's timeout:
    // sent again where that is safe (idempotent, or never written), whatever the retry policy
    // says (it was never answered).
    if (retired && this.resend(req, conn, now)) return;
    const condition = kind === ErrorKind.CONNECT_FAILURE ? RetryCondition['connect-failure'] : RetryCondition.reset;
    if (req.lastEndpoint !== null) req.cluster?.report(req.lastEndpoint, 'gateway', now);
    this.failed(req, kind, message, condition, now);
  }

  /**
   * Sends again, at once, a request that shared a connection retired for another's timeout and
   * never failed itself — when that is safe: idempotent or never written; once; within the
   * cluster's retry budget; and never for a client's own connection (its state, SELECT or
   * MULTI, went with it: that client is closed instead).
   */
  private resend(req: ActiveRequest, conn: UpstreamConnection | null, now: number): boolean {
    if (conn?.dedicated) {
      req.downstream.closeAfterResponses();
      return false;
    }
    if (req.resent || req.abandoned || req.meta === null || !(this.idempotent(req) || !req.sent)) return false;
    if (!withinBudget(req)) {
      req.cluster!.stats.rqRetryOverflow++;
      return false;
    }
    req.resent = true;
    if (req.retries === 0) req.cluster!.stats.retriesActive++;
    req.retries++;
    req.cluster!.stats.rqRetry++;
    this.send(req, now);
    return true;
  }

  /** A try failed with a local error of `kind`: retried if `condition` allows it, else answered. */
  private failed(req: ActiveRequest, kind: number, message: string, condition: number, now: number): void {
    if (this.retry(req, condition, now)) return;
    this.answer(req, kind, message);
  }

  /** The swept deadline of `req` came (it may be stale: the times are checked here). */
  onDeadline(req: ActiveRequest, now: number): void {
    if (req.done || req.abandoned) {
      this.finish(req);
      return;
    }
    if (now >= req.deadline) {
      req.upstream?.cancel(req);
      if (req.lastEndpoint !== null && req.retryAt === 0) req.cluster?.report(req.lastEndpoint, 'gateway', now, req.tryAt);
      this.timedOut(req);
      return;
    }
    if (req.retryAt !== 0 && now >= req.retryAt) {
      req.retryAt = 0;
      this.send(req, now);
      return;
    }
    if (now >= req.tryDeadline) {
      req.upstream?.cancel(req);
      req.upstream = null;
      req.tryDeadline = Infinity;
      req.cluster!.stats.rqPerTryTimeout++;
      if (req.lastEndpoint !== null) req.cluster!.report(req.lastEndpoint, 'gateway', now, req.tryAt);
      if (!this.retry(req, RetryCondition.timeout, now)) {
        this.answer(req, ErrorKind.TIMEOUT, `meltemi: try timed out after ${req.route!.retryPolicy!.perTryTimeoutMs} ms`);
      }
      return;
    }
    this.arm(req);
  }

  private timedOut(req: ActiveRequest): void {
    req.cluster!.stats.rqTimeout++;
    this.answer(req, ErrorKind.TIMEOUT, `meltemi: request timed out after ${req.route!.timeoutMs} ms${req.retries > 0 ? ` (${req.retries + 1} tries)` : ''}`);
  }

  /** The client went away: the request's deadlines and budget share are released. */
  abandoned(req: ActiveRequest): void {
    if (req.sink === this) this.finish(req);
  }

  /** Schedules another try of `req` after a back-off, if its route, codec and budget allow one. */
  private retry(req: ActiveRequest, condition: number, now: number): boolean {
    // A session's requests change state on its one connection: never sent twice, nor elsewhere.
    if (req.downstream.upstreams.session !== null) return false;
    const refusal = retryRefusal(req, condition, now, this.idempotent(req));
    if (refusal !== undefined) {
      if (refusal === 'limit') req.cluster!.stats.rqRetryLimitExceeded++;
      else if (refusal === 'budget') req.cluster!.stats.rqRetryOverflow++;
      return false;
    }
    const stats = req.cluster!.stats;
    if (req.retries === 0) stats.retriesActive++;
    req.retries++;
    stats.rqRetry++;
    req.upstream = null;
    req.retryAt = now + backOffMs(req.route!.retryPolicy!, req.retries);
    this.arm(req);
    return true;
  }

  private idempotent(req: ActiveRequest): boolean {
    return (req.meta !== null && (req.meta.flags & FrameFlag.IDEMPOTENT) !== 0) || req.route?.retryPolicy?.idempotent === true;
  }

  /** Keeps `req` swept until its earliest deadline. */
  private arm(req: ActiveRequest): void {
    const due = Math.min(req.deadline, req.tryDeadline, req.retryAt === 0 ? Infinity : req.retryAt);
    req.timerDue = due;
    if (due === Infinity) return;
    if (!req.armed) {
      req.armed = true;
      armed++;
      if (sweeper === undefined) {
        sweeper = setInterval(sweepConnections, TICK_MS);
        sweeper.unref(); // pending requests hold their sockets; the sweep alone keeps nothing alive
      }
    }
    if (req.upstream === null) backOffs.track(req); // waiting out a back-off, on no connection
  }

  /** A local reply of `kind` ends the request. */
  private answer(req: ActiveRequest, kind: number, message: string): void {
    this.finish(req);
    this.chain.localReply(req, kind, message);
  }

  /** The request is over as far as the router goes: no deadline, no budget share. */
  private finish(req: ActiveRequest): void {
    req.timerDue = Infinity;
    if (req.lastEndpoint !== null) {
      req.lastEndpoint.active--;
      req.lastEndpoint = null;
    }
    if (req.armed) {
      req.armed = false;
      armed--;
    }
    req.upstream = null;
    const cluster = req.cluster;
    if (cluster === null) return;
    cluster.stats.rqActive--;
    if (req.retries > 0) cluster.stats.retriesActive--;
    req.cluster = null; // counted once, whichever way it ends
  }
}

/** The encoded mutation for the upstream: the route's, plus what filters added. */
function mutationOf(encoded: Buffer | null, ops: readonly KeyValue[], added: MutationEntry[] | null): Buffer | null {
  if (added === null) return encoded;
  const m = ops.reduce((acc, kv) => acc.set(kv.key, kv.value), new Mutation());
  for (const e of added) m.add(e);
  return m.encode();
}
