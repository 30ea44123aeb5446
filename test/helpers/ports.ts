// A free loopback TCP port: bind port 0, read the port, close. Used for servers (redis-server)
// that cannot report the port they picked themselves.

import net from 'node:net';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts a server on a free port, again on another one when it does not become ready (another
 * process can take the port between `freePort` and the server's bind): `launch` starts it,
 * `ready` waits for it; a server that fails is stopped before the next try.
 */
export async function startOnFreePort<T extends { stop(): Promise<void> }>(launch: (port: number) => T, ready: (server: T) => Promise<void>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const server = launch(await freePort());
    try {
      await ready(server);
      return server;
    } catch (err) {
      await server.stop();
      if (attempt >= attempts) throw err;
    }
  }
}
