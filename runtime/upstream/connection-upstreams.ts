// The upstream connections one client connection uses: the listener's shared pool, or — with
// upstream_connection: per_client, or once the client sent a connection-scoped message — its
// own connections, so its state (SELECT, AUTH, MULTI …) never leaks to other clients.

import { FrameFlag } from '../wasm/abi';
import type { Metadata } from '../codec/metadata';
import type { Cluster, Endpoint } from './cluster';
import type { UpstreamConnection } from './upstream-connection';
import type { UpstreamPool } from './upstream-pool';
import type { BoundSession } from './bound-session';
import { encodeProxyHeader, type Address } from '../sidecar/proxy-protocol';

/** The client's address and the one it dialled, as the PROXY protocol sends them. */
export type ClientAddresses = () => readonly [Address | undefined, Address | undefined];

export class ConnectionUpstreams {
  private pinned: Map<string, UpstreamConnection> | null;
  /** The client's own connection closed: what it set there (SELECT, MULTI …) is gone with it. */
  lostState = false;

  /** Connections to clusters that send the PROXY protocol: a header names one client, so they are this client's own. */
  private proxied: Map<string, UpstreamConnection> | null = null;
  /** ABI 1.2: the client's bound session; every request goes to its connection. */
  session: BoundSession | null = null;

  constructor(readonly pool: UpstreamPool, perClient: boolean, private readonly client?: ClientAddresses) {
    this.pinned = perClient ? new Map() : null;
    pool.users++;
  }

  /** The PROXY protocol header a new connection to `cluster` starts with, if the cluster sends one. */
  preamble(cluster: Cluster): Buffer | undefined {
    const version = cluster.config.proxyProtocol;
    if (version === undefined) return undefined;
    const [source, destination] = this.client?.() ?? [undefined, undefined];
    return encodeProxyHeader(version, source, destination);
  }

  /** One of this client's own connections to `cluster` from `owned`, opened if there is none (or it closed). */
  private own(owned: Map<string, UpstreamConnection>, cluster: Cluster, now: number, avoid?: Endpoint, hash?: number): UpstreamConnection | undefined {
    const ep = cluster.pick(now, avoid, hash);
    if (!ep) return undefined;
    const conn = this.pool.dedicated(cluster, ep, this.preamble(cluster));
    if (conn) owned.set(cluster.name, conn);
    return conn;
  }

  /**
   * An upstream connection for one request to `cluster`, or undefined if none is healthy.
   * `avoid`: the endpoint a retried request failed on, taken again only if it is the only one.
   */
  for(cluster: Cluster, meta: Metadata, now: number, avoid?: Endpoint, hash?: number): UpstreamConnection | undefined {
    if (this.session !== null) {
      const conn = this.session.connectionFor(cluster, now, avoid, hash);
      if (conn === undefined && this.session.conn !== null) this.lostState = true;
      return conn;
    }
    if (this.pinned === null && (meta.flags & FrameFlag.CONNECTION_SCOPED) !== 0) this.pinned = new Map();
    if (this.pinned === null && cluster.config.proxyProtocol !== undefined) {
      // Replaced freely when closed: no client state lives on it, only the header's addresses.
      this.proxied ??= new Map();
      const existing = this.proxied.get(cluster.name);
      return existing && !existing.closed ? existing : this.own(this.proxied, cluster, now, avoid, hash);
    }
    if (this.pinned === null) {
      const ep = cluster.pick(now, avoid, hash);
      return ep && this.pool.acquire(cluster, ep);
    }
    const existing = this.pinned.get(cluster.name);
    if (existing && !existing.closed) return existing;
    if (existing) {
      // Never a silent replacement: the client would go on in another database, outside its transaction.
      this.lostState = true;
      return undefined;
    }
    return this.own(this.pinned, cluster, now, avoid, hash);
  }

  /** The client connection closed: its own upstream connections close, the pool loses a user. */
  close(): void {
    this.session?.close();
    if (this.pinned) for (const c of this.pinned.values()) c.close();
    if (this.proxied) for (const c of this.proxied.values()) c.close();
    this.pool.users--;
  }
}
