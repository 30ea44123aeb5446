// A real redis-server on a free loopback port, without persistence, stopped by `stop()`.

import { ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import Redis from 'ioredis';
import { freePort } from './ports';

export class RedisServer {
  private constructor(readonly port: number, private readonly proc: ChildProcess) {}

  get pid(): number {
    return this.proc.pid!;
  }

  /** Starts a server on `opts.port` (or a free port) with extra `opts.args`. */
  static async start(opts: { port?: number; args?: string[] } = {}): Promise<RedisServer> {
    for (let attempt = 0; ; attempt++) {
      const port = opts.port ?? (await freePort());
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', ...(opts.args ?? [])];
      const proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const server = new RedisServer(port, proc);
      try {
        await server.waitReady();
        return server;
      } catch (err) {
        await server.stop();
        if (attempt >= 2 || opts.port !== undefined) throw err;
      }
    }
  }

  /** Sends one inline command directly to the server and returns the raw reply. */
  async command(line: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const sock = net.connect(this.port, '127.0.0.1');
      let data = '';
      sock.on('data', (d) => {
        data += d.toString('latin1');
        if (data.endsWith('\r\n')) {
          sock.end();
          resolve(data);
        }
      });
      sock.on('error', reject);
      sock.write(line + '\r\n');
    });
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`redis-server exited with ${this.proc.exitCode}`);
      try {
        if ((await this.command('PING')).startsWith('+PONG')) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`redis-server on port ${this.port} did not become ready`);
  }

  private direct: Redis | undefined;

  /** A client straight to this server (to check where the proxy sent a key); closed by stop(). */
  client(): Redis {
    this.direct ??= redisClient(this.port);
    return this.direct;
  }

  async stop(): Promise<void> {
    this.direct?.disconnect();
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGKILL');
    await exited;
  }
}

/** An ioredis client for tests: RESP2, no ready check, no client-side retries (failures must show). */
export function redisClient(port: number): Redis {
  return new Redis({ port, host: '127.0.0.1', protocol: 2, disableClientInfo: true, enableReadyCheck: false, maxRetriesPerRequest: 0 });
}
