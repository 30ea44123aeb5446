// Shared upstream connections of one listener: up to `connections_per_endpoint` per endpoint,
// created on demand and used round-robin; a closed one is replaced on the next request.

import type { Cluster, Endpoint } from './cluster';
import { UpstreamConnection, UpstreamOptions } from './upstream-connection';
import type { BoundSession } from './bound-session';

export class UpstreamPool {
  private readonly byEndpoint = new Map<Endpoint, UpstreamConnection[]>();
  private next = 0;
  /** Downstream connections that send through this pool. */
  users = 0;
  /** Closed pools open no connections: a client still finishing a batch gets no upstream. */
  private closed = false;

  constructor(private readonly opts: UpstreamOptions) {}

  acquire(cluster: Cluster, ep: Endpoint): UpstreamConnection | undefined {
    if (this.closed) return undefined;
    let conns = this.byEndpoint.get(ep);
    if (!conns) this.byEndpoint.set(ep, (conns = []));
    // At the cluster's max_connections, requests share the connections there are (none: refused).
    if (conns.length < cluster.config.connectionsPerEndpoint && !cluster.atMaxConnections) {
      const conn = new UpstreamConnection(cluster, ep, this.opts);
      const list = conns;
      conn.onClosed = (c) => {
        const i = list.indexOf(c);
        if (i >= 0) list.splice(i, 1);
      };
      list.push(conn);
      return conn;
    }
    if (conns.length === 0) {
      // This endpoint has none and the cluster may open no more: share one to another endpoint
      // of the cluster (max_connections below the number of endpoints must not refuse requests).
      for (const ep2 of cluster.endpoints) {
        const other = this.byEndpoint.get(ep2);
        if (other && other.length > 0) return other[(this.next = (this.next + 1) % other.length)];
      }
      cluster.stats.cxOverflow++;
      return undefined;
    }
    this.next = (this.next + 1) % conns.length;
    return conns[this.next];
  }

  /** A connection outside the pool, owned by the caller (per-client and pinned use). */
  dedicated(cluster: Cluster, ep: Endpoint, preamble?: Buffer, session?: BoundSession): UpstreamConnection | undefined {
    if (this.closed || !cluster.mayConnect()) return undefined;
    return new UpstreamConnection(cluster, ep, this.opts, true, preamble, session);
  }

  close(): void {
    this.closed = true;
    for (const conns of this.byEndpoint.values()) for (const c of [...conns]) c.close();
    this.byEndpoint.clear();
  }

  get size(): number {
    let n = 0;
    for (const conns of this.byEndpoint.values()) n += conns.length;
    return n;
  }
}
