// One entry of a listener's `filters:` list backed by a filter plugin: a root context configured
// once with the entry's config, and the Filter the chain calls. Requests get a number in filter
// calls and a metadata record built once for the whole chain; paused requests wait here for the
// timer the filter set.

import type { FilterConfig } from '../config/types';
import { ConfigError, PluginError } from '../core/errors';
import { decodeMutation } from '../codec/mutation';
import type { Metadata } from '../codec/metadata';
import type { ActiveRequest } from '../proxy/active-request';
import { FilterAction, MessageType } from '../wasm/abi';
import { Filter, FailurePolicy, FilterStatus, FilterStatusValue } from './filter';
import type { FilterChain } from './filter-chain';
import type { FilterInstance, FilterResult } from './filter-instance';
import type { FilterPlugin, RootHost } from './filter-plugin';
import { encodeRecord, pairsSource, recordFor } from './filter-record';
import { SweepTimer, type Timed } from '../core/sweep-timer';

let nextRequestId = 1;

export class WasmFilter implements Filter, RootHost {
  readonly name: string;
  readonly failurePolicy: FailurePolicy;
  private readonly root: number;
  private readonly config: Buffer;
  /** Requests this filter paused, by their number, with the chain to resume them on. */
  private readonly paused = new Map<number, Waiting>();
  /** The request being decided in the current on_request call, and its chain. */
  private deciding: ActiveRequest | undefined;
  private decidingChain: FilterChain | undefined;
  private readonly wantsResponses: boolean;
  private readonly wantsDone: boolean;

  /** Configures a root in `plugin`; throws a ConfigError naming `field` when the filter refuses the config. */
  constructor(readonly plugin: FilterPlugin, entry: FilterConfig, field: string) {
    this.name = entry.name;
    this.failurePolicy = entry.failurePolicy;
    this.config = Buffer.from(JSON.stringify(entry.config ?? {}), 'utf8');
    this.wantsResponses = plugin.descriptor.calls.has('response');
    this.wantsDone = plugin.descriptor.calls.has('done');
    this.root = plugin.addRoot(this);
    let refused: string | undefined;
    try {
      refused = plugin.current().rootNew(this.root, this.config);
    } catch (err) {
      // A trap while configuring: the root must not outlive it (it would be configured again,
      // and trap again, each time the instance is replaced).
      plugin.removeRoot(this.root);
      throw new ConfigError(`${field}.config`, `filter ${entry.name} failed while reading its config: ${(err as Error).message}`);
    }
    if (refused !== undefined) {
      plugin.removeRoot(this.root);
      throw new ConfigError(`${field}.config`, `filter ${entry.name} refused its config: ${refused}`);
    }
  }

  reconfigure(instance: FilterInstance): void {
    instance.rootNew(this.root, this.config);
  }

  onRequest(req: ActiveRequest, chain: FilterChain): FilterStatusValue {
    if (req.filterId === 0) req.filterId = nextRequestId = (nextRequestId + 1) | 0 || 1;
    const record = recordFor(req, req.meta);
    // A timer set during this call belongs to this request; its bookkeeping is made only then.
    this.deciding = req;
    this.decidingChain = chain;
    let result: FilterResult;
    try {
      result = this.plugin.current().onRequest(this.root, req.filterId, record);
    } catch (err) {
      this.forget(req.filterId); // timers it set before failing must not resume the request later
      this.plugin.current(); // a trap: the instance is replaced (and counted) now, not at the next call
      throw err;
    } finally {
      this.deciding = undefined;
    }
    return this.apply(req, chain, result, this.paused.get(req.filterId));
  }

  onResponse(req: ActiveRequest, _response: Buffer, isError: boolean, meta?: Metadata): FilterStatusValue {
    if (!this.wantsResponses) return FilterStatus.CONTINUE;
    const record = meta ? recordFor(meta, meta) : isError ? ERROR_RESPONSE : OK_RESPONSE;
    const result = this.plugin.current().onResponse(this.root, req.filterId, record);
    if (result.action === FilterAction.ABORT) return FilterStatus.ABORT;
    if (result.mutation) for (const m of decodeMutation(result.mutation)) req.mutateResponse(m.key, m.value, m.op);
    return FilterStatus.CONTINUE;
  }

  onDone(req: ActiveRequest): void {
    const waiting = this.paused.get(req.filterId);
    if (waiting) {
      for (const t of waiting.timers) cancel(t);
      this.paused.delete(req.filterId);
    }
    if (this.wantsDone) this.plugin.current().onDone(this.root, req.filterId);
  }

  /** meltemi.set_timer: calls meltemi_on_timer for the request after `delayMs`. */
  setTimer(reqId: number, delayMs: number): number {
    let waiting = this.paused.get(reqId);
    if (!waiting && this.deciding?.filterId === reqId) {
      waiting = { req: this.deciding, chain: this.decidingChain!, timers: new Set() };
      this.paused.set(reqId, waiting);
    }
    if (!waiting || delayMs > MAX_TIMER_MS || waiting.timers.size >= MAX_TIMERS_PER_REQUEST) return 0;
    const id = nextTimerId = (nextTimerId + 1) | 0 || 1;
    const timer: FilterTimer = {
      timerDue: performance.now() + delayMs,
      inTimer: false,
      fire: () => {
        waiting.timers.delete(timer);
        const { req, chain } = waiting;
        if (req.abandoned || req.done) return;
        let status: FilterStatusValue;
        try {
          status = this.apply(req, chain, this.plugin.current().onTimer(this.root, reqId, id), waiting);
        } catch (err) {
          this.forget(reqId);
          status = chain.failed(this, req, err);
        }
        if (status !== FilterStatus.PAUSE) chain.resume(req, status, this);
      },
    };
    filterTimers.track(timer);
    waiting.timers.add(timer);
    return id;
  }

  private apply(req: ActiveRequest, chain: FilterChain, result: FilterResult, entry: Waiting | undefined): FilterStatusValue {
    if (result.action !== FilterAction.PAUSE && entry) {
      // Decided: timers set for it are moot.
      for (const t of entry.timers) cancel(t);
      this.paused.delete(req.filterId);
    }
    switch (result.action) {
      case FilterAction.CONTINUE:
        if (result.mutation) for (const m of decodeMutation(result.mutation)) req.mutate(m.key, m.value, m.op);
        return FilterStatus.CONTINUE;
      case FilterAction.LOCAL_REPLY:
        req.rejectWith(result.replyKind, result.replyMessage);
        return FilterStatus.LOCAL_REPLY;
      case FilterAction.PAUSE:
        // In ABI 1.1 only a timer resumes a request: a pause without one would hold it forever.
        if (!entry || entry.timers.size === 0) {
          this.paused.delete(req.filterId);
          throw new PluginError('MELTEMI_ABI_VIOLATION', this.plugin.compiled.file, 'paused a request without setting a timer (nothing would resume it)');
        }
        return FilterStatus.PAUSE;
      default:
        return FilterStatus.ABORT;
    }
  }

  /** Drops what is kept for a request (its pause and timers). */
  private forget(reqId: number): void {
    const waiting = this.paused.get(reqId);
    if (!waiting) return;
    for (const t of waiting.timers) cancel(t);
    this.paused.delete(reqId);
  }

  /** The entry is gone (config change, listener closed). */
  close(): void {
    for (const w of this.paused.values()) for (const t of w.timers) cancel(t);
    this.paused.clear();
    this.plugin.removeRoot(this.root);
  }
}

let nextTimerId = 1;
/**
 * A filter's timer. All of them are swept by one interval (10 ms resolution, never early), not a
 * setTimeout each: a fault filter delaying a share of a flood would otherwise cost one per request.
 */
interface FilterTimer extends Timed {
  fire(): void;
}

const filterTimers = new SweepTimer<FilterTimer>(10, (t) => {
  t.timerDue = Infinity;
  t.fire();
});

function cancel(t: FilterTimer): void {
  t.timerDue = Infinity;
}

/** Longest delay a filter may ask for, and timers one request may hold (refused beyond: 0). */
const MAX_TIMER_MS = 3_600_000;
const MAX_TIMERS_PER_REQUEST = 16;

interface Waiting {
  readonly req: ActiveRequest;
  readonly chain: FilterChain;
  readonly timers: Set<FilterTimer>;
}
/** What on_response gets for a local reply: a response with no metadata, ok or error. */
const OK_RESPONSE = encodeRecord(pairsSource([], MessageType.RESPONSE, 0));
const ERROR_RESPONSE = encodeRecord(pairsSource([], MessageType.RESPONSE, 1));
