// A listener's filters in order, ending in its router. Requests run through the filters first
// to last, then reach the router; answers (upstream responses and local replies alike) run back
// through the filters that saw the request, last to first, then reach the client connection.
// With no filters the chain is a direct call to the router and back.

import { ErrorKind } from '../wasm/abi';
import type { Logger } from '../core/logger';
import type { ActiveRequest } from '../proxy/active-request';
import type { Router } from '../router/router';
import type { Metadata } from '../codec/metadata';
import { Filter, FilterStatus, FilterStatusValue } from './filter';
import { Ending } from '../telemetry/response-flags';

const EMPTY = Buffer.alloc(0);

export interface FilterChainStats {
  /** Requests a filter answered, aborted, or failed (threw), by filter name. */
  onFilterOutcome(filter: string, outcome: 'local_reply' | 'abort' | 'failure'): void;
}

export class FilterChain {
  /** Client connections that run their requests through this chain (each keeps the one it started with). */
  users = 0;
  /** Replaced by a newer chain: closed once its last connection closes. */
  retired = false;

  constructor(
    readonly filters: readonly Filter[],
    private readonly router: Router,
    private readonly logger: Logger,
    private readonly stats?: FilterChainStats,
  ) {
    router.chain = this;
  }

  /** Runs the request filters from where `req` stands; the last one hands it to the router. */
  onRequest(req: ActiveRequest, now: number): void {
    const filters = this.filters;
    while (req.filterIndex < filters.length) {
      const filter = filters[req.filterIndex++];
      const status = this.run(filter, req);
      if (status === FilterStatus.CONTINUE) continue;
      if (status === FilterStatus.PAUSE) {
        req.paused = true;
        req.pausedBy = filter;
        return;
      }
      // Answered or cut before the router: counted as a request without route.
      if (req.stats === null) this.router.unrouted(req);
      if (status === FilterStatus.LOCAL_REPLY) {
        this.stats?.onFilterOutcome(filter.name, 'local_reply');
        req.endedByFilter = true;
        this.localReply(req, req.replyKind, req.replyMessage);
        return;
      }
      this.stats?.onFilterOutcome(filter.name, 'abort');
      this.cut(req, `filter ${filter.name} closed the connection`);
      return;
    }
    this.router.route(req, now);
  }

  /** Closes the client connection over `req`: filters are told once, the request is accounted. */
  private cut(req: ActiveRequest, reason: string): void {
    this.done(req);
    req.downstream.respond(req, EMPTY, true, performance.now(), true);
    req.downstream.abort(reason);
  }

  /** A one-way request was sent: nothing will answer it, but filters that saw it are told it is over. */
  sent(req: ActiveRequest, now: number): void {
    if (this.filters.length > 0) this.done(req);
    req.downstream.respond(req, EMPTY, false, now, true);
  }

  /**
   * Ends the pause of a request (from a timer or a completed host call) with the pausing
   * filter's decision: CONTINUE goes on to the next filter, LOCAL_REPLY answers with the reply
   * set on the request, ABORT closes the connection.
   */
  resume(req: ActiveRequest, status: FilterStatusValue = FilterStatus.CONTINUE, by?: Filter): void {
    // Only the filter that paused it may resume it (a stray timer of another filter may not).
    if (!req.paused || (by !== undefined && req.pausedBy !== by)) return;
    req.paused = false;
    req.pausedBy = null;
    if (req.abandoned || req.done) return;
    if (status !== FilterStatus.CONTINUE && status !== FilterStatus.PAUSE && req.stats === null) this.router.unrouted(req);
    if (status === FilterStatus.CONTINUE) this.onRequest(req, performance.now());
    else if (status === FilterStatus.LOCAL_REPLY) {
      req.endedByFilter = true;
      this.localReply(req, req.replyKind, req.replyMessage);
    }
    else if (status === FilterStatus.ABORT) this.cut(req, 'a filter closed the connection');
    else {
      req.paused = true;
      req.pausedBy = by ?? null;
    }
  }

  /** A connection using this chain closed. */
  release(): void {
    this.users--;
    if (this.retired && this.users === 0) this.close();
  }

  /** No connection will use this chain again: filters drop what they hold (roots, timers). */
  close(): void {
    for (const f of this.filters) f.close?.();
  }

  /** What a filter that threw means for the request, by its failure policy. */
  failed(filter: Filter, req: ActiveRequest, err: unknown): FilterStatusValue {
    this.stats?.onFilterOutcome(filter.name, 'failure');
    this.logger.log('warn', `filter ${filter.name} failed: ${(err as Error).message}`);
    if (filter.failurePolicy === 'fail_open') return FilterStatus.CONTINUE;
    req.rejectWith(ErrorKind.UNSPECIFIED, `meltemi: filter ${filter.name} failed`);
    req.endedByFilter = true;
    return FilterStatus.LOCAL_REPLY;
  }

  /** An answer for `req`: back through the filters that saw it, then to the client. */
  respond(req: ActiveRequest, response: Buffer, isError: boolean, now: number, meta?: Metadata): void {
    const filters = this.filters;
    for (let i = Math.min(req.filterIndex, filters.length) - 1; i >= 0; i--) {
      const filter = filters[i];
      let status: FilterStatusValue;
      try {
        status = filter.onResponse(req, response, isError, meta);
      } catch (err) {
        this.stats?.onFilterOutcome(filter.name, 'failure');
        this.logger.log('warn', `filter ${filter.name} failed on a response: ${(err as Error).message}`);
        status = filter.failurePolicy === 'fail_open' ? FilterStatus.CONTINUE : FilterStatus.ABORT;
      }
      if (status === FilterStatus.ABORT) {
        this.cut(req, `filter ${filter.name} closed the connection`);
        return;
      }
    }
    if (filters.length > 0) this.done(req);
    // Response mutations are applied by the codec (Dubbo attachments); one that cannot keeps the bytes.
    if (req.responseMutations !== null) response = req.downstream.encodeResponse(req, response, req.responseMutations);
    req.downstream.respond(req, response, isError, now, false, meta);
  }

  /** A local failure of `kind`: the codec's error reply, sent back like a response. */
  localReply(req: ActiveRequest, kind: number, message: string): void {
    if (req.ending === Ending.UPSTREAM) req.ending = kind;
    const reply = req.downstream.encodeLocalReply(req, kind, message);
    if (reply === null) {
      this.done(req);
      return;
    }
    this.respond(req, reply, true, performance.now());
  }

  /** The client went away while `req` was in flight: filters that saw it forget it. */
  abandoned(req: ActiveRequest): void {
    this.router.abandoned(req);
    if (this.filters.length > 0) this.done(req);
  }

  /** Runs one request filter; a filter that throws fails closed (local reply) or open. */
  private run(filter: Filter, req: ActiveRequest): FilterStatusValue {
    try {
      return filter.onRequest(req, this);
    } catch (err) {
      return this.failed(filter, req, err);
    }
  }

  private done(req: ActiveRequest): void {
    const filters = this.filters;
    for (let i = Math.min(req.filterIndex, filters.length) - 1; i >= 0; i--) {
      try {
        filters[i].onDone(req);
      } catch {
        // A filter that cannot clean up has nothing more to say about this request.
      }
    }
  }
}
