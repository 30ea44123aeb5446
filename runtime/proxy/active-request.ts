// One request between its decoding and its response: the unit of correlation, ordering and stats.

import type { Metadata } from '../codec/metadata';
import type { RequestStats } from '../core/stats';

export interface ResponseSink {
  /** Delivers the response bytes (or a local reply) for `req`. */
  complete(req: ActiveRequest, response: Buffer, isError: boolean, now: number): void;
  /** The upstream failed `req`; the sink answers it with a local reply of `kind`. */
  fail(req: ActiveRequest, kind: number, message: string): void;
}

export class ActiveRequest {
  /** Response bytes once known (ordered delivery waits for earlier requests). */
  response: Buffer | null = null;
  done = false;
  /** Its client has gone: an upstream drops it unsent, or its response when it comes. */
  abandoned = false;

  constructor(
    readonly sink: ResponseSink,
    /** Released (null) once the request is abandoned, so a silent upstream holds no frames. */
    public meta: Metadata | null,
    readonly stats: RequestStats | null,
    /** performance.now() when the request was read. */
    readonly start: number,
  ) {}

  /** The client closed before the response: keep only what the upstream's bookkeeping needs. */
  abandon(): void {
    this.abandoned = true;
    this.meta = null;
    this.response = null;
  }
}
