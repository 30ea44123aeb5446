// The upstream connections one client connection uses: the listener's shared pool, or — with
// upstream_connection: per_client, or once the client sent a connection-scoped message — its
// own connections, so its state (SELECT, AUTH, MULTI …) never leaks to other clients.

import { FrameFlag } from '../wasm/abi';
import type { Metadata } from '../codec/metadata';
import type { Cluster, Endpoint } from './cluster';
import type { UpstreamConnection } from './upstream-connection';
import type { UpstreamPool } from './upstream-pool';
import { encodeProxyHeader, type Address } from '../sidecar/proxy-protocol';

/** The client's address and the one it dialled, as the PROXY protocol sends them. */
export type ClientAddresses = () => readonly [Address | undefined, Address | undefined];

export class ConnectionUpstreams {
  private pinned: Map<string, UpstreamConnection> | null;
  /** The client's own connection closed: what it set there (SELECT, MULTI …) is gone with it. */
  lostState = false;

  /** Connections to clusters that send the PROXY protocol: a header names one client, so they are this client's own. */
  private proxied: Map<string, UpstreamConnection> | null = null;

  constructor(readonly pool: UpstreamPool, perClient: boolean, private readonly client?: ClientAddresses) {
    this.pinned = perClient ? new Map() : null;
    pool.users++;
  }

  private viaProxyProtocol(cluster: Cluster, version: 1 | 2, now: number, avoid?: Endpoint, hash?: number): UpstreamConnection | undefined {
    this.proxied ??= new Map();
    const existing = this.proxied.get(cluster.name);
    if (existing && !existing.closed) return existing;
    const ep = cluster.pick(now, avoid, hash);
    if (!ep) return undefined;
    const [source, destination] = this.client?.() ?? [undefined, undefined];
    const conn = this.pool.dedicated(cluster, ep, encodeProxyHeader(version, source, destination));
    if (conn) this.proxied.set(cluster.name, conn);
    else this.proxied.delete(cluster.name);
    return conn;
  }

  /**
   * An upstream connection for one request to `cluster`, or undefined if none is healthy.
   * `avoid`: the endpoint a retried request failed on, taken again only if it is the only one.
   */
  for(cluster: Cluster, meta: Metadata, now: number, avoid?: Endpoint, hash?: number): UpstreamConnection | undefined {
    if (this.pinned === null && (meta.flags & FrameFlag.CONNECTION_SCOPED) !== 0) this.pinned = new Map();
    const proxyProtocol = cluster.config.proxyProtocol;
    if (proxyProtocol !== undefined && this.pinned === null) return this.viaProxyProtocol(cluster, proxyProtocol, now, avoid, hash);
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
    const ep = cluster.pick(now, avoid, hash);
    if (!ep) return undefined;
    const [source, destination] = proxyProtocol !== undefined ? this.client?.() ?? [undefined, undefined] : [undefined, undefined];
    const conn = this.pool.dedicated(cluster, ep, proxyProtocol !== undefined ? encodeProxyHeader(proxyProtocol, source, destination) : undefined);
    if (conn) this.pinned.set(cluster.name, conn);
    return conn;
  }

  /** The client connection closed: its own upstream connections close, the pool loses a user. */
  close(): void {
    if (this.pinned) for (const c of this.pinned.values()) c.close();
    if (this.proxied) for (const c of this.proxied.values()) c.close();
    this.pool.users--;
  }
}
