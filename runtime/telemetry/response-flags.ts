// Envoy's response flags (the short codes in access logs and Istio's response_flags label) for
// how a request ended, derived from the local reply that ended it, if any.

import { ErrorKind } from '../wasm/abi';

/** No flag: the upstream answered. */
export const NO_FLAGS = '-';

const BY_KIND: Record<number, string> = {
  [ErrorKind.ROUTE_NOT_FOUND]: 'NR',
  [ErrorKind.CLUSTER_NOT_FOUND]: 'NC',
  [ErrorKind.NO_HEALTHY_UPSTREAM]: 'UH',
  [ErrorKind.BAD_RESPONSE]: 'UPE',
  [ErrorKind.UNSPECIFIED]: 'LR',
  [ErrorKind.OVER_LIMIT]: 'UO',
  [ErrorKind.CONNECT_FAILURE]: 'UF',
  [ErrorKind.UPSTREAM_CLOSED]: 'UC',
  [ErrorKind.TIMEOUT]: 'UT',
  [ErrorKind.PROTOCOL_ERROR]: 'DPE',
  [ErrorKind.PERMISSION_DENIED]: 'UAEX',
};

/** Every flag `responseFlags` can give (an access-log filter may name only these). */
export const RESPONSE_FLAGS: readonly string[] = [...new Set([...Object.values(BY_KIND), 'RL', 'UAEX', 'FI', 'DC', 'OM', 'URX'])];

/** Envoy's response code details for the same endings (%RESPONSE_CODE_DETAILS%). */
const DETAILS_BY_KIND: Record<number, string> = {
  [ErrorKind.ROUTE_NOT_FOUND]: 'route_not_found',
  [ErrorKind.CLUSTER_NOT_FOUND]: 'cluster_not_found',
  [ErrorKind.NO_HEALTHY_UPSTREAM]: 'no_healthy_upstream',
  [ErrorKind.BAD_RESPONSE]: 'upstream_response_invalid',
  [ErrorKind.UNSPECIFIED]: 'local_reply',
  [ErrorKind.OVER_LIMIT]: 'overflow',
  [ErrorKind.CONNECT_FAILURE]: 'upstream_connect_failure',
  [ErrorKind.UPSTREAM_CLOSED]: 'upstream_reset',
  [ErrorKind.TIMEOUT]: 'upstream_response_timeout',
  [ErrorKind.PROTOCOL_ERROR]: 'downstream_protocol_error',
  [ErrorKind.PERMISSION_DENIED]: 'filter_denied',
};

/** How a request ended, as the request path records it. */
export const Ending = {
  /** Answered by the upstream (or not yet known). */
  UPSTREAM: -1,
  /** The client left before its answer. */
  DOWNSTREAM_CLOSED: -2,
  /** Shed by the overload manager. */
  OVERLOADED: -3,
} as const;

/**
 * `kind`: the ErrorKind of the local reply that ended the request, or an Ending. `byFilter`: a
 * filter sent that reply (an over-limit reply from a filter is a rate limit, RL; any other a
 * filter's own, as Envoy's fault filter's FI).
 */
export function responseFlags(kind: number, byFilter: boolean, retried: boolean): string {
  if (kind === Ending.UPSTREAM) return NO_FLAGS;
  if (kind === Ending.DOWNSTREAM_CLOSED) return 'DC';
  if (kind === Ending.OVERLOADED) return 'OM';
  if (byFilter) return kind === ErrorKind.OVER_LIMIT ? 'RL' : kind === ErrorKind.PERMISSION_DENIED ? 'UAEX' : 'FI';
  const flag = BY_KIND[kind] ?? 'LR';
  // Envoy adds URX when the retries ran out on a failure.
  return retried && (flag === 'UT' || flag === 'UF' || flag === 'UC' || flag === 'UH' || flag === 'UO') ? `${flag},URX` : flag;
}

export function responseCodeDetails(kind: number, byFilter: boolean): string {
  if (kind === Ending.UPSTREAM) return 'via_upstream';
  if (kind === Ending.DOWNSTREAM_CLOSED) return 'downstream_remote_disconnect';
  if (kind === Ending.OVERLOADED) return 'overload';
  if (byFilter) return kind === ErrorKind.OVER_LIMIT ? 'local_rate_limited' : 'filter_local_reply';
  return DETAILS_BY_KIND[kind] ?? 'local_reply';
}
