// A workload's certificate material (chain, key, trust bundle) checked before it is used: a
// rotation to a broken or expired certificate is refused and the last good one keeps serving,
// and a proxy that starts without a usable certificate says which and why.

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { MeltemiError } from '../core/errors';
import { spiffeIdsOf, type SpiffeId } from './spiffe';

export interface CertificateMaterial {
  /** PEM: the workload certificate first, then any intermediates. */
  readonly certChain: Buffer;
  readonly privateKey: Buffer;
  /** PEM: the roots peers' certificates must chain to (Istio's ROOTCA). */
  readonly trustBundle: Buffer;
}

export interface CheckedCertificates extends CertificateMaterial {
  readonly spiffeId: SpiffeId;
  /** The workload certificate's validity (ms since the epoch). */
  readonly notBefore: number;
  readonly notAfter: number;
  /** The first root of the bundle to expire. */
  readonly trustBundleNotAfter: number;
  readonly roots: number;
  /** Where it came from, for messages ("files /etc/certs/cert-chain.pem", "SDS default"). */
  readonly origin: string;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function pemCertificates(pem: Buffer): string[] {
  return pem.toString('latin1').match(PEM_CERT) ?? [];
}

const invalid = (origin: string, why: string) => new MeltemiError('MELTEMI_CERTIFICATE_INVALID', `${origin}: ${why}`);

/**
 * Checks `m` and reads what the proxy needs from it. Throws MELTEMI_CERTIFICATE_INVALID (not
 * PEM, key does not match, no SPIFFE ID) or MELTEMI_CERTIFICATE_EXPIRED.
 */
export function checkCertificates(m: CertificateMaterial, origin: string, now = Date.now()): CheckedCertificates {
  const chain = pemCertificates(m.certChain);
  if (chain.length === 0) throw invalid(origin, 'the certificate chain holds no PEM certificate');
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(chain[0]);
  } catch (err) {
    throw invalid(origin, `the workload certificate does not parse: ${(err as Error).message}`);
  }
  let keyMatches: boolean;
  try {
    keyMatches = leaf.checkPrivateKey(createPrivateKey(m.privateKey));
  } catch (err) {
    throw invalid(origin, `the private key does not parse: ${(err as Error).message}`);
  }
  if (!keyMatches) throw invalid(origin, 'the private key does not match the workload certificate');
  const ids = spiffeIdsOf(leaf.subjectAltName);
  if (ids.length !== 1) {
    throw invalid(origin, ids.length === 0
      ? `the workload certificate has no SPIFFE ID in its URI SAN (subjectAltName: ${leaf.subjectAltName ?? 'none'})`
      : 'the workload certificate has more than one SPIFFE ID (X.509-SVIDs have exactly one)');
  }
  const notBefore = Date.parse(leaf.validFrom);
  const notAfter = Date.parse(leaf.validTo);
  if (notAfter <= now) throw new MeltemiError('MELTEMI_CERTIFICATE_EXPIRED', `${origin}: the workload certificate ${ids[0].uri} expired at ${new Date(notAfter).toISOString()}`);
  if (notBefore > now + 60_000) throw invalid(origin, `the workload certificate is not valid before ${new Date(notBefore).toISOString()}`);
  const roots = pemCertificates(m.trustBundle);
  if (roots.length === 0) throw invalid(origin, 'the trust bundle holds no PEM certificate');
  let trustBundleNotAfter = Infinity;
  for (const [i, pem] of roots.entries()) {
    try {
      trustBundleNotAfter = Math.min(trustBundleNotAfter, Date.parse(new X509Certificate(pem).validTo));
    } catch (err) {
      throw invalid(origin, `trust bundle certificate ${i} does not parse: ${(err as Error).message}`);
    }
  }
  return { ...m, spiffeId: ids[0], notBefore, notAfter, trustBundleNotAfter, roots: roots.length, origin };
}

/** The SPIFFE ID of a peer certificate as Node's TLS gives it, if it has exactly one. */
export function peerSpiffeId(subjectAltName: string | undefined): SpiffeId | undefined {
  const ids = spiffeIdsOf(subjectAltName);
  return ids.length === 1 ? ids[0] : undefined;
}
