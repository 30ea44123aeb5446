// A real memcached (Debian's) on a free loopback port, stopped by `stop()`; and a raw client
// that sends bytes and reads until a reply is complete, for what client libraries hide.

import { ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { startOnFreePort } from './ports';

export class MemcachedServer {
  private constructor(readonly port: number, private readonly proc: ChildProcess) {}

  /** Starts memcached on a free port; `args` are extra command-line options. */
  static async start(args: string[] = []): Promise<MemcachedServer> {
    const user = process.getuid?.() === 0 ? ['-u', 'root'] : [];
    return startOnFreePort((port) => new MemcachedServer(port, spawn('memcached', ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-m', '64', '-t', '2', ...user, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })), (s) => s.waitReady());
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`memcached exited with ${this.proc.exitCode}`);
      try {
        if ((await rawExchange(this.port, 'version\r\n', textDone(1))).startsWith('VERSION')) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`memcached on port ${this.port} did not become ready`);
  }

  /** Sends text commands straight to this server (to check where the proxy put a key). */
  direct(commands: string, lines = 1): Promise<string> {
    return rawExchange(this.port, commands, textDone(lines));
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGKILL');
    await exited;
  }
}

/** Complete once `lines` lines ending a text reply (END, STORED, MN …) have arrived: counts "\r\n"-ended lines that are not VALUE/VA data. */
export function textDone(terminators: number, endings: readonly string[] = []): (data: Buffer) => boolean {
  return (data) => {
    const s = data.toString('latin1');
    if (endings.length > 0) return endings.every((e) => s.includes(e));
    let seen = 0;
    let pos = 0;
    while (pos < s.length) {
      const eol = s.indexOf('\r\n', pos);
      if (eol < 0) return false;
      const line = s.slice(pos, eol);
      pos = eol + 2;
      const value = /^(?:VALUE \S+ \d+ (\d+)|VA (\d+))/.exec(line);
      if (value) {
        pos += Number(value[1] ?? value[2]) + 2;
        continue;
      }
      if (/^(STAT|ITEM|PREFIX) /.test(line)) continue;
      seen++;
    }
    return seen >= terminators && pos <= s.length;
  };
}

/**
 * Writes `request` on a new connection to `port` and resolves with what comes back once `done`
 * says it is complete (or the peer closes). Rejects after `timeoutMs`.
 */
export function rawExchange(port: number, request: string | Buffer, done: (data: Buffer) => boolean, timeoutMs = 5000): Promise<string> {
  return rawExchangeBytes(port, request, done, timeoutMs).then((b) => b.toString('latin1'));
}

export function rawExchangeBytes(port: number, request: string | Buffer, done: (data: Buffer) => boolean, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no complete reply within ${timeoutMs} ms; got ${JSON.stringify(data.toString('latin1'))}`));
    }, timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(data);
    };
    sock.on('data', (d) => {
      data = Buffer.concat([data, d]);
      if (done(data)) finish();
    });
    sock.on('close', finish);
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.write(request);
  });
}

/** A binary-protocol request packet. */
export function binaryRequest(opcode: number, opts: { key?: string | Buffer; extras?: Buffer; value?: string | Buffer; opaque?: number; cas?: bigint } = {}): Buffer {
  const key = typeof opts.key === 'string' ? Buffer.from(opts.key) : opts.key ?? Buffer.alloc(0);
  const extras = opts.extras ?? Buffer.alloc(0);
  const value = typeof opts.value === 'string' ? Buffer.from(opts.value) : opts.value ?? Buffer.alloc(0);
  const h = Buffer.alloc(24);
  h[0] = 0x80;
  h[1] = opcode;
  h.writeUInt16BE(key.length, 2);
  h[4] = extras.length;
  h.writeUInt32BE(extras.length + key.length + value.length, 8);
  h.writeUInt32BE(opts.opaque ?? 0, 12);
  h.writeBigUInt64BE(opts.cas ?? 0n, 16);
  return Buffer.concat([h, extras, key, value]);
}

export interface BinaryPacket { opcode: number; status: number; opaque: number; key: string; value: string; extras: Buffer }

/** Splits binary-protocol response packets; `complete` is false while the last one is cut. */
export function binaryPackets(data: Buffer): { packets: BinaryPacket[]; complete: boolean } {
  const packets: BinaryPacket[] = [];
  let pos = 0;
  while (pos + 24 <= data.length) {
    const keylen = data.readUInt16BE(pos + 2);
    const extlen = data[pos + 4];
    const body = data.readUInt32BE(pos + 8);
    if (pos + 24 + body > data.length) return { packets, complete: false };
    const b = data.subarray(pos + 24, pos + 24 + body);
    packets.push({
      opcode: data[pos + 1], status: data.readUInt16BE(pos + 6), opaque: data.readUInt32BE(pos + 12),
      extras: b.subarray(0, extlen), key: b.subarray(extlen, extlen + keylen).toString('latin1'), value: b.subarray(extlen + keylen).toString('latin1'),
    });
    pos += 24 + body;
  }
  return { packets, complete: pos === data.length };
}

/** Complete once the packet of `opaque` has arrived. */
export function binaryDone(opaque: number): (data: Buffer) => boolean {
  return (data) => {
    const { packets } = binaryPackets(data);
    return packets.some((p) => p.opaque === opaque);
  };
}
