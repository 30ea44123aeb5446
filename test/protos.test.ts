// meltemi's own protos (proto/) load against the real Envoy protos and keep Aeraki's field
// numbers, so bytes written by Aeraki or MetaProtocol Proxy mean the same here.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';
import { ROOT } from './helpers/paths';

function load(): protobuf.Root {
  const xds = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  const dirs = [join(ROOT, 'proto'), ...['envoy-api', 'googleapis', 'protoc-gen-validate', 'xds'].map((d) => join(xds, 'deps', d)), dirname(require.resolve('protobufjs/package.json'))];
  const root = new protobuf.Root();
  root.resolvePath = (_o, t) => dirs.map((d) => join(d, t)).find((p) => existsSync(p)) ?? t;
  root.loadSync(['aeraki/meta_protocol_proxy/v1alpha/meta_protocol_proxy.proto'], { keepCase: true });
  root.resolveAll();
  return root;
}

describe('proto/: Aeraki MetaProtocol messages', () => {
  const root = load();
  const numbers: Array<[string, Record<string, number>]> = [
    ['aeraki.meta_protocol_proxy.config.route.v1alpha.RouteConfiguration', { name: 1, routes: 2 }],
    ['aeraki.meta_protocol_proxy.config.route.v1alpha.Route', { name: 1, match: 2, route: 3, request_mutation: 19, response_mutation: 20 }],
    ['aeraki.meta_protocol_proxy.config.route.v1alpha.RouteMatch', { metadata: 1 }],
    ['aeraki.meta_protocol_proxy.config.route.v1alpha.RouteAction', { cluster: 1, weighted_clusters: 2, hash_policy: 10, request_mirror_policies: 11 }],
    ['aeraki.meta_protocol_proxy.config.route.v1alpha.RouteAction.RequestMirrorPolicy', { cluster: 1, runtime_fraction: 2 }],
    ['aeraki.meta_protocol_proxy.config.route.v1alpha.KeyValue', { key: 1, value: 2 }],
    ['aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy', { stat_prefix: 1, application_protocol: 2, rds: 3, route_config: 4, codec: 5, meta_protocol_filters: 6, tracing: 7, access_log: 8, idle_timeout: 11, protocol: 12 }],
    ['aeraki.meta_protocol_proxy.v1alpha.Tracing', { client_sampling: 3, random_sampling: 4, overall_sampling: 5, verbose: 6, max_tag_length: 7, provider: 9 }],
    ['aeraki.meta_protocol_proxy.v1alpha.Rds', { config_source: 1, route_config_name: 2 }],
    ['aeraki.meta_protocol_proxy.v1alpha.ApplicationProtocol', { name: 1, codec: 2, multiplexing: 3 }],
  ];
  for (const [type, fields] of numbers) {
    it(`${type.split('.').slice(-2).join('.')} has Aeraki's field numbers`, () => {
      const t = root.lookupType(type);
      assert.deepEqual(Object.fromEntries(Object.keys(fields).map((f) => [f, t.fields[f]?.id])), fields);
    });
  }

  it('a route configuration round-trips through bytes', () => {
    const RC = root.lookupType('aeraki.meta_protocol_proxy.config.route.v1alpha.RouteConfiguration');
    const value = { name: 'svc_20880', routes: [{ name: 'r', match: { metadata: [{ name: 'method', exact_match: 'sayHello' }] }, route: { cluster: 'outbound|20880|v1|svc', hash_policy: ['user'] }, request_mutation: [{ key: 'k', value: 'v' }] }] };
    const back = RC.toObject(RC.decode(RC.encode(RC.fromObject(value)).finish()), { defaults: false });
    assert.deepEqual(back, value);
  });
});
