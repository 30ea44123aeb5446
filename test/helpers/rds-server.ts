// A minimal RDS server on real gRPC: a state-of-the-world snapshot per route_config_name,
// pushed to every stream that subscribed to it, with nonces; records every request (so tests
// can check ACKs and NACKs).

import * as grpc from '@grpc/grpc-js';
import { envoyType, fromPlain, RDS_METHOD, toPlain, TYPE_ROUTE_CONFIGURATION } from '../../runtime/xds/envoy-protos';

type Plain = Record<string, unknown>;

export class RdsServer {
  readonly requests: Plain[] = [];
  private readonly snapshots = new Map<string, { version: string; rc: Plain }>();
  private readonly streams = new Set<{ call: grpc.ServerDuplexStream<Plain, Plain>; names: string[] }>();
  private server: grpc.Server | undefined;
  private nonce = 0;
  port = 0;

  async start(port = 0): Promise<void> {
    const req = envoyType('DiscoveryRequest');
    const resp = envoyType('DiscoveryResponse');
    const server = new grpc.Server();
    server.addService({
      StreamRoutes: {
        path: RDS_METHOD, requestStream: true, responseStream: true, originalName: 'StreamRoutes',
        requestSerialize: (m: Plain) => Buffer.from(fromPlain(req, m)), requestDeserialize: (b: Buffer) => toPlain(req, b),
        responseSerialize: (m: Plain) => Buffer.from(fromPlain(resp, m)), responseDeserialize: (b: Buffer) => toPlain(resp, b),
      },
    } as grpc.ServiceDefinition, {
      StreamRoutes: (call: grpc.ServerDuplexStream<Plain, Plain>) => {
        const entry = { call, names: [] as string[] };
        this.streams.add(entry);
        call.on('data', (r: Plain) => {
          this.requests.push(r);
          if (r.response_nonce) return; // an ACK or a NACK
          entry.names = (r.resource_names as string[]) ?? [];
          for (const name of entry.names) {
            const snap = this.snapshots.get(name);
            if (snap && snap.version !== r.version_info) this.send(entry.call, snap);
          }
        });
        call.on('error', () => {});
        call.on('end', () => { this.streams.delete(entry); call.end(); });
        call.on('cancelled', () => this.streams.delete(entry));
      },
    });
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    this.server = server;
  }

  private send(call: grpc.ServerDuplexStream<Plain, Plain>, snap: { version: string; rc: Plain }): void {
    const value = fromPlain(envoyType('RouteConfiguration'), snap.rc);
    call.write({ version_info: snap.version, type_url: TYPE_ROUTE_CONFIGURATION, nonce: String(++this.nonce), resources: [{ type_url: TYPE_ROUTE_CONFIGURATION, value }] });
  }

  /** Sets the snapshot of `name` and pushes it to its subscribers. */
  push(name: string, version: string, rc: Plain): void {
    const snap = { version, rc };
    this.snapshots.set(name, snap);
    for (const s of this.streams) if (s.names.includes(name)) this.send(s.call, snap);
  }

  async stop(): Promise<void> {
    this.streams.clear();
    this.server?.forceShutdown();
  }
}
