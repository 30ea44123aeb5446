// One client connection: decode what it sends (one codec call per read), pass each message to
// the listener's filter chain (which ends in the router), and write the answers back, in request
// order when the protocol correlates by order, coalesced into one write per event-loop turn.
// Heartbeats and load shedding are answered here, before the chain.

import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import { isMeltemiError } from '../core/errors';
import { ErrorKind, ErrorKindValue, FrameFlag, MessageType } from '../wasm/abi';
import type { CodecContext, CodecPlugin } from '../codec/codec-plugin';
import type { Metadata } from '../codec/metadata';
import { Mutation, MutationEntry } from '../codec/mutation';
import { wellKnownKeyId } from '../codec/well-known-keys';
import { ActiveRequest } from './active-request';
import type { Downstream } from './downstream';
import { ConnectionUpstreams } from '../upstream/connection-upstreams';
import { BoundSession, type SessionClient } from '../upstream/bound-session';
import type { Cluster } from '../upstream/cluster';
import { Fifo } from '../core/fifo';
import { Flushable, scheduleFlush } from '../core/flush-scheduler';
import { FrameReader } from './frame-reader';
import type { FilterChain } from '../filter/filter-chain';
import type { ListenerContext } from './listener-context';
import type { ListenerTelemetry } from '../telemetry/telemetry';
import type { IstioTcpSeries } from '../telemetry/istio-metrics';
import { Ending } from '../telemetry/response-flags';
import type { Address } from '../sidecar/proxy-protocol';
import type { AuthorizationInput } from '../security/authorization-policy';
import { PLAINTEXT, type ConnectionSecurity } from '../security/downstream-tls';

/** Addresses a connection takes from elsewhere than its socket, and what its transport proved. */
export interface ConnectionEndpoints {
  readonly remote?: Address;
  readonly local?: Address;
  readonly security?: ConnectionSecurity;
}

/** A connection's side of authorization inputs; the request's metadata is set per decision. */
class ConnectionAuthorizationInput implements AuthorizationInput {
  meta: Metadata | null = null;
  readonly principal: string;
  readonly namespace: string;
  readonly sni: string;

  constructor(security: ConnectionSecurity, readonly sourceIp: string, readonly remoteIp: string, readonly destinationIp: string, readonly destinationPort: number) {
    this.principal = security.principal;
    this.namespace = security.peer?.namespace ?? '';
    this.sni = security.sni;
  }

  metadata(key: string): string | undefined {
    return this.meta?.get(key);
  }
}

const EMPTY = Buffer.alloc(0);
const COMMAND = wellKnownKeyId('command');
const ERROR_KIND_NAMES = Object.fromEntries(Object.entries(ErrorKind).map(([k, v]) => [v, k.toLowerCase()])) as Record<number, string>;
/** How long a closing connection waits for in-flight responses before it is cut. */
const CLOSE_GRACE_MS = 5_000;
/**
 * Time one connection may spend on its input before it yields the event loop to the others.
 * libuv reads up to 32 chunks from a busy socket in one go; a client sending megabytes of
 * expensive requests (long keys under a regex route) would otherwise hold every client that long.
 */
const TURN_BUDGET_MS = 2;

export class DownstreamConnection implements Flushable, Downstream, SessionClient {
  flushQueued = false;
  readonly ctx: CodecContext;
  private readonly reader: FrameReader;
  private readonly ordered: boolean;
  private readonly slots = new Fifo<ActiveRequest>();
  /** Requests in flight when responses may come in any order (ordered ones are in `slots`). */
  private readonly unordered = new Set<ActiveRequest>();
  private out: Buffer[] = [];
  private outBytes = 0;
  private inflight = 0;
  private closed = false;
  private closing = false;
  /** Draining: the connection closes once it has answered a request and nothing is in flight. */
  private draining = false;
  /** Draining, and idle now means done (it had a request, or was open before the drain began). */
  private drainClose = false;
  private paused = false;
  private writeBlocked = false;
  /** Time spent on this connection's input since it last yielded. */
  private busyMs = 0;
  private yielding = false;
  /** The codec generation, filter chain and upstream pool this connection keeps until it closes. */
  private readonly plugin: CodecPlugin;
  private readonly chain: FilterChain;
  readonly upstreams: ConnectionUpstreams;
  /** The listener's telemetry when this connection opened (an LDS update applies to new connections). */
  private readonly telemetry: ListenerTelemetry | null;
  private readonly tcp: IstioTcpSeries | null;
  readonly security: ConnectionSecurity;
  private authzInput: ConnectionAuthorizationInput | undefined;
  /** ABI 1.2: the upstream session of a codec that binds one (null for every other codec). */
  private readonly session: BoundSession | null = null;

  /**
   * `endpoints`: the client's address and the one it dialled when the socket's are not them (a
   * PROXY protocol header, a captured connection's original destination).
   */
  constructor(private readonly socket: net.Socket, private readonly listener: ListenerContext, private readonly endpoints?: ConnectionEndpoints) {
    const { plugin, codecConfig, config, stats } = listener;
    this.plugin = plugin;
    this.security = endpoints?.security ?? PLAINTEXT;
    this.upstreams = new ConnectionUpstreams(listener.pool, config.upstreamConnection === 'per_client', this.clientAddresses);
    this.chain = listener.chain;
    this.chain.users++;
    plugin.connections++;
    this.ctx = plugin.open(false, codecConfig);
    this.reader = new FrameReader(this.ctx, 0, config.maxFrameSize, () => this.onData(EMPTY, true));
    this.ordered = plugin.descriptor.correlation === 'order';
    stats.connectionsTotal++;
    stats.connectionsActive++;
    this.telemetry = listener.telemetry;
    this.telemetry?.acquire();
    this.tcp = this.telemetry?.tcp ?? null;
    if (this.tcp !== null) this.tcp.opened++;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => {
      this.writeBlocked = false;
      this.session?.setReading(true);
      this.updateFlow();
    });
    socket.on('error', () => { /* 'close' follows and cleans up */ });
    // The client half-closed: answer what it sent, then close our side (allowHalfOpen).
    socket.on('end', () => {
      this.onData(EMPTY, true); // a frame still being reassembled is complete now or never
      this.startClosing();
    });
    socket.on('close', () => this.onClose());
    if (plugin.descriptor.bindUpstream) {
      this.session = new BoundSession(this, listener.pool, plugin.descriptor.serverFirst);
      this.upstreams.session = this.session;
      if (plugin.descriptor.serverFirst) this.session.greet(listener.routes, listener.clusters);
    }
    if (config.idleTimeoutMs > 0) {
      // Node refreshes this timer on every read and write; it fires after that long of silence.
      socket.setTimeout(config.idleTimeoutMs);
      socket.on('timeout', () => {
        if (this.inflight > 0) return; // waiting on an upstream is not idle (request timeouts come later)
        listener.stats.idleTimeouts++;
        this.abort(`idle for ${config.idleTimeoutMs} ms`);
      });
    }
  }

  // ---- requests ----------------------------------------------------------------------------

  private onData(chunk: Buffer, force = false): void {
    if (this.tcp !== null) this.tcp.received += chunk.length;
    if (this.closing) return;
    const started = performance.now();
    let result;
    try {
      result = this.reader.push(chunk, force);
    } catch (err) {
      this.protocolError(`codec failure: ${(err as Error).message}`, isMeltemiError(err, 'MELTEMI_PLUGIN_TRAP'));
      return;
    }
    if (result) this.dispatchFrom(result.frames, 0, result.status < 0 ? result.error ?? 'malformed frame' : undefined, started);
    this.updateFlow();
  }

  /**
   * Dispatches `frames` from `at`. When this connection has used its turn budget, the rest waits
   * for the next turn (reading paused meanwhile), so one client's batch cannot hold the others.
   */
  private dispatchFrom(frames: Metadata[], at: number, error: string | undefined, started: number): void {
    let i = at;
    for (; i < frames.length && !this.closing; i++) {
      this.dispatch(frames[i], started);
      if ((i & 15) === 15 && this.spentMs(started) >= TURN_BUDGET_MS) {
        i++;
        break;
      }
    }
    if (i < frames.length && !this.closing) {
      this.yieldTurn(() => this.dispatchFrom(frames, i, error, performance.now()));
      return;
    }
    if (error !== undefined) this.protocolError(error, false);
    this.busyMs = this.spentMs(started);
    if (this.busyMs >= TURN_BUDGET_MS) this.yieldTurn(undefined);
  }

  /** Time used since the last yield, counting the work begun at `started`. */
  private spentMs(started: number): number {
    return this.busyMs + performance.now() - started;
  }

  /** Stops reading until the next turn, then runs `then` (the rest of a batch) and reads again. */
  private yieldTurn(then: (() => void) | undefined): void {
    if (this.yielding) return;
    this.yielding = true;
    this.updateFlow();
    setImmediate(() => {
      this.yielding = false;
      this.busyMs = 0;
      if (!this.closed) then?.();
      this.updateFlow();
    });
  }

  private dispatch(meta: Metadata, now: number): void {
    if (meta.messageType === MessageType.HEARTBEAT) {
      const reply = this.tryCodec(() => this.ctx.heartbeatReply(meta.frame));
      if (reply === undefined) return;
      if (reply !== null) {
        this.respond(this.track(new ActiveRequest(this, meta, now)), reply, false, now);
        return;
      }
    }
    const l = this.listener;
    if (this.draining) this.drainClose = true;
    const req = this.track(new ActiveRequest(this, meta, now));
    const command = meta.getWellKnown(COMMAND, 'command');
    if (command !== undefined) l.stats.command(command);
    if (this.telemetry !== null) this.telemetry.onRequest(req, meta);
    if (l.overload.shedding) {
      l.overload.shedRequests++;
      req.ending = Ending.OVERLOADED;
      this.chain.localReply(req, ErrorKind.OVER_LIMIT, 'meltemi: overloaded: the proxy is shedding new requests (overload.shed_requests_at)');
      return;
    }
    this.chain.onRequest(req, now);
  }

  private track(req: ActiveRequest): ActiveRequest {
    this.inflight++;
    if (this.ordered) this.slots.push(req);
    else this.unordered.add(req);
    return req;
  }

  /** Runs a codec call; on failure closes this connection and returns undefined. */
  private tryCodec<T>(fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      this.protocolError(`codec failure: ${(err as Error).message}`, isMeltemiError(err, 'MELTEMI_PLUGIN_TRAP'));
      return undefined;
    }
  }

  /** The client's address and the one it dialled (PROXY protocol headers sent upstream). */
  private readonly clientAddresses = (): readonly [Address | undefined, Address | undefined] => {
    const s = this.socket;
    const remote = this.endpoints?.remote ?? (s.remoteAddress === undefined ? undefined : { address: s.remoteAddress, port: s.remotePort ?? 0 });
    const local = this.endpoints?.local ?? (s.localAddress === undefined ? undefined : { address: s.localAddress, port: s.localPort ?? 0 });
    return [remote, local];
  };

  authorizationInput(meta: Metadata): AuthorizationInput {
    if (this.authzInput === undefined) {
      const [remote, local] = this.clientAddresses();
      const direct = this.socket.remoteAddress ?? '';
      this.authzInput = new ConnectionAuthorizationInput(this.security, direct, remote?.address ?? direct, local?.address ?? '', local?.port ?? 0);
    }
    this.authzInput.meta = meta;
    return this.authzInput;
  }

  /** The client's address and this listener's, as `host:port` (for access logs; asked of the socket once). */
  private addressPair: [string, string] | undefined;
  private readonly addresses = (): [string, string] => {
    if (this.addressPair !== undefined) return this.addressPair;
    const join = (a: Address | undefined) => (a === undefined ? '-' : a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);
    const [remote, local] = this.clientAddresses();
    return (this.addressPair = [join(remote), join(local)]);
  };

  // ---- bound sessions (ABI 1.2) --------------------------------------------------------------

  relay(bytes: Buffer): void {
    if (!this.closed) this.enqueue(bytes);
  }

  refuse(kind: number, message: string): void {
    if (this.closing) return;
    this.listener.logger.log('debug', `refusing a session: ${message}`, { listener: this.listener.config.name });
    const req = this.track(new ActiveRequest(this, null, performance.now()));
    const reply = this.encodeLocalReply(req, kind, message);
    if (reply !== null) this.respond(req, reply, true, performance.now());
    this.startClosing();
  }

  upstreamClosed(): void {
    this.startClosing();
  }

  preamble(cluster: Cluster): Buffer | undefined {
    return this.upstreams.preamble(cluster);
  }

  partial(req: ActiveRequest, bytes: Buffer, _now: number): void {
    if (req.done || this.closed) return;
    // Streaming has begun: the route's timeout bounded the wait for the first byte, not the transfer.
    req.deadline = req.tryDeadline = req.timerDue = Infinity;
    if (!this.ordered || this.slots.peek() === req) {
      this.enqueue(bytes);
    } else {
      (req.partials ??= []).push(bytes);
    }
  }

  // ---- responses ---------------------------------------------------------------------------

  respond(req: ActiveRequest, response: Buffer, isError: boolean, now: number, silent = false, responseMeta?: Metadata): void {
    if (req.done) return;
    req.done = true;
    const st = req.stats;
    if (st) {
      st.active--;
      if (isError) st.errors++;
      st.observe((now - req.start) / 1000);
    }
    if (this.telemetry !== null) this.telemetry.record(req, response.length, isError, now, responseMeta, this.addresses);
    this.inflight--;
    if (!this.ordered) this.unordered.delete(req);
    if (this.closed) return;
    if (silent) {
      req.response = null;
    } else if (!this.ordered) {
      this.enqueue(response);
    } else {
      req.response = response;
    }
    if (this.ordered) this.releaseInOrder();
    this.updateFlow();
  }

  encodeLocalReply(req: ActiveRequest, kind: number, message: string): Buffer | null {
    if (this.closed) {
      // Nobody to answer (and the codec context is gone): account for the request only.
      this.respond(req, EMPTY, true, performance.now(), true);
      return null;
    }
    this.listener.stats.localReply(ERROR_KIND_NAMES[kind] ?? String(kind));
    if (req.meta !== null && req.meta.messageType === MessageType.ONEWAY) {
      // Its client reads no answer (Thrift oneway, Memcached noreply): an error written anyway
      // would be read as the answer to its next request.
      this.respond(req, EMPTY, true, performance.now(), true);
      return null;
    }
    // A session whose login is answered here has no upstream session to go on with.
    if (this.session !== null && req.meta !== null && (req.meta.flags & FrameFlag.ROUTE) !== 0) this.startClosing();
    try {
      return this.ctx.localReply(req.meta?.frame ?? null, kind as ErrorKindValue, message);
    } catch (err) {
      this.respond(req, EMPTY, true, performance.now(), true);
      this.abort(`cannot build a local reply: ${(err as Error).message}`);
      return null;
    }
  }

  private releaseInOrder(): void {
    let head = this.slots.peek();
    while (head && head.done) {
      this.slots.shift();
      this.releasePartials(head);
      if (head.response) this.enqueue(head.response);
      head.response = null;
      head = this.slots.peek();
    }
    // First in line now: what it streamed while waiting goes out.
    if (head) this.releasePartials(head);
  }

  private releasePartials(req: ActiveRequest): void {
    if (req.partials === null) return;
    for (const p of req.partials) this.enqueue(p);
    req.partials = null;
  }

  private enqueue(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.out.push(bytes);
    this.outBytes += bytes.length;
    scheduleFlush(this);
  }

  flush(): void {
    if (this.closed) return;
    if (this.outBytes > 0) {
      const data = this.out.length === 1 ? this.out[0] : Buffer.concat(this.out, this.outBytes);
      this.out = [];
      this.outBytes = 0;
      if (this.tcp !== null) this.tcp.sent += data.length;
      if (!this.socket.write(data)) {
        this.writeBlocked = true;
        // A session's upstream streams (a result set): it waits while the client is not reading.
        this.session?.setReading(false);
        this.updateFlow();
      }
    }
    if ((this.closing || this.drainClose) && this.inflight === 0) {
      this.closing = true; // nothing read after this is answered: the write side is gone
      this.socket.end();
    }
  }

  // ---- flow control and closing --------------------------------------------------------------

  private updateFlow(): void {
    if (this.closed) return;
    const limit = this.listener.config.maxInflightPerConnection;
    if (!this.paused && (this.writeBlocked || this.closing || this.yielding || this.inflight >= limit)) {
      this.paused = true;
      this.socket.pause();
    } else if (this.paused && !this.writeBlocked && !this.closing && !this.yielding && this.inflight <= limit >> 1) {
      this.paused = false;
      this.socket.resume();
    }
    if ((this.closing || this.drainClose) && this.inflight === 0) scheduleFlush(this);
  }

  /** Malformed input or a failing codec: answer with a protocol error where possible, then close. */
  private protocolError(message: string, trapped: boolean): void {
    if (this.closing) return;
    this.listener.stats.decodingErrors++;
    this.listener.logger.log('debug', `closing downstream connection: ${message}`, { listener: this.listener.config.name, trapped });
    const req = this.track(new ActiveRequest(this, null, performance.now()));
    // Not a request: answered by the codec directly, past the filters.
    const reply = this.encodeLocalReply(req, ErrorKind.PROTOCOL_ERROR, `meltemi: protocol error: ${message}`);
    if (reply !== null) this.respond(req, reply, true, performance.now());
    this.startClosing();
  }

  encodeResponse(req: ActiveRequest, response: Buffer, mutations: readonly MutationEntry[]): Buffer {
    if (this.closed) return response;
    const m = new Mutation();
    for (const e of mutations) m.add(e);
    try {
      return this.ctx.encode(response, m.encode(), MessageType.RESPONSE, true) ?? response;
    } catch (err) {
      this.listener.logger.log('debug', `response mutation not applied: ${(err as Error).message}`, { listener: this.listener.config.name });
      return response;
    }
  }

  closeAfterResponses(): void {
    this.startClosing();
  }

  /**
   * The proxy is draining: reading goes on (a request already sent is answered), and the
   * connection closes as soon as it has nothing in flight. `fresh`: opened during the drain.
   */
  drain(fresh = false): void {
    if (this.draining || this.closed) return;
    this.draining = true;
    // A connection accepted during the drain (the application's way out stays open) first gets
    // the request it was opened for: closed before it, that request would be lost.
    if (fresh) return;
    this.drainClose = true;
    if (this.inflight === 0) scheduleFlush(this);
  }

  private startClosing(): void {
    if (this.closing) return;
    this.closing = true;
    this.updateFlow();
    setTimeout(() => this.abort('in-flight requests did not finish in time'), CLOSE_GRACE_MS).unref();
  }

  abort(reason: string): void {
    if (this.closed) return;
    this.listener.logger.log('debug', `aborting downstream connection: ${reason}`, { listener: this.listener.config.name });
    this.socket.destroy();
  }

  /** Closes the connection now (listener shutdown): nothing more is dispatched from it. */
  destroy(): void {
    this.closing = true;
    this.socket.destroy();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.listener.stats.connectionsActive--;
    if (this.tcp !== null) this.tcp.closed++;
    this.reader.close();
    this.ctx.close();
    this.upstreams.close();
    this.out = [];
    // Requests still out are dropped by their upstream if unsent, and hold no frames meanwhile.
    const chain = this.chain;
    for (const r of this.slots.drain()) if (!r.done) this.abandon(r, chain);
    for (const r of this.unordered) this.abandon(r, chain);
    this.unordered.clear();
    chain.release();
    this.telemetry?.release();
    this.plugin.connections--;
    this.listener.released(this.plugin, this.upstreams.pool);
  }

  private abandon(req: ActiveRequest, chain: FilterChain): void {
    // Its client is gone: counted now with DC (no answer will be written), while its metadata is still here for the log.
    if (this.telemetry !== null) {
      if (req.ending === Ending.UPSTREAM) req.ending = Ending.DOWNSTREAM_CLOSED;
      this.telemetry.record(req, 0, true, performance.now(), undefined, this.addresses);
    }
    req.abandon();
    chain.abandoned(req);
  }
}
