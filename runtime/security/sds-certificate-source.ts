// Certificates from SDS (Envoy's SecretDiscoveryService), as istio-agent serves them on a Unix
// socket: `default` (workload certificate and key) and `ROOTCA` (trust bundle), one stream each,
// as Envoy subscribes. Each update is checked with the other secret before it is ACKed; a secret
// that fails the check is NACKed with the reason and the last good pair keeps serving.

import * as grpc from '@grpc/grpc-js';
import { MeltemiError } from '../core/errors';
import type { Logger } from '../core/logger';
import { envoyType, SDS_METHOD, toPlain, TYPE_SECRET } from '../xds/envoy-protos';
import { INVALID_ARGUMENT, newUpdateStatus, recordAccepted, recordRejected, XdsStream, type Plain, type UpdateStatus } from '../xds/xds-stream';
import { checkCertificates, type CheckedCertificates } from './certificates';
import type { CertificateSource } from './certificate-source';

export interface SdsConfig {
  /** The Unix socket istio-agent listens on. */
  readonly socket: string;
  /** Secret holding the workload certificate and key (Istio: `default`). */
  readonly certificateName: string;
  /** Secret holding the trust bundle (Istio: `ROOTCA`). */
  readonly trustBundleName: string;
  /** How long start() waits for both secrets. */
  readonly initialFetchTimeoutMs: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
}

/** Secrets are a few KB; a larger response is not one. */
const MAX_SDS_MESSAGE = 4 * 1024 * 1024;

type Secret = { kind: 'certificate'; certChain: Buffer; privateKey: Buffer } | { kind: 'trust_bundle'; trustBundle: Buffer };

/** A DataSource's bytes: inline only (a file name from the agent would make it choose what this proxy reads). */
function dataSource(ds: Plain | undefined, field: string): Buffer {
  if (!ds) throw new Error(`${field} is missing`);
  if (ds.inline_bytes !== undefined) return Buffer.from(ds.inline_bytes as Uint8Array);
  if (typeof ds.inline_string === 'string') return Buffer.from(ds.inline_string, 'utf8');
  throw new Error(`${field}: only inline_bytes and inline_string are accepted (got ${Object.keys(ds).join(', ') || 'nothing'})`);
}

function decodeSecret(s: Plain, expected: string, kind: Secret['kind']): Secret {
  if (s.name !== expected) throw new Error(`secret named "${String(s.name)}", expected "${expected}"`);
  if (kind === 'certificate') {
    const c = s.tls_certificate as Plain | undefined;
    if (!c) throw new Error(`secret "${expected}" has no tls_certificate`);
    return { kind, certChain: dataSource(c.certificate_chain, 'tls_certificate.certificate_chain'), privateKey: dataSource(c.private_key, 'tls_certificate.private_key') };
  }
  const v = s.validation_context as Plain | undefined;
  if (!v) throw new Error(`secret "${expected}" has no validation_context`);
  return { kind, trustBundle: dataSource(v.trusted_ca, 'validation_context.trusted_ca') };
}

/** One secret's stream. */
class SecretStream extends XdsStream<SdsConfig> {
  readonly status: UpdateStatus = newUpdateStatus();
  private nonce = '';

  constructor(client: grpc.Client, config: SdsConfig, logger: Logger, private readonly name: string, private readonly kind: Secret['kind'],
    private readonly apply: (secret: Secret) => string | undefined) {
    super(client, SDS_METHOD, config, logger, `SDS ${name}`);
  }

  protected onOpen(): void {
    this.nonce = '';
    this.write({ type_url: TYPE_SECRET, resource_names: [this.name], version_info: this.status.versionInfo });
  }

  protected onResponse(resp: Plain): void {
    this.nonce = String(resp.nonce ?? '');
    const version = String(resp.version_info ?? '');
    const error = this.accept(resp);
    if (error === undefined) recordAccepted(this.status, version);
    else {
      recordRejected(this.status, version, error);
      this.logger.log('warn', `SDS ${this.name}: rejected version ${version}: ${error}; the last good certificates keep serving`);
    }
    this.write({
      type_url: TYPE_SECRET, resource_names: [this.name], response_nonce: this.nonce,
      version_info: this.status.versionInfo,
      ...(error ? { error_detail: { code: INVALID_ARGUMENT, message: error } } : {}),
    });
  }

  private accept(resp: Plain): string | undefined {
    if (resp.type_url !== TYPE_SECRET) return `type_url ${String(resp.type_url)}, expected ${TYPE_SECRET}`;
    const resources = (resp.resources ?? []) as Plain[];
    if (resources.length !== 1) return `expected exactly one secret, got ${resources.length}`;
    try {
      const any = resources[0];
      if (any.type_url !== TYPE_SECRET) throw new Error(`resources[0] is a ${String(any.type_url)}`);
      return this.apply(decodeSecret(toPlain(envoyType('Secret'), (any.value as Uint8Array | undefined) ?? new Uint8Array()), this.name, this.kind));
    } catch (err) {
      return (err as Error).message;
    }
  }
}

export class SdsCertificateSource implements CertificateSource {
  readonly kind = 'sds' as const;
  onUpdate: ((c: CheckedCertificates) => void) | undefined;
  onReject: ((err: Error) => void) | undefined;
  private readonly client: grpc.Client;
  private readonly streams: SecretStream[];
  private certificate: Extract<Secret, { kind: 'certificate' }> | undefined;
  private trustBundle: Buffer | undefined;
  private current: CheckedCertificates | undefined;
  private first: ((c: CheckedCertificates) => void) | undefined;

  constructor(private readonly config: SdsConfig, logger: Logger) {
    this.client = new grpc.Client(`unix://${config.socket}`, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': MAX_SDS_MESSAGE });
    this.streams = [
      new SecretStream(this.client, config, logger, config.certificateName, 'certificate', (s) => this.take(s)),
      new SecretStream(this.client, config, logger, config.trustBundleName, 'trust_bundle', (s) => this.take(s)),
    ];
  }

  /** Per secret: version and last rejection (for /config_dump). */
  get statuses(): Record<string, UpdateStatus> {
    return { [this.config.certificateName]: this.streams[0].status, [this.config.trustBundleName]: this.streams[1].status };
  }

  /** A new secret with the other one: undefined if the pair is good (or the other is not here yet), else why not. */
  private take(secret: Secret): string | undefined {
    const certificate = secret.kind === 'certificate' ? secret : this.certificate;
    const trustBundle = secret.kind === 'trust_bundle' ? secret.trustBundle : this.trustBundle;
    if (!certificate || !trustBundle) {
      if (secret.kind === 'certificate') this.certificate = secret;
      else this.trustBundle = secret.trustBundle;
      return undefined;
    }
    let checked: CheckedCertificates;
    try {
      checked = checkCertificates({ certChain: certificate.certChain, privateKey: certificate.privateKey, trustBundle }, `SDS ${this.config.socket}`);
    } catch (err) {
      this.onReject?.(err as Error);
      return (err as Error).message;
    }
    this.certificate = certificate;
    this.trustBundle = trustBundle;
    const wasFirst = this.current === undefined;
    this.current = checked;
    if (wasFirst) this.first?.(checked);
    else this.onUpdate?.(checked);
    return undefined;
  }

  start(): Promise<CheckedCertificates> {
    for (const s of this.streams) s.start();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const missing = [this.certificate ? undefined : this.config.certificateName, this.trustBundle ? undefined : this.config.trustBundleName].filter(Boolean);
        const why = missing.length > 0 ? `sent no ${missing.map((m) => `"${m}"`).join(' or ')} secret` : 'sent no usable pair of secrets';
        this.close();
        reject(new MeltemiError('MELTEMI_CERTIFICATE_MISSING', `security.certificates.sds: ${this.config.socket} ${why} within ${this.config.initialFetchTimeoutMs} ms`));
      }, this.config.initialFetchTimeoutMs);
      this.first = (c) => { clearTimeout(timer); resolve(c); };
    });
  }

  close(): void {
    for (const s of this.streams) s.stop();
    this.client.close();
  }
}
