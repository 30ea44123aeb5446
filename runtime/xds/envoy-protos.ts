// The real Envoy API protos (shipped in @grpc/grpc-js-xds under deps/), loaded once with
// protobufjs: DiscoveryRequest/Response and the route configuration that carries MetaProtocol
// routes over RDS.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';

const FILES = [
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/config/route/v3/route.proto',
];

let root: protobuf.Root | undefined;

function includeDirs(): string[] {
  const xds = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  const deps = ['envoy-api', 'googleapis', 'protoc-gen-validate', 'xds'].map((d) => join(xds, 'deps', d));
  return [...deps, dirname(require.resolve('protobufjs/package.json'))];
}

export function envoyRoot(): protobuf.Root {
  if (!root) {
    const dirs = includeDirs();
    const r = new protobuf.Root();
    r.resolvePath = (_origin, target) => dirs.map((d) => join(d, target)).find((p) => existsSync(p)) ?? target;
    r.loadSync(FILES, { keepCase: true });
    r.resolveAll();
    root = r;
  }
  return root;
}

export const TYPE_ROUTE_CONFIGURATION = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
export const RDS_METHOD = '/envoy.service.route.v3.RouteDiscoveryService/StreamRoutes';

export function envoyType(name: 'DiscoveryRequest' | 'DiscoveryResponse' | 'RouteConfiguration'): protobuf.Type {
  const full = name === 'RouteConfiguration' ? 'envoy.config.route.v3.RouteConfiguration' : `envoy.service.discovery.v3.${name}`;
  return envoyRoot().lookupType(full);
}

/** protobuf message <-> plain object with snake_case fields, oneof names, longs as strings. */
export function toPlain(type: protobuf.Type, bytes: Uint8Array): Record<string, unknown> {
  return type.toObject(type.decode(bytes), { defaults: false, oneofs: true, longs: String, enums: String }) as Record<string, unknown>;
}

export function fromPlain(type: protobuf.Type, value: Record<string, unknown>): Uint8Array {
  const err = type.verify(value);
  if (err) throw new Error(`${type.fullName}: ${err}`);
  return type.encode(type.fromObject(value)).finish();
}
