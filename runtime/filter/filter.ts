// An L7 filter: sees every request of its listener on the way to the router, and every answer
// on the way back (in reverse order), as grpc-js filters see sends forward and receives in
// reverse. A filter is shared by the listener's connections; per-request state hangs on the
// request (or, for Wasm filters, in the guest, keyed by the request).

import type { ActiveRequest } from '../proxy/active-request';
import type { FilterChain } from './filter-chain';
import type { Metadata } from '../codec/metadata';

/** What a filter decides for a request. */
export const FilterStatus = {
  /** Pass it on (with any mutation added through `req.mutate`). */
  CONTINUE: 0,
  /** Hold it: the filter calls `chain.resume(req)` later (after a timer, a host call). */
  PAUSE: 1,
  /** Answer it here with the reply set through `req.rejectWith(kind, message)`, encoded by the codec. */
  LOCAL_REPLY: 2,
  /** Close the client connection. */
  ABORT: 3,
} as const;
export type FilterStatusValue = (typeof FilterStatus)[keyof typeof FilterStatus];

/** What a filter that throws (a trapping plugin) does to the request. */
export type FailurePolicy = 'fail_closed' | 'fail_open';

export interface Filter {
  readonly name: string;
  readonly failurePolicy: FailurePolicy;
  onRequest(req: ActiveRequest, chain: FilterChain): FilterStatusValue;
  /**
   * An answer on its way back: CONTINUE (with any `req.mutateResponse`), or ABORT to close the
   * client connection instead. `meta`: the upstream response as decoded (absent for local replies).
   */
  onResponse(req: ActiveRequest, response: Buffer, isError: boolean, meta?: Metadata): FilterStatusValue;
  /** The request is over (answered or abandoned): drop any state kept for it. */
  onDone(req: ActiveRequest): void;
  /** The chain holding this filter is gone: release what it holds. */
  close?(): void;
}

/** A filter that passes everything: override what you need. */
export abstract class BaseFilter implements Filter {
  abstract readonly name: string;
  failurePolicy: FailurePolicy = 'fail_closed';

  onRequest(_req: ActiveRequest, _chain: FilterChain): FilterStatusValue {
    return FilterStatus.CONTINUE;
  }

  onResponse(_req: ActiveRequest, _response: Buffer, _isError: boolean, _meta?: Metadata): FilterStatusValue {
    return FilterStatus.CONTINUE;
  }

  onDone(_req: ActiveRequest): void {}
}
