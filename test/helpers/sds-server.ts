// An SDS server as istio-agent runs one: Envoy's SecretDiscoveryService/StreamSecrets over a Unix
// socket with @grpc/grpc-js, serving `default` (certificate and key) and `ROOTCA` (trust bundle)
// and pushing new versions to open streams. It records ACKs and NACKs.

import * as grpc from '@grpc/grpc-js';
import { envoyType, fromPlain, SDS_METHOD, toPlain, TYPE_SECRET } from '../../runtime/xds/envoy-protos';

type Plain = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface SecretContent {
  certChain?: string;
  privateKey?: string;
  trustBundle?: string;
}

export class SdsServer {
  private readonly server = new grpc.Server();
  private readonly secrets = new Map<string, { version: number; content: SecretContent }>();
  private readonly streams = new Set<{ call: grpc.ServerDuplexStream<Plain, Plain>; name: string }>();
  readonly acks: Array<{ name: string; version: string }> = [];
  readonly nacks: Array<{ name: string; version: string; message: string }> = [];
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: string) {}

  static async start(socket: string): Promise<SdsServer> {
    const s = new SdsServer(socket);
    s.server.addService({
      StreamSecrets: {
        path: SDS_METHOD, requestStream: true, responseStream: true, originalName: 'streamSecrets',
        requestSerialize: (m: Plain) => Buffer.from(fromPlain(envoyType('DiscoveryRequest'), m)),
        requestDeserialize: (b: Buffer) => toPlain(envoyType('DiscoveryRequest'), b),
        responseSerialize: (m: Plain) => Buffer.from(fromPlain(envoyType('DiscoveryResponse'), m)),
        responseDeserialize: (b: Buffer) => toPlain(envoyType('DiscoveryResponse'), b),
      },
    }, { StreamSecrets: (call: grpc.ServerDuplexStream<Plain, Plain>) => s.serve(call) });
    await new Promise<void>((resolve, reject) => s.server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
    return s;
  }

  private serve(call: grpc.ServerDuplexStream<Plain, Plain>): void {
    let entry: { call: grpc.ServerDuplexStream<Plain, Plain>; name: string } | undefined;
    call.on('data', (r: Plain) => {
      const name = String((r.resource_names as string[] | undefined)?.[0] ?? '');
      if (r.response_nonce) {
        if (r.error_detail) this.nacks.push({ name, version: String(r.version_info ?? ''), message: String(r.error_detail.message ?? '') });
        else this.acks.push({ name, version: String(r.version_info ?? '') });
        this.wake();
        return;
      }
      entry = { call, name };
      this.streams.add(entry);
      this.send(entry);
    });
    const drop = () => { if (entry) this.streams.delete(entry); };
    call.on('cancelled', drop);
    call.on('error', drop);
    call.on('end', () => { drop(); call.end(); });
  }

  /** Sets a secret and pushes it to the streams that asked for it. */
  set(name: string, content: SecretContent): void {
    const version = (this.secrets.get(name)?.version ?? 0) + 1;
    this.secrets.set(name, { version, content });
    for (const s of this.streams) if (s.name === name) this.send(s);
  }

  private send(s: { call: grpc.ServerDuplexStream<Plain, Plain>; name: string }): void {
    const secret = this.secrets.get(s.name);
    if (!secret) return;
    const c = secret.content;
    const value: Plain = { name: s.name };
    if (c.certChain !== undefined) value.tls_certificate = { certificate_chain: { inline_bytes: Buffer.from(c.certChain) }, private_key: { inline_bytes: Buffer.from(c.privateKey ?? '') } };
    if (c.trustBundle !== undefined) value.validation_context = { trusted_ca: { inline_bytes: Buffer.from(c.trustBundle) } };
    s.call.write({ version_info: String(secret.version), type_url: TYPE_SECRET, nonce: `${s.name}-${secret.version}`, resources: [{ type_url: TYPE_SECRET, value: fromPlain(envoyType('Secret'), value) }] });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves once `ok` holds (checked at every ACK or NACK). */
  async until(ok: () => boolean, ms = 10_000): Promise<void> {
    const t0 = Date.now();
    while (!ok()) {
      if (Date.now() - t0 > ms) throw new Error('SDS server: condition never held');
      await new Promise<void>((resolve) => { this.waiters.push(resolve); setTimeout(resolve, 100); });
    }
  }

  async stop(): Promise<void> {
    for (const s of this.streams) s.call.end();
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
  }
}
