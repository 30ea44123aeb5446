// The proxy's security state: its workload certificates (if any), the peer authentication each
// listener applies, and the authorization policies in force. One per proxy (per worker thread).

import type { ListenerConfig, SecurityConfig } from '../config/types';
import type { Logger } from '../core/logger';
import { Field } from '../config/field';
import { AuthorizationFilter, AuthorizationPolicies } from './authorization-filter';
import { readAuthorizationPolicy } from './authorization-policy';
import { structToJson } from '../xds/proto-json';
import type { CertificateSource } from './certificate-source';
import type { PeerAuthenticationMode } from './downstream-tls';
import { FileCertificateSource } from './file-certificate-source';
import { SdsCertificateSource } from './sds-certificate-source';
import type { SecurityStats } from './security-stats';
import { WorkloadTls } from './workload-tls';

export class ProxySecurity {
  readonly workload: WorkloadTls | undefined;
  readonly policies: AuthorizationPolicies;

  constructor(readonly config: SecurityConfig, readonly stats: SecurityStats, logger: Logger) {
    const c = config.certificates;
    if (c) {
      const source: CertificateSource = c.kind === 'files' ? new FileCertificateSource(c) : new SdsCertificateSource(c, logger);
      this.workload = new WorkloadTls(source, { minVersion: config.minTlsVersion, maxVersion: config.maxTlsVersion, trustDomains: config.trustDomains }, stats, logger);
    }
    this.policies = new AuthorizationPolicies(config.authorization.map((p, i) => readAuthorizationPolicy(new Field(`security.authorization[${i}].spec`, p.spec), p.name)));
  }

  async start(): Promise<void> {
    await this.workload?.start();
  }

  /** PeerAuthentication of connections to `listener`: its own mode, else the proxy's for inbound listeners; outbound ones take the application's plaintext. */
  modeFor(listener: ListenerConfig): PeerAuthenticationMode {
    if (listener.peerAuthentication) return listener.peerAuthentication;
    return (listener.trafficDirection ?? 'outbound') === 'inbound' && this.workload ? this.config.peerAuthentication : 'DISABLE';
  }

  /** The authorization filter of an inbound listener (Istio applies policies to a workload's inbound traffic). */
  filterFor(listener: ListenerConfig): AuthorizationFilter | undefined {
    if ((listener.trafficDirection ?? 'outbound') !== 'inbound' || !this.config.authorizationEnabled) return undefined;
    return new AuthorizationFilter(this.policies, listener.name, this.stats);
  }

  /**
   * A push of AuthorizationPolicies from the control plane (decoded meltemi.security.v1
   * resources): all are read before any applies, so one bad policy refuses the push (returned
   * as the NACK reason) and the last accepted ones stay in force.
   */
  applyDynamic(resources: ReadonlyArray<Record<string, unknown>>): string | undefined {
    try {
      const policies = resources.map((r, i) => {
        const name = typeof r.name === 'string' && r.name !== '' ? r.name : `resources[${i}]`;
        return readAuthorizationPolicy(new Field(`resources[${i}].spec`, structToJson(r.spec as Record<string, unknown> | undefined)), name);
      });
      this.policies.setDynamic(policies);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }

  close(): void {
    this.workload?.close();
  }
}
