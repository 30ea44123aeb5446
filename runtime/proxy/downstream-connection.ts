// One client connection: decode what it sends (one codec call per read), route each message,
// hand it to an upstream connection, and write the responses back, in request order when the
// protocol correlates by order, coalesced into one write per event-loop turn.

import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import { isMeltemiError } from '../core/errors';
import { ErrorKind, ErrorKindValue, FrameFlag, MessageType } from '../wasm/abi';
import type { CodecContext, CodecPlugin } from '../codec/codec-plugin';
import type { UpstreamPool } from '../upstream/upstream-pool';
import type { Metadata } from '../codec/metadata';
import { ActiveRequest, ResponseSink } from './active-request';
import type { Cluster } from '../upstream/cluster';
import { Fifo } from '../core/fifo';
import { Flushable, scheduleFlush } from '../core/flush-scheduler';
import { FrameReader } from './frame-reader';
import type { ListenerContext } from './listener-context';
import type { RequestStats } from '../core/stats';
import type { UpstreamConnection } from '../upstream/upstream-connection';

const EMPTY = Buffer.alloc(0);
const ERROR_KIND_NAMES = Object.fromEntries(Object.entries(ErrorKind).map(([k, v]) => [v, k.toLowerCase()])) as Record<number, string>;
/** How long a closing connection waits for in-flight responses before it is cut. */
const CLOSE_GRACE_MS = 5_000;
/**
 * Time one connection may spend on its input before it yields the event loop to the others.
 * libuv reads up to 32 chunks from a busy socket in one go; a client sending megabytes of
 * expensive requests (long keys under a regex route) would otherwise hold every client that long.
 */
const TURN_BUDGET_MS = 2;

export class DownstreamConnection implements Flushable, ResponseSink {
  flushQueued = false;
  private readonly ctx: CodecContext;
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
  private paused = false;
  private writeBlocked = false;
  /** Time spent on this connection's input since it last yielded. */
  private busyMs = 0;
  private yielding = false;
  private pinned: Map<string, UpstreamConnection> | null = null;
  private noRouteStats: RequestStats | undefined;
  /** The codec generation and upstream pool this connection keeps until it closes. */
  private readonly plugin: CodecPlugin;
  private readonly pool: UpstreamPool;

  constructor(private readonly socket: net.Socket, private readonly listener: ListenerContext) {
    const { plugin, codecConfig, config, stats } = listener;
    this.plugin = plugin;
    this.pool = listener.pool;
    this.pool.users++;
    plugin.connections++;
    this.ctx = plugin.open(false, codecConfig);
    this.reader = new FrameReader(this.ctx, 0, config.maxFrameSize, () => this.onData(EMPTY, true));
    this.ordered = plugin.descriptor.correlation === 'order';
    if (config.upstreamConnection === 'per_client') this.pinned = new Map();
    stats.connectionsTotal++;
    stats.connectionsActive++;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => { this.writeBlocked = false; this.updateFlow(); });
    socket.on('error', () => { /* 'close' follows and cleans up */ });
    // The client half-closed: answer what it sent, then close our side (allowHalfOpen).
    socket.on('end', () => {
      this.onData(EMPTY, true); // a frame still being reassembled is complete now or never
      this.startClosing();
    });
    socket.on('close', () => this.onClose());
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
    const type = meta.messageType;
    if (type === MessageType.HEARTBEAT) {
      const reply = this.tryCodec(() => this.ctx.heartbeatReply(meta.frame));
      if (reply === undefined) return;
      if (reply !== null) {
        this.complete(this.track(new ActiveRequest(this, meta, null, now)), reply, false, now);
        return;
      }
    }
    const l = this.listener;
    if (l.overload.shedding) {
      l.overload.shedRequests++;
      this.fail(this.track(new ActiveRequest(this, meta, null, now)), ErrorKind.OVER_LIMIT, 'meltemi: overloaded: the proxy is shedding new requests (overload.shed_requests_at)');
      return;
    }
    const route = l.routes.match(meta);
    if (!route) {
      this.noRouteStats ??= l.store.request(l.config.name, '', '');
      this.noRouteStats.total++;
      this.noRouteStats.active++;
      this.fail(this.track(new ActiveRequest(this, meta, this.noRouteStats, now)), ErrorKind.ROUTE_NOT_FOUND, 'meltemi: no route matched the request');
      return;
    }
    const clusterName = route.cluster();
    const stats = route.statsFor(clusterName);
    stats.total++;
    stats.active++;
    const req = this.track(new ActiveRequest(this, meta, stats, now));
    const oneway = type === MessageType.ONEWAY;
    const cluster = l.clusters.get(clusterName);
    if (!cluster) {
      this.fail(req, ErrorKind.CLUSTER_NOT_FOUND, `meltemi: unknown cluster "${clusterName}"`);
      return;
    }
    const conn = this.upstreamFor(cluster, meta, now);
    if (!conn) {
      this.fail(req, ErrorKind.NO_HEALTHY_UPSTREAM, `meltemi: no healthy upstream in cluster "${cluster.name}"`);
      return;
    }
    const refused = conn.refusal(meta.frame.length);
    if (refused !== undefined) {
      cluster.stats.pendingOverflow++;
      this.fail(req, ErrorKind.OVER_LIMIT, `meltemi: upstream over limit: ${refused}`);
      return;
    }
    try {
      conn.send(oneway ? null : req, meta, route.requestMutation);
    } catch (err) {
      this.fail(req, ErrorKind.UNSPECIFIED, `meltemi: the codec could not encode the request: ${(err as Error).message}`);
      this.startClosing();
      return;
    }
    if (oneway) this.complete(req, EMPTY, false, now, true);
    if (meta.flags & FrameFlag.DRAIN_CLOSE) this.startClosing();
  }

  private track(req: ActiveRequest): ActiveRequest {
    this.inflight++;
    if (this.ordered) this.slots.push(req);
    else this.unordered.add(req);
    return req;
  }

  /** Upstream for one request: the shared pool, or this client's own connection once pinned. */
  private upstreamFor(cluster: Cluster, meta: Metadata, now: number): UpstreamConnection | undefined {
    if (this.pinned === null && (meta.flags & FrameFlag.CONNECTION_SCOPED) !== 0) this.pinned = new Map();
    if (this.pinned === null) {
      const ep = cluster.pick(now);
      return ep && this.pool.acquire(cluster, ep);
    }
    const existing = this.pinned.get(cluster.name);
    if (existing && !existing.closed) return existing;
    const ep = cluster.pick(now);
    if (!ep) return undefined;
    const conn = this.pool.dedicated(cluster, ep);
    if (conn) this.pinned.set(cluster.name, conn);
    return conn;
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

  // ---- responses ---------------------------------------------------------------------------

  complete(req: ActiveRequest, response: Buffer, isError: boolean, now: number, silent = false): void {
    if (req.done) return;
    req.done = true;
    const st = req.stats;
    if (st) {
      st.active--;
      if (isError) st.errors++;
      st.observe((now - req.start) / 1000);
    }
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

  fail(req: ActiveRequest, kind: number, message: string): void {
    if (this.closed) {
      // Nobody to answer (and the codec context is gone): account for the request only.
      this.complete(req, EMPTY, true, performance.now(), true);
      return;
    }
    this.listener.stats.localReply(ERROR_KIND_NAMES[kind] ?? String(kind));
    let reply: Buffer;
    try {
      reply = this.ctx.localReply(req.meta?.frame ?? null, kind as ErrorKindValue, message);
    } catch (err) {
      this.complete(req, Buffer.alloc(0), true, performance.now(), true);
      this.abort(`cannot build a local reply: ${(err as Error).message}`);
      return;
    }
    this.complete(req, reply, true, performance.now());
  }

  private releaseInOrder(): void {
    let head = this.slots.peek();
    while (head && head.done) {
      this.slots.shift();
      if (head.response) this.enqueue(head.response);
      head.response = null;
      head = this.slots.peek();
    }
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
      if (!this.socket.write(data)) {
        this.writeBlocked = true;
        this.updateFlow();
      }
    }
    if (this.closing && this.inflight === 0) this.socket.end();
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
    if (this.closing && this.inflight === 0) scheduleFlush(this);
  }

  /** Malformed input or a failing codec: answer with a protocol error where possible, then close. */
  private protocolError(message: string, trapped: boolean): void {
    if (this.closing) return;
    this.listener.stats.decodingErrors++;
    this.listener.logger.log('debug', `closing downstream connection: ${message}`, { listener: this.listener.config.name, trapped });
    const req = this.track(new ActiveRequest(this, null, null, performance.now()));
    this.fail(req, ErrorKind.PROTOCOL_ERROR, `meltemi: protocol error: ${message}`);
    this.startClosing();
  }

  private startClosing(): void {
    if (this.closing) return;
    this.closing = true;
    this.updateFlow();
    setTimeout(() => this.abort('in-flight requests did not finish in time'), CLOSE_GRACE_MS).unref();
  }

  private abort(reason: string): void {
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
    this.reader.close();
    this.ctx.close();
    if (this.pinned) for (const c of this.pinned.values()) c.close();
    this.out = [];
    // Requests still out are dropped by their upstream if unsent, and hold no frames meanwhile.
    for (const r of this.slots.drain()) r.abandon();
    for (const r of this.unordered) r.abandon();
    this.unordered.clear();
    this.plugin.connections--;
    this.pool.users--;
    this.listener.released(this.plugin, this.pool);
  }
}
