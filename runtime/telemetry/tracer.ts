// Tracing with OpenTelemetry's SDK: a span per request on this proxy (CLIENT on an outbound
// listener, SERVER on an inbound one) with the RPC semantic conventions as of 2026
// (`rpc.system.name`, `rpc.method` = service/method, `rpc.response.status_code`), exported
// over OTLP/gRPC in batches. The trace context travels in request metadata (`traceparent`,
// `tracestate`), which codecs carry where their protocol can (Dubbo attachments).
//
// Sampling is decided here, before OpenTelemetry is touched: a request that carries a context
// follows its sampled flag (parent-based); one that does not is sampled at the configured rate.
// An unsampled request costs a metadata scan and a random number, no span and no allocation;
// with a context it is still passed on with this hop as its parent, so the next hop agrees.

import type { Span, Tracer as OtelTracer } from '@opentelemetry/api';
import type { BasicTracerProvider, ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { ExportResult } from '@opentelemetry/core';
import type { Logger } from '../core/logger';
import type { TracingConfig } from '../config/types';
import type { Metadata } from '../codec/metadata';
import type { ActiveRequest } from '../proxy/active-request';
import { formatTraceParent, MAX_TRACESTATE, newSpanId, parseTraceParent } from './trace-context';
import { MutationOp } from '../wasm/abi';
import { wellKnownKeyId } from '../codec/well-known-keys';
import { methodOf, serviceOf, type RequestRecord } from './request-record';

const TRACEPARENT_ID = wellKnownKeyId('traceparent');
const TRACESTATE_ID = wellKnownKeyId('tracestate');


/** What a listener tells the tracer about itself. */
export interface TraceSite {
  readonly listener: string;
  readonly protocol: string;
  readonly inbound: boolean;
  readonly samplingPercent: number;
}

/** rpc.system.name values the conventions define, by codec protocol; others keep the protocol's name. */
const RPC_SYSTEM: Record<string, string> = { dubbo: 'dubbo', grpc: 'grpc' };

/** What became of the spans: exported, or lost to a failed export (the collector down, slow, refusing). */
export class ExportCounts {
  exported = 0;
  failed = 0;
  private lastWarning = Number.NEGATIVE_INFINITY;

  constructor(private readonly logger: Logger, private readonly target: string) {}

  /** Counts an export's outcome; a failure is logged at most once a minute. */
  wrap(inner: SpanExporter): SpanExporter {
    return {
      export: (spans: ReadableSpan[], done: (r: ExportResult) => void) => inner.export(spans, (r) => {
        if (r.code === 0) this.exported += spans.length;
        else {
          this.failed += spans.length;
          const now = Date.now();
          if (now - this.lastWarning >= 60_000) {
            this.lastWarning = now;
            this.logger.log('warn', `tracing: ${spans.length} spans not exported to ${this.target}: ${r.error?.message ?? 'export failed'} (meltemi_tracing_spans_failed_total counts them)`);
          }
        }
        done(r);
      }),
      shutdown: () => inner.shutdown(),
      forceFlush: () => inner.forceFlush?.() ?? Promise.resolve(),
    };
  }
}

export class Tracer {
  private constructor(private readonly provider: BasicTracerProvider, private readonly tracer: OtelTracer, private readonly api: typeof import('@opentelemetry/api'), private readonly maxTag: number,
    readonly counts: ExportCounts) {}

  /** Loads OpenTelemetry (only processes that trace do) and connects the OTLP exporter. */
  static create(config: TracingConfig, serviceName: string, logger: Logger): Tracer {
    /* eslint-disable @typescript-eslint/no-require-imports */
    const api = require('@opentelemetry/api') as typeof import('@opentelemetry/api');
    const sdk = require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
    const { resourceFromAttributes } = require('@opentelemetry/resources') as typeof import('@opentelemetry/resources');
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc') as typeof import('@opentelemetry/exporter-trace-otlp-grpc');
    /* eslint-enable @typescript-eslint/no-require-imports */
    const url = `http://${config.otlp.address.includes(':') ? `[${config.otlp.address}]` : config.otlp.address}:${config.otlp.port}`;
    const counts = new ExportCounts(logger, url);
    const exporter = counts.wrap(new OTLPTraceExporter({ url, timeoutMillis: config.otlp.timeoutMs }));
    const provider = new sdk.BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': serviceName }),
      // The decision is made before a span is started (see above): every span started is kept.
      sampler: new sdk.AlwaysOnSampler(),
      spanProcessors: [new sdk.BatchSpanProcessor(exporter, { scheduledDelayMillis: config.flushIntervalMs, maxQueueSize: config.maxQueueSize, maxExportBatchSize: Math.min(512, config.maxQueueSize) })],
    });
    return new Tracer(provider, provider.getTracer('meltemi'), api, config.maxTagLength, counts);
  }

  /** At a request's decoding: decides sampling, starts the span, and passes the context on. */
  start(req: ActiveRequest, meta: Metadata, site: TraceSite, startMs: number): void {
    const incoming = meta.entryCount > 0 ? meta.getWellKnown(TRACEPARENT_ID, 'traceparent') : undefined;
    const parent = parseTraceParent(incoming);
    if (parent === undefined ? Math.random() * 100 >= site.samplingPercent : !parent.sampled) {
      if (parent === undefined) return;
      // Not sampled upstream either: passed on unsampled, with this hop as the parent.
      req.traceId = parent.traceId;
      req.mutate('traceparent', formatTraceParent(parent.traceId, newSpanId(), false));
      this.passState(req, meta);
      return;
    }
    const api = this.api;
    const ctx = parent === undefined ? api.ROOT_CONTEXT : api.trace.setSpanContext(api.ROOT_CONTEXT, {
      traceId: parent.traceId, spanId: parent.spanId, traceFlags: api.TraceFlags.SAMPLED, isRemote: true,
    });
    const service = serviceOf(meta);
    const method = methodOf(meta);
    const rpcMethod = service !== undefined && method !== undefined ? `${service}/${method}` : method ?? service;
    const span = this.tracer.startSpan(rpcMethod !== undefined ? this.cut(rpcMethod) : site.protocol, {
      kind: site.inbound ? api.SpanKind.SERVER : api.SpanKind.CLIENT,
      startTime: startMs,
      attributes: {
        'rpc.system.name': RPC_SYSTEM[site.protocol] ?? site.protocol,
        ...(rpcMethod !== undefined ? { 'rpc.method': this.cut(rpcMethod) } : {}),
        'meltemi.listener': site.listener,
      },
    }, ctx);
    const sc = span.spanContext();
    req.span = span;
    req.traceId = sc.traceId;
    req.mutate('traceparent', formatTraceParent(sc.traceId, sc.spanId, true));
    // W3C: tracestate belongs to its traceparent; with a new trace it is dropped.
    if (parent !== undefined) this.passState(req, meta);
    else if (meta.getWellKnown(TRACESTATE_ID, 'tracestate') !== undefined) req.mutate('tracestate', '', MutationOp.DELETE);
  }

  private passState(req: ActiveRequest, meta: Metadata): void {
    const state = meta.getWellKnown(TRACESTATE_ID, 'tracestate');
    if (state !== undefined && state.length <= MAX_TRACESTATE) req.mutate('tracestate', state);
  }

  private cut(v: string): string {
    return v.length > this.maxTag ? v.slice(0, this.maxTag) : v;
  }

  /** At the request's end: the outcome as attributes and status, and the span ends. */
  end(r: RequestRecord): void {
    const span = r.req.span as Span | null;
    if (span === null) return;
    r.req.span = null;
    const endpoint = r.req.upstreamEndpoint;
    const attributes: Record<string, string | number> = {
      'rpc.response.status_code': String(r.code),
      'meltemi.response_flags': r.flags,
    };
    if (endpoint !== null) {
      attributes['server.address'] = endpoint.address;
      attributes['server.port'] = endpoint.port;
    }
    if (r.req.stats?.cluster) attributes['meltemi.upstream_cluster'] = r.req.stats.cluster;
    if (r.req.stats?.route) attributes['meltemi.route'] = r.req.stats.route;
    const failed = r.code !== 0 || r.flags !== '-';
    if (failed) attributes['error.type'] = r.flags !== '-' ? r.flags : String(r.code);
    span.setAttributes(attributes);
    if (failed) span.setStatus({ code: this.api.SpanStatusCode.ERROR, message: r.details });
    span.end(r.startMs + r.durationMs);
  }

  /** Exports what is queued (stop, tests). */
  flush(): Promise<void> {
    return this.provider.forceFlush();
  }

  /** Exports what is queued, waiting at most `ms` (a collector that does not answer must not hold the stop). */
  shutdown(ms = 2000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); });
    return Promise.race([this.provider.shutdown().catch(() => undefined), limit]).finally(() => clearTimeout(timer));
  }
}
