// ZooKeeper peers: Debian's ZooKeeper server, standalone, on a free loopback port with its own
// data directory (removed by `stop()`); node-zookeeper-client as the client; and packets built
// with that client's own jute encoder, for frames written by hand.

import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOnFreePort } from './ports';

/* eslint-disable @typescript-eslint/no-require-imports */
const jute = require('node-zookeeper-client/lib/jute');

export const ZK_SERVER = '/usr/share/zookeeper/bin/zkServer.sh';

export class ZooKeeperServer {
  private constructor(readonly port: number, private readonly proc: ChildProcess, private readonly dir: string) {}

  static async start(): Promise<ZooKeeperServer> {
    return startOnFreePort((port) => {
      const dir = mkdtempSync(join(tmpdir(), 'meltemi-zk-'));
      writeFileSync(join(dir, 'zoo.cfg'), [
        'tickTime=500', `dataDir=${dir}`, `clientPort=${port}`, 'clientPortAddress=127.0.0.1', 'admin.enableServer=false',
        '4lw.commands.whitelist=ruok', 'minSessionTimeout=1000', 'maxSessionTimeout=30000', 'forceSync=no',
      ].join('\n'));
      const proc = spawn(ZK_SERVER, ['start-foreground', join(dir, 'zoo.cfg')], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, ZOO_LOG_DIR: dir, JVMFLAGS: '-Xmx128m -XX:+UseSerialGC -Xshare:auto' },
      });
      return new ZooKeeperServer(port, proc, dir);
    }, (s) => s.waitReady());
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`zookeeper exited with ${this.proc.exitCode}`);
      if ((await ruok(this.port)) === 'imok') return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`zookeeper on port ${this.port} did not become ready`);
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGKILL');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The server's answer to `ruok` ('' if it is not listening yet, or holds the connection without answering while it starts). */
function ruok(port: number): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const s = net.connect(port, '127.0.0.1', () => s.write('ruok'));
    const timer = setTimeout(() => s.destroy(), 1000);
    s.on('data', (d) => { text += d.toString(); });
    s.on('error', () => resolve(''));
    s.on('close', () => { clearTimeout(timer); resolve(text); });
  });
}

// ---- packets, as node-zookeeper-client encodes them -----------------------------------------

/** A ConnectRequest (what a client sends first). */
export function connectRequest(sessionId = Buffer.alloc(8), timeoutMs = 30_000, password = Buffer.alloc(16)): Buffer {
  return new jute.Request(null, new jute.protocol.ConnectRequest(jute.PROTOCOL_VERSION, Buffer.alloc(8), timeoutMs, sessionId, password)).toBuffer();
}

/** A request with header (xid, opcode) and payload fields by the client's own record types. */
export function request(xid: number, op: keyof typeof OPS, fields: Record<string, unknown> = {}): Buffer {
  const header = new jute.protocol.RequestHeader();
  header.xid = xid;
  header.type = jute.OP_CODES[OPS[op].code];
  const payload = OPS[op].record ? Object.assign(new jute.protocol[OPS[op].record!](), fields) : null;
  return new jute.Request(header, payload).toBuffer();
}

const OPS: Record<string, { code: string; record?: string }> = {
  create: { code: 'CREATE', record: 'CreateRequest' },
  delete: { code: 'DELETE', record: 'DeleteRequest' },
  exists: { code: 'EXISTS', record: 'ExistsRequest' },
  getData: { code: 'GET_DATA', record: 'GetDataRequest' },
  setData: { code: 'SET_DATA', record: 'SetDataRequest' },
  getChildren2: { code: 'GET_CHILDREN2', record: 'GetChildren2Request' },
  ping: { code: 'PING' },
  auth: { code: 'AUTH', record: 'AuthPacket' },
  setWatches: { code: 'SET_WATCHES', record: 'SetWatches' },
  closeSession: { code: 'CLOSE_SESSION' },
};

/** A ConnectResponse (the server's answer to the ConnectRequest). */
export function connectResponse(sessionId = Buffer.from('0000000000000007', 'hex'), timeoutMs = 30_000): Buffer {
  const body = Buffer.alloc(4 + 4 + 8 + 4 + 16 + 1);
  body.writeInt32BE(0, 0);
  body.writeInt32BE(timeoutMs, 4);
  sessionId.copy(body, 8);
  body.writeInt32BE(16, 16);
  return withLength(body);
}

/** A reply header (xid, zxid, err) and a body. */
export function reply(xid: number, err = 0, body = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(16);
  h.writeInt32BE(xid, 0);
  h.writeBigInt64BE(42n, 4);
  h.writeInt32BE(err, 12);
  return withLength(Buffer.concat([h, body]));
}

/** A watch event (xid -1): WatcherEvent type, state, path. */
export function watchEvent(type: number, path: string): Buffer {
  const p = Buffer.from(path);
  const ev = Buffer.alloc(12 + p.length);
  ev.writeInt32BE(type, 0);
  ev.writeInt32BE(3, 4); // SyncConnected
  ev.writeInt32BE(p.length, 8);
  p.copy(ev, 12);
  return reply(-1, 0, ev);
}

function withLength(body: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeInt32BE(body.length, 0);
  return Buffer.concat([h, body]);
}

/** Splits a byte stream into whole length-prefixed packets. */
export function splitPackets(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (buf.length - at >= 4 && buf.length - at >= 4 + buf.readInt32BE(at)) {
    out.push(buf.subarray(at, at + 4 + buf.readInt32BE(at)));
    at += 4 + buf.readInt32BE(at);
  }
  return out;
}
