// Dubbo 2.x peers built on hessian.js: a provider and a consumer that speak the protocol as
// Apache Dubbo does — 16-byte header, hessian2 invocation bodies, attachments, responses with
// the *_WITH_ATTACHMENTS flags, Java exceptions, one-way calls and event heartbeats both ways.

import net from 'node:net';

/* eslint-disable @typescript-eslint/no-require-imports */
const hessian = require('hessian.js');

const MAGIC = 0xdabb;
const FLAG_REQUEST = 0x80, FLAG_TWOWAY = 0x40, FLAG_EVENT = 0x20, HESSIAN2 = 2;
export const STATUS_OK = 20;

export interface DubboFrame {
  request: boolean;
  twoWay: boolean;
  event: boolean;
  status: number;
  id: bigint;
  body: Buffer;
}

function frame(flags: number, status: number, id: bigint, body: Buffer): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt16BE(MAGIC, 0);
  h.writeUInt8(flags, 2);
  h.writeUInt8(status, 3);
  h.writeBigUInt64BE(id, 4);
  h.writeUInt32BE(body.length, 12);
  return Buffer.concat([h, body]);
}

/** Reads complete frames from a growing buffer; returns them and the unconsumed rest. */
export function readFrames(buf: Buffer): { frames: DubboFrame[]; rest: Buffer } {
  const frames: DubboFrame[] = [];
  while (buf.length >= 16 && buf.length >= 16 + buf.readUInt32BE(12)) {
    const len = buf.readUInt32BE(12);
    const flags = buf.readUInt8(2);
    frames.push({
      request: (flags & FLAG_REQUEST) !== 0, twoWay: (flags & FLAG_TWOWAY) !== 0, event: (flags & FLAG_EVENT) !== 0,
      status: buf.readUInt8(3), id: buf.readBigUInt64BE(4), body: buf.subarray(16, 16 + len),
    });
    buf = buf.subarray(16 + len);
  }
  return { frames, rest: buf };
}

export interface Invocation {
  path: string;
  version?: string;
  method: string;
  /** JVM parameter descriptor, e.g. "Ljava/lang/String;". */
  desc: string;
  args: unknown[];
  attachments?: Record<string, string>;
}

export function encodeRequest(id: bigint, inv: Invocation, twoWay = true): Buffer {
  const enc = new hessian.EncoderV2();
  enc.write('2.0.2');
  enc.write(inv.path);
  enc.write(inv.version ?? '0.0.0');
  enc.write(inv.method);
  enc.write(inv.desc);
  for (const a of inv.args) enc.write(a);
  enc.write({ path: inv.path, interface: inv.path, version: inv.version ?? '0.0.0', ...inv.attachments });
  return frame(FLAG_REQUEST | (twoWay ? FLAG_TWOWAY : 0) | HESSIAN2, 0, id, enc.get());
}

/**
 * A response as a provider writes it: `flag` is Dubbo's response flag (0-5: exception, value,
 * null, then the same with attachments); with a status other than 20 the body is the message.
 */
export function encodeResponse(id: bigint, flag: number, value: unknown, attachments: Record<string, string> | null, status = STATUS_OK): Buffer {
  const enc = new hessian.EncoderV2();
  if (status === STATUS_OK) {
    enc.write(flag);
    if (flag !== 2 && flag !== 5) enc.write(value);
    if (attachments) enc.write(attachments);
  } else {
    enc.write(String(value));
  }
  return frame(HESSIAN2, status, id, enc.get());
}

export function encodeHeartbeat(id: bigint): Buffer {
  return frame(FLAG_REQUEST | FLAG_TWOWAY | FLAG_EVENT | HESSIAN2, 0, id, Buffer.from([0x4e]));
}

function countArgs(desc: string): number {
  return (desc.match(/\[*(L[^;]+;|[ZBCDFIJS])/g) ?? []).length;
}

export interface ReceivedCall {
  method: string;
  path: string;
  args: unknown[];
  attachments: Record<string, unknown>;
  oneway: boolean;
}

export type Handler = (call: ReceivedCall) => { value?: unknown; error?: string } | Promise<{ value?: unknown; error?: string }>;

/** A Dubbo provider: decodes invocations, calls `handler`, answers with attachments {server}. */
export class DubboProvider {
  readonly calls: ReceivedCall[] = [];
  heartbeatsAnswered = 0;
  heartbeatRepliesReceived = 0;
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;

  private constructor(readonly name: string, private readonly handler: Handler) {
    this.server = net.createServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => {});
      let buf: Buffer = Buffer.alloc(0);
      socket.on('data', (d) => {
        const r = readFrames(Buffer.concat([buf, d]));
        buf = r.rest;
        for (const f of r.frames) void this.onFrame(socket, f);
      });
    });
  }

  /** `at`: where to listen (default a free loopback port). */
  static async start(name: string, handler: Handler, at: { host?: string; port?: number } = {}): Promise<DubboProvider> {
    const p = new DubboProvider(name, handler);
    await new Promise<void>((r) => p.server.listen(at.port ?? 0, at.host ?? '127.0.0.1', () => r()));
    return p;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  private async onFrame(socket: net.Socket, f: DubboFrame): Promise<void> {
    if (f.event) {
      if (f.request) {
        this.heartbeatsAnswered++;
        socket.write(frame(FLAG_EVENT | HESSIAN2, STATUS_OK, f.id, Buffer.from([0x4e])));
      } else {
        this.heartbeatRepliesReceived++;
      }
      return;
    }
    if (!f.request) return;
    const dec = new hessian.DecoderV2(f.body);
    dec.read(); // dubbo version
    const path = dec.read();
    dec.read(); // service version
    const method = dec.read();
    const desc = dec.read();
    const args = Array.from({ length: countArgs(desc) }, () => dec.read());
    const attachments = dec.read() ?? {};
    const call = { method, path, args, attachments, oneway: !f.twoWay };
    this.calls.push(call);
    if (!f.twoWay) return;
    const result = await this.handler(call);
    const enc = new hessian.EncoderV2();
    const att = { dubbo: '2.0.2', server: this.name };
    if (result.error !== undefined) {
      enc.write(3); // RESPONSE_WITH_EXCEPTION_WITH_ATTACHMENTS
      enc.write({ $class: 'java.lang.RuntimeException', $: { detailMessage: result.error } });
    } else if (result.value === null || result.value === undefined) {
      enc.write(5); // RESPONSE_NULL_VALUE_WITH_ATTACHMENTS
    } else {
      enc.write(4); // RESPONSE_VALUE_WITH_ATTACHMENTS
      enc.write(result.value);
    }
    enc.write(att);
    socket.write(frame(HESSIAN2, STATUS_OK, f.id, enc.get()));
  }

  /** Sends a heartbeat to every connected consumer (the proxy). */
  heartbeatAll(id: bigint): void {
    for (const s of this.sockets) s.write(encodeHeartbeat(id));
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

export interface DubboResult {
  status: number;
  value?: unknown;
  exception?: string;
  error?: string;
  attachments: Record<string, unknown>;
}

/** A Dubbo consumer on one connection: invoke, one-way, heartbeat; correlates by request id. */
export class DubboConsumer {
  private nextId = 1n;
  private readonly pending = new Map<bigint, (f: DubboFrame) => void>();
  private buf: Buffer = Buffer.alloc(0);
  closed = false;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (d) => {
      const r = readFrames(Buffer.concat([this.buf, d]));
      this.buf = r.rest;
      for (const f of r.frames) {
        const resolve = this.pending.get(f.id);
        this.pending.delete(f.id);
        resolve?.(f);
      }
    });
    socket.on('close', () => { this.closed = true; });
    socket.on('error', () => {});
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<DubboConsumer> {
    const socket = net.connect(port, host);
    await new Promise((r, j) => { socket.once('connect', r); socket.once('error', j); });
    return new DubboConsumer(socket);
  }

  private send(bytes: Buffer, id: bigint): Promise<DubboFrame> {
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.socket.write(bytes);
    });
  }

  async invoke(inv: Invocation, id = this.nextId++): Promise<DubboResult> {
    const f = await this.send(encodeRequest(id, inv), id);
    const dec = new hessian.DecoderV2(f.body);
    if (f.status !== STATUS_OK) return { status: f.status, error: String(dec.read()), attachments: {} };
    const flag = dec.read();
    const out: DubboResult = { status: f.status, attachments: {} };
    if (flag === 0 || flag === 3) out.exception = String(dec.read()?.message ?? 'exception');
    else if (flag === 1 || flag === 4) out.value = dec.read();
    if (flag >= 3) out.attachments = dec.read() ?? {};
    return out;
  }

  oneway(inv: Invocation): void {
    this.socket.write(encodeRequest(this.nextId++, inv, false));
  }

  /** Sends a heartbeat and resolves with the reply frame. */
  heartbeat(): Promise<DubboFrame> {
    const id = this.nextId++;
    return this.send(encodeHeartbeat(id), id);
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  close(): void {
    this.socket.destroy();
  }
}

export const sayHello = (name: string, attachments?: Record<string, string>): Invocation => ({
  path: 'org.apache.dubbo.demo.DemoService', method: 'sayHello', desc: 'Ljava/lang/String;', args: [name], attachments,
});
