// Who this proxy is, in Istio's terms: the workload, namespace, app, version, canonical service
// and revision, and cluster that Istio's standard metrics label both ends of a request with.
// Read from `telemetry.workload`, else from the node metadata the xDS agent sends (Istio's
// WORKLOAD_NAME, NAMESPACE, CLUSTER_ID, LABELS keys), else from the environment istio-agent sets
// in a pod (ISTIO_META_*, POD_NAMESPACE, ISTIO_METAJSON_LABELS).

export const UNKNOWN = 'unknown';

export interface WorkloadIdentity {
  readonly workload: string;
  readonly namespace: string;
  readonly app: string;
  readonly version: string;
  readonly canonicalService: string;
  readonly canonicalRevision: string;
  readonly cluster: string;
  /** The SPIFFE identity proven by mTLS; unknown until the connection is mutually authenticated. */
  readonly principal: string;
  /** The node id peers see in x-envoy-peer-metadata-id. */
  readonly nodeId: string;
}

/** `telemetry.workload` as written (every field optional). */
export type WorkloadConfig = Partial<Omit<WorkloadIdentity, 'principal' | 'nodeId'>>;

const CANONICAL_NAME = 'service.istio.io/canonical-name';
const CANONICAL_REVISION = 'service.istio.io/canonical-revision';

/** Pod labels from node metadata (`LABELS` as JSON, or flat label keys) or ISTIO_METAJSON_LABELS. */
function labelsFrom(node: Readonly<Record<string, string>>, env: NodeJS.ProcessEnv): Record<string, string> {
  const parse = (text: string | undefined): Record<string, string> => {
    if (!text) return {};
    try {
      const v = JSON.parse(text) as unknown;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return {};
      return Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string'));
    } catch {
      return {};
    }
  };
  return { ...parse(env.ISTIO_METAJSON_LABELS), ...parse(node.LABELS), ...node };
}

export function resolveWorkload(config: WorkloadConfig, node: { id: string; metadata: Readonly<Record<string, string>> } | undefined, env: NodeJS.ProcessEnv = process.env): WorkloadIdentity {
  const meta = node?.metadata ?? {};
  const labels = labelsFrom(meta, env);
  const first = (...values: Array<string | undefined>) => values.find((v) => typeof v === 'string' && v !== '') ?? UNKNOWN;
  const workload = first(config.workload, meta.WORKLOAD_NAME, env.ISTIO_META_WORKLOAD_NAME);
  const app = first(config.app, labels.app, labels['app.kubernetes.io/name']);
  const version = first(config.version, labels.version, labels['app.kubernetes.io/version']);
  return {
    workload,
    namespace: first(config.namespace, meta.NAMESPACE, env.POD_NAMESPACE),
    app,
    version,
    // Istio's fallbacks: the canonical labels, else the app's name and version, else the workload and "latest".
    canonicalService: first(config.canonicalService, labels[CANONICAL_NAME], app !== UNKNOWN ? app : undefined, workload),
    canonicalRevision: first(config.canonicalRevision, labels[CANONICAL_REVISION], version !== UNKNOWN ? version : undefined, 'latest'),
    cluster: first(config.cluster, meta.CLUSTER_ID, env.ISTIO_META_CLUSTER_ID),
    principal: UNKNOWN,
    nodeId: node?.id ?? `meltemi~${workload}`,
  };
}

/** A peer whose identity is not known (not a sidecar, or a protocol that cannot carry it). */
export const UNKNOWN_PEER: WorkloadIdentity = {
  workload: UNKNOWN, namespace: UNKNOWN, app: UNKNOWN, version: UNKNOWN, canonicalService: UNKNOWN,
  canonicalRevision: UNKNOWN, cluster: UNKNOWN, principal: UNKNOWN, nodeId: '',
};
