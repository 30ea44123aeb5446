// The `security:` section (workload certificates, TLS policy, peer authentication,
// authorization), the listener `peer_authentication` and cluster `tls` fields, and `xds.tls`.

import { resolve } from 'node:path';
import type tls from 'node:tls';
import type { Field } from './field';
import type { SecurityConfig, XdsTlsConfig } from './types';
import { readAuthorizationPolicy } from '../security/authorization-policy';
import { PEER_AUTHENTICATION_MODES, type PeerAuthenticationMode } from '../security/downstream-tls';
import { parseSpiffeId } from '../security/spiffe';
import type { UpstreamTlsConfig } from '../security/upstream-tls';

const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;
/** istio-agent's socket and secret names. */
const ISTIO_SDS_SOCKET = '/var/run/secrets/workload-spiffe-uds/socket';

export const SECURITY_DEFAULTS: SecurityConfig = {
  certificates: undefined,
  trustDomains: [],
  minTlsVersion: 'TLSv1.2',
  maxTlsVersion: 'TLSv1.3',
  handshakeTimeoutMs: 10_000,
  // Without certificates nothing can be terminated; with them, readSecurity makes it PERMISSIVE (Istio's default).
  peerAuthentication: 'DISABLE',
  authorization: [],
  authorizationEnabled: false,
};

export function readSecurity(f: Field, baseDir: string, dynamicAuthorization: boolean): SecurityConfig {
  if (!f.present) return { ...SECURITY_DEFAULTS, authorizationEnabled: dynamicAuthorization };
  f.only(['certificates', 'trust_domains', 'min_tls_version', 'max_tls_version', 'handshake_timeout', 'peer_authentication', 'authorization']);
  const certificates = f.child('certificates').or((c) => readCertificates(c, baseDir), undefined);
  const minTlsVersion = f.child('min_tls_version').or((c) => c.oneOf(TLS_VERSIONS), 'TLSv1.2') as tls.SecureVersion;
  const maxTlsVersion = f.child('max_tls_version').or((c) => c.oneOf(TLS_VERSIONS), 'TLSv1.3') as tls.SecureVersion;
  if (minTlsVersion === 'TLSv1.3' && maxTlsVersion === 'TLSv1.2') f.child('max_tls_version').fail('must not be below min_tls_version');
  const peerAuthentication = f.child('peer_authentication').or((c) => {
    c.only(['mode']);
    return c.child('mode').oneOf(PEER_AUTHENTICATION_MODES);
  }, certificates ? 'PERMISSIVE' : 'DISABLE');
  if (peerAuthentication !== 'DISABLE' && !certificates) f.child('peer_authentication').child('mode').fail(`${peerAuthentication} needs security.certificates (the workload identity to terminate mTLS with)`);
  const authorization = f.child('authorization').or((c) => c.items().map((item) => item.collect(() => {
    item.only(['name', 'spec']);
    const name = item.child('name').string({ nonEmpty: true, max: 253 });
    readAuthorizationPolicy(item.child('spec'), name);
    return { name, spec: item.child('spec').value };
  }, undefined)).filter((p): p is NonNullable<typeof p> => p !== undefined), []);
  return {
    certificates,
    trustDomains: f.child('trust_domains').or((c) => c.items().map((d) => d.string({ nonEmpty: true, pattern: /^[a-z0-9._-]+$/ })), []),
    minTlsVersion,
    maxTlsVersion,
    handshakeTimeoutMs: f.child('handshake_timeout').or((c) => c.durationMs(), SECURITY_DEFAULTS.handshakeTimeoutMs),
    peerAuthentication,
    authorization,
    authorizationEnabled: authorization.length > 0 || dynamicAuthorization,
  };
}

function readCertificates(f: Field, baseDir: string): SecurityConfig['certificates'] {
  f.only(['files', 'sds']);
  const files = f.child('files');
  const sds = f.child('sds');
  if (files.present === sds.present) f.fail('needs exactly one of files or sds');
  if (files.present) {
    files.only(['cert_chain', 'private_key', 'trust_bundle', 'refresh_interval']);
    const path = (key: string) => resolve(baseDir, files.child(key).string({ nonEmpty: true }));
    return {
      kind: 'files',
      certChain: path('cert_chain'),
      privateKey: path('private_key'),
      trustBundle: path('trust_bundle'),
      refreshIntervalMs: files.child('refresh_interval').or((c) => {
        const ms = c.durationMs();
        if (ms < 10) c.fail('must be at least 10ms');
        return ms;
      }, 5_000),
    };
  }
  if (typeof sds.value !== 'boolean') sds.only(['socket', 'certificate', 'trust_bundle', 'initial_fetch_timeout', 'initial_backoff', 'max_backoff']);
  else if (!sds.value) sds.fail('must be true or a mapping');
  const at = (key: string) => (typeof sds.value === 'boolean' ? sds.child('__none__') : sds.child(key));
  return {
    kind: 'sds',
    socket: at('socket').or((c) => resolve(baseDir, c.string({ nonEmpty: true })), ISTIO_SDS_SOCKET),
    certificateName: at('certificate').or((c) => c.string({ nonEmpty: true }), 'default'),
    trustBundleName: at('trust_bundle').or((c) => c.string({ nonEmpty: true }), 'ROOTCA'),
    initialFetchTimeoutMs: at('initial_fetch_timeout').or((c) => c.durationMs(), 30_000),
    initialBackoffMs: at('initial_backoff').or((c) => c.durationMs(), 200),
    maxBackoffMs: at('max_backoff').or((c) => c.durationMs(), 10_000),
  };
}

export function readPeerAuthentication(f: Field): PeerAuthenticationMode {
  return f.oneOf(PEER_AUTHENTICATION_MODES);
}

function spiffeIds(f: Field): string[] {
  return f.items().map((c) => {
    const s = c.string({ nonEmpty: true });
    if (!parseSpiffeId(s)) c.fail('must be a SPIFFE ID (spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>)');
    return s;
  });
}

/** A cluster's `tls`: `{ mode: ISTIO_MUTUAL | DISABLE, sni, subject_alt_names }` (Istio's DestinationRule tls). */
export function readUpstreamTls(f: Field): UpstreamTlsConfig | undefined {
  f.only(['mode', 'sni', 'subject_alt_names']);
  const mode = f.child('mode').oneOf(['ISTIO_MUTUAL', 'DISABLE'] as const);
  if (mode === 'DISABLE') return undefined;
  return {
    mode: 'istio_mutual',
    sni: f.child('sni').or((c) => c.string({ nonEmpty: true, max: 255 }), undefined),
    subjectAltNames: f.child('subject_alt_names').or(spiffeIds, []),
  };
}

/** `xds.tls`: true, or `{ server_name, subject_alt_names }`: mTLS to the control plane with the workload certificate. */
export function readXdsTls(f: Field): XdsTlsConfig | undefined {
  if (typeof f.value === 'boolean') return f.value ? { serverName: undefined, subjectAltNames: [] } : undefined;
  f.only(['server_name', 'subject_alt_names']);
  return {
    serverName: f.child('server_name').or((c) => c.string({ nonEmpty: true }), undefined),
    subjectAltNames: f.child('subject_alt_names').or(spiffeIds, []),
  };
}
