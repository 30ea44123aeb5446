// The outbound side of mTLS (Istio's ISTIO_MUTUAL): connections to a cluster present the
// workload certificate, verify the server's chain against the trust bundle and its SPIFFE ID
// (in a trusted domain, and one of the cluster's subject_alt_names when it lists any), and send
// SNI in Istio's outbound cluster form so a peer sidecar can pick its filter chain.

import type net from 'node:net';
import tls from 'node:tls';
import type { SecurityStats } from './security-stats';
import type { WorkloadTls } from './workload-tls';

export interface UpstreamTlsConfig {
  readonly mode: 'istio_mutual';
  /** SNI sent; default: the cluster name in Istio's SNI form when it is an Istio cluster name. */
  readonly sni: string | undefined;
  /** SPIFFE IDs the server may have (empty: any in a trusted domain). */
  readonly subjectAltNames: readonly string[];
}

/** What Istio sidecars offer, so an Envoy sidecar's inbound mTLS filter chain matches. */
const ISTIO_ALPN = ['istio-peer-exchange', 'istio'];

/** `outbound|9080|v1|reviews.default.svc.cluster.local` → `outbound_.9080_.v1_.reviews.default.svc.cluster.local`. */
export function istioSni(clusterName: string): string | undefined {
  const parts = clusterName.split('|');
  if (parts.length !== 4 || (parts[0] !== 'outbound' && parts[0] !== 'inbound') || !/^\d+$/.test(parts[1])) return undefined;
  return parts.join('_.');
}

/** Starts TLS over `raw` (connecting or connected) to a server of `clusterName`. */
export function originateTls(raw: net.Socket, config: UpstreamTlsConfig, clusterName: string, workload: WorkloadTls, stats: SecurityStats): tls.TLSSocket {
  const servername = config.sni ?? istioSni(clusterName);
  const secure = tls.connect({
    socket: raw,
    secureContext: workload.secureContext,
    ...(servername ? { servername } : {}),
    ALPNProtocols: ISTIO_ALPN,
    // Called once the chain verified against the trust bundle; the host name plays no part.
    checkServerIdentity: (_host, cert) => {
      const check = workload.checkPeer(cert.subjectaltname);
      if (check.error !== undefined) return Object.assign(new Error(check.error), { code: 'MELTEMI_UNTRUSTED_PEER' });
      if (config.subjectAltNames.length > 0 && !config.subjectAltNames.includes(check.id.uri)) {
        return Object.assign(new Error(`server ${check.id.uri} is not one of the cluster's subject_alt_names (${config.subjectAltNames.join(', ')})`), { code: 'MELTEMI_UNTRUSTED_PEER' });
      }
      return undefined;
    },
  });
  // A refused or failed TCP connect is a connect failure, not a handshake outcome.
  let connected = !raw.connecting;
  raw.once('connect', () => { connected = true; });
  secure.once('secureConnect', () => stats.handshake('outbound', 'mutual_tls'));
  secure.once('error', (err: NodeJS.ErrnoException) => {
    if (connected && !secure.authorized) stats.handshake('outbound', err.code === 'MELTEMI_UNTRUSTED_PEER' ? 'untrusted_peer' : 'failed');
  });
  return secure;
}
