// What a load balancer is asked with, and the health rule every policy applies.

import type { Endpoint } from './cluster';

export interface PickContext {
  readonly now: number;
  readonly avoid?: Endpoint;
  /** The request's hash (ring_hash: from the route's hash_policy); absent: a random point. */
  readonly hash?: number;
  /** Too few endpoints left: outlier ejection is ignored (connect back-off is not). */
  readonly panic?: boolean;
}

/** Not in connect back-off, and not ejected by outlier detection unless in panic. */
export const healthy = (ep: Endpoint, ctx: PickContext) => ep.ejectedUntil <= ctx.now && (ctx.panic === true || ep.outlierUntil <= ctx.now);

