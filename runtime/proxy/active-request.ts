// One request between its decoding and its response: the unit of correlation, ordering and
// stats, and the state each layer keeps for it (how far the filter chain got, the reply a
// filter asked for). Layers are shared per listener; this object is the only thing per request.

import type { Metadata } from '../codec/metadata';
import type { MutationEntry } from '../codec/mutation';
import { MutationOp, MutationOpValue } from '../wasm/abi';
import type { RequestStats } from '../core/stats';
import type { Downstream } from './downstream';
import type { Timed } from '../core/sweep-timer';
import type { CompiledRoute } from '../router/route-table';
import type { Cluster, Endpoint } from '../upstream/cluster';
import type { UpstreamConnection } from '../upstream/upstream-connection';
import type { WorkloadIdentity } from '../telemetry/workload';
import { Ending } from '../telemetry/response-flags';

/** Where an upstream delivers the outcome of a request it carried: the router. */
export interface ResponseSink {
  /** Delivers the response bytes for `req`; `meta` is the response as decoded (valid during the call). */
  complete(req: ActiveRequest, response: Buffer, isError: boolean, now: number, meta?: Metadata): void;
  /**
   * The upstream failed `req`; the sink retries it or answers it with a local reply of `kind`.
   * `retired`: the connection was retired (a request on it timed out) and `req` never failed
   * itself — the sink sends it again if that is safe.
   */
  fail(req: ActiveRequest, kind: number, message: string, retired?: boolean): void;
}

export class ActiveRequest implements Timed {
  /** Response bytes once known (ordered delivery waits for earlier requests). */
  response: Buffer | null = null;
  /** ABI 1.2: pieces of a streamed response that wait for the requests before this one. */
  partials: Buffer[] | null = null;
  done = false;
  /** Its client has gone: an upstream drops it unsent, or its response when it comes. */
  abandoned = false;
  /** Route stats, once the router chose a route (null for heartbeats and protocol errors). */
  stats: RequestStats | null = null;
  /** Who an upstream answers to; set by the router when it sends the request. */
  sink: ResponseSink | null = null;
  /** Request filters that have run (the next one to run is at this index). */
  filterIndex = 0;
  /** A filter paused the chain; `FilterChain.resume` continues it. */
  paused = false;
  /** The filter that paused it: the only one that may resume it. */
  pausedBy: object | null = null;
  /** Mutations filters added to the response; the codec applies them before it goes back. */
  responseMutations: MutationEntry[] | null = null;
  /** Mutations filters added; applied with the route's own. */
  mutations: MutationEntry[] | null = null;
  /** Wasm filters: the request's number in filter calls. */
  filterId = 0;
  /** What a filter that returned LOCAL_REPLY answers with. */
  replyKind = 0;
  replyMessage = '';

  // The router's state for timeouts and retries (router/router.ts).
  route: CompiledRoute | null = null;
  cluster: Cluster | null = null;
  /** The whole request's deadline, and the current try's (performance.now() ms). */
  deadline = Infinity;
  tryDeadline = Infinity;
  /** Waiting out a retry back-off until then (0: not waiting). */
  retryAt = 0;
  retries = 0;
  /** A mirror's shadow: its frame's size, counted against the shadow cluster's cap. */
  shadowBytes = 0;
  /** Sent again after its connection was retired for another's timeout (once at most). */
  resent = false;
  /** Numbers the tries: an upstream holding an older try drops it. */
  tryId = 0;
  /** Where the current try was sent, and the id it has there (request-id correlation). */
  upstream: UpstreamConnection | null = null;
  upstreamId = 0;
  /** The endpoint of the last try: a retry goes elsewhere if it can. */
  lastEndpoint: Endpoint | null = null;
  /** When the current try was handed to its upstream (performance.now() ms): peak_ewma's round trip. */
  tryAt = 0;
  /** The current try has been written to its upstream (not just queued). */
  sent = false;
  timerDue = Infinity;
  inTimer = false;
  /** Counted among the requests with a deadline (the router sweeps while there are any). */
  armed = false;

  // Telemetry (runtime/telemetry/).
  /** How it ended: the ErrorKind of the local reply that answered it, or an Ending. */
  ending: number = Ending.UPSTREAM;
  /** That local reply came from a filter. */
  endedByFilter = false;
  /** The endpoint of the last try (kept after the router is done with it, for logs and spans). */
  upstreamEndpoint: Endpoint | null = null;
  /** The peer sidecar's identity, from the metadata exchange. */
  peer: WorkloadIdentity | null = null;
  /** The trace this request is part of ('' if none), and its span on this proxy (an OpenTelemetry Span). */
  traceId = '';
  span: { end(): void } | null = null;
  /** The request frame's size. */
  readonly requestBytes: number;
  /** Counted by telemetry already (a request whose client left is counted then, not again when its answer comes). */
  recorded = false;

  constructor(
    readonly downstream: Downstream,
    /** Released (null) once the request is abandoned, so a silent upstream holds no frames. */
    public meta: Metadata | null,
    /** performance.now() when the request was read. */
    readonly start: number,
  ) {
    this.requestBytes = meta === null ? 0 : meta.frame.length;
  }

  /** Sets the local reply a filter answers with (it then returns FilterStatus.LOCAL_REPLY). */
  rejectWith(kind: number, message: string): void {
    this.replyKind = kind;
    this.replyMessage = message;
  }

  /** Adds a mutation to the request, applied by the codec with the route's request_mutation. */
  mutate(key: string, value: string, op: MutationOpValue = MutationOp.SET): void {
    (this.mutations ??= []).push({ op, key, value });
  }

  /** Adds a mutation to the response (filters' on_response), applied by the codec where it can. */
  mutateResponse(key: string, value: string, op: MutationOpValue = MutationOp.SET): void {
    (this.responseMutations ??= []).push({ op, key, value });
  }

  /** The client closed before the response: keep only what the upstream's bookkeeping needs. */
  abandon(): void {
    this.abandoned = true;
    if (this.ending === Ending.UPSTREAM) this.ending = Ending.DOWNSTREAM_CLOSED;
    this.meta = null;
    this.response = null;
  }
}
