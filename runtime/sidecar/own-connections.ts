// The connections this proxy opened (upstreams and pass-through), by their four-tuple. A captured
// outbound connection that is one of them is the proxy's own traffic redirected back to it: the
// capture rules do not exempt the proxy's UID/GID. Serving it would open another connection, be
// captured again, and so on until descriptors run out; it is refused instead, and said loudly.
// Per thread: with several workers, another worker's connection is not recognised (docs/sidecar.md).

import type net from 'node:net';
import type { Address } from './proxy-protocol';

/** Connected sockets, by `local|remote` (Linux reuses a local port for other destinations: the pair is what is unique). */
const tuples = new Set<string>();
/**
 * Sockets still connecting, by the address they dial: the captured side of a loop is accepted
 * before its own 'connect' event has run, so their local ends are asked of the kernel, and only
 * those of sockets dialling the captured connection's original destination.
 */
const connecting = new Map<string, Set<net.Socket>>();

const end = (address: string | undefined, port: number | undefined) => (address === undefined || port === undefined ? undefined : `${address}|${port}`);

/** The local end of a socket that may still be connecting (bound by its connect() call). */
function localEnd(socket: net.Socket): string | undefined {
  const handle = (socket as unknown as { _handle?: { getsockname?: (out: { address?: string; port?: number }) => number } })._handle;
  if (!handle?.getsockname) return undefined;
  const out: { address?: string; port?: number } = {};
  return handle.getsockname(out) === 0 ? end(out.address, out.port) : undefined;
}

/** Remembers `socket`, which dials `to`, until it closes. */
export function trackOwnConnection(socket: net.Socket, to: Address): void {
  let dialled = end(to.address, to.port)!;
  const waiting = () => {
    let set = connecting.get(dialled);
    if (!set) connecting.set(dialled, (set = new Set()));
    return set;
  };
  const unwait = () => {
    const set = connecting.get(dialled);
    if (set?.delete(socket) && set.size === 0) connecting.delete(dialled);
  };
  waiting().add(socket);
  // A host name is dialled at the address it resolved to.
  socket.once('lookup', (err: Error | null, address: string) => {
    if (err) return;
    unwait();
    dialled = end(address, to.port)!;
    waiting().add(socket);
  });
  let tuple: string | undefined;
  socket.once('connect', () => {
    unwait();
    const local = end(socket.localAddress, socket.localPort);
    const remote = end(socket.remoteAddress, socket.remotePort);
    if (local && remote) tuples.add((tuple = `${local}|${remote}`));
  });
  socket.once('close', () => {
    unwait();
    if (tuple) tuples.delete(tuple);
  });
}

/** Whether `socket`, captured on its way to `dst`, is one of this proxy's own connections. */
export function isOwnConnection(socket: net.Socket, dst: Address): boolean {
  const client = end(socket.remoteAddress, socket.remotePort);
  const dialled = end(dst.address, dst.port)!;
  if (client === undefined) return false;
  if (tuples.has(`${client}|${dialled}`)) return true;
  const set = connecting.get(dialled);
  if (set) for (const c of set) if (localEnd(c) === client) return true;
  return false;
}
