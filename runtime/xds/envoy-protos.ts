// The real Envoy API protos (shipped in @grpc/grpc-js-xds under deps/) and Aeraki's MetaProtocol
// protos (proto/), loaded once with protobufjs: DiscoveryRequest/Response, the route
// configuration that carries MetaProtocol routes over RDS, clusters, endpoints, and listeners
// whose network filter is a MetaProtocolProxy.

import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';

const FILES = [
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/config/listener/v3/listener.proto',
  'udpa/type/v1/typed_struct.proto',
  'xds/type/v3/typed_struct.proto',
  'google/protobuf/wrappers.proto',
  'aeraki/meta_protocol_proxy/v1alpha/meta_protocol_proxy.proto',
  'aeraki/meta_protocol_proxy/filters/local_ratelimit/v1alpha/local_ratelimit.proto',
  'aeraki/meta_protocol_proxy/filters/istio_stats/v1alpha/istio_stats.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/service/secret/v3/sds.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'meltemi/security/v1/authorization.proto',
];

/** meltemi's own protos: build/runtime/xds -> the package root. */
const PROTO_DIR = join(__dirname, '..', '..', '..', 'proto');

let root: protobuf.Root | undefined;

function includeDirs(): string[] {
  const xds = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  const deps = ['envoy-api', 'googleapis', 'protoc-gen-validate', 'xds'].map((d) => join(xds, 'deps', d));
  return [PROTO_DIR, ...deps, dirname(require.resolve('protobufjs/package.json'))];
}

export function envoyRoot(): protobuf.Root {
  if (!root) {
    const dirs = includeDirs();
    const r = new protobuf.Root();
    r.resolvePath = (_origin, target) => dirs.map((d) => join(d, target)).find(isFile) ?? target;
    r.loadSync(FILES, { keepCase: true });
    r.resolveAll();
    root = r;
  }
  return root;
}

export const TYPE_ROUTE_CONFIGURATION = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
export const TYPE_CLUSTER = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
export const TYPE_CLUSTER_LOAD_ASSIGNMENT = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
export const TYPE_LISTENER = 'type.googleapis.com/envoy.config.listener.v3.Listener';
export const TYPE_META_PROTOCOL_PROXY = 'type.googleapis.com/aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy';
export const TYPE_LOCAL_RATE_LIMIT = 'type.googleapis.com/aeraki.meta_protocol_proxy.filters.local_ratelimit.v1alpha.LocalRateLimit';
/** What Aeraki wraps its configs in, because Istio cannot resolve Aeraki's types (aeraki #100). */
export const TYPED_STRUCT_URLS: readonly string[] = ['type.googleapis.com/udpa.type.v1.TypedStruct', 'type.googleapis.com/xds.type.v3.TypedStruct'];
export const RDS_METHOD = '/envoy.service.route.v3.RouteDiscoveryService/StreamRoutes';
export const SDS_METHOD = '/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets';
export const TYPE_SECRET = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
export const TYPE_UPSTREAM_TLS_CONTEXT = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
/** meltemi's own resource: an Istio AuthorizationPolicy served by its control plane over ADS. */
export const TYPE_AUTHORIZATION_POLICY = 'type.googleapis.com/meltemi.security.v1.AuthorizationPolicy';
export const ADS_METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

const TYPES = {
  DiscoveryRequest: 'envoy.service.discovery.v3.DiscoveryRequest',
  DiscoveryResponse: 'envoy.service.discovery.v3.DiscoveryResponse',
  RouteConfiguration: 'envoy.config.route.v3.RouteConfiguration',
  Cluster: 'envoy.config.cluster.v3.Cluster',
  ClusterLoadAssignment: 'envoy.config.endpoint.v3.ClusterLoadAssignment',
  Listener: 'envoy.config.listener.v3.Listener',
  MetaProtocolProxy: 'aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy',
  LocalRateLimit: 'aeraki.meta_protocol_proxy.filters.local_ratelimit.v1alpha.LocalRateLimit',
  TypedStruct: 'udpa.type.v1.TypedStruct',
  Struct: 'google.protobuf.Struct',
  Secret: 'envoy.extensions.transport_sockets.tls.v3.Secret',
  UpstreamTlsContext: 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  AuthorizationPolicy: 'meltemi.security.v1.AuthorizationPolicy',
} as const;

export function envoyType(name: keyof typeof TYPES): protobuf.Type {
  return envoyRoot().lookupType(TYPES[name]);
}

/** The message type named by a resource type URL. */
export function typeOfUrl(typeUrl: string): protobuf.Type {
  return envoyRoot().lookupType(typeUrl.slice(typeUrl.lastIndexOf('/') + 1));
}

/** The message type a type URL names, or undefined when it is not one this proxy knows. */
export function knownTypeOfUrl(typeUrl: string): protobuf.Type | undefined {
  const found = envoyRoot().lookup(typeUrl.slice(typeUrl.lastIndexOf('/') + 1));
  return found instanceof protobuf.Type ? found : undefined;
}

/** protobuf message <-> plain object with snake_case fields, oneof names, longs as strings. */
export function toPlain(type: protobuf.Type, bytes: Uint8Array): Record<string, unknown> {
  return type.toObject(type.decode(bytes), { defaults: false, oneofs: true, longs: String, enums: String }) as Record<string, unknown>;
}

export function fromPlain(type: protobuf.Type, value: Record<string, unknown>): Uint8Array {
  // fromObject (not verify) because it accepts enum names as Envoy's JSON form does.
  return type.encode(type.fromObject(value)).finish();
}

/** A google.protobuf.Duration (plain: seconds as a string, nanos) in milliseconds, unrounded. */
export function durationToMs(d: { seconds?: unknown; nanos?: unknown }): number {
  return Number(d.seconds ?? 0) * 1000 + Number(d.nanos ?? 0) / 1e6;
}

/** Whole milliseconds as a google.protobuf.Duration (plain). */
export function msToDuration(ms: number): { seconds: string; nanos: number } {
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
}

/** stat, not existsSync: access(2) ignores capabilities (a proxy with CAP_DAC_READ_SEARCH under its own UID). */
function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}
