// The local ends of the connections this proxy opened (upstreams and pass-through). A captured
// connection whose client end is one of them is the proxy's own traffic redirected back to it:
// the capture rules do not exempt the proxy's UID/GID. Serving it would open another connection,
// be captured again, and so on until descriptors run out; it is refused instead, and said loudly.

import type net from 'node:net';

/** Local ends of connected sockets. */
const ends = new Set<string>();
/**
 * Sockets still connecting: the captured side of a loop is accepted before its own 'connect'
 * event has run, so their local ends are asked of the kernel when a capture needs them.
 */
const connecting = new Set<net.Socket>();

function key(address: string | undefined, port: number | undefined): string | undefined {
  return address === undefined || port === undefined ? undefined : `${address}|${port}`;
}

/** The local end of a socket that may still be connecting (bound by its connect() call). */
function localEnd(socket: net.Socket): string | undefined {
  const handle = (socket as unknown as { _handle?: { getsockname?: (out: { address?: string; port?: number }) => number } })._handle;
  if (!handle?.getsockname) return undefined;
  const out: { address?: string; port?: number } = {};
  return handle.getsockname(out) === 0 ? key(out.address, out.port) : undefined;
}

/** Remembers `socket`'s local end until it closes. */
export function trackOwnConnection(socket: net.Socket): void {
  connecting.add(socket);
  let k: string | undefined;
  socket.once('connect', () => {
    connecting.delete(socket);
    k = key(socket.localAddress, socket.localPort);
    if (k !== undefined) ends.add(k);
  });
  socket.once('close', () => {
    connecting.delete(socket);
    if (k !== undefined) ends.delete(k);
  });
}

/** Whether `socket`'s client end is one of this proxy's own connections. */
export function isOwnConnection(socket: net.Socket): boolean {
  const k = key(socket.remoteAddress, socket.remotePort);
  if (k === undefined) return false;
  if (ends.has(k)) return true;
  for (const c of connecting) if (localEnd(c) === k) return true;
  return false;
}
