// ABI 1.2 bound sessions (Envoy generic_proxy's bind_upstream_connection): a client connection
// whose codec declares `bind_upstream` gets one upstream connection of its own for its life, and
// everything it sends goes there. A `server_first` codec's session opens that connection when the
// client connects, to the cluster of the route an empty request matches (the default route), and
// the server's greeting is relayed. The client's first ROUTE frame (a login) is then routed like
// any request; when its route names another cluster, the session moves there (a rebind): the new
// server's greeting goes to the codec, which asks the client to prove itself again for it (MySQL:
// an auth switch), and the client's answer becomes the login on the new connection.
//
// The session's state words (SessionState) live here, shared by the codec contexts of both sides,
// so a trap or another instance of the codec loses nothing of it.

import { performance } from 'node:perf_hooks';
import { SessionState } from '../codec/codec-instance';
import type { CodecContext } from '../codec/codec-plugin';
import { Metadata } from '../codec/metadata';
import { ErrorKind, FrameFlag, MessageType } from '../wasm/abi';
import type { RouteTable } from '../router/route-table';
import type { ActiveRequest } from '../proxy/active-request';
import type { Cluster, ClusterManager, Endpoint } from './cluster';
import type { UpstreamConnection } from './upstream-connection';
import type { UpstreamPool } from './upstream-pool';

const EMPTY = Buffer.alloc(0);
/** A request without a single key: what the default route matches, before the client said anything. */
const NOTHING_YET = new Metadata(MessageType.REQUEST, 0, 0, 0, 0, 0, 0, EMPTY, EMPTY, EMPTY, new Int32Array(10), 10, 0, 0);

/** What a session needs from its client connection. */
export interface SessionClient {
  /** The client's codec context (the session words are shared with it). */
  readonly ctx: CodecContext;
  /** Writes bytes the server sent on its own (a greeting, an event) to the client, in order. */
  relay(bytes: Buffer): void;
  /** The session cannot begin: answers the client with the codec's error of `kind`, then closes. */
  refuse(kind: number, message: string): void;
  /** The session's upstream connection closed: the client connection closes after what it has. */
  upstreamClosed(): void;
  /** The PROXY protocol header a new connection to `cluster` starts with, if it sends one. */
  preamble(cluster: Cluster): Buffer | undefined;
}

/** What the router gets back for a login that moves the session (answered through it). */
export interface RebindSink {
  complete(req: ActiveRequest, response: Buffer, isError: boolean, now: number): void;
  fail(req: ActiveRequest, kind: number, message: string): void;
}

/** A rebind under way: the login it serves and, once there, the new server's greeting. */
interface Rebind {
  readonly req: ActiveRequest;
  readonly login: Buffer;
  readonly sink: RebindSink;
  readonly conn: UpstreamConnection;
  greeting: Buffer | null;
}

export class BoundSession {
  readonly state = new SessionState();
  /** The session's upstream connection (null until the first request, for client-first protocols). */
  conn: UpstreamConnection | null = null;
  /** The session's routing frame has been routed: later requests follow the session, not their routes. */
  routed = false;
  private rebinding: Rebind | null = null;
  /** After a rebind: the new server's greeting and the login, for the client's answer. */
  private moved: { greeting: Buffer; login: Buffer } | null = null;
  private closed = false;
  /** The session's connection has sent something (a server-first session's greeting). */
  private heard = false;

  constructor(private readonly client: SessionClient, private readonly pool: UpstreamPool, private readonly serverFirst: boolean) {
    client.ctx.session = this.state;
  }

  /** Server first: opens the session's connection to the default route's cluster, whose greeting the client gets. */
  greet(routes: RouteTable, clusters: ClusterManager): void {
    const route = routes.match(NOTHING_YET) ?? routes.routes[0];
    if (route === undefined) {
      this.client.refuse(ErrorKind.ROUTE_NOT_FOUND, 'meltemi: no route to take this connection\'s greeting from');
      return;
    }
    const cluster = clusters.get(route.cluster());
    if (cluster === undefined) {
      this.client.refuse(ErrorKind.CLUSTER_NOT_FOUND, `meltemi: unknown cluster "${route.cluster()}"`);
      return;
    }
    const conn = this.open(cluster, performance.now());
    if (conn === undefined) this.client.refuse(ErrorKind.NO_HEALTHY_UPSTREAM, `meltemi: no healthy upstream in cluster "${cluster.name}" for a new session`);
  }

  /** A new connection of this session to `cluster`, or undefined if none can open. */
  private open(cluster: Cluster, now: number, avoid?: Endpoint, hash?: number): UpstreamConnection | undefined {
    const ep = cluster.pick(now, avoid, hash);
    const conn = ep && this.pool.dedicated(cluster, ep, this.client.preamble(cluster), this);
    if (conn === undefined) return undefined;
    this.conn = conn;
    return conn;
  }

  /**
   * The cluster of a client-first session once its routing frame went there (undefined before,
   * and for server-first sessions, whose later requests carry no routing metadata and follow).
   */
  get clientFirstCluster(): string | undefined {
    return !this.serverFirst && this.routed && this.conn !== null ? this.conn.cluster.name : undefined;
  }

  /** Whether routing `meta` to `cluster` moves the session (its login routes elsewhere than the greeting came from). */
  movesTo(cluster: Cluster, meta: Metadata): boolean {
    if (this.routed || (meta.flags & FrameFlag.ROUTE) === 0) return false;
    this.routed = true;
    return this.conn !== null && this.conn.cluster !== cluster;
  }

  /**
   * The connection a request of this session goes to: its own (whatever the request's route
   * says), or a new one to `cluster` for the first request of a client-first session.
   * Undefined when its connection is gone (the session is over) or none can open.
   */
  connectionFor(cluster: Cluster, now: number, avoid?: Endpoint, hash?: number): UpstreamConnection | undefined {
    if (this.conn !== null) return this.conn.closed ? undefined : this.conn;
    if (this.closed) return undefined;
    return this.open(cluster, now, avoid, hash);
  }

  /** Moves the session to `cluster` for the login `req` (the router answers it through `sink`). */
  rebind(req: ActiveRequest, cluster: Cluster, sink: RebindSink, now: number): void {
    const old = this.conn;
    const conn = this.open(cluster, now);
    if (conn === undefined) {
      sink.fail(req, ErrorKind.NO_HEALTHY_UPSTREAM, `meltemi: no healthy upstream in cluster "${cluster.name}"`);
      return;
    }
    // The greeting connection had nothing but a greeting: nobody logged in there.
    old?.close();
    this.rebinding = { req, login: Buffer.from(req.meta!.frame), sink, conn, greeting: null };
  }

  /**
   * The client's answer in a rebind (a REBIND frame): the bytes that log in to the new server.
   * Throws when the codec cannot build them; null when no rebind asked for an answer.
   */
  answer(frame: Buffer): Buffer | null {
    const moved = this.moved;
    if (moved === null) return null;
    this.moved = null;
    return this.client.ctx.rebind(moved.greeting, moved.login, frame);
  }

  /** A frame the server sent on its own on `conn`: relayed, or the greeting a rebind waits for. */
  unsolicited(conn: UpstreamConnection, frame: Buffer): void {
    const r = this.rebinding;
    if (r === null || r.conn !== conn) {
      if (conn !== this.conn) return;
      this.heard = true;
      this.client.relay(frame);
      return;
    }
    this.rebinding = null;
    const now = performance.now();
    if (r.req.done || r.req.abandoned) return;
    let ask: Buffer | null;
    try {
      ask = this.client.ctx.rebind(frame, r.login, null);
    } catch (err) {
      r.sink.fail(r.req, ErrorKind.BAD_RESPONSE, `meltemi: the codec could not move the session to cluster ${conn.cluster.name}: ${(err as Error).message}`);
      return;
    }
    if (ask === null) {
      r.sink.fail(r.req, ErrorKind.UNSPECIFIED, `meltemi: this login routes to cluster ${conn.cluster.name}, and the codec cannot move a session there (no meltemi_rebind)`);
      return;
    }
    this.moved = { greeting: Buffer.from(frame), login: r.login };
    r.sink.complete(r.req, ask, false, now);
  }

  /** One of the session's connections closed. */
  connectionClosed(conn: UpstreamConnection): void {
    const r = this.rebinding;
    if (r !== null && r.conn === conn) {
      this.rebinding = null;
      if (!r.req.done) r.sink.fail(r.req, ErrorKind.CONNECT_FAILURE, `meltemi: cannot open a session on cluster ${conn.cluster.name}: it closed before its greeting`);
    }
    if (conn !== this.conn || this.closed) return;
    if (this.serverFirst && !this.heard) {
      this.client.refuse(ErrorKind.CONNECT_FAILURE, `meltemi: cannot open a session on cluster ${conn.cluster.name}: ${conn.failureReason ?? 'it closed before its greeting'}`);
    } else {
      this.client.upstreamClosed();
    }
  }

  /** Stops or resumes reading from the upstream (the client is not reading what it sends). */
  setReading(on: boolean): void {
    this.conn?.setReading(on);
  }

  close(): void {
    this.closed = true;
    this.conn?.close();
    this.rebinding?.conn.close();
    this.rebinding = null;
  }
}
