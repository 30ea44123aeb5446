// What the layers after the codec (filter chain, router) need from the client connection a
// request came in on. DownstreamConnection implements it.

import type { ConnectionUpstreams } from '../upstream/connection-upstreams';
import type { ActiveRequest } from './active-request';
import type { MutationEntry } from '../codec/mutation';
import type { Metadata } from '../codec/metadata';
import type { AuthorizationInput } from '../security/authorization-policy';
import type { ConnectionSecurity } from '../security/downstream-tls';

export interface Downstream {
  /** This connection's upstream choice (the shared pool, or its own connections once pinned). */
  readonly upstreams: ConnectionUpstreams;
  /** The final answer for `req` (after the response filters), written in the protocol's order. */
  respond(req: ActiveRequest, response: Buffer, isError: boolean, now: number, silent?: boolean, responseMeta?: Metadata): void;
  /**
   * The codec's error reply to `req` for a local failure of `kind`; null when the codec could not
   * build one (the connection is then aborted and `req` accounted for).
   */
  encodeLocalReply(req: ActiveRequest, kind: number, message: string): Buffer | null;
  /** `response` with `mutations` applied by the codec (its response side); the bytes as they are if it cannot. */
  encodeResponse(req: ActiveRequest, response: Buffer, mutations: readonly MutationEntry[]): Buffer;
  /** ABI 1.2: part of `req`'s response (more follows), written to the client as soon as `req` is first in line. */
  partial(req: ActiveRequest, bytes: Buffer, now: number): void;
  /** Answers what is in flight, then closes (the codec asked for it, or could not encode). */
  closeAfterResponses(): void;
  /** Closes the connection now. */
  abort(reason: string): void;
  /** What the transport proved about the client (mTLS peer, or none). */
  readonly security: ConnectionSecurity;
  /** The connection's attributes and `meta`'s values, for one authorization decision (valid during the call). */
  authorizationInput(meta: Metadata): AuthorizationInput;
}
