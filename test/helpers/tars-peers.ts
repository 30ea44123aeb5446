// TARS peers from the @tars/rpc framework itself: its HeroServer serving an `Echo` servant, its
// Communicator calling it, and its RequestF envelope (the same RequestPacket/ResponsePacket
// classes its client and server encode with) for frames built by hand. The servant's dispatch is
// written here the way tars2node generates it.

import type { AddressInfo, Server } from 'node:net';

/* eslint-disable @typescript-eslint/no-require-imports */
const TarsRpc = require('@tars/rpc');
const TarsStream = require('@tars/stream');
const TarsPacket = require('@tars/rpc/core/rpc-tars/RequestF.js').tars;

export const SERVANT = 'Test.EchoServer.EchoObj';

export interface RequestFields {
  id: number;
  servant?: string;
  func?: string;
  /** The function's arguments (the inner TARS struct). */
  body?: Buffer;
  context?: Record<string, string>;
  status?: Record<string, string>;
  oneway?: boolean;
  version?: number;
  timeout?: number;
}

/** One RequestPacket with its length, as the framework's client composes it. */
export function encodeRequest(f: RequestFields): Buffer {
  const req = new TarsPacket.RequestPacket();
  req.iVersion = f.version ?? 1;
  req.cPacketType = f.oneway ? 1 : 0;
  req.iMessageType = 0;
  req.iRequestId = f.id;
  req.sServantName = f.servant ?? SERVANT;
  req.sFuncName = f.func ?? 'echo';
  req.sBuffer = new TarsStream.BinBuffer(f.body ?? stringArg('hi'));
  req.iTimeout = f.timeout ?? 0;
  for (const [k, v] of Object.entries(f.context ?? {})) req.context.insert(k, v);
  for (const [k, v] of Object.entries(f.status ?? {})) req.status.insert(k, v);
  return withLength(req);
}

export interface ResponseFields {
  id: number;
  ret?: number;
  body?: Buffer;
  context?: Record<string, string>;
  desc?: string;
}

/** One ResponsePacket with its length, as the framework's server composes it. */
export function encodeResponse(f: ResponseFields): Buffer {
  const rsp = new TarsPacket.ResponsePacket();
  rsp.iVersion = 1;
  rsp.cPacketType = 0;
  rsp.iRequestId = f.id;
  rsp.iMessageType = 0;
  rsp.iRet = f.ret ?? 0;
  rsp.sBuffer = new TarsStream.BinBuffer(f.body ?? Buffer.alloc(0));
  rsp.sResultDesc = f.desc ?? '';
  for (const [k, v] of Object.entries(f.context ?? {})) rsp.context.insert(k, v);
  return withLength(rsp);
}

function withLength(packet: { _writeTo(os: unknown): void }): Buffer {
  const os = new TarsStream.TarsOutputStream();
  os.setHeaderLength(0);
  packet._writeTo(os);
  os.setHeaderLength(os.getBinBuffer().length);
  return os.getBinBuffer().toNodeBuffer();
}

export interface DecodedRequest {
  iVersion: number; cPacketType: number; iRequestId: number; sServantName: string; sFuncName: string;
  iTimeout: number; context: Record<string, string>; status: Record<string, string>; body: Buffer;
}
export interface DecodedResponse {
  iRequestId: number; iRet: number; sResultDesc: string; context: Record<string, string>; body: Buffer;
}

function mapOf(m: { value: Record<string, unknown>; toObject?: () => Record<string, string> }): Record<string, string> {
  return m.toObject ? m.toObject() : Object.fromEntries(Object.entries(m.value).map(([k, v]) => [k, String(v)]));
}

/** Reads a RequestPacket (length included) as the framework's server does. */
export function decodeRequest(frame: Buffer): DecodedRequest {
  const is = new TarsStream.TarsInputStream(new TarsStream.BinBuffer(frame.subarray(4, frame.readUInt32BE(0))));
  const r = TarsPacket.RequestPacket._readFrom(is);
  return { ...r, context: mapOf(r.context), status: mapOf(r.status), body: r.sBuffer.toNodeBuffer() };
}

/** Reads a ResponsePacket (length included) as the framework's client does. */
export function decodeResponse(frame: Buffer): DecodedResponse {
  const is = new TarsStream.TarsInputStream(new TarsStream.BinBuffer(frame.subarray(4, frame.readUInt32BE(0))));
  const r = TarsPacket.ResponsePacket._readFrom(is);
  return { iRequestId: r.iRequestId, iRet: r.iRet, sResultDesc: r.sResultDesc, context: mapOf(r.context), body: r.sBuffer.toNodeBuffer() };
}

/** The arguments of `echo(string s)`: a struct whose field 1 is `s`. */
export function stringArg(s: string): Buffer {
  const os = new TarsStream.TarsOutputStream();
  os.writeString(1, s);
  return os.getBinBuffer().toNodeBuffer();
}

/** Splits a byte stream into whole TARS packets (and what is left). */
export function splitPackets(buf: Buffer): { packets: Buffer[]; rest: Buffer } {
  const packets: Buffer[] = [];
  let at = 0;
  while (buf.length - at >= 4) {
    const len = buf.readUInt32BE(at);
    if (len < 4 || buf.length - at < len) break;
    packets.push(buf.subarray(at, at + len));
    at += len;
  }
  return { packets, rest: buf.subarray(at) };
}

/** What the Echo servant saw of one call. */
export interface SeenCall { func: string; context: Record<string, string>; arg: string }

/**
 * The Echo servant: `echo(s)` returns `name:s`, `context()` returns the request's context as JSON,
 * `note(s)` (called one-way) records `s`, `slow(s)` answers after 50 ms. Every call is recorded.
 */
export class TarsEchoServer {
  readonly seen: SeenCall[] = [];
  private onSeen: (() => void) | null = null;
  private constructor(private readonly server: { stop(): void; _adapters: Array<{ _netthread: { _listener: Server } }> }, readonly name: string) {}

  get port(): number {
    return (this.server._adapters[0]._netthread._listener.address() as AddressInfo).port;
  }

  static async start(name: string): Promise<TarsEchoServer> {
    const imp = function (this: object) { /* the servant instance the framework creates */ } as unknown as { prototype: Record<string, unknown> };
    let self: TarsEchoServer;
    imp.prototype.initialize = () => undefined;
    imp.prototype.onDispatch = function (current: TarsCurrent, func: string, buffer: unknown) {
      const is = new TarsStream.TarsInputStream(buffer);
      const arg = func === 'context' || func === 'tars_ping' ? '' : is.readString(1, false, '');
      const context = Object.fromEntries(Object.entries(current.getContext()?.value ?? {}).map(([k, v]) => [k, String(v)]));
      self.seen.push({ func, context, arg });
      self.onSeen?.();
      const reply = (ret: number, out?: string) => {
        const os = new TarsStream.TarsOutputStream();
        os.writeInt32(0, ret);
        if (out !== undefined) os.writeString(2, out);
        current.doResponse(os.getBinBuffer());
      };
      switch (func) {
        case 'tars_ping': reply(0); return 0;
        case 'echo': reply(0, `${name}:${arg}`); return 0;
        case 'context': current.setResponseContext({ answered: name }); reply(0, JSON.stringify(context)); return 0;
        case 'note': return 0;
        case 'slow': setTimeout(() => reply(0, `${name}:${arg}`), 50); return 0;
      }
      return TarsRpc.error.SERVER.FUNC_NOT_FOUND;
    };
    const option = new TarsRpc.server.BindAdapterOption();
    option.endpoint = 'tcp -h 127.0.0.1 -p 0 -t 60000';
    option.name = `${SERVANT}Adapter`;
    option.servant = SERVANT;
    option.handleImp = imp;
    const server = TarsRpc.server.createServer();
    server.start(option);
    self = new TarsEchoServer(server, name);
    const listener = server._adapters[0]._netthread._listener as Server;
    if (!listener.listening) await new Promise((resolve) => listener.once('listening', resolve));
    return self;
  }

  /** Resolves once `n` calls have been seen. */
  async waitFor(n: number): Promise<void> {
    while (this.seen.length < n) await new Promise<void>((resolve) => { this.onSeen = resolve; });
    this.onSeen = null;
  }

  stop(): void {
    this.server.stop();
  }
}

interface TarsCurrent {
  getContext(): { value: Record<string, unknown> } | undefined;
  setResponseContext(c: Record<string, string>): void;
  doResponse(buffer: unknown): void;
}

export interface EchoResult { ret: number; out: string; context: Record<string, string> }
export interface CallError { code: number; message: string }

/** A client of the Echo servant through the framework's Communicator (its own connection pool). */
export class TarsEchoClient {
  private readonly communicator = TarsRpc.Communicator.New();
  private readonly proxy: { _worker: { tars_invoke(func: string, buf: unknown, property?: unknown): Promise<InvokeResult>; timeout: number } };

  constructor(port: number, timeoutMs = 5000) {
    const Proxy = function (this: object) { /* filled by stringToProxy */ } as unknown as new () => object;
    this.proxy = this.communicator.stringToProxy(Proxy, `${SERVANT}@tcp -h 127.0.0.1 -p ${port} -t 60000`);
    this.proxy._worker.timeout = timeoutMs;
  }

  /** Calls `func(arg)`; resolves with its answer, rejects with the framework's error code. */
  async call(func: string, arg: string, property?: { context?: Record<string, string>; packetType?: number }): Promise<EchoResult> {
    const os = new TarsStream.TarsOutputStream();
    os.writeString(1, arg);
    try {
      const r = await this.proxy._worker.tars_invoke(func, os.getBinBuffer(), property);
      if (property?.packetType === 1) return { ret: 0, out: '', context: {} };
      const is = new TarsStream.TarsInputStream(r.response.sBuffer);
      return { ret: is.readInt32(0, true, 0), out: is.readString(2, false, ''), context: r.response.context ? mapOf(r.response.context) : {} };
    } catch (e) {
      const err = (e as { error?: CallError }).error;
      // The framework settles a one-way call by rejecting it with this message, once it is sent.
      if (property?.packetType === 1 && /one way call/.test(err?.message ?? '')) return { ret: 0, out: '', context: {} };
      if (err) throw Object.assign(new Error(`tars error ${err.code}: ${err.message}`), { code: err.code });
      throw e;
    }
  }

  close(): void {
    this.communicator.destroy();
  }
}

interface InvokeResult { response: { sBuffer: unknown; context?: { value: Record<string, unknown> } } }
