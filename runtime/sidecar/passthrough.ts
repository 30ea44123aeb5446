// Plain TCP to a captured connection's original destination, for ports no listener serves
// (Istio's PassthroughCluster / InboundPassthroughCluster): bytes both ways, unread.

import net from 'node:net';
import type { Address } from './proxy-protocol';
import { trackOwnConnection } from './own-connections';

export interface PassthroughOptions {
  /** Source address of the connection out (inbound: 127.0.0.6, which the capture rules let through). */
  readonly localAddress: string | undefined;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
}

/** Where pass-through connections are counted. */
export interface PassthroughCounts {
  passthroughActive: number;
  passthroughTotal: number;
  passthroughConnectFailures: number;
}

/** Joins `client` to a new connection to `to`; both close when either does. */
export function passThrough(client: net.Socket, to: Address, opts: PassthroughOptions, counts: PassthroughCounts): void {
  counts.passthroughActive++;
  counts.passthroughTotal++;
  const upstream = net.connect({ host: to.address, port: to.port, localAddress: opts.localAddress, allowHalfOpen: true });
  trackOwnConnection(upstream, to);
  let connected = false;
  const connectTimer = setTimeout(() => {
    counts.passthroughConnectFailures++;
    connected = true; // counted: the destroy's close is not counted again
    upstream.destroy();
  }, opts.connectTimeoutMs);
  upstream.once('connect', () => {
    connected = true;
    clearTimeout(connectTimer);
  });
  upstream.once('close', () => clearTimeout(connectTimer));
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  upstream.on('error', () => {
    if (!connected) counts.passthroughConnectFailures++;
  });
  client.on('error', () => { /* 'close' follows */ });
  // Half-closes pass through (allowHalfOpen on both): a client that shuts its write side still gets the answer.
  client.pipe(upstream);
  upstream.pipe(client);
  if (opts.idleTimeoutMs > 0) {
    client.setTimeout(opts.idleTimeoutMs, close);
    upstream.setTimeout(opts.idleTimeoutMs, close);
  }
  let closed = 0;
  const onClose = () => {
    close();
    if (++closed === 2) counts.passthroughActive--;
  };
  client.once('close', onClose);
  upstream.once('close', onClose);
  client.resume();
}
