// One connection to an upstream endpoint. Requests from any number of downstream connections are
// queued, written once per event-loop turn, and matched to responses in order (ABI correlation
// "order") or by id. When the connection fails, every request still waiting goes back to its
// router (which retries it or answers it with a local error).
//
// A try the router gives up on (a timeout) is cancelled here. By id: its id is freed and its late
// response dropped. In order: the responses behind it can no longer be matched with certainty, so
// the connection is retired — taken out of the pool at once and closed — and the other requests
// on it go back to their routers as "retired", to be sent again where that is safe. What it holds is bounded: a request is written only while the socket drains (so one
// whose client hangs up first is dropped, never sent), and past max_pending_requests or
// max_queued_bytes a new request is refused (the caller answers it with an over-limit reply).

import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../core/logger';
import { CallFlag, ErrorKind, FrameFlag, MessageType, ResponseStatus } from '../wasm/abi';
import type { Metadata } from '../codec/metadata';
import { Mutation, withRequestId } from '../codec/mutation';
import type { CodecPlugin } from '../codec/codec-plugin';
import type { ActiveRequest } from '../proxy/active-request';
import type { Cluster, Endpoint } from './cluster';
import { Fifo } from '../core/fifo';
import { Flushable, scheduleFlush } from '../core/flush-scheduler';
import { FrameReader } from '../proxy/frame-reader';
import { originateTls } from '../security/upstream-tls';
import { trackOwnConnection } from '../sidecar/own-connections';
import type { BoundSession } from './bound-session';
import { SessionState } from '../codec/codec-instance';

const EMPTY_MUTATION = new Mutation().encode();
const EMPTY = Buffer.alloc(0);

export interface UpstreamOptions {
  readonly plugin: CodecPlugin;
  readonly codecConfig: Buffer;
  readonly maxFrameSize: number;
  readonly logger: Logger;
}

interface Queued {
  readonly req: ActiveRequest | null;
  readonly bytes: Buffer;
  /** Request-id correlation: the id this connection gave the request. */
  readonly id: number;
  /** The request's try this is: a cancelled or superseded try is not written. */
  readonly tryId: number;
}

/** Late responses of cancelled tries this connection waits for, at most; past it, it is retired. */
const MAX_EXPIRED_IDS = 4096;

export class UpstreamConnection implements Flushable {
  /** Every connection not yet closed: the router's deadline sweep looks at what waits on them. */
  static readonly live = new Set<UpstreamConnection>();
  flushQueued = false;
  /** Called once when the connection is gone (pool bookkeeping). */
  onClosed: ((conn: UpstreamConnection) => void) | null = null;
  private readonly socket: net.Socket;
  /** Order correlation: requests waiting, oldest first. */
  private readonly inflight = new Fifo<ActiveRequest>();
  /** Request-id correlation: requests waiting, by the id this connection gave them. */
  private readonly byId: Map<number, ActiveRequest> | null;
  private nextId = 1;
  private readonly passthrough: boolean;
  private readonly ctx;
  private readonly reader: FrameReader;
  /** Encoded requests not yet handed to the socket. */
  private readonly queue = new Fifo<Queued>();
  private queuedBytes = 0;
  private writeBlocked = false;
  private refusedSinceCompact = 0;
  private state: 'connecting' | 'open' | 'closed' = 'connecting';
  private connectTimer: NodeJS.Timeout | undefined;
  private failure: string | undefined;
  /** Ids of cancelled tries whose responses may still come (request-id correlation). */
  private expired: Set<number> | null = null;
  /** Taken out of service: no new requests; closing. */
  private retired = false;
  /** The state whose `expect` word each upstream decode reads (codecs that read it), or none. */
  private readonly expecting: SessionState | undefined;
  /** Requests queued here while connecting, counted in the cluster's pending requests. */
  private pendingCounted = 0;

  /**
   * `dedicated`: one client's own connection (its state — SELECT, MULTI — lives on it).
   * `preamble`: bytes sent before any request (a PROXY protocol header).
   */
  constructor(readonly cluster: Cluster, readonly endpoint: Endpoint, opts: UpstreamOptions, readonly dedicated = false, preamble?: Buffer,
    /** ABI 1.2: the bound session this connection serves (its only client). */
    private readonly session?: BoundSession) {
    this.ctx = opts.plugin.open(true, opts.codecConfig);
    if (session) this.ctx.session = session.state;
    // ABI 1.3: the codec reads `expect` on this pooled connection too; its state carries the word.
    else if (opts.plugin.descriptor.expectResponses) this.ctx.session = new SessionState();
    this.expecting = this.ctx.session;
    this.byId = opts.plugin.descriptor.correlation === 'request_id' ? new Map() : null;
    this.passthrough = opts.plugin.descriptor.passthroughEncode;
    this.reader = new FrameReader(this.ctx, CallFlag.SIDE_UPSTREAM, opts.maxFrameSize, () => this.onData(EMPTY, true));
    cluster.stats.connectionsTotal++;
    cluster.stats.connectionsActive++;
    UpstreamConnection.live.add(this);
    const raw = net.connect({ host: endpoint.address, port: endpoint.port });
    trackOwnConnection(raw, endpoint);
    // Written while connecting: Node sends it first, before the first flush of requests (and
    // before TLS: a PROXY header is read by the peer before its handshake).
    if (preamble) raw.write(preamble);
    raw.setNoDelay(true);
    const tls = cluster.config.tls;
    const workload = cluster.security?.workload;
    if (tls && !workload) {
      // Validation refuses this; a cluster from CDS with tls on a proxy without certificates is refused there too.
      this.failure = 'the cluster requires mTLS and this proxy has no workload certificate';
      raw.destroy();
    }
    this.socket = tls && workload ? originateTls(raw, tls, cluster.name, workload, cluster.security!.stats) : raw;
    if (this.socket !== raw) {
      // A refused connect fails the TCP socket under TLS: recorded here, and the TLS socket closes with it.
      raw.on('error', (err: NodeJS.ErrnoException) => { this.failure ??= err.code ?? err.message; this.socket.destroy(); });
    }
    this.connectTimer = setTimeout(() => this.destroy(`connect timeout after ${cluster.config.connectTimeoutMs} ms`), cluster.config.connectTimeoutMs);
    this.socket.on(this.socket === raw ? 'connect' : 'secureConnect', () => this.onConnect());
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // Responses still being reassembled are decoded before the close fails what is left.
    this.socket.on('end', () => this.onData(EMPTY, true));
    this.socket.on('error', (err: NodeJS.ErrnoException) => { this.failure ??= err.code ?? err.message; });
    this.socket.on('drain', () => {
      this.writeBlocked = false;
      if (this.queue.length > 0) scheduleFlush(this);
    });
    this.socket.on('close', () => this.onClose());
  }

  /** Why the connection failed, if it did. */
  get failureReason(): string | undefined {
    return this.failure;
  }

  /** Bound sessions: stops reading while the client is not reading what this connection sends. */
  setReading(on: boolean): void {
    if (this.state === 'closed') return;
    if (on) this.socket.resume();
    else this.socket.pause();
  }

  /** Closed or retired: takes no new requests. */
  get closed(): boolean {
    return this.state === 'closed' || this.retired;
  }

  /** Requests sent or queued, not yet answered. */
  get pending(): number {
    return (this.byId ? this.byId.size : this.inflight.length) + this.queue.length;
  }

  /**
   * Why this connection cannot take a request of `frameLength` bytes now (its limits), or
   * undefined when it can. A string, not an exception: under a flood every refused request
   * asks, and building an Error (its stack) per request cost more than the rest of the path.
   */
  refusal(frameLength: number): string | undefined {
    const limits = this.cluster.config;
    if (this.state === 'connecting' && this.cluster.stats.rqPending >= limits.circuitBreakers.maxPendingRequests) {
      return `${this.cluster.stats.rqPending} requests of cluster ${this.cluster.name} wait for connections to open (circuit_breakers.max_pending_requests ${limits.circuitBreakers.maxPendingRequests})`;
    }
    if (this.pending < limits.maxPendingRequestsPerConnection && this.queuedBytes + frameLength <= limits.maxQueuedBytesPerConnection) return undefined;
    // Compacting costs the queue's length: at most once per that many refused requests.
    if (++this.refusedSinceCompact > this.queue.length) {
      this.refusedSinceCompact = 0;
      this.dropAbandoned();
    }
    if (this.pending >= limits.maxPendingRequestsPerConnection) {
      return `${this.pending} requests pending on one connection to ${this.endpoint.label} (max_pending_requests_per_connection ${limits.maxPendingRequestsPerConnection})`;
    }
    // One frame larger than the byte limit still passes alone (max_frame_size bounds it).
    if (this.queuedBytes > 0 && this.queuedBytes + frameLength > limits.maxQueuedBytesPerConnection) {
      return `${this.queuedBytes} bytes queued for ${this.endpoint.label}, which is not reading (max_queued_bytes_per_connection ${limits.maxQueuedBytesPerConnection})`;
    }
    return undefined;
  }

  /**
   * Encodes and queues one request (after `refusal` said yes); `req` (null for one-way
   * messages) then waits for its response. With request-id correlation the request is
   * renumbered so that ids of different clients sharing this connection cannot collide. Throws
   * the codec's error if it fails to encode.
   */
  send(req: ActiveRequest | null, meta: Metadata, mutation: Buffer | null, replaced?: Buffer): void {
    let bytes: Buffer = meta.frame;
    let id = 0;
    if (replaced !== undefined) {
      // A rebind's login, built by the codec for this connection: sent as it is.
      bytes = replaced;
    } else if (this.byId) {
      id = this.nextId;
      this.nextId = this.nextId >= 0xffff_ffff ? 1 : this.nextId + 1;
      bytes = this.ctx.encode(meta.frame, withRequestId(mutation, id, 0), meta.messageType, false, meta.requestIdLo !== id || meta.requestIdHi !== 0) ?? meta.frame;
    } else if (mutation || !this.passthrough) {
      bytes = this.ctx.encode(meta.frame, mutation ?? EMPTY_MUTATION, meta.messageType, false) ?? meta.frame;
    }
    if (req) {
      req.upstreamId = id;
      req.sent = false;
    }
    this.queue.push({ req, bytes, id, tryId: req ? req.tryId : 0 });
    this.queuedBytes += bytes.length;
    if (this.state === 'connecting') {
      this.pendingCounted++;
      this.cluster.stats.rqPending++;
    }
    if (this.state === 'open' && !this.writeBlocked) scheduleFlush(this);
  }

  private releasePending(): void {
    this.cluster.stats.rqPending -= this.pendingCounted;
    this.pendingCounted = 0;
  }

  /**
   * Adds to `due` the requests waiting here (queued or sent) whose deadline passed at `now`.
   * Requests are swept where they already are, so a deadline costs no list of its own.
   */
  collectDue(now: number, due: ActiveRequest[]): void {
    this.queue.forEach((q) => {
      const req = q.req;
      if (req !== null && req.timerDue <= now && req.tryId === q.tryId && req.upstream === this) due.push(req);
    });
    if (this.byId) {
      for (const req of this.byId.values()) if (req.timerDue <= now) due.push(req);
    } else {
      this.inflight.forEach((req) => { if (req.timerDue <= now && req.upstream === this) due.push(req); });
    }
  }

  /**
   * The router gave up on `req`'s try here (a timeout). Not yet written: it never will be. By id:
   * the id is freed and its late response will be dropped. In order: the connection is retired.
   */
  cancel(req: ActiveRequest): void {
    if (!req.sent) return; // the queued entry no longer matches req.tryId: flush skips it
    if (this.byId) {
      if (this.byId.get(req.upstreamId) !== req) return;
      this.byId.delete(req.upstreamId);
      (this.expired ??= new Set()).add(req.upstreamId);
      if (this.expired.size > MAX_EXPIRED_IDS) this.retire(`${this.expired.size} requests timed out without an answer`);
      return;
    }
    this.retire('a request on it timed out, so the responses behind it cannot be matched');
  }

  /** Out of the pool now; closed; what waits on it goes back to the routers as retired. */
  private retire(reason: string): void {
    if (this.retired || this.state === 'closed') return;
    this.retired = true;
    this.cluster.stats.connectionsRetired++;
    const closed = this.onClosed;
    this.onClosed = null;
    closed?.(this);
    this.destroy(`retired: ${reason}`);
  }

  /** Hands queued requests to the socket; a request whose client has gone is dropped unsent. */
  flush(): void {
    if (this.state !== 'open' || this.writeBlocked || this.queue.length === 0) return;
    const parts: Buffer[] = [];
    let size = 0;
    for (let q = this.queue.shift(); q; q = this.queue.shift()) {
      this.queuedBytes -= q.bytes.length;
      const req = q.req;
      if (req) {
        // Cancelled (a timeout), answered, or moved to another try: never written.
        if (req.abandoned || req.done || req.tryId !== q.tryId || req.upstream !== this) continue;
        req.sent = true;
        if (this.byId) this.byId.set(q.id, req);
        else this.inflight.push(req);
      }
      parts.push(q.bytes);
      size += q.bytes.length;
    }
    if (size === 0) return;
    if (!this.socket.write(parts.length === 1 ? parts[0] : Buffer.concat(parts, size))) this.writeBlocked = true;
  }

  /** Removes queued requests whose clients have gone (when a limit is near). */
  private dropAbandoned(): void {
    const kept = this.queue.drain().filter((q) => !q.req?.abandoned);
    this.queuedBytes = 0;
    for (const q of kept) {
      this.queue.push(q);
      this.queuedBytes += q.bytes.length;
    }
  }

  close(): void {
    this.destroy(undefined);
  }

  private destroy(reason: string | undefined): void {
    if (reason) this.failure ??= reason;
    this.socket.destroy();
  }

  private onConnect(): void {
    clearTimeout(this.connectTimer);
    this.releasePending();
    this.state = 'open';
    this.endpoint.connected();
    if (this.queue.length > 0) scheduleFlush(this);
  }

  private onData(chunk: Buffer, force = false): void {
    if (this.state === 'closed' || this.retired) return;
    let result;
    try {
      const expecting = this.expecting;
      if (expecting) expecting.expect = this.expected();
      result = this.reader.push(chunk, force);
      // A codec that reads `expect` (bound sessions, ABI 1.3 expect_responses) stops after each
      // whole response, so the next one is decoded with the `expect` of the request it answers.
      while (result !== null && expecting && result.status >= 0 && this.reader.bufferedBytes > 0 && result.frames.length > 0) {
        if (!this.deliver(result.frames)) return;
        expecting.expect = this.expected();
        result = this.reader.push(EMPTY, true);
      }
    } catch (err) {
      this.destroy(`codec failed on a response: ${(err as Error).message}`);
      return;
    }
    if (!result) return;
    if (!this.deliver(result.frames)) return;
    if (result.status < 0) this.destroy(`malformed response: ${result.error}`);
  }

  /** The `expect` word of the request the next response answers (order correlation). */
  private expected(): number {
    const head = this.inflight.peek();
    return head?.meta?.expect ?? 0;
  }

  /** Hands decoded responses to their requests; false when the connection had to close. */
  private deliver(frames: Metadata[]): boolean {
    const now = performance.now();
    for (let i = 0; i < frames.length; i++) {
      const meta = frames[i];
      const flags = meta.flags;
      if ((flags & (FrameFlag.UNSOLICITED | FrameFlag.PARTIAL)) !== 0 && this.session) {
        if (!this.deliverSessionFrame(meta, now)) return false;
        continue;
      }
      if (this.byId) {
        if (!this.deliverById(meta, now)) return false;
        continue;
      }
      const req = this.inflight.shift();
      if (!req) {
        this.destroy('response without a request');
        return false;
      }
      req.sink!.complete(req, meta.frame, meta.status === ResponseStatus.ERROR, now, meta);
    }
    return true;
  }

  /** A bound session's frame that answers nothing (relayed) or part of an answer (streamed). */
  private deliverSessionFrame(meta: Metadata, now: number): boolean {
    if ((meta.flags & FrameFlag.UNSOLICITED) !== 0) {
      this.session!.unsolicited(this, meta.frame);
      return true;
    }
    const req = this.byId ? this.byId.get(meta.requestIdHi === 0 ? meta.requestIdLo : -1) : this.inflight.peek();
    if (!req) {
      this.destroy('part of a response without a request');
      return false;
    }
    req.downstream.partial(req, meta.frame, now);
    return true;
  }

  /** Matches a response by id and restores the client's id; answers server heartbeats. */
  private deliverById(meta: Metadata, now: number): boolean {
    const id = meta.requestIdHi === 0 ? meta.requestIdLo : -1;
    const req = this.byId!.get(id);
    if (!req) {
      if (this.expired?.delete(id)) return true; // the late answer to a try that timed out
      if (meta.messageType === MessageType.HEARTBEAT) {
        const reply = this.ctx.heartbeatReply(meta.frame);
        if (reply) {
          this.queue.push({ req: null, bytes: reply, id: 0, tryId: 0 });
          this.queuedBytes += reply.length;
          scheduleFlush(this);
        }
        return true;
      }
      this.destroy(`response for unknown request id ${meta.requestId}`);
      return false;
    }
    this.byId!.delete(id);
    const original = req.meta;
    if (!original) return true; // its client is gone: nothing to restore, nobody to answer
    const renumbered = original.requestIdLo !== meta.requestIdLo || original.requestIdHi !== meta.requestIdHi;
    const restored = this.ctx.encode(meta.frame, withRequestId(null, original.requestIdLo, original.requestIdHi), meta.messageType, true, renumbered) ?? meta.frame;
    req.sink!.complete(req, restored, meta.status === ResponseStatus.ERROR || meta.messageType === MessageType.ERROR, now, meta);
    return true;
  }

  private onClose(): void {
    UpstreamConnection.live.delete(this);
    clearTimeout(this.connectTimer);
    this.releasePending();
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    this.cluster.stats.connectionsActive--;
    this.reader.close();
    this.ctx.close();
    this.session?.connectionClosed(this);
    if (!wasOpen) {
      this.cluster.stats.connectFailures++;
      this.endpoint.connectFailed(performance.now());
    }
    const waiting = this.inflight.drain();
    if (this.byId) {
      waiting.push(...this.byId.values());
      this.byId.clear();
    }
    for (const q of this.queue.drain()) if (q.req) waiting.push(q.req);
    this.queuedBytes = 0;
    if (waiting.length > 0) {
      const kind = wasOpen ? ErrorKind.UPSTREAM_CLOSED : ErrorKind.CONNECT_FAILURE;
      const why = this.failure ? ` (${this.failure})` : '';
      const message = wasOpen
        ? `meltemi: upstream ${this.endpoint.label} of cluster ${this.cluster.name} closed before responding${why}`
        : `meltemi: cannot connect to upstream ${this.endpoint.label} of cluster ${this.cluster.name}${why}`;
      // Tries cancelled here or already sent elsewhere are no longer this connection's to fail.
      for (const req of waiting) if (!req.abandoned && req.upstream === this) req.sink!.fail(req, kind, message, this.retired);
    }
    this.onClosed?.(this);
  }
}
