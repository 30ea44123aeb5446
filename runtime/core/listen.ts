// Binding a net/http server, with a MeltemiError naming what failed to listen.

import type net from 'node:net';
import { MeltemiError } from './errors';

/**
 * How a listener's server gets its socket, when not by binding its own: the primary of a
 * multi-worker proxy holds the bound socket (and returns its port), a worker listens on a
 * duplicate of it.
 */
export type ListenBinder = (server: net.Server, listener: { readonly name: string; readonly address: string; readonly port: number }) => Promise<number | undefined>;

export async function listenOn(server: net.Server, port: number, address: string, what: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(new MeltemiError('MELTEMI_LISTEN_FAILED', `${what} cannot listen on ${address}:${port}: ${err.message}`, { cause: err }));
    server.once('error', onError);
    server.listen(port, address, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** The port a server is bound to, or `fallback` before it is. */
export function boundPort(server: net.Server, fallback: number): number {
  const addr = server.address();
  return typeof addr === 'object' && addr ? addr.port : fallback;
}
