// An upstream that accepts connections and reads everything, and never answers: the fault a
// timeout exists for. It counts what it received, so a test can tell a request reached it.

import net from 'node:net';

export class BlackHole {
  bytesReceived = 0;
  connections = 0;
  private readonly sockets = new Set<net.Socket>();
  private readonly server = net.createServer((socket) => {
    this.connections++;
    this.sockets.add(socket);
    socket.on('data', (d) => { this.bytesReceived += d.length; });
    socket.on('error', () => {});
    socket.on('close', () => this.sockets.delete(socket));
  });

  static async start(): Promise<BlackHole> {
    const b = new BlackHole();
    await new Promise<void>((r) => b.server.listen(0, '127.0.0.1', () => r()));
    return b;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}
