// A server of the "kv" test protocol: answers each request with a response carrying the same id,
// "server" = its name, and the pairs it received; waits "delay" ms first if the request says so.
// Records every frame it received, and can send heartbeats of its own.

import net from 'node:net';
import { KvDecoded, kvFrame, parseKv } from './kv-frames';

export class KvServer {
  readonly received: KvDecoded[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;

  private constructor(readonly name: string) {
    this.server = net.createServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => {});
      let buf = Buffer.alloc(0);
      socket.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 4 && buf.length >= buf.readUInt32BE(0)) {
          const len = buf.readUInt32BE(0);
          this.onFrame(socket, parseKv(buf.subarray(0, len)));
          buf = buf.subarray(len);
        }
      });
    });
  }

  static async start(name: string): Promise<KvServer> {
    const s = new KvServer(name);
    await new Promise<void>((r) => s.server.listen(0, '127.0.0.1', () => r()));
    return s;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  private onFrame(socket: net.Socket, f: KvDecoded): void {
    this.received.push(f);
    if (f.type === 0) {
      const delay = Number(f.pairs.find(([k]) => k === 'delay')?.[1] ?? 0);
      const reply = kvFrame(1, f.id, [['server', this.name], ...f.pairs]);
      if (delay > 0) setTimeout(() => socket.write(reply), delay);
      else socket.write(reply);
    } else if (f.type === 7 && f.flags === 0) {
      socket.write(kvFrame(7, f.id, [], 1));
    }
  }

  /** Sends a heartbeat request to every connected client (the proxy). */
  heartbeatAll(id: bigint): void {
    for (const s of this.sockets) s.write(kvFrame(7, id, []));
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}
