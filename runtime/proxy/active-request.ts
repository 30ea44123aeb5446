// One request between its decoding and its response: the unit of correlation, ordering and
// stats, and the state each layer keeps for it (how far the filter chain got, the reply a
// filter asked for). Layers are shared per listener; this object is the only thing per request.

import type { Metadata } from '../codec/metadata';
import type { MutationEntry } from '../codec/mutation';
import { MutationOp, MutationOpValue } from '../wasm/abi';
import type { RequestStats } from '../core/stats';
import type { Downstream } from './downstream';

/** Where an upstream delivers the outcome of a request it carried: the router. */
export interface ResponseSink {
  /** Delivers the response bytes for `req`; `meta` is the response as decoded (valid during the call). */
  complete(req: ActiveRequest, response: Buffer, isError: boolean, now: number, meta?: Metadata): void;
  /** The upstream failed `req`; the sink answers it with a local reply of `kind`. */
  fail(req: ActiveRequest, kind: number, message: string): void;
}

export class ActiveRequest {
  /** Response bytes once known (ordered delivery waits for earlier requests). */
  response: Buffer | null = null;
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

  constructor(
    readonly downstream: Downstream,
    /** Released (null) once the request is abandoned, so a silent upstream holds no frames. */
    public meta: Metadata | null,
    /** performance.now() when the request was read. */
    readonly start: number,
  ) {}

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
    this.meta = null;
    this.response = null;
  }
}
