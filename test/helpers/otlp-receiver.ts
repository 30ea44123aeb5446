// A real OTLP/gRPC trace receiver on 127.0.0.1, on OTLP's own protos (test/fixtures/otlp): the
// spans meltemi exports arrive here as a collector would see them.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { join } from 'node:path';
import { ROOT } from './paths';

export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 2 server, 3 client. */
  kind: number;
  attributes: Record<string, string | number | boolean>;
  status: { code: number; message: string };
}

type Plain = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  private waiters: Array<() => void> = [];

  private constructor(private readonly server: grpc.Server, readonly port: number) {}

  static async start(): Promise<OtlpReceiver> {
    const def = protoLoader.loadSync(join(ROOT, 'test', 'fixtures', 'otlp', 'trace_service.proto'), { keepCase: true, longs: String, bytes: Buffer, oneofs: true });
    const pkg = grpc.loadPackageDefinition(def) as Plain;
    const server = new grpc.Server();
    let receiver: OtlpReceiver | undefined;
    server.addService(pkg.opentelemetry.proto.collector.trace.v1.TraceService.service, {
      Export: (call: grpc.ServerUnaryCall<Plain, Plain>, cb: grpc.sendUnaryData<Plain>) => {
        receiver?.receive(call.request);
        cb(null, {});
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    receiver = new OtlpReceiver(server, port);
    return receiver;
  }

  private receive(req: Plain): void {
    const hex = (b: Buffer | undefined) => (b && b.length ? b.toString('hex') : '');
    const attrs = (list: Plain[] | undefined) => Object.fromEntries((list ?? []).map((kv) => {
      const v = kv.value ?? {};
      return [kv.key, v.string_value ?? (v.int_value !== undefined ? Number(v.int_value) : v.bool_value ?? v.double_value)];
    }));
    for (const rs of req.resource_spans ?? []) {
      const service = String(attrs(rs.resource?.attributes)['service.name'] ?? '');
      for (const ss of rs.scope_spans ?? []) {
        for (const s of ss.spans ?? []) {
          this.spans.push({
            service, traceId: hex(s.trace_id), spanId: hex(s.span_id), parentSpanId: hex(s.parent_span_id), name: s.name, kind: s.kind,
            attributes: attrs(s.attributes), status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
          });
        }
      }
    }
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves once at least `n` spans arrived (rejects after `ms`). */
  async waitFor(n: number, ms = 10_000): Promise<ReceivedSpan[]> {
    const deadline = Date.now() + ms;
    while (this.spans.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.spans.length} spans arrived, expected ${n}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return this.spans;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.tryShutdown(() => resolve()));
  }
}
