// SPIFFE identities as Istio uses them: `spiffe://<trust-domain>/ns/<namespace>/sa/<service
// account>` in a certificate's URI SAN. Istio's "principal" is the same ID without the scheme.

export interface SpiffeId {
  readonly uri: string;
  readonly trustDomain: string;
  /** `/ns/<ns>/sa/<sa>` for Istio workloads. */
  readonly path: string;
  /** From an Istio-shaped path; '' otherwise. */
  readonly namespace: string;
  readonly serviceAccount: string;
}

// The SPIFFE spec: trust domains are lowercase letters, digits, dots, dashes and underscores;
// path segments the same with uppercase, none empty, "." or "..".
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[a-zA-Z0-9._-]+$/;
const MAX_ID_BYTES = 2048;

export function parseSpiffeId(uri: string): SpiffeId | undefined {
  if (!uri.startsWith('spiffe://') || uri.length > MAX_ID_BYTES) return undefined;
  const rest = uri.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash);
  if (!TRUST_DOMAIN.test(trustDomain)) return undefined;
  const segments = path === '' ? [] : path.slice(1).split('/');
  if (segments.some((s) => !SEGMENT.test(s) || s === '.' || s === '..')) return undefined;
  const istio = segments.length === 4 && segments[0] === 'ns' && segments[2] === 'sa';
  return { uri, trustDomain, path, namespace: istio ? segments[1] : '', serviceAccount: istio ? segments[3] : '' };
}

/** Istio's principal: the SPIFFE ID without `spiffe://` (what AuthorizationPolicy `principals` name). */
export function principalOf(id: SpiffeId): string {
  return id.uri.slice('spiffe://'.length);
}

/**
 * The SPIFFE IDs among a certificate's SANs, from Node's `subjectaltname` string ("DNS:a,
 * URI:spiffe://…"). Node quotes a value holding a comma or quote; no valid SPIFFE ID does.
 */
export function spiffeIdsOf(subjectAltName: string | undefined): SpiffeId[] {
  if (!subjectAltName) return [];
  const out: SpiffeId[] = [];
  for (const part of subjectAltName.split(', ')) {
    if (!part.startsWith('URI:')) continue;
    const id = parseSpiffeId(part.slice(4));
    if (id) out.push(id);
  }
  return out;
}

/** Istio's SPIFFE ID of a workload. */
export function istioSpiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}
