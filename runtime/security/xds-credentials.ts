// Credentials of the xDS channel: plaintext, or mTLS with the workload certificate (Aeraki 1.4.2+
// and istiod require it). The certificates reach gRPC as certificate providers, so a rotation
// applies to the next connection without rebuilding the channel.

import type * as grpc from '@grpc/grpc-js';
import tls from 'node:tls';
import type { XdsConfig } from '../config/types';
import type { ProxySecurity } from './proxy-security';

/** The server's SPIFFE ID must be one of `subjectAltNames`, else the DNS name `serverName` is checked. */
export function serverIdentityCheck(security: ProxySecurity, serverName: string, subjectAltNames: readonly string[]): (host: string, cert: tls.PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    if (subjectAltNames.length === 0) return tls.checkServerIdentity(serverName, cert);
    const check = security.workload!.checkPeer(cert.subjectaltname);
    if (check.error !== undefined) return new Error(check.error);
    return subjectAltNames.includes(check.id.uri) ? undefined : new Error(`xDS server ${check.id.uri} is not one of xds.tls.subject_alt_names`);
  };
}

export function xdsCredentials(lib: typeof grpc, xds: XdsConfig, security: ProxySecurity): grpc.ChannelCredentials {
  if (!xds.tls || !security.workload) return lib.credentials.createInsecure();
  const provider = security.workload.grpcProvider();
  const serverName = xds.tls.serverName ?? xds.address;
  return lib.experimental.createCertificateProviderChannelCredentials(provider, provider, {
    checkServerIdentity: serverIdentityCheck(security, serverName, xds.tls.subjectAltNames),
  });
}
