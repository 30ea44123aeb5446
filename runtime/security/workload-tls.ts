// The workload's TLS identity: the current certificates from their source, the secure context
// built from them (new connections take the newest; open ones keep theirs), the check of a
// peer's SPIFFE ID, and the same certificates for gRPC (xDS client, control plane).

import tls from 'node:tls';
import type { experimental } from '@grpc/grpc-js';
import type { Logger } from '../core/logger';
import type { CheckedCertificates } from './certificates';
import type { CertificateSource } from './certificate-source';
import { peerSpiffeId } from './certificates';
import type { SpiffeId } from './spiffe';
import type { SecurityStats } from './security-stats';

export interface TlsPolicy {
  readonly minVersion: tls.SecureVersion;
  readonly maxVersion: tls.SecureVersion;
  /** Trust domains whose workloads are peers; empty: the workload certificate's own. */
  readonly trustDomains: readonly string[];
}

/** What a peer's certificate proves, or why it proves nothing acceptable. */
export type PeerCheck = { readonly id: SpiffeId; readonly error?: undefined } | { readonly id?: undefined; readonly error: string };

export class WorkloadTls {
  private material!: CheckedCertificates;
  private context!: tls.SecureContext;
  private readonly caListeners = new Set<experimental.CaCertificateUpdateListener>();
  private readonly identityListeners = new Set<experimental.IdentityCertificateUpdateListener>();

  constructor(private readonly source: CertificateSource, readonly policy: TlsPolicy, private readonly stats: SecurityStats, private readonly logger: Logger) {
    source.onUpdate = (c) => this.use(c, true);
    source.onReject = (err) => {
      stats.rotationRejections++;
      logger.log('error', `certificate rotation refused: ${err.message}; the certificates of ${this.material.spiffeId.uri} valid until ${new Date(this.material.notAfter).toISOString()} keep serving`);
    };
  }

  /** Waits for the first certificates; rejects (MELTEMI_CERTIFICATE_*) when there are none. */
  async start(): Promise<void> {
    this.use(await this.source.start(), false);
  }

  private use(c: CheckedCertificates, rotation: boolean): void {
    // Built before anything changes: a context OpenSSL refuses leaves the last good one.
    let context: tls.SecureContext;
    try {
      context = tls.createSecureContext({ cert: c.certChain, key: c.privateKey, ca: c.trustBundle, minVersion: this.policy.minVersion, maxVersion: this.policy.maxVersion });
    } catch (err) {
      if (!rotation) throw err;
      this.source.onReject?.(err as Error);
      return;
    }
    this.material = c;
    this.context = context;
    this.stats.certificateExpiry = c.notAfter / 1000;
    this.stats.trustBundleExpiry = c.trustBundleNotAfter / 1000;
    this.stats.source = this.source.kind;
    if (rotation) {
      this.stats.rotations++;
      this.logger.log('info', `certificates rotated (${c.origin}): ${c.spiffeId.uri} valid until ${new Date(c.notAfter).toISOString()}`);
    }
    for (const l of this.caListeners) l({ caCertificate: c.trustBundle });
    for (const l of this.identityListeners) l({ certificate: c.certChain, privateKey: c.privateKey });
  }

  /** The context new connections take, either side (client certificate, server certificate, roots). */
  get secureContext(): tls.SecureContext {
    return this.context;
  }

  /** A verified peer certificate's SPIFFE ID, if it has one in a trusted domain. */
  checkPeer(subjectAltName: string | undefined): PeerCheck {
    const id = peerSpiffeId(subjectAltName);
    if (!id) return { error: `the peer certificate has no single SPIFFE ID (subjectAltName: ${subjectAltName ?? 'none'})` };
    const domains = this.policy.trustDomains.length > 0 ? this.policy.trustDomains : [this.material.spiffeId.trustDomain];
    if (!domains.includes(id.trustDomain)) return { error: `peer ${id.uri} is not in a trusted domain (${domains.join(', ')})` };
    return { id };
  }

  /**
   * The trust bundle and the workload certificate as one gRPC certificate provider (rotated with
   * the rest). One object serves both roles because grpc-js 1.14's
   * createCertificateProviderServerCredentials passes its two providers to the constructor in
   * swapped order; and a new listener gets the current certificates on the next tick, once
   * grpc-js has registered what it notifies.
   */
  grpcProvider(): experimental.CertificateProvider {
    const self = this;
    return {
      addCaCertificateListener(l) {
        self.caListeners.add(l);
        setImmediate(() => { if (self.caListeners.has(l)) l({ caCertificate: self.material.trustBundle }); });
      },
      removeCaCertificateListener(l) { self.caListeners.delete(l); },
      addIdentityCertificateListener(l) {
        self.identityListeners.add(l);
        setImmediate(() => { if (self.identityListeners.has(l)) l({ certificate: self.material.certChain, privateKey: self.material.privateKey }); });
      },
      removeIdentityCertificateListener(l) { self.identityListeners.delete(l); },
    };
  }

  close(): void {
    this.source.close();
    this.caListeners.clear();
    this.identityListeners.clear();
  }
}
